"""Completion post-processing: what reaches the buffer, and when the model may stop."""

from __future__ import annotations

import pytest

from enclave.server.completion.finish import extract_completion, is_settled, unfence
from enclave.server.completion.prompt import INSERT_AT
from enclave.server.model.prompts import CURSOR, DATA_CLOSE, DATA_OPEN


def test_unfence_takes_the_code_block() -> None:
    assert unfence("Here:\n```python\nreturn 1\n```\nThat is it.") == "return 1\n"
    assert unfence("return 1\n```\n") == "return 1\n"
    assert unfence("no fences") == "no fences"


def test_extract_drops_think_fences_and_echo() -> None:
    raw = "<think>hmm</think>\n```python\n    return a + b\n```\nExplanation."
    assert extract_completion(raw, prefix="def f(a, b):\n    ", suffix="", multiline=True) == (
        "return a + b"
    )


def test_extract_cuts_at_end_of_block() -> None:
    raw = "total = a + b\n    return total\n\nprint(f(1, 2))\n"
    text = extract_completion(raw, prefix="def f(a, b):\n    ", suffix="", multiline=True)
    assert text == "total = a + b\n    return total"


def test_extract_drops_what_the_suffix_has() -> None:
    text = extract_completion("a, b)", prefix="print(max(", suffix=")\n", multiline=False)
    assert text == "a, b"
    raw = "x = 1\ny = 2\nreturn x + y\n"
    text = extract_completion(raw, prefix="", suffix="return x + y\n", multiline=True)
    assert text == "x = 1\ny = 2"


def test_single_line_stops_at_newline() -> None:
    text = extract_completion("a + b\n    more()", prefix="x = ", suffix="", multiline=False)
    assert text == "a + b"


def test_single_line_settles_once_its_line_is_complete() -> None:
    prefix, suffix = "def add(a, b):\n    return ", "\n"
    assert not is_settled("a + b", prefix=prefix, suffix=suffix, multiline=False)
    assert not is_settled("```python\n", prefix=prefix, suffix=suffix, multiline=False)
    assert not is_settled("<think>hmm\n", prefix=prefix, suffix=suffix, multiline=False)
    assert is_settled("a + b\n", prefix=prefix, suffix=suffix, multiline=False)
    assert is_settled("```python\na + b\n", prefix=prefix, suffix=suffix, multiline=False)


def test_multiline_settles_when_the_block_ends() -> None:
    prefix, suffix = "def area(w, h):\n    ", ""
    body = "if w < 0:\n        raise ValueError(w)\n    return w * h\n"
    assert not is_settled(body, prefix=prefix, suffix=suffix, multiline=True)
    assert is_settled(body + "\ndef other():\n", prefix=prefix, suffix=suffix, multiline=True)
    assert is_settled("```python\n" + body + "```\n", prefix=prefix, suffix=suffix, multiline=True)


@pytest.mark.parametrize(
    "raw",
    [
        DATA_OPEN + ">",  # the suggestion a real user saw: the delimiter alone
        f'{DATA_OPEN} path="app/x.py" lines="1-3">\nvalue + 1\n{DATA_CLOSE}',
        f'{DATA_OPEN} path="app/x.py" lines="1-3" ref="2">value + 1{DATA_CLOSE}',
        "value + 1" + DATA_CLOSE.replace("/", "\\/"),
        f"{INSERT_AT} {CURSOR}:\nvalue + 1",
        f"{CURSOR}value + 1{CURSOR}",
        f"<think></think>{CURSOR}\nvalue + 1",
        "# shapes/geometry.py:16-18",  # the FIM prompt's header of a context piece
        "# shapes/geometry.py\nvalue + 1",  # the FIM prompt's header of a context file
        "value + 1  # app/x.py:3-9",
        "// web/src/util.ts:1-12\nvalue + 1",
    ],
)
@pytest.mark.parametrize("multiline", [False, True])
def test_the_prompts_markup_never_reaches_the_buffer(raw: str, multiline: bool) -> None:
    text = extract_completion(
        raw, prefix="def f(value):\n    return ", suffix="\n", multiline=multiline
    )
    for markup in (DATA_OPEN, DATA_CLOSE, "<\\/repository-data>", CURSOR, INSERT_AT, "think>"):
        assert markup not in text, (raw, text)
    assert text in ("", "value + 1"), text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("return # shapes/geometry.py:1-1", "return"),  # the suggestion a real user accepted
        ("return radius  # shapes/geometry.py:12", "return radius"),
        ("return radius // web/src/util.ts:3-4\n", "return radius"),
        ("return area  # shapes/geometry.py", "return area"),
        (
            "return w // h  # see shapes/geometry.py for why",
            "return w // h  # see shapes/geometry.py for why",
        ),
        ("return total // self.size", "return total // self.size"),
    ],
)
def test_a_completion_never_ends_with_a_context_header_comment(raw: str, expected: str) -> None:
    """The FIM prompt names each context file in a comment ("# path/to/file.py"); a citation-like
    comment of a path (and lines) at the end of a completed line is that header, not code."""
    text = extract_completion(raw, prefix="def f(radius):\n    ", suffix="\n", multiline=False)
    assert text == expected
