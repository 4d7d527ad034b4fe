"""The pieces of keystroke-to-suggestion latency, one rule at a time: how long to wait before
asking the model, when a typed character is answered from the suggestion on screen, where the
text before the cursor starts, and which context pieces a prompt keeps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from enclave.config import CompletionConfig
from enclave.server.completion.fit import fit_cursor_text, stable_order
from enclave.server.completion.tuning import TUNING
from enclave.server.lsp.completion import (
    PAUSE_S,
    WAIT_MAX_S,
    WAIT_MIN_S,
    Shown,
    adaptive_wait,
    typed_through,
)
from enclave.server.model.budget import TokenEstimator
from enclave.server.types import ContextPiece

CONFIGURED = 0.12


def keys(*gaps: float, start: float = 100.0) -> list[float]:
    times = [start]
    for gap in gaps:
        times.append(times[-1] + gap)
    return times


def test_until_the_rhythm_is_known_the_configured_wait_applies() -> None:
    assert adaptive_wait([], 5.0, None, CONFIGURED) == CONFIGURED
    two = keys(0.1, 0.1)
    assert adaptive_wait(two, two[-1], 3.0, CONFIGURED) == pytest.approx(CONFIGURED)


def test_a_slow_model_waits_until_a_fast_typist_has_stopped() -> None:
    typing = keys(0.08, 0.09, 0.08, 0.1, 0.08)
    wait = adaptive_wait(typing, typing[-1], 5.0, CONFIGURED)
    assert wait == pytest.approx(1.5 * 0.08)  # 1.5 x the median gap between their keys
    # a slower typist's next key comes later: wait longer, never past WAIT_MAX_S
    slow = keys(0.3, 0.35, 0.3, 0.32)
    assert adaptive_wait(slow, slow[-1], 5.0, CONFIGURED) == pytest.approx(1.5 * 0.31)
    crawl = keys(0.7, 0.8, 0.9, 0.75)
    assert adaptive_wait(crawl, crawl[-1], 5.0, CONFIGURED) == WAIT_MAX_S


def test_a_model_faster_than_the_typist_is_asked_at_once() -> None:
    typing = keys(0.2, 0.2, 0.25, 0.2)
    assert adaptive_wait(typing, typing[-1], 0.05, CONFIGURED) == WAIT_MIN_S


def test_silence_already_passed_counts_and_pauses_are_not_rhythm() -> None:
    typing = keys(0.1, 0.1, 0.1, 0.1)
    assert adaptive_wait(typing, typing[-1] + 0.1, 5.0, CONFIGURED) == pytest.approx(0.05)
    assert adaptive_wait(typing, typing[-1] + 2.0, 5.0, CONFIGURED) == 0.0  # a pause: at once
    paused = keys(0.1, PAUSE_S + 3, 0.1)  # a long pause between bursts is no gap
    assert adaptive_wait(paused, paused[-1], 5.0, CONFIGURED) == CONFIGURED  # two gaps only


def test_typed_through_answers_the_rest_only_for_an_exact_match() -> None:
    shown = Shown("x = ", "\n", "compute(a, b)")
    assert typed_through(shown, "x = c", "\n") == "ompute(a, b)"
    assert typed_through(shown, "x = comp", "\n") == "ute(a, b)"
    assert typed_through(shown, "x = d", "\n") is None  # diverged
    assert typed_through(shown, "x = c", ")\n") is None  # the text after the cursor changed
    assert typed_through(shown, "x = compute(a, b)", "\n") is None  # all of it typed: ask anew
    assert typed_through(shown, "x = ", "\n") is None  # nothing typed: not a typed-through
    assert typed_through(shown, "y = c", "\n") is None  # an edit before the cursor
    assert typed_through(None, "x = c", "\n") is None


def test_the_prefix_starts_on_a_step_line_and_stays_put_while_typing() -> None:
    est = TokenEstimator()
    settings = CompletionConfig(prefix_tokens=300, suffix_tokens=200)
    body = "".join(f"value_{i} = compute_{i}(argument_{i})\n" for i in range(400))
    starts = set()
    line = ""
    for char in "result = compute_total(values, weights)":
        line += char
        cut = fit_cursor_text(body + line, "\n" + body, settings, est)
        first = cut.prefix.splitlines()[0]
        starts.add(first)
        number = int(first.split("_", 1)[1].split(" ", 1)[0])
        assert number % TUNING.prefix_step_lines == 0, first
        assert est.count(cut.prefix) <= 300
    assert len(starts) == 1  # the whole line typed without the prompt's start moving
    assert cut.suffix.count("\n") <= TUNING.suffix_lines + 1  # the nearby lines after the cursor
    # the layout before it: every line the budget allows, and the suffix to its budget
    plain = fit_cursor_text(body + line, "\n" + body, replace(settings, cache_friendly=False), est)
    assert len(plain.prefix) > len(cut.prefix) and len(plain.suffix) > len(cut.suffix)


def piece(path: str, start: int, reason: str = "similar code", text: str = "x\n") -> ContextPiece:
    return ContextPiece(path, start, start + text.count("\n") - 1, text, reason)


def test_kept_pieces_stay_first_in_their_order_and_stale_ones_go() -> None:
    a, b, c = piece("a.py", 1), piece("b.py", 1), piece("c.py", 1)
    fresh = piece("d.py", 1, "definition of `d` (used near the cursor)")
    # the new ranking puts d first and forgets a; a's lines still read the same: a stays
    ordered = stable_order([a, b, c], [fresh, c, b], current=lambda p: p.path != "b.py")
    assert ordered == [a, b, c, fresh]
    # b is not a candidate now and its file changed: it goes, the others keep their places
    ordered = stable_order([a, b, c], [c, fresh], current=lambda p: p.path != "b.py")
    assert ordered == [a, c, fresh]
    # a new candidate showing lines of a kept piece is not shown twice
    wider = piece("a.py", 1, "definition of `a` (used near the cursor)", text="x\ny\n")
    assert stable_order([a], [wider], current=lambda p: True) == [a]
    # new similar code or signatures do not join the kept pieces: only definitions do
    similar, signatures = piece("e.py", 1), piece("f.py", 1, "signatures of `f`")
    assert stable_order([a], [similar, signatures, fresh], current=lambda p: True) == [a, fresh]


def test_a_burst_of_edits_waits_at_least_the_configured_time_for_a_slow_model() -> None:
    burst = keys(0.002, 0.003, 0.002, 0.002)  # a paste or key repeat, not a typist
    assert adaptive_wait(burst, burst[-1], 5.0, CONFIGURED) == pytest.approx(CONFIGURED)
