"""Live indexing (save -> re-index -> search sees it) and every degraded state made visible."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.server.lsp.conftest import Session, options_for
from tests.support.ollama_server import OllamaTestServer

ADDED = '''

def rectangle_diagonal(width: float, height: float) -> float:
    """Length of the diagonal."""
    return (width**2 + height**2) ** 0.5
'''


async def _symbols(lsp: Session, query: str) -> list[str]:
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query=query))
    return [s.name for s in found or []]


async def test_saving_a_file_updates_search(lsp: Session, ollama_server: OllamaTestServer) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    assert "rectangle_diagonal" not in await _symbols(lsp, "rectangle_diagonal")
    settled = len(lsp.statuses)

    path = lsp.root / "shapes/geometry.py"
    uri = lsp.open("shapes/geometry.py")
    path.write_text(path.read_text() + ADDED)
    lsp.client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    lsp.client.text_document_did_save(  # a second save inside the debounce: one re-index
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await lsp.wait_status(lambda s: s in lsp.statuses[settled:] and s["state"] == "ready")
    assert "rectangle_diagonal" in await _symbols(lsp, "rectangle_diagonal")

    # A file created outside the editor arrives through didChangeWatchedFiles.
    (lsp.root / "shapes/circle.py").write_text(
        "def circle_area(r: float) -> float:\n    return 3.14159 * r * r\n"
    )
    settled = len(lsp.statuses)
    lsp.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(uri=lsp.uri("shapes/circle.py"), type=types.FileChangeType.Created)
            ]
        )
    )
    await lsp.wait_status(lambda s: s in lsp.statuses[settled:] and s["state"] == "ready")
    assert "circle_area" in await _symbols(lsp, "circle_area")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _case(name: str, server: OllamaTestServer, tmp: Path) -> tuple[dict[str, Any], str, str]:
    """initializationOptions, expected state, and a phrase the message must contain."""
    if name == "no-ollama":
        host = f"http://127.0.0.1:{_closed_port()}"
        return options_for(server, ollama={"host": host}), "degraded", "Ollama is not running"
    if name == "model-missing":
        return (
            options_for(server, ollama={"chatModel": "no-such-model"}),
            "degraded",
            "no-such-model",
        )
    if name == "no-embedding-model":
        options = options_for(server, embedding={"model": "no-such-embedder"})
        return options, "degraded", "semantic search is off"
    blocker = tmp / "not-a-directory"
    blocker.write_text("a file where the index should be\n")
    return options_for(server, index={"db": str(blocker)}), "error", "not-a-directory"


@pytest.mark.parametrize(
    "case", ["no-ollama", "model-missing", "no-embedding-model", "index-unreadable"]
)
async def test_degraded_states_are_visible(
    lsp: Session, ollama_server: OllamaTestServer, tmp_path: Path, case: str
) -> None:
    options, state, phrase = _case(case, ollama_server, tmp_path)
    await lsp.start(options)
    status = await lsp.wait_status(lambda s: s["state"] == state and phrase in s["message"])
    if case != "no-embedding-model":
        assert status["fix"], status
    shown = [m.message for m in lsp.client.messages]
    assert sum(phrase in m for m in shown) == 1, shown  # shown once, not on every status
    if state == "degraded":  # symbols still work without a model
        assert "Rectangle" in await _symbols(lsp, "Rectangle")
    else:
        assert await _symbols(lsp, "Rectangle") == []
