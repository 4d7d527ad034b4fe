"""Token budgets: the one place that decides how much of each kind of text a prompt gets.

Ollama silently drops the start of a prompt longer than ``num_ctx``. We never let that happen:
every piece is measured with one estimator that errs high (about 3 characters per token, less for
dense text), corrected from the ``prompt_eval_count`` the server reports, and cut before sending.

For a completion, :func:`fit_cursor_text` cuts the text around the cursor and says how many tokens
are left for repository context; :func:`fit_pieces` chooses the context pieces that fit. Change
"how much context a completion gets" here (and the ``completion.*`` settings), nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from enclave.config import CompletionConfig
from enclave.server.model.errors import ContextTooLong
from enclave.server.model.prompts import (
    COMPLETION_SYSTEM,
    DATA_CLOSE,
    GAP,
    RELATED,
    chat_fill_prompt,
    file_head,
)
from enclave.server.types import ContextPiece

PROMPT_MARGIN = 48  # tokens kept free for the model's chat template around our text
SINGLE_LINE_TOKENS = 48  # the longest answer a single-line completion may generate

DEFAULT_CHARS_PER_TOKEN = 3.0
MIN_CHARS_PER_TOKEN = 1.0
MAX_CHARS_PER_TOKEN = 4.0
SAFETY = 1.15  # learned ratios are divided by this, so the estimate stays on the high side


@dataclass
class TokenEstimator:
    """Estimates tokens from characters; one per model, corrected by what the server counted."""

    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN

    def count(self, text: str) -> int:
        if not text:
            return 0
        # Non-ASCII text is denser in tokens: count each such character as a whole token.
        wide = sum(1 for ch in text if ord(ch) > 127)
        return math.ceil((len(text) - wide) / self.chars_per_token) + wide

    def learn(self, text_chars: int, prompt_eval_count: int) -> None:
        """Move towards the observed ratio (never above it) after a prompt that was not cut."""
        if text_chars < 200 or prompt_eval_count <= 0:
            return
        observed = text_chars / prompt_eval_count / SAFETY
        observed = min(MAX_CHARS_PER_TOKEN, max(MIN_CHARS_PER_TOKEN, observed))
        if observed < self.chars_per_token:
            self.chars_per_token = observed  # a denser text than we thought: adopt at once
        else:
            self.chars_per_token = 0.8 * self.chars_per_token + 0.2 * observed


def keep_tail(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The end of ``text`` (whole lines where possible) within ``budget`` tokens."""
    if estimator.count(text) <= budget:
        return text
    if budget <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = estimator.count(line)
        if used + cost > budget:
            if not kept:  # one huge line: keep its end
                chars = int(budget * estimator.chars_per_token * 0.9)
                kept.append(line[-chars:] if chars > 0 else "")
            break
        kept.append(line)
        used += cost
    return "".join(reversed(kept))


def keep_head(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The start of ``text`` (whole lines where possible) within ``budget`` tokens."""
    if estimator.count(text) <= budget:
        return text
    if budget <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = estimator.count(line)
        if used + cost > budget:
            if not kept:
                chars = int(budget * estimator.chars_per_token * 0.9)
                kept.append(line[:chars])
            break
        kept.append(line)
        used += cost
    return "".join(kept)


@dataclass(frozen=True, slots=True)
class Dropped:
    """A context piece left out of a prompt, and why (shown by `enclave context`)."""

    piece: ContextPiece
    why: str


def piece_tokens(piece: ContextPiece, estimator: TokenEstimator) -> int:
    """What a piece costs in a prompt: its text plus the delimiter that names its file and lines."""
    header = (
        f'<repository-data path="{piece.path}" lines="{piece.start_line}-{piece.end_line}"'
        ' ref="99">'  # (each piece is numbered: count two digits)
    )
    return estimator.count(piece.text) + estimator.count(header) + 6


def file_tokens(path: str, estimator: TokenEstimator) -> int:
    """What a file's block costs in a completion's context beyond its pieces' text: its head,
    its closing line and the blank line before the next block."""
    return estimator.count(file_head(path)) + estimator.count(f"\n{DATA_CLOSE}") + 1


def added_tokens(piece: ContextPiece, estimator: TokenEstimator, files: Collection[str]) -> int:
    """What ``piece`` adds to a completion's context that already shows pieces of ``files``:
    its text, and its file's block or the ``...`` line that parts it from its file's others."""
    if piece.path in files:
        return estimator.count(piece.text) + estimator.count(f"\n{GAP}")
    return estimator.count(piece.text) + file_tokens(piece.path, estimator)


def context_tokens(pieces: Sequence[ContextPiece], estimator: TokenEstimator) -> list[int]:
    """What each of a completion's pieces costs, in order: the first of its file pays the
    file's block."""
    files: set[str] = set()
    costs = []
    for piece in pieces:
        costs.append(added_tokens(piece, estimator, files))
        files.add(piece.path)
    return costs


def overlaps(a: ContextPiece, b: ContextPiece) -> bool:
    """Both pieces show some of the same lines of one file."""
    return a.path == b.path and a.start_line <= b.end_line and b.start_line <= a.end_line


# The shorter form of a piece whose text must fit the tokens given, or None.
Shrink = Callable[[ContextPiece, int], ContextPiece | None]
SHORTENED = ": its shorter form was sent"


def fit_pieces(
    candidates: Sequence[ContextPiece],
    budget: int,
    estimator: TokenEstimator,
    shrink: Shrink | None = None,
    *,
    by_file: bool = False,
) -> tuple[list[ContextPiece], list[Dropped]]:
    """Keep pieces in their ranked order while they fit ``budget`` tokens; drop overlaps.

    A piece that does not fit is offered to ``shrink`` (with the tokens left for its text),
    which may give a shorter form of it (a definition's signature, the first lines of an
    outline) to take its place; otherwise it is skipped and smaller later ones may still go in.
    ``by_file``: costs as a completion's context renders them (``prompts.render_files``: one
    block per file), else one numbered block per piece (an answer's excerpts).
    """
    kept: list[ContextPiece] = []
    dropped: list[Dropped] = []
    files: set[str] = set()
    used = 0

    def cost_of(piece: ContextPiece) -> int:
        if by_file:
            return added_tokens(piece, estimator, files)
        return piece_tokens(piece, estimator)

    for piece in candidates:
        if any(overlaps(k, piece) for k in kept):
            dropped.append(Dropped(piece, "overlaps a piece already chosen"))
            continue
        cost = cost_of(piece)
        if used + cost > budget:
            why = f"over the budget ({used}+{cost} > {budget} tokens)"
            room = budget - used - (cost - estimator.count(piece.text))
            smaller = shrink(piece, room) if shrink is not None else None
            if smaller is not None and not any(overlaps(k, smaller) for k in kept):
                small_cost = cost_of(smaller)
                if used + small_cost <= budget:
                    dropped.append(Dropped(piece, why + SHORTENED))
                    kept.append(smaller)
                    files.add(smaller.path)
                    used += small_cost
                    continue
            dropped.append(Dropped(piece, why))
            continue
        kept.append(piece)
        files.add(piece.path)
        used += cost
    return kept, dropped


def predict_tokens(settings: CompletionConfig, multiline: bool) -> int:
    """How many tokens a completion may generate (``num_predict``)."""
    return settings.max_tokens if multiline else min(settings.max_tokens, SINGLE_LINE_TOKENS)


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
# of the file text sent moves in steps of this many lines, not with every line the budget allows.
PREFIX_STEP_LINES = 32
# ...and the text after the cursor, which a prompt carries after the text before it (so it is
# read again for every keystroke), stops after this many lines: the rest of the block at hand.
SUFFIX_LINES = 8
# ...and the room left for context pieces shrinks in steps of this many tokens as the text around
# the cursor grows: a piece at the edge of the budget does not come and go with each keystroke.
CONTEXT_STEP_TOKENS = 256


def anchored_tail(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The end of ``text`` within ``budget`` tokens, starting on a line whose number is a
    multiple of PREFIX_STEP_LINES: typing on, the start stays put until the budget forces it a
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
    snapped = -(-first // PREFIX_STEP_LINES) * PREFIX_STEP_LINES
    return "".join(lines[snapped:] if snapped < len(lines) - 1 else lines[first:])


def near_head(text: str, budget: int, estimator: TokenEstimator) -> str:
    """The rest of the cursor's line and at most SUFFIX_LINES more, within ``budget`` tokens."""
    lines = text.splitlines(keepends=True)
    return keep_head("".join(lines[: SUFFIX_LINES + 1]), budget, estimator)


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
        used = -(-used // CONTEXT_STEP_TOKENS) * CONTEXT_STEP_TOKENS
    return CursorText(prefix, suffix, max(0, min(settings.context_tokens, window - used)))
