"""The Enclave language server app: creates the pygls server and registers the feature modules.

``create_server()`` builds a server with its :class:`Services`; ``run_lsp()`` runs it on stdio
(`enclave lsp`, `python -m enclave.server.lsp`). Every feature module has the same shape: a
``register(server, services, ...)`` that adds its LSP methods (handlers a few lines long that call
plain functions) and returns the object other modules need, if any. The lifecycle
(initialize, initialized, folders, settings, shutdown) is ``lifecycle``'s.
"""

from __future__ import annotations

import logging
import os
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from enclave import package_version
from enclave.server.lsp import answers, completion, indexing, lifecycle, symbols
from enclave.server.lsp.health import ModelHealth
from enclave.server.lsp.services import Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.lsp.transport import run_stdio

log = logging.getLogger(__name__)


def create_server() -> tuple[LanguageServer, Services]:
    """A configured server (not yet running) and the services its features share."""
    server = LanguageServer(
        "enclave", package_version(), text_document_sync_kind=types.TextDocumentSyncKind.Incremental
    )
    services = Services(server)
    status = StatusReporter(services)
    health = ModelHealth(services, status)
    indexer = indexing.register(server, services, status)
    completer = completion.register(server, services, status)
    answers.register(server, services, status)
    symbols.register(server, services)
    lifecycle.register(server, services, indexing=indexer, health=health, completer=completer)
    return server, services


def configure_logging() -> None:
    """Logs go to stderr (stdout is the LSP channel); pygls' per-message logs stay quiet."""
    level = os.environ.get("ENCLAVE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("pygls", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_lsp() -> int:
    """Run the language server on stdio until the client says exit; returns the exit code."""
    configure_logging()
    server, _ = create_server()
    return run_stdio(server)
