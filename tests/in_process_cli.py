"""Running the nnspec CLI inside the test's process, with what a subprocess would have shown."""

from __future__ import annotations

import contextlib
import io
import subprocess
import warnings
from pathlib import Path

from runtime.cli.main import main


def nnspec_here(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Return the exit code, stdout and stderr of `nnspec ARGS` run in this process in `cwd`.

    For tests whose point is not the process boundary: a subprocess costs seconds (torch's
    import) where the call costs milliseconds. What the process would show is kept: stderr
    holds any warning, printed as the interpreter prints it (not recorded by pytest), and a
    traceback fails the test as the exception itself. Not for inputs that could hang or exhaust
    the process: those need a subprocess with a timeout.
    """
    out, err = io.StringIO(), io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):
        err.write(warnings.formatwarning(message, category, filename, lineno, line))

    with contextlib.chdir(cwd), warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(arg) for arg in args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
