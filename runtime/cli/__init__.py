"""The command line: `main.py` is the entry point, and each other module is one `nnspec` subcommand."""
