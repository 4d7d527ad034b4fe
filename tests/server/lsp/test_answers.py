"""Explain and ask end to end: partial results stream on the partialResultToken, the final
Answer keeps thinking apart and cites real ranges of real files; code actions and commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.server.lsp.conftest import Session, options_for
from tests.support.ollama_server import OllamaTestServer


def _check_citations(lsp: Session, answer: dict[str, Any]) -> None:
    assert answer["citations"], answer
    for citation in answer["citations"]:
        path = lsp.root / citation["path"]
        assert citation["uri"] == path.as_uri()
        lines = Path(path).read_text().splitlines()
        start, end = citation["range"]["start"], citation["range"]["end"]
        assert 0 <= start["line"] <= end["line"] < len(lines)
        assert end["character"] == len(lines[end["line"]])


async def test_explain_and_ask_stream_then_cite(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    assert (await lsp.wait_settled())["state"] == "ready"
    uri = lsp.open("app/report.py")

    lsp.partials["explain-1"] = []
    answer = await lsp.request(
        "enclave/explain",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 4, "character": 4}, "end": {"line": 4, "character": 4}},
            "partialResultToken": "explain-1",
        },
    )
    streamed = lsp.partials["explain-1"]
    assert len(streamed) >= 2
    assert "".join(p.get("markdown", "") for p in streamed).strip() == answer["markdown"]
    assert "".join(p.get("thinking", "") for p in streamed).strip() == answer["thinking"]
    assert answer["thinking"] and answer["markdown"] and "<think>" not in answer["markdown"]
    assert answer["model"] == "deepseek-r1"
    _check_citations(lsp, answer)
    # No selection: the enclosing definition (`describe`, lines 4-7) is what was explained.
    assert answer["citations"][0]["path"] == "app/report.py"
    assert answer["citations"][0]["range"]["start"]["line"] == 3
    assert answer["citations"][0]["range"]["end"]["line"] == 6

    lsp.partials["ask-1"] = []
    asked = await lsp.request(
        "enclave/ask",
        {
            "question": "How is the perimeter of a rectangle computed?",
            "partialResultToken": "ask-1",
        },
    )
    assert lsp.partials["ask-1"] and asked["markdown"]
    _check_citations(lsp, asked)
    assert any(c["path"] == "shapes/geometry.py" for c in asked["citations"])


async def test_code_actions_run_as_commands(lsp: Session, ollama_server: OllamaTestServer) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("shapes/geometry.py")
    selection = types.Range(types.Position(15, 0), types.Position(17, 31))
    # Raw JSON: lsprotocol's client-side converter would read a CodeAction as a Command.
    actions = await lsp.request(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=selection,
            context=types.CodeActionContext(diagnostics=[]),
        ),
    )
    titles = {a["title"]: a for a in actions}
    assert set(titles) == {"Enclave: Explain", "Enclave: Ask about this"}
    assert titles["Enclave: Explain"]["kind"] == "source.enclave.explain"
    command = titles["Enclave: Explain"]["command"]
    assert command["command"] == "enclave.explain"
    answer = await lsp.request(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(command=command["command"], arguments=command["arguments"]),
    )
    assert answer["markdown"]
    assert answer["citations"][0]["path"] == "shapes/geometry.py"
    assert answer["citations"][0]["range"]["start"]["line"] == 15
    ask = titles["Enclave: Ask about this"]["command"]
    assert ask["command"] == "enclave.ask" and "question" not in ask["arguments"][0]
    arguments = [{**ask["arguments"][0], "question": "What does this return?"}]
    asked = await lsp.request(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(command="enclave.ask", arguments=arguments),
    )
    assert asked["markdown"]
