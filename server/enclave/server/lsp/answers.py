"""Explanations and questions: code actions, `enclave.explain`/`enclave.ask` commands and the
`enclave/explain` / `enclave/ask` requests.

Answers stream as `$/progress` on the request's ``partialResultToken`` (values are deltas
``{"thinking"?, "markdown"?}``) and end with the whole Answer: markdown, thinking apart, model,
citations as ``{uri, path, range, symbol}``, ``doneReason`` and ``cut`` (one line with its fix
when chat.maxTokens cut the answer, else ""); an explanation also names its ``target``, the
lines it explained (the definition around the cursor when no range was given). Model problems answer a JSON-RPC error whose message
says what is wrong and how to fix it. The work itself is ``server.answer``'s; this is the glue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from enclave.indexer.api import IndexProblem
from enclave.server.answer import Answer, AnswerEvent, ask, explain
from enclave.server.lsp.convert import citation_json, parse_range, to_plain
from enclave.server.lsp.services import Root, Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import ModelError
from enclave.server.trust import Refused
from enclave.server.types import Citation

log = logging.getLogger(__name__)
EXPLAIN, ASK = "enclave/explain", "enclave/ask"
MODEL_ERROR_CODE = -32001  # JSON-RPC server error: the model (Ollama) cannot answer
CONTEXT_LINES = 20  # lines either side of the cursor when no definition encloses it


@dataclass(slots=True)
class Target:
    """The code an explanation or question is about (1-based inclusive lines)."""

    root: Root
    path: str
    text: str
    start_line: int
    end_line: int
    symbol: str = ""  # the definition explained when no range was given


# How an editor user raises the answer budget or turns thinking off (LSP clients share the keys).
RAISE_HOW = (
    "setting chat.maxTokens: enclave.chat.maxTokens in VS Code, settings.chat.maxTokens in "
    "Neovim's setup()"
)
THINK_OFF = "setting chat.think = false"


class AnswerError(JsonRpcException):
    CODE = MODEL_ERROR_CODE
    MESSAGE = "model error"


def _target(services: Services, params: dict[str, Any], *, need: bool) -> Target | None:
    document = params.get("textDocument")
    if document is None:
        if need:
            raise JsonRpcInvalidParams('textDocument is required: {"textDocument": {"uri": ...}}')
        return None
    if not isinstance(document, dict) or not isinstance(document.get("uri"), str):
        raise JsonRpcInvalidParams('textDocument must be {"uri": string}')
    uri = document["uri"]
    try:
        selection = parse_range(params.get("range"))
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    try:
        opened = services.document(uri)  # inside the workspace; unopened files read bounded
    except Refused as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    root, path = opened.root, opened.path
    lines = opened.text.splitlines(keepends=True)
    symbol = ""
    if selection is not None and selection.start != selection.end:
        first, last = selection.start.line, selection.end.line
        if selection.end.character == 0 and last > first:
            last -= 1
    else:
        line = selection.start.line if selection is not None else 0
        first, last, symbol = _enclosing(root, path, line, len(lines))
    first = max(0, min(first, len(lines) - 1)) if lines else 0
    last = max(first, min(last, len(lines) - 1)) if lines else 0
    return Target(root, path, "".join(lines[first : last + 1]), first + 1, last + 1, symbol)


def _enclosing(root: Root, path: str, line: int, total: int) -> tuple[int, int, str]:
    """0-based line range of the innermost definition around ``line`` and its qualified name
    (or a window and "")."""
    if root.index is not None and root.error is None:
        try:
            symbols = root.index.file_symbols(path)
        except IndexProblem:
            log.warning("file_symbols(%s) failed", path, exc_info=True)
            symbols = []
        around = [s for s in symbols if s.start_line <= line + 1 <= s.end_line]
        if around:
            best = min(around, key=lambda s: s.end_line - s.start_line)
            return best.start_line - 1, best.end_line - 1, best.qualified_name
    return max(0, line - CONTEXT_LINES), min(total - 1, line + CONTEXT_LINES), ""


class Answers:
    def __init__(self, server: LanguageServer, services: Services, status: StatusReporter) -> None:
        self.server = server
        self.services = services
        self.status = status

    def _stream(self, token: int | str | None) -> Callable[[AnswerEvent], None] | None:
        """Send each delta of the answer as `$/progress` on the client's partial-result token."""
        if token is None:
            return None

        def on_event(event: AnswerEvent) -> None:
            value = {k: v for k in ("thinking", "markdown") if (v := getattr(event, k, ""))}
            if value:
                self.services.notify(types.PROGRESS, types.ProgressParams(token=token, value=value))

        return on_event

    def _model(self) -> ModelClient:
        if self.services.model is None:
            raise AnswerError("the model client is not ready yet; try again in a moment")
        return self.services.model

    def _result(self, root: Root, answer: Answer) -> dict[str, Any]:
        return {
            "markdown": answer.markdown,
            "thinking": answer.thinking,
            "model": answer.model,
            "citations": [citation_json(root.path, c) for c in answer.citations],
            "notes": list(answer.notes),
            "doneReason": answer.done_reason,
            "cut": answer.cut.message(RAISE_HOW, THINK_OFF) if answer.cut is not None else "",
        }

    async def _run(self, call: Callable[[], Awaitable[Answer]]) -> Answer:
        try:
            answer = await call()
        except ValueError as exc:  # empty question or selection: the message says what to do
            raise JsonRpcInvalidParams(str(exc)) from exc
        except Refused as exc:  # a file that must never be sent: the message says why
            raise JsonRpcInvalidParams(str(exc)) from exc
        except ModelError as exc:
            self.services.model_problem = exc
            self.status.publish_all()
            raise AnswerError(f"{exc.message}: {exc.fix}" if exc.fix else exc.message) from exc
        return answer

    async def explain(self, params: dict[str, Any]) -> dict[str, Any]:
        target = _target(self.services, params, need=True)
        assert target is not None
        await self.services.wait_opened(target.root)
        model = self._model()
        on_event = self._stream(_token(params))
        answer = await self._run(
            lambda: explain(
                target.root.index, model, path=target.path, text=target.text,
                start_line=target.start_line, end_line=target.end_line, on_event=on_event,
            )
        )  # fmt: skip
        result = self._result(target.root, answer)
        explained = Citation(target.path, target.start_line, target.end_line, target.symbol)
        result["target"] = citation_json(target.root.path, explained)
        return result

    async def ask(self, params: dict[str, Any]) -> dict[str, Any]:
        question = params.get("question")
        if not isinstance(question, str) or not question.strip():
            raise JsonRpcInvalidParams('question is required: {"question": "..."}')
        target = _target(self.services, params, need=False)
        if target is not None:
            root = target.root
        elif self.services.roots:
            root = self.services.roots[0]
        else:
            raise JsonRpcInvalidParams("no workspace folder is open")
        await self.services.wait_opened(root)
        model = self._model()
        on_event = self._stream(_token(params))
        answer = await self._run(
            lambda: ask(
                root.index, model, question,
                path=target.path if target else None,
                start_line=target.start_line if target else None,
                end_line=target.end_line if target else None,
                on_event=on_event,
            )
        )  # fmt: skip
        return self._result(root, answer)


def _token(params: dict[str, Any]) -> int | str | None:
    token = params.get("partialResultToken")
    if token is None or (isinstance(token, int | str) and not isinstance(token, bool)):
        return token
    raise JsonRpcInvalidParams("partialResultToken must be an integer or a string")


def _params(raw: Any) -> dict[str, Any]:
    value = to_plain(raw)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JsonRpcInvalidParams("params must be an object")
    return value


def register(server: LanguageServer, services: Services, status: StatusReporter) -> None:
    """`enclave/explain`, `enclave/ask`, their commands and the code actions that run them."""
    answers = Answers(server, services, status)

    @server.feature(EXPLAIN)
    async def explain_request(ls: LanguageServer, params: Any) -> dict[str, Any]:
        return await answers.explain(_params(params))

    @server.feature(ASK)
    async def ask_request(ls: LanguageServer, params: Any) -> dict[str, Any]:
        return await answers.ask(_params(params))

    @server.command("enclave.explain")
    async def explain_command(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        return await answers.explain(_params(args[0] if args else None))

    @server.command("enclave.ask")
    async def ask_command(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        return await answers.ask(_params(args[0] if args else None))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=KINDS)
    )
    def code_actions(ls: LanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return actions_for(params)


KINDS: list[types.CodeActionKind | str] = ["source.enclave.explain", "source.enclave.ask"]


def actions_for(params: types.CodeActionParams) -> list[types.CodeAction]:
    """ "Explain" and "Ask about this" for the range (unless the client asked for other kinds)."""
    only = params.context.only
    if only and not any(str(kind).startswith(str(o)) for o in only for kind in KINDS):
        return []
    start, end = params.range.start, params.range.end
    argument = {
        "textDocument": {"uri": params.text_document.uri},
        "range": {
            "start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character},
        },
    }
    explain_title = "Enclave: Explain" + ("" if start != end else " this definition")
    ask_title = "Enclave: Ask about this"
    return [
        types.CodeAction(
            title=explain_title,
            kind="source.enclave.explain",
            command=types.Command(
                title=explain_title, command="enclave.explain", arguments=[argument]
            ),
        ),
        types.CodeAction(
            title=ask_title,
            kind="source.enclave.ask",
            command=types.Command(title=ask_title, command="enclave.ask", arguments=[argument]),
        ),
    ]
