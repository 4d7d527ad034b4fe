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
import threading
from typing import ClassVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from enclave import package_version
from enclave.server.lsp import answers, completion, indexing, lifecycle, symbols
from enclave.server.lsp.cli_socket import CliSocket
from enclave.server.lsp.model_supervisor import ModelSupervisor
from enclave.server.lsp.services import Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.lsp.transport import Inbox, run_stdio

log = logging.getLogger(__name__)


def create_server() -> tuple[LanguageServer, Services]:
    """A configured server (not yet running) and the services its features share."""
    server = LanguageServer(
        "enclave", package_version(), text_document_sync_kind=types.TextDocumentSyncKind.Incremental
    )
    services = Services(server)
    status = StatusReporter(services)
    models = ModelSupervisor(services, status)
    indexer = indexing.register(server, services, status)
    completer = completion.register(server, services, status)
    answers.register(server, services, status)
    symbols.register(server, services)
    lifecycle.register(
        server,
        services,
        indexing=indexer,
        models=models,
        completer=completer,
        cli_socket=CliSocket(services),
    )
    return server, services


class ClientLog(logging.Handler):
    """Enclave's log records, sent to the client as `window/logMessage` (the editor's "Enclave"
    output) once it is initialized; a record sent is not written to stderr as well (editors show
    the server's stderr in the same log, so it would show twice, and VS Code's as errors).
    Records logged while sending one are not sent again."""

    KINDS: ClassVar[dict[int, types.MessageType]] = {
        logging.ERROR: types.MessageType.Error,
        logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, services: Services) -> None:
        super().__init__(level=logging.INFO)
        self.services = services
        self._sending = threading.local()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.services.loop is None or getattr(self._sending, "on", False):
            return  # before `initialized` the client cannot take it (stderr has it)
        kind = self.KINDS.get(record.levelno, types.MessageType.Log)
        if record.levelno > logging.ERROR:
            kind = types.MessageType.Error
        self._sending.on = True
        try:
            self.services.log_message(self.format(record), kind)
            record.__dict__["sent_to_client"] = True
        except Exception:
            self.handleError(record)
        finally:
            self._sending.on = False


def not_sent_to_client(record: logging.LogRecord) -> bool:
    """The stderr handler's filter: a record the client got as `window/logMessage` stays off."""
    return not getattr(record, "sent_to_client", False)


def configure_logging(verbose: bool = False) -> None:
    """Logs go to stderr (stdout is the LSP channel), at ENCLAVE_LOG_LEVEL (INFO; DEBUG with
    -v), except the records :class:`ClientLog` sent to the client; pygls' per-message logs stay
    quiet. Configured here once, for the server."""
    level = "DEBUG" if verbose else os.environ.get("ENCLAVE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(not_sent_to_client)
    for noisy in ("pygls", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_lsp(verbose: bool = False) -> int:
    """Run the language server on stdio until the client says exit; returns the exit code."""
    configure_logging(verbose)
    server, services = create_server()
    logging.getLogger("enclave").addHandler(ClientLog(services))
    log.info("Enclave %s language server starting (pid %d)", package_version(), os.getpid())
    services.inbox = Inbox(sys.stdin.buffer)
    return run_stdio(server, services.inbox)
