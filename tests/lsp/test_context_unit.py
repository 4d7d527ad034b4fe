"""Unit tests for the pure parts of completion context: cutting, multi-line choice, names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from hypothesis import given
from hypothesis import strategies as st

from server.context import (
    cut_prefix,
    cut_suffix,
    decide_multiline,
    estimate_tokens,
    fit_pieces,
    imported_names,
    names_near,
    split_at,
)
from server.lsp.services import Services
from server.lsp.settings import client_overrides
from server.types import ContextPiece


def test_split_at_counts_utf16_columns() -> None:
    text = "a = '😀x'\nb = 2\n"
    before, after = split_at(text, 0, 7)  # the emoji is two UTF-16 units
    assert before == "a = '😀" and after == "x'\nb = 2\n"
    assert split_at(text, 1, 99) == ("a = '😀x'\nb = 2", "\n")
    assert split_at(text, 5, 0) == (text, "")


@given(st.text(alphabet="ab \n", max_size=300), st.integers(0, 40), st.integers(0, 40))
def test_split_at_round_trips(text: str, line: int, character: int) -> None:
    before, after = split_at(text, line, character)
    assert before + after == text


@given(st.text(alphabet="abc \n", max_size=2000), st.integers(1, 200))
def test_cuts_keep_the_cursor_side_within_budget(text: str, tokens: int) -> None:
    head = cut_prefix(text, tokens)
    tail = cut_suffix(text, tokens)
    assert text.endswith(head) and text.startswith(tail)
    assert len(head) <= max(tokens * 3, 0) or head == text
    assert len(tail) <= tokens * 3 or tail == text


def test_multiline_follows_the_syntax_at_the_cursor() -> None:
    assert decide_multiline("def f(x):\n    ", "\n", "python")[0] is True
    assert decide_multiline("x = foo(", ")\n", "python") == (True, "the line opens a block")
    assert decide_multiline("    total = ", "\n", "python")[0] is False
    assert decide_multiline("    total = ", " + 1\n", "python")[0] is False
    inside = decide_multiline("if x:\n    a = 1\n    ", "\n    b = 2\n", "python")
    assert inside == (False, "empty line inside a block")
    assert decide_multiline("function f() {\n  ", "\n}\n", "javascript")[0] is True


def test_inside_a_string_or_comment_is_single_line() -> None:
    # by the text alone each of these would be multi-line (a trailing opener, an empty line at
    # the top level); the syntax tree knows the cursor is in a comment or a string
    comment = decide_multiline("    # see foo(", "\n", "python")
    assert comment == (False, "the cursor is inside a comment")
    js = decide_multiline("function f() {\n  // as in g({", "\n}\n", "javascript")
    assert js == (False, "the cursor is inside a comment")
    text = decide_multiline('USAGE = """\n', '\n"""\n', "python")
    assert text == (False, "the cursor is inside a string")
    # right after a closing quote the cursor is not inside the string any more
    assert decide_multiline('x = "abc"', "\n", "python") == (False, "completing the rest of a line")
    assert decide_multiline("def f(x):\n    ", "\n", "python") == (
        True,
        "empty line after a block opener",
    )


def test_imported_names_python_and_javascript() -> None:
    python = "from pkg.models import User, make_user as mk\nimport os.path\nimport numpy as np\n"
    names = imported_names(python, "python")
    assert names["User"] == "pkg.models" and names["mk"] == "pkg.models"
    assert names["np"] == "numpy" and names["os.path"] == "os.path"
    js = "import { a, b as c } from './util'\nconst fs = require('fs')\n"
    found = imported_names(js, "javascript")
    assert found["a"] == "./util" and found["c"] == "./util" and found["fs"] == "fs"


def test_names_near_are_closest_first_without_keywords() -> None:
    lines = ["import far_away", "", "def f(self):", "    value = helper(x)", "    return val"]
    names = names_near(lines, 4)
    assert names.index("val") < names.index("helper") < names.index("far_away")
    assert "return" not in names and "self" not in names and "def" not in names


def test_fit_pieces_keeps_priority_order_and_drops_overlaps() -> None:
    big = ContextPiece("a.py", 1, 50, "x" * 3000, "definition")
    small = ContextPiece("b.py", 1, 2, "def b(): ...\n", "definition")
    inner = ContextPiece("b.py", 2, 2, "...\n", "similar code")
    kept, dropped = fit_pieces([big, small, inner], 200)
    assert kept == [small]
    assert [d.why.split(" ")[0] for d in dropped] == ["over", "overlaps"]
    assert estimate_tokens("abcdef") >= 2


def test_client_settings_replace_initialization_options() -> None:
    services = cast(
        Services, SimpleNamespace(init_options={"ollama": {"chatModel": "a"}}, client_settings=None)
    )
    assert client_overrides(services) == {"ollama": {"chatModel": "a"}}
    services.client_settings = {"completion": {"debounceMs": 5}}
    assert client_overrides(services) == {"completion": {"debounceMs": 5}}
    services.client_settings = {}  # the user removed every setting: defaults, not stale values
    assert client_overrides(services) == {}
