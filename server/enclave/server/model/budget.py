"""Token budgets: text measured in tokens, and context pieces fitted to a prompt's budget.

Ollama silently drops the start of a prompt longer than ``num_ctx``. We never let that happen:
every piece is measured with one estimator that errs high (about 3 characters per token, less for
dense text), corrected from the ``prompt_eval_count`` the server reports, and cut before sending.

:func:`fit_pieces` chooses the context pieces that fit a budget (a completion's and an answer's).
How a completion cuts the text around its cursor and orders its pieces is
``enclave.server.completion.fit``'s (with the ``completion.*`` settings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from enclave.server.model.prompts import DATA_CLOSE, GAP, file_head
from enclave.server.types import ContextPiece

PROMPT_MARGIN = 48  # tokens kept free for the model's chat template around our text

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
        # (Counted in C: the estimate runs on every line of every prompt, every keystroke.)
        wide = 0 if text.isascii() else len(text) - len(text.encode("ascii", "ignore"))
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
