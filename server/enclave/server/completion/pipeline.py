"""The completion pipeline, top to bottom: cursor -> sources -> fit -> admit (here, in
:func:`prepare_completion`, which `enclave context` prints) -> prompt -> model stream -> finish
(in :func:`complete`). One code path serves the language server (``enclave.server.lsp.completion``
adds debounce, cancellation and its cache), `enclave context` and the benches.

- cursor (``enclave.server.completion.cursor``): the prefix and suffix of an LSP position, cut to
  their budgets (``fit.fit_cursor_text``); single- or multi-line from the syntax at the cursor.
- sources (``enclave.server.completion.sources``): definitions of the names near the cursor that
  the file's imports bind, signatures of what it imports, recently edited buffers, similar code;
  each piece labelled with its path and reason.
- fit (``enclave.server.completion.fit``): the pieces fitted to ``completion.context_tokens``,
  the previous keystroke's pieces first (the model's prompt cache).
- admit (``enclave.server.trust``): the one pass through the trust boundary; what it admits is
  all a model may receive.
- prompt (``enclave.server.completion.prompt``): FIM or chat-style, for the model's capabilities.
- model stream (``enclave.server.model.client``): until the model is done or the answer settled.
- finish (``enclave.server.completion.finish``): the text to insert.

Index calls are synchronous (run :func:`prepare_completion` off the event loop).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enclave.config import Config
from enclave.indexer.api import one_version_each
from enclave.indexer.errors import IndexProblem
from enclave.server.completion.cursor import decide_multiline, language_of, relative_path, split_at
from enclave.server.completion.finish import extract_completion, is_settled
from enclave.server.completion.fit import (
    check_room,
    definitions_within,
    fit_cursor_text,
    fit_stable,
    is_current,
    predict_tokens,
    shrinker,
    stable_order,
)
from enclave.server.completion.prompt import render
from enclave.server.completion.sources.definitions import definition_pieces
from enclave.server.completion.sources.files import RepoFiles
from enclave.server.completion.sources.recent import RecentEdit, recent_pieces
from enclave.server.completion.sources.similar import names_elsewhere, similar_hits, similar_pieces
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import Dropped, TokenEstimator, fit_pieces
from enclave.server.trust import Admitted, Boundary, Material
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    from enclave.indexer.api import Index
    from enclave.server.model.client import ModelClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PreparedCompletion:
    """Everything a completion sends to the model, with the reasons. ``prefix``, ``suffix`` and
    ``pieces`` are as admitted (redacted; pieces never sent left out), ``admitted`` is what a
    model client takes."""

    path: str
    language: str
    line: int  # 0-based
    character: int  # UTF-16 code units, as received
    prefix: str
    suffix: str
    multiline: bool
    multiline_reason: str
    pieces: list[ContextPiece] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    budget_tokens: int = 0
    notes: list[str] = field(default_factory=list)
    estimator: TokenEstimator = field(default_factory=TokenEstimator)
    admitted: Admitted = field(init=False)


@dataclass(frozen=True)
class CompletionResult:
    text: str
    model: str
    prompt_tokens: int
    truncated: bool
    fim: bool


def prepare_completion(
    index: Index | None,
    path: str | Path,
    text: str,
    line: int,
    character: int,
    config: Config,
    *,
    recent: Sequence[RecentEdit] = (),
    estimator: TokenEstimator | None = None,
    keep: Sequence[ContextPiece] = (),
    refresh: bool = True,
) -> PreparedCompletion:
    """Cursor, sources, fit and admit: what a completion at one position sends, and why.

    ``path`` is repository-relative (or absolute inside the index root); ``text`` is the
    (possibly unsaved) document; ``line`` and ``character`` are a 0-based LSP position (UTF-16
    columns). ``index`` may be None (no index yet): then only the recently edited buffers are
    used. ``estimator`` is the completion model's (it learns from the server's token counts);
    every budget is measured with it.

    ``keep``: the pieces the previous completion at this editing spot sent. Those still true to
    their files go first, in their order: the prompt's beginning stays the same from one
    keystroke to the next, so the model's prompt cache is reused (see ``fit.stable_order``).
    ``refresh`` (the caller's choice when the cursor reached another line: new names near it):
    new candidates follow the kept pieces, and a definition those names need may push kept
    pieces out; without it, the kept pieces are all there is.
    """
    path = relative_path(index, path)
    boundary = Boundary(config)
    boundary.check(path)  # a file that must never be sent gets no completion
    # cursor
    prepared = _at_cursor(path, text, line, character, config, estimator or TokenEstimator())
    est, budget = prepared.estimator, prepared.budget_tokens
    files = RepoFiles(index) if index is not None else None  # one read of each file
    if keep and not refresh:
        # Typing on the line the pieces were chosen at: they are all there is (nothing is
        # searched), less any whose lines changed.
        kept = [p for p in keep if is_current(p, files, recent)]
        pieces, prepared.dropped = fit_pieces(kept, budget, est, by_file=True)
    else:
        # sources
        window = (line - prepared.prefix.count("\n") + 1, line + 1 + prepared.suffix.count("\n"))
        with one_version_each():  # the sources' queries: one look at each table's version
            candidates = _candidates(
                prepared, index, files, text, recent, window, max(64, budget // 4)
            )
        # fit
        shrink = shrinker(files, est)
        share = int(budget * TUNING.definition_share)
        candidates = definitions_within(candidates, share, est, shrink)
        if keep:
            ordered = stable_order(keep, candidates, lambda p: is_current(p, files, recent))
            pieces, prepared.dropped = fit_stable(ordered, set(keep), budget, est, shrink)
        else:
            pieces, prepared.dropped = fit_pieces(candidates, budget, est, shrink, by_file=True)
    # admit: what the model client will send, exactly (the text around the cursor and every
    # piece redacted, pieces from files that must not be sent left out)
    _admit(
        prepared, boundary.admit(Material(path, (prepared.prefix, prepared.suffix), tuple(pieces)))
    )
    return prepared


async def complete(
    client: ModelClient, admitted: Admitted, *, language: str, multiline: bool
) -> CompletionResult:
    """Prompt, model stream and finish: the text to insert between the admitted prefix and
    suffix (``prepare_completion``'s ``admitted``). Thinking is off; a prompt that would
    overflow ``completion.num_ctx`` is refused (ContextTooLong), never sent to be cut."""
    settings = client.config.completion
    model = client.completion_model()  # the host and the policy allow it
    info = await client.model_info(model)
    num_predict = predict_tokens(settings, multiline)
    # prompt
    request = render(
        admitted, info.capabilities, language, multiline=multiline,
        cache_friendly=settings.cache_friendly,
    )  # fmt: skip
    prompt = request.prompt
    check_room(prompt, client.estimator(model), settings, num_predict)
    options: dict[str, Any] = {
        "num_ctx": client.context_size(model), "num_predict": num_predict, "temperature": 0.2,
    }  # fmt: skip
    if request.fim and not multiline:
        options["stop"] = ["\n"]
    # model stream, until the model is done or the answer has left its block
    head, tail = admitted.texts
    generated = await client.generate(
        prompt, model=model, options=options,
        think=False if "thinking" in info.capabilities else None,
        settled=lambda raw: is_settled(raw, prefix=head, suffix=tail, multiline=multiline),
    )  # fmt: skip
    chars = len(prompt.prompt) + len(prompt.suffix) + len(prompt.system)
    limit = settings.num_ctx - num_predict
    truncated = client.note_usage(model, chars, generated.prompt_tokens, limit)
    # finish
    text = extract_completion(generated.text, prefix=head, suffix=tail, multiline=multiline)
    return CompletionResult(text, model, generated.prompt_tokens, truncated, request.fim)


async def complete_text(
    client: ModelClient,
    *,
    prefix: str,
    suffix: str,
    language: str,
    path: str,
    context: Sequence[ContextPiece],
    multiline: bool,
) -> CompletionResult:
    """A completion of text already cut to its budgets, with its pieces (benches, tests):
    admitted here, once, then :func:`complete`."""
    admitted = client.boundary.admit(Material(path, (prefix, suffix), tuple(context)))
    return await complete(client, admitted, language=language, multiline=multiline)


def _at_cursor(
    path: str, text: str, line: int, character: int, config: Config, est: TokenEstimator
) -> PreparedCompletion:
    """The text around the cursor cut to its budgets, and single- or multi-line."""
    language = language_of(path)
    before, after = split_at(text, line, character)
    cut = fit_cursor_text(before, after, config.completion, est, path=path, language=language)
    multiline, why = decide_multiline(cut.prefix, cut.suffix, language)
    return PreparedCompletion(
        path=path, language=language, line=line, character=character, prefix=cut.prefix,
        suffix=cut.suffix, multiline=multiline, multiline_reason=why,
        budget_tokens=cut.context_tokens, estimator=est,
    )  # fmt: skip


def _admit(prepared: PreparedCompletion, sealed: Admitted) -> None:
    """Show what the boundary admitted: the redacted text and pieces, and the pieces left out."""
    prepared.admitted = sealed
    prepared.prefix, prepared.suffix = sealed.texts
    prepared.pieces = list(sealed.pieces)
    prepared.dropped += [Dropped(piece, f"never sent: {why}") for piece, why in sealed.dropped]
    if sealed.redactions:
        prepared.notes.append(f"{sealed.redactions} secret(s) redacted before sending")


def _guarded(
    prepared: PreparedCompletion, what: str, gather: Callable[..., list[ContextPiece]], *args: Any
) -> list[ContextPiece]:
    """Run one context source; an index failure costs that source, never the completion.

    Only index problems are absorbed; any other exception is a bug and fails the request.
    """
    try:
        return gather(*args)
    except IndexProblem as exc:
        log.warning("context source %r failed: %s", what, exc)
        prepared.notes.append(f"{what} unavailable: {exc}")
        return []


def _candidates(
    prepared: PreparedCompletion,
    index: Index | None,
    sources: RepoFiles | None,
    text: str,
    recent: Sequence[RecentEdit],
    window: tuple[int, int],
    cap: int,
) -> list[ContextPiece]:
    """Every context piece worth considering at the cursor, best first."""
    path, est, budget = prepared.path, prepared.estimator, prepared.budget_tokens
    if index is None or sources is None:
        prepared.notes.append("no index yet: repository context limited to open buffers")
        return recent_pieces(path, recent, cap, est)
    candidates: list[ContextPiece] = []
    # Index queries release the GIL: the similar-code search runs beside the definitions (in
    # this context, so it sees the same table versions), which keeps the whole pipeline within
    # a few tens of milliseconds.
    similar = _SIDE.submit(copy_context().run, similar_hits, index, path, prepared.prefix, window)

    @cache  # asked once per module or package with many names: counted once
    def hints() -> Counter[str]:  # (a failed search is reported with its pieces below)
        try:
            return names_elsewhere(similar.result(), path)
        except IndexProblem:
            return Counter()

    try:
        candidates += _guarded(
            prepared, "definitions", definition_pieces, index, sources, path, text,
            prepared.line, prepared.language, window, cap, budget, est, hints,
        )  # fmt: skip
        candidates += recent_pieces(path, recent, cap, est)
        candidates += _guarded(
            prepared, "similar code", lambda: similar_pieces(similar.result(), cap, est)
        )
    finally:
        wait([similar])  # never left running past this completion
    return candidates


# The similar-code searches beside the definitions (threads kept: one started per
# completion cost more than the search it ran).
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="enclave-context")
