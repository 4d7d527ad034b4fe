"""Typed configuration from the client: initializationOptions and `workspace/configuration`.

Settings are read at `initialize` (initializationOptions) and `initialized` (section ``enclave``
of the workspace configuration, when the client supports it), and read again on
`workspace/didChangeConfiguration`. Once the client has sent an ``enclave`` section, it replaces
initializationOptions (so a removed setting falls back to its default); the result is passed to
``enclave.config.load_config`` for each root; an invalid key is reported by name
(showMessage + logMessage) and replaced by its default.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from enclave.config import Config, ConfigIssue, load_config
from enclave.server.lsp.convert import to_plain
from enclave.server.lsp.services import Services

log = logging.getLogger(__name__)
SECTION = "enclave"


def client_overrides(services: Services) -> dict[str, Any]:
    if services.client_settings is None:
        return dict(services.init_options)
    return dict(services.client_settings)


def configure_roots(services: Services) -> list[ConfigIssue]:
    """(Re)load every root's configuration; returns the problems found (deduplicated)."""
    overrides = client_overrides(services)
    problems: list[ConfigIssue] = []
    for root in services.roots:
        config, found = load_config(root.path, overrides, override_source="initializationOptions")
        root.config = config
        problems += [p for p in found if p not in problems]
    if services.roots:
        services.config = services.roots[0].config
    else:
        services.config, found = load_config(
            None, overrides, override_source="initializationOptions"
        )
        problems += found
    return problems


def report_problems(services: Services, problems: list[ConfigIssue]) -> None:
    for problem in problems:
        services.show_message(f"Enclave: {problem}", types.MessageType.Warning)


async def read_workspace_configuration(server: LanguageServer, services: Services) -> None:
    """Fetch section ``enclave`` of the client's configuration (if the client offers it)."""
    if not get_capability(server.client_capabilities, "workspace.configuration", False):
        return
    try:
        result = await server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
    except Exception as exc:  # a client bug must not stop the server
        log.warning("workspace/configuration failed: %s", exc, exc_info=True)
        return
    value = to_plain(result[0]) if result else None
    if value is None:  # the client has no `enclave` section: initializationOptions stand
        return
    if isinstance(value, dict):
        services.client_settings = value
    else:
        services.show_message(
            f"Enclave: the `{SECTION}` settings must be an object, got {type(value).__name__}; "
            "ignored"
        )


def register(
    server: LanguageServer,
    services: Services,
    on_change: Callable[[Config, Config], Awaitable[None]],
) -> None:
    """Register didChangeConfiguration; ``on_change(old, new)`` reacts to the new settings."""

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: LanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        async with services.settings_lock:
            old = services.config
            settings = to_plain(params.settings)
            if isinstance(settings, dict) and isinstance(settings.get(SECTION), dict):
                services.client_settings = settings[SECTION]
            await read_workspace_configuration(ls, services)
            report_problems(services, configure_roots(services))
            await on_change(old, services.config)


def roots_from(params: types.InitializeParams) -> list[str]:
    """Workspace folder URIs from initialize params (folders, else rootUri, else rootPath)."""
    if params.workspace_folders:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    if params.root_path:
        from pygls.uris import from_fs_path

        return [uri for uri in [from_fs_path(params.root_path)] if uri]
    return []
