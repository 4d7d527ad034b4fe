"""The `enclave` command line (``main``); each group of commands registers its own subcommands."""

from enclave.server.cli.main import main

__all__ = ["main"]
