"""Token budgets: one estimator, one place that fits a completion's text and context."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.config import CompletionConfig
from enclave.server.completion import prompt as completion_prompt
from enclave.server.completion.fit import (
    completion_overhead,
    completion_window,
    fit_cursor_text,
    predict_tokens,
)
from enclave.server.model import prompts
from enclave.server.model.budget import (
    PROMPT_MARGIN,
    TokenEstimator,
    context_tokens,
    file_tokens,
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


def test_a_completion_s_pieces_of_one_file_pay_its_block_once() -> None:
    """A completion's context is one block per file: a second piece of a file costs its text
    and the line that parts it from the first, so more fits the same budget than one block
    per piece would allow, and the costs never count less than the text sent."""
    est = TokenEstimator()
    path = "services/billing/invoices/adjustments.py"
    pieces = [
        ContextPiece(path, 10 * i + 1, 10 * i + 1, f"def step_{i}(value):\n", "signatures of")
        for i in range(12)
    ]
    alone, _ = fit_pieces(pieces, 200, est)
    grouped, _ = fit_pieces(pieces, 200, est, by_file=True)
    assert len(alone) < len(grouped) == len(pieces)
    costs = context_tokens(grouped, est)
    assert costs[0] == est.count(pieces[0].text) + file_tokens(path, est)
    assert all(cost < file_tokens(path, est) for cost in costs[1:])
    rendered = prompts.render_files(grouped)
    assert rendered.count(prompts.DATA_OPEN) == 1 and rendered.count(prompts.GAP) == 11
    assert sum(costs) >= est.count(rendered)


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


@pytest.mark.parametrize("cache_friendly", [True, False])
@pytest.mark.parametrize("multiline", [True, False])
def test_a_prompt_filled_to_every_budget_still_fits_num_ctx(
    cache_friendly: bool, multiline: bool
) -> None:
    """What the budgets let through, rendered as the client renders it (the chat-style prompt,
    the larger one: numbered pieces, the file's name twice, the instructions), passes the
    client's own check: a full budget never turns into "the prompt needs more than num_ctx"."""
    est = TokenEstimator()
    path = "services/billing/" + "deeply_nested_module_name/" * 4 + "invoices.py"
    settings = CompletionConfig(num_ctx=2048, max_tokens=24, cache_friendly=cache_friendly)
    lines = "".join(f"    total_{i} = compute_{i}(values, weights)\n" for i in range(400))
    cut = fit_cursor_text(lines, lines, settings, est, path=path, language="python")
    row = len(lines.splitlines(keepends=True)[0])
    pieces = [  # pieces of 1 to 12 lines, some of one file: the budget is filled
        ContextPiece(
            f"{path[:-3]}_{i % 5}.py", 100 * i + 1, 100 * i + n, lines[: row * n], "similar code"
        )
        for i, n in enumerate([12, 8, 5, 3, 2, 1] * 4)
    ]
    kept, _ = fit_pieces(pieces, cut.context_tokens, est, by_file=True)
    left = cut.context_tokens - sum(context_tokens(kept, est))
    assert kept and left < piece_tokens(pieces[5], est)  # the budget is full
    prompt = completion_prompt.chat_fill_prompt(
        cut.prefix, cut.suffix, path, "python", kept, multiline=multiline,
        cache_friendly=cache_friendly,
    )  # fmt: skip
    needed = est.count(prompt) + est.count(completion_prompt.COMPLETION_SYSTEM)
    num_predict = predict_tokens(settings, multiline)
    assert needed <= settings.num_ctx - num_predict - PROMPT_MARGIN, needed
