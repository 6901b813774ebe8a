"""The error a command raises for a user's mistake: one clear line, exit code 2, no traceback."""


class UserError(Exception):
    """A mistake in what the user asked for (a missing file, a bad option); `str()` says what."""

    exit_code = 2
