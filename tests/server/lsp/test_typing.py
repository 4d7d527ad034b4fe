"""Typing, as the model's prompt cache sees it: consecutive prompts share their beginning while
the user types at one place, characters typed as the suggestion shows them are answered from it
without the model, and typing something else asks the model again."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from lsprotocol import types

from enclave.server.model.prompts import CURSOR, DATA_CLOSE
from tests.server.lsp.conftest import Session, options_for
from tests.support.lsp_params import inline_params, insertion
from tests.support.ollama_server import Generation, OllamaTestServer
from tests.support.shapes import REPORT

# a new line typed in describe(), identifiers and all: the names near the cursor change
TYPED = "total = rectangle_perimeter(w"


def _type(lsp: Session, uri: str, version: int, line: int, column: int, text: str) -> None:
    lsp.client.text_document_did_change(insertion(uri, version, line, column, text))


def _completions(server: OllamaTestServer) -> list[Generation]:
    return [g for g in server.state.generations if g.endpoint == "generate"]


def _before_cursor(generation: Generation) -> str:
    """The prompt text the model reads before the cursor: up to the marker that closes the text
    before the cursor (the chat prompt names the marker in its instructions too; FIM: all of
    the prompt)."""
    prompt = str(generation.body.get("prompt") or "")
    at = prompt.rfind(f"{CURSOR}\n{DATA_CLOSE}")
    return prompt if at < 0 else prompt[:at]


def _shared(a: str, b: str) -> int:
    """Characters at the start of ``a`` and ``b`` that are the same."""
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same


async def _open_at_new_line(lsp: Session) -> tuple[str, int]:
    """app/report.py with an empty indented line after `perimeter = ...`; (uri, that line)."""
    lines = REPORT.splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines) if "perimeter = " in text) + 1
    text = "".join(lines[:line]) + "    \n" + "".join(lines[line:])
    return lsp.open("app/report.py", text), line


async def _suggestion_after_return(
    lsp: Session, ollama_server: OllamaTestServer
) -> tuple[str, int, str]:
    """Start the server, type `return ` on a new line (column 4 to 11) and get the model's
    suggestion there: (uri, line, the suggestion's text)."""
    await lsp.start(options_for(ollama_server))
    assert (await lsp.wait_settled())["state"] == "ready"
    uri, line = await _open_at_new_line(lsp)
    _type(lsp, uri, 2, line, 4, "return ")
    first = await lsp.client.text_document_inline_completion_async(inline_params(uri, line, 11))
    assert isinstance(first, types.InlineCompletionList) and first.items, first
    shown = first.items[0].insert_text
    assert isinstance(shown, str) and len(shown) >= 3, shown
    return uri, line, shown


@pytest.mark.parametrize("model", ["deepseek-r1", "qwen2.5-coder:1.5b"])
async def test_prompts_typed_at_one_place_share_their_beginning(
    lsp: Session, ollama_server: OllamaTestServer, model: str
) -> None:
    """deepseek-r1 (the default) gets the chat prompt, qwen2.5-coder FIM: both keep at least 90%
    of the previous prompt's text before the cursor as their common beginning."""
    options = options_for(
        ollama_server, ollama={"completionModel": model}, completion={"maxTokens": 8}
    )
    await lsp.start(options)
    assert (await lsp.wait_settled())["state"] == "ready"
    uri, line = await _open_at_new_line(lsp)
    column = 4
    for version, char in enumerate(TYPED, start=2):
        _type(lsp, uri, version, line, column, char)
        column += 1
        await lsp.client.text_document_inline_completion_async(inline_params(uri, line, column))
    # (a keystroke typed as the suggestion showed it asks no model: fewer prompts than keys)
    prompts = [_before_cursor(g) for g in _completions(ollama_server)]
    assert len(prompts) >= 5, len(prompts)
    shares = [_shared(a, b) / len(a) for a, b in itertools.pairwise(prompts)]
    assert min(shares) >= 0.9, [round(s, 2) for s in shares]
    # ...and the cache was really used: the model read only a small part of each prompt
    later = _completions(ollama_server)[1:]
    assert all(g.cached_tokens >= 0.8 * g.prompt_tokens for g in later), [
        (g.cached_tokens, g.prompt_tokens) for g in later
    ]


async def test_typing_what_the_suggestion_shows_needs_no_model_call(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    uri, line, shown = await _suggestion_after_return(lsp, ollama_server)
    calls = len(_completions(ollama_server))

    version, column = 3, 11
    for char in shown[:2]:  # the user types what the ghost text shows
        _type(lsp, uri, version, line, column, char)
        version, column = version + 1, column + 1
        rest = await lsp.client.text_document_inline_completion_async(
            inline_params(uri, line, column)
        )
        assert isinstance(rest, types.InlineCompletionList) and rest.items
        assert rest.items[0].insert_text == shown[column - 11 :]
    assert len(_completions(ollama_server)) == calls  # no request reached the model server

    # something else than the suggestion: the model is asked again
    other = "Z" if shown[2] != "Z" else "Q"
    _type(lsp, uri, version, line, column, other)
    await lsp.client.text_document_inline_completion_async(inline_params(uri, line, column + 1))
    for _ in range(100):
        if len(_completions(ollama_server)) > calls:
            break
        await asyncio.sleep(0.05)
    assert len(_completions(ollama_server)) == calls + 1
    typed = "return " + shown[:2] + other
    assert _before_cursor(_completions(ollama_server)[-1]).endswith(typed)


async def test_accepting_part_of_a_suggestion_shows_the_rest_without_a_model_call(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """A partial accept (VS Code's "accept word") inserts the suggestion's beginning in one
    change: the rest is answered from the suggestion, with no request to the model."""
    uri, line, shown = await _suggestion_after_return(lsp, ollama_server)
    calls = len(_completions(ollama_server))
    word = shown[: max(2, len(shown) // 2)]
    _type(lsp, uri, 3, line, 11, word)  # the accepted part, in one change
    rest = await lsp.client.text_document_inline_completion_async(
        inline_params(uri, line, 11 + len(word))
    )
    assert isinstance(rest, types.InlineCompletionList) and rest.items
    assert rest.items[0].insert_text == shown[len(word) :]
    assert len(_completions(ollama_server)) == calls
