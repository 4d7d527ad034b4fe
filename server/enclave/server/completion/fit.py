"""Fitting a completion to its token budget: the text around the cursor (:func:`fit_cursor_text`),
then the context pieces (whole definitions within their share, then signatures; the pieces of the
previous keystroke kept first, see :func:`stable_order`). The general measures (the estimator,
``fit_pieces``) are ``enclave.server.model.budget``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from enclave.config import CompletionConfig
from enclave.server.completion.prompt import COMPLETION_SYSTEM, RELATED, chat_fill_prompt
from enclave.server.completion.sources import DEFINITION_REASON, is_definition
from enclave.server.completion.sources.files import RepoFiles
from enclave.server.completion.sources.outline import OUTLINE_REASON, likeliest, reach, signature
from enclave.server.completion.sources.recent import RECENT_REASON, RecentEdit
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import (
    PROMPT_MARGIN,
    SHORTENED,
    Dropped,
    Shrink,
    TokenEstimator,
    added_tokens,
    fit_pieces,
    keep_head,
    keep_tail,
    overlaps,
)
from enclave.server.model.errors import ContextTooLong
from enclave.server.trust import Prompt
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    pass


def predict_tokens(settings: CompletionConfig, multiline: bool) -> int:
    """How many tokens a completion may generate (``num_predict``)."""
    return settings.max_tokens if multiline else min(settings.max_tokens, TUNING.single_line_tokens)


def completion_overhead(estimator: TokenEstimator, path: str = "", language: str = "") -> int:
    """Tokens a completion prompt spends on anything but the user's text and the pieces: the
    chat-style prompt's own words and markup (the larger of its two shapes, in either layout,
    for this file's name), its system prompt, and a margin for the model's template."""
    template = max(
        estimator.count(
            RELATED
            + chat_fill_prompt("", "x", path, language, [], multiline=multi, cache_friendly=cf)
        )
        for multi in (False, True)
        for cf in (False, True)
    )
    return PROMPT_MARGIN + template + estimator.count(COMPLETION_SYSTEM)


def completion_window(
    settings: CompletionConfig, estimator: TokenEstimator, path: str = "", language: str = ""
) -> int:
    """Tokens of prompt text a completion may send.

    ``num_ctx`` less the longest answer, the template and the chat-style system prompt, whatever
    this request turns out to be (single- or multi-line, FIM or chat): the allowance does not
    change with them, so neither does the prompt's layout.
    """
    return settings.num_ctx - settings.max_tokens - completion_overhead(estimator, path, language)


@dataclass(frozen=True, slots=True)
class CursorText:
    """The text around the cursor cut to its budget, and the tokens left for context pieces."""

    prefix: str
    suffix: str
    context_tokens: int


# The prompt cache: Ollama (llama.cpp) keeps the previous prompt's evaluated tokens and reads only
# what follows the longest prefix the new prompt shares with it. While the user types, the start


def anchored_tail(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The end of ``text`` within ``budget`` tokens, starting on a line whose number is a
    multiple of TUNING.prefix_step_lines: typing on, the start stays put until the budget forces it a
    whole step down. One line over the budget on its own falls back to :func:`keep_tail`."""
    if estimator.count(text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    used, first = 0, len(lines)
    while first > 0 and used + estimator.count(lines[first - 1]) <= budget:
        first -= 1
        used += estimator.count(lines[first])
    if first >= len(lines) - 1:  # not even the cursor's line fits whole
        return keep_tail(text, budget, estimator)
    snapped = -(-first // TUNING.prefix_step_lines) * TUNING.prefix_step_lines
    return "".join(lines[snapped:] if snapped < len(lines) - 1 else lines[first:])


def near_head(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The rest of the cursor's line and at most TUNING.suffix_lines more, within ``budget`` tokens."""
    lines = text.splitlines(keepends=True)
    return keep_head("".join(lines[: TUNING.suffix_lines + 1]), budget, estimator)


def fit_cursor_text(
    before: str,
    after: str,
    settings: CompletionConfig,
    estimator: TokenEstimator,
    *,
    path: str = "",
    language: str = "",
) -> CursorText:
    """Cut the document around the cursor: the end of ``before``, the start of ``after``.

    With ``completion.cache_friendly`` the cut is laid out for the prompt cache: the start of
    ``before`` moves in steps (:func:`anchored_tail`) and ``after`` is the nearby lines only.
    """
    window = completion_window(settings, estimator, path, language)
    tail, head = (anchored_tail, near_head) if settings.cache_friendly else (keep_tail, keep_head)
    prefix = tail(before, min(settings.prefix_tokens, window), estimator)
    if window <= 0 or (before.strip() and not prefix):
        raise ContextTooLong(
            f"completion.num_ctx ({settings.num_ctx}) leaves no room for the code around the "
            f"cursor after completion.max_tokens ({settings.max_tokens})",
            "raise completion.num_ctx or lower completion.max_tokens",
        )
    used = estimator.count(prefix)
    suffix = head(after, min(settings.suffix_tokens, window - used), estimator)
    used += estimator.count(suffix)
    if settings.cache_friendly:  # what is left for context moves in steps, not per keystroke
        used = -(-used // TUNING.context_step_tokens) * TUNING.context_step_tokens
    return CursorText(prefix, suffix, max(0, min(settings.context_tokens, window - used)))


def shrinker(sources: RepoFiles | None, est: TokenEstimator) -> Shrink:
    """The shorter form of a piece that does not fit whole: a definition's signature, or the
    first signatures of an outline. A name whose definition does not fit still shows how to
    call it, which is what the next line most likely needs."""

    def shrink(piece: ContextPiece, room: int) -> ContextPiece | None:
        if is_definition(piece):
            head = signature(piece.text.splitlines(keepends=True))
            text = "".join(head)
            if not head or len(head) == piece.text.count("\n") or est.count(text) > room:
                return None
            reason = OUTLINE_REASON + piece.reason[len(DEFINITION_REASON) :]
            end = piece.start_line + reach(piece.text.splitlines(keepends=True), head) - 1
            return replace(piece, text=text, end_line=end, reason=reason, symbol="")
        if piece.signatures:
            return likeliest(piece, room, est)
        if piece.reason.startswith(OUTLINE_REASON):
            text = keep_head(piece.text, room, est)
            if not text.endswith("\n") or text == piece.text:
                return None  # nothing whole fits (or all of it would have)
            return replace(piece, text=text, end_line=_last_line(sources, piece, text))
        return None

    return shrink


def definitions_within(
    candidates: Sequence[ContextPiece], share: int, est: TokenEstimator, shrink: Shrink
) -> list[ContextPiece]:
    """Whole definitions while they fit ``share`` tokens (the first, the most certain one, even
    past it), then their signatures: the rest of the budget goes to the signatures of what else
    the file imports, which the next line is as likely to call as the names already used."""
    out: list[ContextPiece] = []
    spent = 0
    for piece in candidates:
        if is_definition(piece):
            cost = added_tokens(piece, est, ())
            if spent and spent + cost > share:  # (the first is whole whenever it fits)
                piece = shrink(piece, cost) or piece
            else:
                spent += cost
        out.append(piece)
    return out


def _last_line(sources: RepoFiles | None, piece: ContextPiece, text: str) -> int:
    """The file line of the last of ``text``'s lines (the first lines of ``piece``'s)."""
    lines = sources.lines(piece.path) if sources is not None else None
    if lines is None:
        return piece.end_line
    wanted = [line.strip() for line in text.splitlines()]
    at = piece.start_line
    for number in range(piece.start_line, min(piece.end_line, len(lines)) + 1):
        if wanted and lines[number - 1].strip() == wanted[0]:
            wanted.pop(0)
            at = number
    return at


def is_current(
    piece: ContextPiece, sources: RepoFiles | None, recent: Sequence[RecentEdit]
) -> bool:
    """The piece's lines still read as it shows them: in its open buffer for a recent edit,
    else in its file as the index has it (on disk, redacted)."""
    lines: list[str] | None = None
    if piece.reason.startswith(RECENT_REASON):
        edit = next((e for e in recent if e.path == piece.path), None)
        lines = edit.text.splitlines(keepends=True) if edit is not None else None
    elif sources is not None:
        lines = sources.lines(piece.path)
    if not lines or not 1 <= piece.start_line <= piece.end_line <= len(lines):
        return False
    span = lines[piece.start_line - 1 : piece.end_line]
    if "".join(span).rstrip("\n") == piece.text.rstrip("\n"):
        return True
    # A summary (signatures only, or a long class's head and its members' signatures): each of
    # its lines is still one of the span's, in order.
    rest = iter(line.strip() for line in span)
    return all(_summary_line(line) in rest for line in piece.text.splitlines() if line.strip())


def _summary_line(line: str) -> str:
    line = line.strip()
    return line[: -len(" ...")] if line.endswith(" ...") else line


def stable_order(
    keep: Sequence[ContextPiece],
    candidates: Sequence[ContextPiece],
    current: Callable[[ContextPiece], bool],
) -> list[ContextPiece]:
    """The previous pieces still current, in their order, then the new definitions.

    A kept piece that is a candidate again, or whose lines still read the same, stays where it
    was; a new candidate that shows lines of a kept piece is left out. Of the new candidates only
    definitions (of the names now near the cursor) join: similar code and signatures change with
    every line typed, and each piece that joins makes the model read everything after it again.
    """
    wanted = {_same(c) for c in candidates}  # (scores change with every query)
    kept = [piece for piece in keep if _same(piece) in wanted or current(piece)]
    new = [c for c in candidates if is_definition(c) and not any(overlaps(c, k) for k in kept)]
    return kept + new


def _same(piece: ContextPiece) -> tuple[str, int, int, str]:
    """What a piece shows: two pieces that show the same lines the same way are one."""
    return piece.path, piece.start_line, piece.end_line, piece.text


def fit_stable(
    ordered: list[ContextPiece],
    kept: set[ContextPiece],
    budget: int,
    est: TokenEstimator,
    shrink: Shrink,
) -> tuple[list[ContextPiece], list[Dropped]]:
    """Fit ``ordered`` (kept pieces first); when a definition the names near the cursor now
    need does not fit behind them, not even as its signature, kept pieces other than
    definitions make room, last first: the prompt changes from the first piece that goes, and
    no earlier."""
    evictable = [p for p in reversed(ordered) if p in kept and not is_definition(p)]
    evicted: list[Dropped] = []
    while True:
        pieces, dropped = fit_pieces(ordered, budget, est, shrink, by_file=True)
        short = [
            d.piece
            for d in dropped
            if is_definition(d.piece)
            and d.piece not in kept
            and d.why.startswith("over")
            and not d.why.endswith(SHORTENED)
        ]
        if not short or not evictable:
            return pieces, dropped + evicted
        gone = evictable.pop(0)
        ordered = [p for p in ordered if p is not gone]
        evicted.append(Dropped(gone, "made room for a definition the names near the cursor need"))


def check_room(
    prompt: Prompt, estimator: TokenEstimator, settings: CompletionConfig, num_predict: int
) -> None:
    """Refuse (ContextTooLong) a rendered prompt that would still overflow ``num_ctx``: never
    sent to be cut by the server (the text was fitted with :func:`fit_cursor_text`)."""
    needed = sum(estimator.count(text) for text in (prompt.prompt, prompt.suffix, prompt.system))
    room = settings.num_ctx - num_predict - PROMPT_MARGIN
    if needed > room:
        raise ContextTooLong(
            f"the completion prompt needs about {needed} tokens but completion.num_ctx "
            f"({settings.num_ctx}) leaves {room}",
            "raise completion.num_ctx or lower completion.prefix_tokens/context_tokens",
        )
