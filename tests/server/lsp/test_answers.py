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

    # R1 thinking past chat.thinkTokens (16): stopped there, it still answers, and says so.
    ollama_server.state.think_tokens = 10_000
    lsp.partials["ask-2"] = []
    asked = await lsp.request(
        "enclave/ask", {"question": "What does describe print?", "partialResultToken": "ask-2"}
    )
    thought = [p["thinking"] for p in lsp.partials["ask-2"] if p.get("thinking")]
    assert len(thought) == 16 and asked["markdown"] and asked["doneReason"], asked
    assert (
        "the model's thinking reached chat.thinkTokens (16) and was stopped there; it answered "
        "from its reasoning so far (raise chat.thinkTokens for a longer think)"
    ) in asked["notes"]


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


async def test_explain_names_what_it_explained(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """The result's `target` is the lines explained: the definition around the cursor (with its
    name) when no range was given, and a selection ending at column 0 of a line without that
    line (the title said "4-8" where the first source said "4-7")."""
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("app/report.py")
    at_cursor = await lsp.request(
        "enclave/explain",
        {"textDocument": {"uri": uri}, "range": {"start": {"line": 5, "character": 8},
                                                 "end": {"line": 5, "character": 8}}},
    )  # fmt: skip
    target = at_cursor["target"]
    assert (target["path"], target["symbol"]) == ("app/report.py", "describe")
    assert (target["range"]["start"]["line"], target["range"]["end"]["line"]) == (3, 6)
    assert target == at_cursor["citations"][0] | {"symbol": "describe"}
    # `shape = Rectangle(...)`, then `shape.area()`: Rectangle.area, its own lines (11-13)
    sent = ollama_server.state.generations[-1].body["messages"][-1]["content"]
    assert 'path="shapes/geometry.py" lines="11-13"' in sent, sent

    selected = await lsp.request(
        "enclave/explain",
        {"textDocument": {"uri": uri}, "range": {"start": {"line": 3, "character": 0},
                                                 "end": {"line": 6, "character": 0}}},
    )  # fmt: skip
    target = selected["target"]
    assert (target["range"]["start"]["line"], target["range"]["end"]["line"]) == (3, 5)
    assert target == selected["citations"][0]


async def test_an_answer_cut_at_max_tokens_says_so(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """With a real Ollama, R1's thinking counts against num_predict: without a thinking budget
    of its own (chat.thinkTokens = 0) it takes all of it, the stream ends with done_reason
    "length" and no answer, and the result says why."""
    await lsp.start(options_for(ollama_server, chat={"maxTokens": 16, "thinkTokens": 0}))
    await lsp.wait_settled()
    uri = lsp.open("app/report.py")
    ollama_server.state.think_tokens = 10_000
    answer = await lsp.request(
        "enclave/explain",
        {"textDocument": {"uri": uri}, "range": {"start": {"line": 4, "character": 4},
                                                 "end": {"line": 4, "character": 4}}},
    )  # fmt: skip
    assert answer["markdown"] == "" and answer["thinking"] and answer["doneReason"] == "length"
    assert answer["cut"] == (
        "no answer: the model's thinking used all of chat.maxTokens (16) before it answered; "
        "raise it (setting chat.maxTokens: enclave.chat.maxTokens in VS Code, "
        "settings.chat.maxTokens in Neovim's setup()) or turn thinking off (setting chat.think "
        "= false)"
    )
    ollama_server.state.think_tokens = None
    asked = await lsp.request("enclave/ask", {"question": "How is the perimeter computed?"})
    assert asked["markdown"] and asked["doneReason"] == "length"  # 16 tokens: cut mid-answer
    assert asked["cut"].startswith("answer cut at chat.maxTokens (16); raise it (setting ")
