"""Completions: `textDocument/inlineCompletion` (LSP 3.18) and `textDocument/completion`.

Per document, a newer request cancels the older one (its task is cancelled, which closes its
model stream; the client gets RequestCancelled). Each request waits ``completion.debounceMs``
first, so a burst of keystrokes costs one model call. A small LRU cache keyed by the text around
the cursor answers a repeated position instantly. Context comes from ``server.context`` (the code
path `enclave context` prints); ``ModelClient.complete`` post-processes the model's text (drops
thinking, fences, the suffix's text, everything past the end of the block).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from enclave.server.context import PreparedCompletion, prepare_completion, report_of, split_at
from enclave.server.lsp.convert import to_plain
from enclave.server.lsp.services import Document, Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.model.errors import ModelError
from enclave.server.trust import Refused

log = logging.getLogger(__name__)
CONTEXT = "enclave/context"
CACHE_SIZE = 64
CACHE_WINDOW = 512  # characters either side of the cursor that key the cache


@dataclass(slots=True)
class Stats:
    requests: int = 0
    cache_hits: int = 0
    model_calls: int = 0
    cancelled: int = 0


class Completer:
    """Debounce, cancellation and cache around the completion pipeline."""

    def __init__(self, services: Services, status: StatusReporter) -> None:
        self.services = services
        self.status = status
        self.inflight: dict[str, asyncio.Task[object]] = {}
        self.cache: OrderedDict[tuple[str, str, int, int], str] = OrderedDict()
        self.stats = Stats()

    def clear(self) -> None:
        self.cache.clear()

    def _key(self, uri: str, text: str, line: int, character: int) -> tuple[str, str, int, int]:
        before, after = split_at(text, line, character)
        window = before[-CACHE_WINDOW:] + "\0" + after[:CACHE_WINDOW]
        digest = hashlib.blake2b(window.encode("utf-8", "replace"), digest_size=16).hexdigest()
        return uri, digest, line, character

    async def suggest(self, uri: str, position: types.Position) -> str:
        """The text to insert at ``position`` of ``uri`` ("" when there is none)."""
        self.stats.requests += 1
        config = self.services.config
        if not config.completion.enabled:
            return ""
        try:
            document = self.services.document(uri)
        except Refused as exc:  # outside the workspace, a secret file, never_send, too large
            log.info("no completion for %s: %s", uri, exc)
            return ""
        text = document.text
        key = self._key(uri, text, position.line, position.character)
        if key in self.cache:
            self.cache.move_to_end(key)
            self.stats.cache_hits += 1
            return self.cache[key]
        current = asyncio.current_task()
        previous = self.inflight.get(uri)
        if previous is not None and previous is not current and not previous.done():
            previous.cancel()
        if current is not None:
            self.inflight[uri] = current
        try:
            await asyncio.sleep(config.completion.debounce_ms / 1000)
            return await self._complete(document, position, key)
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        finally:
            if current is not None and self.inflight.get(uri) is current:
                del self.inflight[uri]

    async def prepare(self, document: Document, position: types.Position) -> PreparedCompletion:
        """What a completion at ``position`` sends (raises Refused for a file never sent)."""
        root = document.root
        await self.services.wait_opened(root, 1.0)
        index = root.index if root.error is None else None
        semantic = bool(root.status and root.status.semantic)
        recent = self.services.recent_edits()
        config = root.config
        model = self.services.model
        # The completion model's own estimator: it learns that model's tokens per character.
        est = model.estimator(config.ollama.effective_completion_model) if model else None
        return await asyncio.to_thread(
            prepare_completion,
            index, document.path, document.text, position.line, position.character, config,
            recent=recent, semantic=semantic, estimator=est,
        )  # fmt: skip

    async def _complete(
        self, document: Document, position: types.Position, key: tuple[str, str, int, int]
    ) -> str:
        model = self.services.model
        if model is None:
            return ""
        try:
            prepared = await self.prepare(document, position)
        except Refused as exc:
            log.info("no completion for %s: %s", document.path, exc)
            return ""
        self.stats.model_calls += 1
        try:
            result = await model.complete(
                prefix=prepared.prefix,
                suffix=prepared.suffix,
                language=prepared.language,
                path=prepared.path,
                context=prepared.pieces,
                multiline=prepared.multiline,
            )
        except ModelError as exc:
            log.warning("completion failed: %s", exc)
            self.services.model_problem = exc
            self.status.publish_all()
            return ""
        if self.services.model_problem is not None:
            self.services.model_problem = None
            self.status.publish_all()
        suggestion = result.text  # already post-processed by the model layer
        self.cache[key] = suggestion
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return suggestion


def _word_start(line_text: str, character: int) -> int:
    start = character
    while start > 0 and (line_text[start - 1].isalnum() or line_text[start - 1] == "_"):
        start -= 1
    return start


def register(server: LanguageServer, services: Services, status: StatusReporter) -> Completer:
    """Inline and classic completions, `enclave/context` and the edits that feed them."""
    completer = Completer(services, status)

    @server.feature(CONTEXT)
    async def context_request(ls: LanguageServer, params: Any) -> dict[str, Any]:
        """`enclave/context`: what a completion at this position would send, and why."""
        raw = to_plain(params)
        try:
            uri = raw["textDocument"]["uri"]
            position = types.Position(
                line=int(raw["position"]["line"]), character=int(raw["position"]["character"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JsonRpcInvalidParams(
                'params must be {"textDocument": {"uri"}, "position": {"line", "character"}}'
            ) from exc
        try:
            document = services.document(uri)
            return report_of(await completer.prepare(document, position))
        except Refused as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        line = 0
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                line = change.range.start.line
        services.recent.touch(params.text_document.uri, line)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        services.recent.forget(params.text_document.uri)
        task = completer.inflight.pop(params.text_document.uri, None)
        if task is not None:
            task.cancel()

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: LanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        text = await completer.suggest(params.text_document.uri, params.position)
        if not text:
            return types.InlineCompletionList(items=[])
        here = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=text, range=here)]
        )

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def completion(
        ls: LanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        text = await completer.suggest(params.text_document.uri, params.position)
        if not text:
            return types.CompletionList(is_incomplete=True, items=[])
        lines = services.document(params.text_document.uri).text.splitlines(keepends=True)
        item = completion_item(lines, params.position, text)
        return types.CompletionList(is_incomplete=True, items=[item])

    return completer


def completion_item(
    lines: Sequence[str], position: types.Position, text: str
) -> types.CompletionItem:
    """A classic completion item that inserts ``text`` at ``position``.

    The item replaces the word before the cursor with that word plus ``text``, so clients that
    filter by the typed word keep showing it while the user types.
    """
    line_text = lines[position.line] if position.line < len(lines) else ""
    character = min(position.character, len(line_text))
    start = _word_start(line_text, character)
    word = line_text[start:character]
    edit_range = types.Range(
        start=types.Position(line=position.line, character=start), end=position
    )
    label = (word + text).split("\n", 1)[0].strip() or text.strip().split("\n", 1)[0]
    return types.CompletionItem(
        label=label[:80],
        detail="Enclave",
        kind=types.CompletionItemKind.Text,
        insert_text_format=types.InsertTextFormat.PlainText,
        filter_text=word + text.split("\n", 1)[0],
        text_edit=types.TextEdit(range=edit_range, new_text=word + text),
        sort_text="0",
    )
