"""The server's lifecycle: `initialize`, `initialized`, workspace folders, settings, `shutdown`.

`initialize` records the workspace folders and initializationOptions; `initialized` reads the
workspace configuration, creates the model client, starts indexing every root in the background
and checks the model; each folder gets its socket for the CLI (``cli_socket``). Settings and folders
that change later are applied the same way; `shutdown` cancels the work in flight and closes the
sockets, the indexes and the model client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from enclave.config import Config
from enclave.server.lsp import settings
from enclave.server.lsp.cli_socket import CliSocket
from enclave.server.lsp.completion import Completer
from enclave.server.lsp.convert import to_plain, uri_to_path
from enclave.server.lsp.indexing import Indexing, register_file_watcher
from enclave.server.lsp.model_supervisor import ModelSupervisor
from enclave.server.lsp.services import Root, Services

log = logging.getLogger(__name__)


def initialize(services: Services, params: types.InitializeParams) -> None:
    options = to_plain(params.initialization_options)
    if isinstance(options, dict):
        services.init_options = options
    elif options is not None:
        log.warning("initializationOptions must be an object; ignored")
    for uri in settings.roots_from(params):
        path = uri_to_path(uri)
        if path is not None:
            services.roots.append(Root(path=path, config=Config()))


async def folders_changed(
    services: Services,
    indexing: Indexing,
    cli_socket: CliSocket,
    event: types.WorkspaceFoldersChangeEvent,
) -> None:
    """Folders added to the workspace are indexed; removed ones are closed and forgotten."""
    removed = {uri_to_path(folder.uri) for folder in event.removed}
    for root in [r for r in services.roots if r.path in removed]:
        services.roots.remove(root)
        cli_socket.close(root.path)
        await indexing.close(root)
    known = {root.path for root in services.roots}
    added = []
    for folder in event.added:
        path = uri_to_path(folder.uri)
        if path is not None and path not in known:
            added.append(Root(path=path, config=Config()))
            known.add(path)
    services.roots.extend(added)
    settings.report_problems(services, settings.configure_roots(services))
    for root in added:
        indexing.start(root)
        await cli_socket.open(root)


async def shutdown(
    services: Services,
    indexing: Indexing,
    models: ModelSupervisor,
    completer: Completer,
    cli_socket: CliSocket,
) -> None:
    cli_socket.close_all()
    for task in list(indexing.tasks) + list(completer.inflight.values()):
        task.cancel()
    await models.aclose_client()
    for root in services.roots:
        if root.index is not None:
            index, root.index = root.index, None
            try:
                await asyncio.to_thread(index.close)
            except Exception:
                log.warning("closing the index of %s failed", root.path, exc_info=True)


def register(
    server: LanguageServer,
    services: Services,
    *,
    indexing: Indexing,
    models: ModelSupervisor,
    completer: Completer,
    cli_socket: CliSocket,
) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(ls: LanguageServer, params: types.InitializeParams) -> None:
        initialize(services, params)

    @server.feature(types.INITIALIZED)
    async def on_initialized(ls: LanguageServer, params: types.InitializedParams) -> None:
        services.loop = asyncio.get_running_loop()
        async with services.settings_lock:
            await settings.read_workspace_configuration(ls, services)
            settings.report_problems(services, settings.configure_roots(services))
            models.replace_client()
            for root in services.roots:
                indexing.start(root)
                await cli_socket.open(root)
            models.start()
        await register_file_watcher(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def on_folders_changed(
        ls: LanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        async with services.settings_lock:  # new roots are configured as settings are
            await folders_changed(services, indexing, cli_socket, params.event)

    async def on_settings_change(old: Config, new: Config) -> None:
        completer.clear()
        if old.ollama != new.ollama or old.completion != new.completion or old.chat != new.chat:
            await models.aclose_client()
            models.replace_client()
            models.start()

        # the index embeds through Ollama and checks it for the status: it is opened anew
        def servers(c: Config) -> tuple[object, ...]:
            return (c.ollama.effective_hosts, c.ollama.headers, c.ollama.api)

        embedding = (old.embedding, servers(old), old.trust) != (
            new.embedding,
            servers(new),
            new.trust,
        )
        if old.index != new.index or embedding:
            for root in services.roots:
                await indexing.close(root)
                indexing.start(root)

    settings.register(server, services, on_settings_change)

    @server.feature(types.SHUTDOWN)
    async def on_shutdown(ls: LanguageServer, params: Any) -> None:
        await shutdown(services, indexing, models, completer, cli_socket)
