"""Completions: `textDocument/inlineCompletion` (LSP 3.18) and `textDocument/completion`.

Per document, a newer request cancels the older one (its task is cancelled, which closes its
model stream; the client gets RequestCancelled). Before asking the model, a request waits until
the user has likely stopped typing (:func:`adaptive_wait`: from the measured time between their
keystrokes and the model's recent latency; ``completion.debounceMs`` until those are known), so
a burst of keystrokes costs one model call; so does a burst of requests with no keystroke
between them (each waits ``completion.debounceMs``: :meth:`Completer._burst_wait`), and a
request that a newer one took over never asks the model. Characters typed exactly as the
suggestion on screen shows them are answered with the rest of it at once, without a model call
or a wait (this also serves partial accepts). A small LRU cache keyed by the text around the cursor answers a
repeated position instantly. While the user works at one spot, the context pieces chosen there
are kept, in their order (``keep`` of ``prepare_completion``), so consecutive prompts share their
beginning and the model's prompt cache is reused. The completion itself is
``enclave.server.completion.pipeline``'s (the code path `enclave context` prints): this module
only turns LSP params into a position and the text to insert into LSP items.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from enclave.server.completion.cursor import split_at
from enclave.server.completion.pipeline import PreparedCompletion, complete, prepare_completion
from enclave.server.completion.report import report_of
from enclave.server.lsp.convert import to_plain
from enclave.server.lsp.services import Document, Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.model.errors import ContextTooLong, ModelError
from enclave.server.trust import Refused
from enclave.server.types import ContextPiece

log = logging.getLogger(__name__)
CONTEXT = "enclave/context"
CACHE_SIZE = 64
CACHE_WINDOW = 512  # characters either side of the cursor that key the cache
SPOT_LINES = 12  # the context pieces chosen at a line are kept while the cursor stays this near
WAIT_MIN_S = 0.02
WAIT_MAX_S = 0.6
PAUSE_S = 1.0  # a longer silence between two keystrokes is a pause, not the typing rhythm
RHYTHM_SAMPLES = 8


@dataclass(slots=True)
class Stats:
    requests: int = 0
    cache_hits: int = 0
    typed_through: int = 0
    model_calls: int = 0
    cancelled: int = 0


@dataclass(frozen=True, slots=True)
class Shown:
    """The suggestion last answered for a document, and the text around the cursor then."""

    before: str
    after: str
    text: str


@dataclass(slots=True)
class Spot:
    """Where the user works in a document (the line the pieces were first chosen at, and the
    line of the last request), and the context pieces chosen there."""

    line: int
    last_line: int
    pieces: list[ContextPiece]


def adaptive_wait(
    changes: Sequence[float], now: float, latency: float | None, configured: float
) -> float:
    """Seconds to wait before asking the model, for keystrokes at ``changes`` (monotonic times).

    Until three gaps between keystrokes are known, ``configured``. Then: a model that answers
    within the user's usual gap between keystrokes is asked at once (WAIT_MIN_S); a slower one
    only when the user has been silent for 1.5 times that gap (they have likely stopped) and
    never sooner than ``configured``, so neither a fast typist nor a burst of edits (a paste,
    key repeat) starts model calls the next keystroke throws away. Time already silent counts:
    a request after a pause waits for nothing.
    """
    if not changes:
        return configured
    gaps = [b - a for a, b in itertools.pairwise(changes) if b - a < PAUSE_S]
    if len(gaps) < 3:
        target = configured
    else:
        rhythm = statistics.median(gaps[-RHYTHM_SAMPLES:])
        fast = latency is not None and latency < rhythm
        target = WAIT_MIN_S if fast else min(WAIT_MAX_S, max(configured, 1.5 * rhythm))
    return max(0.0, target - (now - changes[-1]))


def typed_through(shown: Shown | None, before: str, after: str) -> str | None:
    """The rest of ``shown``'s suggestion when the user typed its beginning exactly (None when
    they typed something else, or all of it)."""
    if shown is None or after != shown.after or not before.startswith(shown.before):
        return None
    typed = before[len(shown.before) :]
    if typed and len(typed) < len(shown.text) and shown.text.startswith(typed):
        return shown.text[len(typed) :]
    return None


class Completer:
    """Debounce, cancellation and cache around the completion pipeline."""

    def __init__(self, services: Services, status: StatusReporter) -> None:
        self.services = services
        self.status = status
        self.inflight: dict[str, asyncio.Task[object]] = {}
        self.cache: OrderedDict[tuple[str, str, int, int], str] = OrderedDict()
        self.stats = Stats()
        self.shown: dict[str, Shown] = {}
        self.spots: dict[str, Spot] = {}
        # when the user typed, in any document (their rhythm is theirs, not a file's)
        self.changes: deque[float] = deque(maxlen=RHYTHM_SAMPLES + 1)
        self.requested: dict[str, float] = {}  # when each document's last request came
        self.latency: float | None = None  # seconds, recent model calls (moving average)

    def clear(self) -> None:
        self.cache.clear()
        self.shown.clear()
        self.spots.clear()

    def forget(self, uri: str) -> None:
        for table in (self.shown, self.spots, self.requested):
            table.pop(uri, None)
        task = self.inflight.pop(uri, None)
        if task is not None:
            task.cancel()

    def note_change(self, uri: str) -> None:
        """A keystroke (an edit of ``uri``): it feeds the typing rhythm."""
        self.changes.append(time.monotonic())

    def _key(self, uri: str, text: str, line: int, character: int) -> tuple[str, str, int, int]:
        before, after = split_at(text, line, character)
        window = before[-CACHE_WINDOW:] + "\0" + after[:CACHE_WINDOW]
        digest = hashlib.blake2b(window.encode("utf-8", "replace"), digest_size=16).hexdigest()
        return uri, digest, line, character

    async def suggest(self, uri: str, position: types.Position) -> str:
        """The text to insert at ``position`` of ``uri`` ("" when there is none)."""
        self.stats.requests += 1
        arrived = time.monotonic()
        not_before = self._burst_wait(uri, arrived)
        config = self.services.config
        if not config.completion.enabled:
            return ""
        try:
            document = self.services.document(uri)
        except Refused as exc:  # outside the workspace, a secret file, never_send, too large
            log.info("no completion for %s: %s", uri, exc)
            return ""
        text = document.text
        before, after = split_at(text, position.line, position.character)
        current = asyncio.current_task()
        previous = self.inflight.get(uri)
        if previous is not None and previous is not current and not previous.done():
            previous.cancel()  # typed on: what it would answer is stale
            del self.inflight[uri]
        rest = typed_through(self.shown.get(uri), before, after)
        if rest is not None:
            self.stats.typed_through += 1
            self.shown[uri] = Shown(before, after, rest)
            return rest
        key = self._key(uri, text, position.line, position.character)
        if key in self.cache:
            self.cache.move_to_end(key)
            self.stats.cache_hits += 1
            return self._show(uri, before, after, self.cache[key])
        if current is not None:
            self.inflight[uri] = current
        try:
            await self._settle(config.completion.debounce_ms / 1000, not_before)
            suggestion = await self._complete(document, position, key, current)
            return self._show(uri, before, after, suggestion)
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        finally:
            if current is not None and self.inflight.get(uri) is current:
                del self.inflight[uri]
            # A cancelled task keeps its traceback, which keeps this frame: without these
            # references back to the tasks, each request's frame (the document's text in it)
            # is freed with its task, not only by a full garbage collection, and a burst does
            # not chain every request's frame to the next one's.
            current = previous = None

    def _burst_wait(self, uri: str, arrived: float) -> float:
        """The earliest time (monotonic) a request for ``uri`` that came at ``arrived`` may ask
        the model: in a burst of requests for a document with no keystroke between them (a
        client asking again and again), ``completion.debounceMs`` after it came, so the next
        one supersedes it before it costs a model call; otherwise at once. The keystrokes'
        rhythm (:func:`adaptive_wait`) cannot tell such a burst: time without keystrokes counts
        as silence, and every request of the burst would go to the model."""
        previous = self.requested.get(uri)
        self.requested[uri] = arrived
        if previous is None or arrived - previous >= PAUSE_S:
            return 0.0
        if self.changes and self.changes[-1] > previous:
            return 0.0  # typed since: the rhythm of the keystrokes decides
        return arrived + self.services.config.completion.debounce_ms / 1000

    async def _settle(self, configured: float, not_before: float = 0.0) -> None:
        """Wait until the user has likely stopped typing (:func:`adaptive_wait`), and at least
        until ``not_before`` (monotonic; :meth:`_burst_wait`), and the client's
        messages already read are handled: in a burst of keystrokes that the server reads
        slower than they come (a busy CPU), the next keystroke is among them, and its request
        cancels this one before it costs a model call. At most WAIT_MAX_S for that backlog, so
        a client that never stops talking does not hold completions back."""
        inbox = self.services.inbox
        deadline = time.monotonic() + WAIT_MAX_S
        while True:
            now = time.monotonic()
            wait = adaptive_wait(list(self.changes), now, self.latency, configured)
            await asyncio.sleep(max(wait, not_before - now))
            if inbox is None or not inbox.backlog or time.monotonic() >= deadline:
                return
            with contextlib.suppress(TimeoutError):
                # not wait_for: on Python 3.11 it can swallow this task's cancellation
                async with asyncio.timeout(deadline - time.monotonic()):
                    await inbox.handled()
            await asyncio.sleep(0)  # the requests just dispatched take their first step

    def _show(self, uri: str, before: str, after: str, suggestion: str) -> str:
        if suggestion:
            self.shown[uri] = Shown(before, after, suggestion)
        else:
            self.shown.pop(uri, None)
        return suggestion

    async def prepare(
        self, uri: str, document: Document, position: types.Position, *, remember: bool = False
    ) -> PreparedCompletion:
        """What a completion at ``position`` sends (raises Refused for a file never sent).

        With ``completion.cache_friendly``, the pieces last chosen near this line are kept first
        (``remember``: this completion's pieces become the spot's, for the next keystroke).
        """
        root = document.root
        await self.services.wait_opened(root, 1.0)
        index = root.index if root.error is None else None
        recent = self.services.recent_edits()
        config = root.config
        model = self.services.model
        # The completion model's own estimator: it learns that model's tokens per character.
        est = model.estimator(config.ollama.effective_completion_model) if model else None
        spot = self.spots.get(uri) if config.completion.cache_friendly else None
        if spot is not None and abs(spot.line - position.line) > SPOT_LINES:
            spot = None  # moved elsewhere: choose afresh
        prepared = await asyncio.to_thread(
            prepare_completion,
            index, document.path, document.text, position.line, position.character, config,
            recent=recent, estimator=est, keep=spot.pieces if spot else (),
            # typing on one line, the pieces stay as they are; on another line (new names near
            # the cursor), new ones may join and definitions they need push others out
            refresh=spot is None or spot.last_line != position.line,
        )  # fmt: skip
        if remember and config.completion.cache_friendly:
            line = spot.line if spot is not None else position.line
            self.spots[uri] = Spot(line, position.line, list(prepared.pieces))
        return prepared

    async def _complete(
        self,
        document: Document,
        position: types.Position,
        key: tuple[str, str, int, int],
        task: asyncio.Task[Any] | None = None,
    ) -> str:
        model = self.services.model
        if model is None:
            return ""
        try:
            prepared = await self.prepare(key[0], document, position, remember=True)
        except Refused as exc:
            log.info("no completion for %s: %s", document.path, exc)
            return ""
        superseded = task is not None and self.inflight.get(key[0]) is not task
        del task  # a cancelled task's traceback keeps this frame: no cycle back to the task
        if superseded:
            # a newer request for the document took over while this one was prepared (its
            # cancellation can be lost in an await that finished at the same moment): it
            # must not cost a model generation
            raise asyncio.CancelledError
        self.stats.model_calls += 1
        started = time.monotonic()
        try:
            result = await complete(
                model,
                prepared.admitted,
                language=prepared.language,
                multiline=prepared.multiline,
            )
        except ContextTooLong as exc:
            # This request's prompt, not the model: e.g. the estimate of tokens per character
            # learned something denser while it was prepared. No suggestion; the next request
            # is prepared with what was learned. The model stays usable.
            log.warning("no completion: %s", exc)
            return ""
        except ModelError as exc:
            log.warning("completion failed: %s", exc)
            self.services.model_problem = exc
            self.status.publish_all()
            return ""
        elapsed = time.monotonic() - started
        self.latency = elapsed if self.latency is None else 0.7 * self.latency + 0.3 * elapsed
        if self.services.model_problem is not None:
            self.services.model_problem = None
            self.status.publish_all()
        suggestion = result.text  # already finished by the pipeline
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
            return report_of(await completer.prepare(uri, document, position))
        except Refused as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        line = 0
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                line = change.range.start.line
        services.recent.touch(params.text_document.uri, line)
        completer.note_change(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        services.recent.forget(params.text_document.uri)
        completer.forget(params.text_document.uri)

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
