"""``python -m enclave``: the `enclave` command line (``python -m enclave lsp`` runs the server)."""

import sys

from enclave.server.cli import main

# Guarded: indexing worker processes re-import the main module and must not run the CLI.
if __name__ == "__main__":
    sys.exit(main())
