"""Token budgets: one estimator, one place that fits a completion's text and context."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.config import CompletionConfig
from enclave.server.model.budget import (
    TokenEstimator,
    completion_overhead,
    completion_window,
    fit_cursor_text,
    fit_pieces,
    keep_head,
    keep_tail,
    piece_tokens,
)
from enclave.server.model.errors import ContextTooLong
from enclave.server.types import ContextPiece


def test_estimate_is_conservative_and_learns_down_only_fast() -> None:
    est = TokenEstimator()
    assert est.count("abcdef") == 2
    assert est.count("ééé") == 3
    est.learn(3000, 1500)  # 2 chars per token observed: adopt (with margin) at once
    assert est.chars_per_token < 2.0
    before = est.chars_per_token
    est.learn(4000, 1000)  # sparser text: move up slowly
    assert before < est.chars_per_token < 4.0


def test_keep_tail_and_head_respect_budget_on_line_boundaries() -> None:
    est = TokenEstimator()
    text = "".join(f"line {i:03d} = value\n" for i in range(100))
    tail = keep_tail(text, 50, est)
    head = keep_head(text, 50, est)
    assert est.count(tail) <= 50 and text.endswith(tail) and tail.startswith("line")
    assert est.count(head) <= 50 and text.startswith(head) and head.endswith("\n")
    assert keep_tail(text, 0, est) == ""


def test_fit_pieces_keeps_ranked_order_skips_too_big_and_drops_overlaps() -> None:
    est = TokenEstimator()
    big = ContextPiece("a.py", 1, 50, "x" * 3000, "definition")
    small = ContextPiece("b.py", 1, 2, "def b(): ...\n", "definition")
    inner = ContextPiece("b.py", 2, 2, "...\n", "similar code")
    other = ContextPiece("c.py", 1, 1, "c = 1\n", "similar code")
    kept, dropped = fit_pieces([big, small, inner, other], 200, est)
    assert kept == [small, other]
    assert [(d.piece, d.why.split(" ")[0]) for d in dropped] == [(big, "over"), (inner, "overlaps")]
    # the cost counts the delimiter that names the file, not only the text
    assert sum(piece_tokens(p, est) for p in kept) > est.count(small.text + other.text)


@given(
    st.text(alphabet="abc \n", max_size=3000),
    st.text(alphabet="xyz \n", max_size=3000),
    st.integers(64, 2000),
)
def test_cursor_text_fits_one_budget(before: str, after: str, num_ctx_extra: int) -> None:
    """Prefix, suffix and context allowance together never exceed the completion window."""
    est = TokenEstimator()
    settings = CompletionConfig(num_ctx=completion_overhead(est) + 128 + num_ctx_extra)
    window = completion_window(settings, est)
    cut = fit_cursor_text(before, after, settings, est)
    assert before.endswith(cut.prefix) and after.startswith(cut.suffix)
    assert est.count(cut.prefix) <= min(settings.prefix_tokens, window)
    assert est.count(cut.prefix) + est.count(cut.suffix) + cut.context_tokens <= window
    assert cut.context_tokens <= settings.context_tokens


def test_a_window_too_small_for_the_code_is_refused() -> None:
    est = TokenEstimator()
    with pytest.raises(ContextTooLong, match=r"completion\.num_ctx"):
        fit_cursor_text("x = 1\n", "", CompletionConfig(num_ctx=200, max_tokens=128), est)
