"""End-to-end fixtures: the real server process (``python -m enclave.server.lsp``) driven over stdio by
pytest-lsp, with VS Code's and Neovim's client capabilities, against the test Ollama server and a
real git repository on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, progress

from tests.support.ollama_fixtures import *  # noqa: F403  (the ollama_server fixtures)
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo
from tests.support.shapes import FILES

CLIENTS = ["visual-studio-code", "neovim"]


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
    env["XDG_CONFIG_HOME"] = "/nonexistent"  # no user config leaks into tests
    env["ENCLAVE_LOG_LEVEL"] = "WARNING"
    return env


def plain(value: Any) -> Any:
    """Custom notifications arrive as namedtuples: back to dicts."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Session:
    """A started server plus what it told the client (status, partial results)."""

    def __init__(self, client: LanguageClient, capabilities: str, root: Path) -> None:
        self.client = client
        self.capabilities = capabilities
        self.root = root
        self.statuses: list[dict[str, Any]] = []
        self.partials: dict[str, list[dict[str, Any]]] = {}
        self._changed = asyncio.Event()

    def uri(self, relative: str) -> str:
        return (self.root / relative).as_uri()

    def on_status(self, params: Any) -> None:
        self.statuses.append(plain(params))
        self._changed.set()

    def on_progress(self, params: types.ProgressParams) -> None:
        token = str(params.token)
        if token in self.partials:
            self.partials[token].append(plain(params.value))
            return
        progress(self.client, params)

    async def start(self, options: dict[str, Any]) -> None:
        await self.client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(self.capabilities),
                root_uri=self.root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name="repo")],
                initialization_options=options,
            )
        )

    async def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 90.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for status in self.statuses[seen:]:
                if predicate(status):
                    return status
            seen = len(self.statuses)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching enclave/status; got {self.statuses}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def wait_settled(self) -> dict[str, Any]:
        return await self.wait_status(lambda s: s["state"] in ("ready", "degraded", "error"))

    def open(self, relative: str, text: str | None = None) -> str:
        uri = self.uri(relative)
        body = (self.root / relative).read_text() if text is None else text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=body
                )
            )
        )
        return uri

    async def request(self, method: str, params: Any) -> Any:
        """Send a request and return its result as plain JSON (no lsprotocol structuring)."""
        msg_id = f"raw-{uuid.uuid4().hex}"
        future = self.client.protocol.send_request(method, params, msg_id=msg_id)
        self.client.protocol._result_types[msg_id] = None  # keep the JSON as it came
        return plain(await asyncio.wrap_future(future))


def make_client() -> LanguageClient:
    """pytest-lsp's client, with `$/progress` also accepting partial-result tokens."""
    client = LanguageClient(converter_factory=default_converter)
    for method, handler in DEFAULT_CLIENT_FEATURES.items():
        if method != types.PROGRESS:
            client.feature(method)(handler)
    return client


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(
        server_command=[sys.executable, "-P", "-m", "enclave.server.lsp"],
        server_env=_server_env(),
        client_factory=make_client,
    ),
)
async def enclave_client(
    request: pytest.FixtureRequest, lsp_client: LanguageClient, tmp_path: Path
) -> AsyncIterator[None]:
    root = make_repo(tmp_path / "repo", FILES)
    attach_session(lsp_client, request.param, root)
    yield
    await lsp_client.shutdown_session()


def attach_session(lsp_client: LanguageClient, editor: str, root: Path) -> Session:
    """A Session for ``root`` on ``lsp_client`` (as ``editor``), receiving the server's status
    and progress notifications; the fixture reads it back as ``lsp_client.enclave_session``."""
    session = Session(lsp_client, editor, root)
    lsp_client.feature("enclave/status")(lambda ls, params: session.on_status(params))
    lsp_client.feature(types.PROGRESS)(lambda ls, params: session.on_progress(params))
    lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda ls, params: None)
    lsp_client.enclave_session = session  # type: ignore[attr-defined]
    return session


@pytest.fixture
def lsp(enclave_client: LanguageClient) -> Session:
    """A real server process (not yet initialized: call ``start``) and its client."""
    session: Session = enclave_client.enclave_session  # type: ignore[attr-defined]
    return session


def options_for(server: OllamaTestServer, **sections: dict[str, Any]) -> dict[str, Any]:
    """initializationOptions (camelCase, as editors send them) aimed at the test Ollama server."""
    options: dict[str, dict[str, Any]] = {
        "ollama": {
            "host": server.url,
            "chatModel": "deepseek-r1",
            "completionModel": "qwen2.5-coder:1.5b",
            "connectTimeout": 2.0,
            "firstTokenTimeout": 30.0,
            "totalTimeout": 60.0,
        },
        "completion": {"maxTokens": 24, "numCtx": 1024, "contextTokens": 300, "debounceMs": 60},
        "chat": {"maxTokens": 48, "thinkTokens": 16, "numCtx": 2048, "contextTokens": 600},
        "embedding": {"provider": "ollama", "model": "nomic-embed-text"},
    }
    for name, values in sections.items():
        options.setdefault(name, {}).update(values)
    return options
