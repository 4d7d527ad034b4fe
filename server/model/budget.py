"""Token budgets: a conservative token estimate that learns, and cutting text to fit a budget.

Ollama silently drops the start of a prompt longer than ``num_ctx``. We never let that happen:
every piece is measured with an estimate that errs high (about 3 characters per token, less for
dense text), corrected from the ``prompt_eval_count`` the server reports, and cut before sending.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

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


def fit_pieces(
    pieces: Sequence[T], texts: Sequence[str], budget: int, estimator: TokenEstimator
) -> list[T]:
    """The longest run of ``pieces`` (in their ranked order) whose texts fit ``budget``.

    A piece that does not fit is skipped and smaller later ones may still go in.
    """
    chosen: list[T] = []
    used = 0
    for piece, text in zip(pieces, texts, strict=True):
        cost = estimator.count(text)
        if used + cost <= budget:
            chosen.append(piece)
            used += cost
    return chosen
