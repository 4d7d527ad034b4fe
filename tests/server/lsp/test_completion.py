"""Completions end to end: repository context from another file, fallback completion, cache,
cancellation closing the model stream, and a burst of edits costing a handful of model calls."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from tests.server.lsp.conftest import Session, options_for
from tests.support.lsp_params import inline_params, insertion
from tests.support.ollama_server import OllamaTestServer

FENCE = '''from shapes.geometry import rectangle_perimeter


def fence_length(w: float, h: float) -> float:
    """Fence around a field."""
    return \n'''


def _generations(server: OllamaTestServer) -> list:
    return [
        g for g in server.state.generations if g.endpoint == "generate" and g.body.get("prompt")
    ]


async def test_inline_completion_uses_a_definition_from_another_file(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    # A budget with room for one piece (its text and the delimiter naming its file): the
    # definition of the imported name must win it.
    await lsp.start(options_for(ollama_server, completion={"contextTokens": 90}))
    assert (await lsp.wait_settled())["state"] == "ready"
    uri = lsp.open("app/fence.py", FENCE)  # an unsaved buffer: not on disk, not in the index

    result = await lsp.client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    assert isinstance(result, types.InlineCompletionList) and len(result.items) == 1, result
    item = result.items[0]
    assert isinstance(item.insert_text, str)
    assert item.range == types.Range(start=types.Position(5, 11), end=types.Position(5, 11))
    # The perimeter formula exists only in shapes/geometry.py: the model got it from there.
    assert "2*(w+h)" in item.insert_text.replace(" ", ""), item.insert_text
    sent = _generations(ollama_server)[-1].body
    assert "# shapes/geometry.py\n" in sent["prompt"]  # (one block per file: its path)
    assert "def rectangle_perimeter(width: float, height: float) -> float:" in sent["prompt"]

    report = await lsp.request(
        "enclave/context", {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 11}}
    )
    first = report["pieces"][0]
    assert (first["path"], first["symbol"]) == ("shapes/geometry.py", "rectangle_perimeter")
    assert "imported by this file" in first["reason"]
    assert report["prefix"].endswith("    return ") and report["multiline"] is False

    # The same position again: answered from the cache, no new model call; the plain
    # textDocument/completion fallback gives the same text.
    calls = len(_generations(ollama_server))
    again = await lsp.client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    assert isinstance(again, types.InlineCompletionList)
    assert again.items[0].insert_text == item.insert_text
    listed = await lsp.client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(5, 11)
        )
    )
    assert isinstance(listed, types.CompletionList) and listed.items[0].detail == "Enclave"
    assert listed.items[0].text_edit is not None
    assert listed.items[0].text_edit.new_text == item.insert_text
    assert len(_generations(ollama_server)) == calls


async def test_a_completion_at_the_end_of_a_file_is_still_fill_in_the_middle(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """Nothing after the cursor: an empty ``suffix`` would make Ollama render its chat template
    instead of the FIM one (ollama/ollama#6932), and the model would answer as an assistant."""
    await lsp.start(options_for(ollama_server, completion={"contextTokens": 90}))
    assert (await lsp.wait_settled())["state"] == "ready"
    uri = lsp.open("app/fence.py", FENCE.removesuffix("\n"))

    result = await lsp.client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    assert isinstance(result, types.InlineCompletionList) and len(result.items) == 1, result
    sent = _generations(ollama_server)[-1].body
    assert sent["suffix"] == "\n" and sent["prompt"].endswith("    return ")
    assert "2*(w+h)" in str(result.items[0].insert_text).replace(" ", "")


async def test_cancelled_completion_closes_the_model_stream(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("app/fence.py", FENCE)
    ollama_server.set_fault("slow-first-token", delay=3.0)
    pending = asyncio.ensure_future(
        lsp.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 5, 11), msg_id="slow-one"
        )
    )
    for _ in range(200):  # until the model has started on it
        if _generations(ollama_server):
            break
        await asyncio.sleep(0.05)
    generation = _generations(ollama_server)[-1]
    lsp.client.cancel_request(types.CancelParams(id="slow-one"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 2)  # long before the first token
    for _ in range(300):  # the server notices the closed stream when it next writes
        if generation.stop:
            break
        await asyncio.sleep(0.05)
    assert generation.stop == "client-closed"


async def test_a_burst_of_edits_costs_a_handful_of_model_calls(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("app/fence.py", FENCE)
    before = len(_generations(ollama_server))
    typed = "".join(f"x{i % 10}" if i % 7 else " + " for i in range(1000))[:1000]
    requests = []
    for version, char in enumerate(typed, start=2):
        column = 11 + version - 2
        lsp.client.text_document_did_change(insertion(uri, version, 5, column, char))
        requests.append(
            asyncio.ensure_future(
                lsp.client.text_document_inline_completion_async(inline_params(uri, 5, column + 1))
            )
        )
    results = await asyncio.gather(*requests, return_exceptions=True)
    cancelled = [r for r in results if isinstance(r, JsonRpcRequestCancelled)]
    answered = [r for r in results if isinstance(r, types.InlineCompletionList)]
    assert len(cancelled) + len(answered) == 1000, {type(r).__name__ for r in results}
    assert isinstance(results[-1], types.InlineCompletionList)
    assert len(cancelled) >= 990
    calls = len(_generations(ollama_server)) - before
    assert 1 <= calls <= 5, calls

    report = await lsp.request(
        "enclave/context",
        {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 11 + len(typed)}},
    )
    # the last state of the buffer, cut to the prefix budget (the estimator has learned the
    # test model's dense tokens for this text, so the start of the long line may be cut)
    last_line = report["prefix"].rsplit("\n", 1)[-1]
    assert len(last_line) >= 300 and ("    return " + typed).endswith(last_line)
    assert report["suffix"] == "\n"


async def test_a_document_that_cannot_be_read_is_refused_and_the_server_stays_up(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    folder = lsp.uri("shapes")  # a directory: the trust boundary refuses to read it
    result = await lsp.client.text_document_inline_completion_async(inline_params(folder, 0, 0))
    assert isinstance(result, types.InlineCompletionList) and not result.items
    try:
        await lsp.request(
            "enclave/context",
            {"textDocument": {"uri": folder}, "position": {"line": 0, "character": 0}},
        )
    except JsonRpcInvalidParams as exc:
        assert "not a regular file" in str(exc)
    else:
        raise AssertionError("enclave/context on a directory must be refused")
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Rectangle"))
    assert found is not None and any(s.name == "Rectangle" for s in found)


async def test_a_burst_of_requests_on_a_slow_model_keeps_at_most_two_generations_in_flight(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """One edit, then 200 requests 10 ms apart for that document, no edit between them, no
    `$/cancelRequest`: once the user had been silent for completion.debounceMs, each request
    asked the model at once (74 generations started, 72 at once). The server cancels each
    request the next one supersedes, itself, before it asks the model."""
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("app/fence.py", FENCE)
    ollama_server.set_fault("slow-first-token", delay=1.0)  # a slow model
    before = len(_generations(ollama_server))
    ollama_server.state.most_generating = 0
    lsp.client.text_document_did_change(insertion(uri, 2, 5, 11, "w"))
    requests = []
    for _ in range(200):
        requests.append(
            asyncio.ensure_future(
                lsp.client.text_document_inline_completion_async(inline_params(uri, 5, 12))
            )
        )
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*requests, return_exceptions=True)
    cancelled = [r for r in results if isinstance(r, JsonRpcRequestCancelled)]
    assert isinstance(results[-1], types.InlineCompletionList), results[-1]
    assert len(cancelled) >= 198, {type(r).__name__ for r in results}
    assert ollama_server.state.most_generating <= 2
    generations = _generations(ollama_server)[before:]
    assert 1 <= len(generations) <= 2, len(generations)
    # the server records a stream's end just after its last line, or when it notices the hang-up
    for _ in range(100):
        if all(g.stop for g in generations):
            break
        await asyncio.sleep(0.05)
    assert all(g.stop in ("done", "client-closed") for g in generations), [
        g.stop for g in generations
    ]
