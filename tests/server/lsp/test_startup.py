"""Startup: background indexing with progress and status, then workspace/symbol from the index."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types

from tests.server.lsp.conftest import Session, options_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo


async def test_indexes_with_progress_then_finds_symbols(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    indexing = await lsp.wait_status(lambda s: s["state"] == "indexing")
    assert indexing["root"] == str(lsp.root)
    ready = await lsp.wait_settled()
    assert ready["state"] == "ready", ready
    assert ready["files"] >= 4 and ready["symbols"] >= 4 and ready["semantic"] is True

    reports: list[Any] = [r for rs in lsp.client.progress_reports.values() for r in rs]
    kinds = [type(r).__name__ for r in reports]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd", kinds
    assert reports[0].cancellable is True
    assert "WorkDoneProgressReport" in kinds

    found = await lsp.client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="Rectangle.area")
    )
    assert found, "qualified name not found"
    first = found[0]
    assert isinstance(first, types.SymbolInformation)
    assert first.name == "Rectangle.area"
    assert first.location.uri == lsp.uri("shapes/geometry.py")
    assert first.location.range.start.line == 10  # `def area` is line 11 (1-based)

    fuzzy = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="rectperim"))
    assert fuzzy is not None
    assert any(s.name == "rectangle_perimeter" for s in fuzzy)


async def test_settings_bad_keys_named_and_reread_on_change(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    options = options_for(ollama_server, completion={"debounceMs": "soon", "colour": "red"})
    await lsp.start(options)
    ready = await lsp.wait_settled()
    assert ready["completionModel"] == "qwen2.5-coder:1.5b"
    shown = " ".join(m.message for m in lsp.client.messages)
    assert "completion.debounce_ms" in shown and "completion.colour" in shown

    # workspace/configuration (section "enclave") replaces initializationOptions once the client
    # has one, and is re-read on didChangeConfiguration: the bad keys removed there are gone.
    changed_options = options_for(ollama_server, ollama={"completionModel": "smollm2:135m"})
    lsp.client.set_configuration(changed_options, section="enclave")
    seen = len(lsp.statuses)
    lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    changed = await lsp.wait_status(
        lambda s: s in lsp.statuses[seen:] and s["completionModel"] == "smollm2:135m"
    )
    assert changed["state"] == "ready"
    # a setting the user removed falls back to its default, not to the value sent at start
    lsp.client.set_configuration({"ollama": {"completionModel": "smollm2:135m"}}, section="enclave")
    seen = len(lsp.statuses)
    lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    fallback = await lsp.wait_status(
        lambda s: s in lsp.statuses[seen:] and s["state"] == "degraded"
    )
    assert "127.0.0.1:11434" in fallback["message"]


async def test_settings_sent_right_after_initialized_do_not_index_twice(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    # Neovim sends didChangeConfiguration as soon as it has sent `initialized`, while the server
    # is still asking for workspace/configuration: the same settings must not count as a change
    # (it used to close the index and build it again, `ready` then `indexing` again).
    options = options_for(ollama_server)
    lsp.client.set_configuration(options, section="enclave")
    await lsp.start(options)
    lsp.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"enclave": options})
    )
    ready = await lsp.wait_settled()
    assert ready["state"] == "ready", ready
    settled = lsp.statuses.index(ready)
    with pytest.raises(AssertionError, match="no matching enclave/status"):
        again = await lsp.wait_status(
            lambda s: s in lsp.statuses[settled:] and s["state"] == "indexing", timeout=3
        )
        raise RuntimeError(f"indexed again after {ready}: {again}")


async def test_indexing_can_be_cancelled_from_the_progress(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    for number in range(300):
        path = lsp.root / "gen" / f"module_{number}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"def function_{number}(value: int) -> int:\n    return value + {number}\n")
    await lsp.start(options_for(ollama_server, embedding={"provider": "none"}))
    await lsp.wait_status(lambda s: s["state"] == "indexing")
    for _ in range(100):  # the begin notification follows the indexing status
        if lsp.client.progress_reports:
            break
        await asyncio.sleep(0.05)
    token = next(iter(lsp.client.progress_reports))
    lsp.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    settled = await lsp.wait_settled()
    assert settled["state"] in ("ready", "degraded")
    end = lsp.client.progress_reports[token][-1]
    assert isinstance(end, types.WorkDoneProgressEnd)
    assert end.message is not None and end.message.startswith("cancelled"), end.message
    assert settled["files"] < 300  # stopped early; what was indexed stays usable


async def test_workspace_folders_added_are_indexed_and_removed_ones_forgotten(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server, embedding={"provider": "none"}))
    await lsp.wait_settled()
    other = make_repo(
        lsp.root.parent / "billing",
        {"invoice.py": "def total_with_tax(amount: float) -> float:\n    return amount * 1.2\n"},
    )
    folder = types.WorkspaceFolder(uri=other.as_uri(), name="billing")
    lsp.client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])
        )
    )
    ready = await lsp.wait_status(lambda s: s["root"] == str(other) and s["state"] == "ready")
    assert ready["files"] == 1 and ready["symbols"] == 1
    assert ready["semantic"] is False and "provider = none" in ready["semanticReason"]
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="total_with"))
    assert [s.location.uri for s in found or [] if s.name == "total_with_tax"] == [
        (other / "invoice.py").as_uri()
    ]
    lsp.client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])
        )
    )
    for _ in range(100):
        found = await lsp.client.workspace_symbol_async(
            types.WorkspaceSymbolParams(query="total_with")
        )
        if not found:
            break
        await asyncio.sleep(0.05)
    assert not found
    still = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Rectangle"))
    assert still


async def test_the_completion_model_is_loaded_at_start(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()

    def loads() -> list[dict[str, Any]]:
        return [
            body
            for path, body in ollama_server.state.requests
            if path == "/api/generate" and not body.get("prompt")
        ]

    for _ in range(200):
        if loads():
            break
        await asyncio.sleep(0.05)
    assert [(b["model"], b["keep_alive"]) for b in loads()] == [("qwen2.5-coder:1.5b", "30m")]


async def test_symbols_asked_for_right_after_start_wait_for_the_index(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """Editors ask for workspace symbols right after `initialized`, while an index that exists
    on disk is still being opened (about a second): the answer waits for it, it is not empty."""
    from enclave.config import Config, EmbeddingConfig
    from enclave.indexer.api import open_index

    open_index(lsp.root, Config(embedding=EmbeddingConfig(provider="none"))).update()
    await lsp.start(options_for(ollama_server, embedding={"provider": "none"}))
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Rectangle"))
    assert found and any(s.name == "Rectangle" for s in found), found
