"""One module per `nnspec` subcommand (see runtime/cli.py for the protocol)."""
