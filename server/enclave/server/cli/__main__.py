"""``python -m enclave.server.cli``: the `enclave` command line."""

import sys

from enclave.server.cli.main import main

# Guarded: indexing worker processes re-import the main module and must not run the CLI.
if __name__ == "__main__":
    sys.exit(main())
