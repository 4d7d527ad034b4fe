"""``python -m enclave.server.lsp``: run the language server over stdio (what `enclave lsp` does)."""

import sys

from enclave.server.cli.main import keep_workspaces_off_sys_path
from enclave.server.lsp.app import run_lsp

# Guarded: indexing worker processes re-import the main module and must not start a server.
if __name__ == "__main__":
    keep_workspaces_off_sys_path()
    sys.exit(run_lsp())
