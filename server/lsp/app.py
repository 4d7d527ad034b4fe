"""The Enclave language server app: creates the pygls server and wires the feature modules.

``create_server()`` builds a server with its :class:`Services`; ``run_lsp()`` runs it on stdio
(`enclave lsp`, `python -m server.lsp`). Startup: `initialize` records the workspace folders and
initializationOptions; `initialized` reads the workspace configuration, creates the model
client, starts indexing every root in the background and checks the model (status + message).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from indexer.config import Config
from server.lsp import answers, completion, health, indexing, settings, symbols
from server.lsp.convert import to_plain, uri_to_path
from server.lsp.services import Root, Services
from server.lsp.status import StatusReporter

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("enclave-lsp")
    except PackageNotFoundError:
        return "0.1.0"


def create_server() -> tuple[LanguageServer, Services]:
    """A configured server (not yet running) and the services its features share."""
    server = LanguageServer(
        "enclave", _version(), text_document_sync_kind=types.TextDocumentSyncKind.Incremental
    )
    services = Services(server)
    status = StatusReporter(services)
    indexer = indexing.Indexing(server, services, status)
    completer = completion.Completer(services, status)
    answerer = answers.Answers(server, services, status)
    checker = health.ModelHealth(services, status)

    @server.feature(types.INITIALIZE)
    def initialize(ls: LanguageServer, params: types.InitializeParams) -> None:
        options = to_plain(params.initialization_options)
        if isinstance(options, dict):
            services.init_options = options
        elif options is not None:
            log.warning("initializationOptions must be an object; ignored")
        for uri in settings.roots_from(params):
            path = uri_to_path(uri)
            if path is not None:
                services.roots.append(Root(path=path, config=Config()))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: LanguageServer, params: types.InitializedParams) -> None:
        services.loop = asyncio.get_running_loop()
        if not isinstance(services.init_options, dict):
            services.init_options = {}
        await settings.read_workspace_configuration(ls, services)
        settings.report_problems(services, settings.configure_roots(services))
        checker.replace_client()
        for root in services.roots:
            indexer.start(root)
        checker.start()
        await indexing.register_file_watcher(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(
        ls: LanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        """Folders added to the workspace are indexed; removed ones are closed and forgotten."""
        removed = {uri_to_path(folder.uri) for folder in params.event.removed}
        for root in [r for r in services.roots if r.path in removed]:
            services.roots.remove(root)
            await indexer.reopen(root)  # closes its index
        known = {root.path for root in services.roots}
        added = []
        for folder in params.event.added:
            path = uri_to_path(folder.uri)
            if path is not None and path not in known:
                added.append(Root(path=path, config=Config()))
                known.add(path)
        services.roots.extend(added)
        settings.report_problems(services, settings.configure_roots(services))
        for root in added:
            indexer.start(root)

    async def on_settings_change(old: Config, new: Config) -> None:
        completer.clear()
        if old.ollama != new.ollama or old.completion != new.completion or old.chat != new.chat:
            await checker.aclose_client()
            checker.replace_client()
            checker.start()
        if old.index != new.index or old.embedding != new.embedding:
            for root in services.roots:
                await indexer.reopen(root)
                indexer.start(root)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: LanguageServer, params: Any) -> None:
        for task in list(indexer.tasks) + list(completer.inflight.values()):
            task.cancel()
        await checker.aclose_client()
        for root in services.roots:
            if root.index is not None:
                index, root.index = root.index, None
                try:
                    await asyncio.to_thread(index.close)
                except Exception:
                    log.warning("closing the index of %s failed", root.path, exc_info=True)

    settings.setup(server, services, on_settings_change)
    indexing.setup(server, services, indexer)
    completion.setup(server, services, completer)
    answers.setup(server, services, answerer)
    symbols.setup(server, services)
    server.enclave = services  # type: ignore[attr-defined]  # for debugging and the bench
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
    server.start_io()
    return 0
