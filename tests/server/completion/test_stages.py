"""The pure parts of completion context: cursor positions, multi-line choice, names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from enclave.indexer.types import SymbolDef
from enclave.server.completion.cursor import decide_multiline, names_near, split_at
from enclave.server.completion.sources.imports import affinity
from enclave.server.completion.sources.outline import likeliest, outline, reach, signature
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import TokenEstimator


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


def test_multiline_follows_the_syntax_at_the_cursor() -> None:
    assert decide_multiline("def f(x):\n    ", "\n", "python")[0] is True
    # an open argument list is one line (the rest of the call), a block opener more
    assert decide_multiline("x = foo(", ")\n", "python")[0] is False
    assert decide_multiline("    values = [", "\n", "python")[0] is False
    assert decide_multiline("run(function () {", "\n", "javascript")[0] is True
    assert decide_multiline("    total = ", "\n", "python")[0] is False
    assert decide_multiline("    total = ", " + 1\n", "python")[0] is False
    inside = decide_multiline("if x:\n    a = 1\n    ", "\n    b = 2\n", "python")
    assert inside == (False, "empty line inside a block")
    assert decide_multiline("function f() {\n  ", "\n}\n", "javascript")[0] is True


def test_the_next_item_of_an_argument_list_open_over_lines_is_one_line() -> None:
    """An empty line inside a call or a list still open over several lines wants its next item
    (by the text alone: an empty line at the end of a block, several lines); a bracket in a
    string or a comment opens nothing, and a function's body inside a call is a block."""
    one = (False, "inside an open argument list or list: its next item, on one line")
    call = "def f(values):\n    result = compute(\n        values,\n        "
    assert decide_multiline(call, "", "python") == one
    assert decide_multiline(call, "\n    )\n", "python") == one
    assert decide_multiline("func f() {\n\tx := call(\n\t\ta,\n\t\t", "", "go") == one
    assert decide_multiline("items = [\n    1,\n    ", "", "python") == one
    closed = "def f(a):\n    s = g('(', [1])\n"
    assert decide_multiline(closed, "", "python") == (True, "empty line at the end of a block")
    body = "run(function () {\n  go(1);\n  "
    assert decide_multiline(body, "", "javascript")[0] is True


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


def test_names_near_are_closest_first_without_keywords() -> None:
    lines = ["import far_away", "", "def f(self):", "    value = helper(x)", "    return val"]
    names = names_near(lines, 4)
    assert names.index("val") < names.index("helper") < names.index("far_away")
    assert "return" not in names and "self" not in names and "def" not in names


def test_names_that_only_label_a_value_are_no_use_of_a_definition() -> None:
    """A composite literal's key (`Diff:` in Go: the field, not the package's `Diff` function),
    an object key or parameter name, a keyword argument and an assignment's target are left
    out; a name after `case`, in a ternary, a slice or a Python condition is a use."""
    go = ["\tlist = append(list, textRecord{Diff: opts.DiffMode, Value: textLine(prefix)})",
          "\tswitch k {", "\tcase Invalid:", "\t}", ""]  # fmt: skip
    names = names_near(go, 4, "go")
    assert "Diff" not in names and "Value" not in names
    assert {"textRecord", "textLine", "DiffMode", "Invalid"} <= set(names)
    ts = ["const p = { width: size, height: size };", "f(a ? first : second);", ""]
    names = names_near(ts, 2, "typescript")
    assert "width" not in names and "height" not in names
    assert {"size", "first", "second"} <= set(names)
    py = [
        "shape = Rectangle(width=2, height=scale)",
        "if ready:",
        "    part = items[start:end]",
        "",
    ]
    names = names_near(py, 3, "python")
    assert "width" not in names and "height" not in names and "shape" not in names
    assert {"Rectangle", "scale", "ready", "items", "start", "end"} <= set(names)


def test_a_signature_with_typescript_overloads_runs_to_the_implementation() -> None:
    """A call resolves to the implementation's line: overload lines before it are part of the
    signature (within OVERLOAD_LINES); other declarations end at their first line."""
    overloads = [
        "export function from(input: string): Observable<string>;\n",
        "export function from<T>(input: T[]): Observable<T>;\n",
        "export function from<T>(input: any): Observable<T> {\n",
        "  return new Observable();\n",
    ]
    assert signature(overloads) == overloads[:3]
    assert signature(["type Id = string;\n", "type Name = string;\n"]) == ["type Id = string;\n"]
    assert signature(["@cache\n", "def f(x):\n", "    return x\n"]) == ["@cache\n", "def f(x):\n"]
    many = [f"export function f(a: T{i}): T{i};\n" for i in range(20)]
    assert len(signature(many)) == TUNING.overload_lines
    # multi-line overloads with comments between them, the implementation after its JSDoc
    documented = [
        "export function exhaustMap<T, O>(\n",
        "  project: (value: T) => O\n",
        "): OperatorFunction<T, O>;\n",
        "/** @deprecated Use an inner `map`. */\n",
        "export function exhaustMap<T, R>(\n",
        "  project: (value: T) => R, resultSelector: undefined\n",
        "): OperatorFunction<T, R>;\n",
        "\n",
        "/**\n",
        " * Projects each source value to an Observable.\n",
        " */\n",
        "export function exhaustMap<T, R>(project: any, resultSelector?: any): any {\n",
        "  return operate(project);\n",
    ]
    shown = signature(documented)
    assert shown == [documented[i] for i in (0, 1, 2, 4, 5, 6, 11)]
    assert reach(documented, shown) == 12  # the implementation's line is the 12th
    followed = ["export function f(a: A): R;\n", "// next\n", "export const g = 1;\n"]
    assert signature(followed) == followed[:1]  # the next declaration is not f's


def test_the_words_near_the_cursor_point_at_the_names_made_of_them() -> None:
    names = ["encode_rfc2231", "decode_rfc2231", "formatHex", "formatString", "getLogger", "quote"]
    near = "        # Encode as per RFC 2231, then a hexdump\n        # Logger for internal use\n"
    said = affinity(names, near)
    # every word of it said (`rfc` and `2231` shared with another name: each counts half)
    assert said["encode_rfc2231"] == 1 + 0.5 + 0.5
    assert said["decode_rfc2231"] == 0.5 + 0.5  # (`decode` is not said)
    assert said["formatHex"] == 1  # `hexdump` begins with `hex`; `format` is not said
    assert said["getLogger"] == 1  # `get` is not said; `Logger` is
    assert said["formatString"] == said["quote"] == 0
    # keywords and words under 3 characters say nothing
    assert affinity(["return_to", "ok_go"], "return ok go to") == {"return_to": 0, "ok_go": 0}


def test_the_shorter_form_of_signatures_keeps_those_likeliest_to_be_called() -> None:
    """A module's signatures that do not fit: the shorter form keeps the likeliest (the names
    the file uses, then what similar code and other files call), not the first in the file."""
    ranks = [3, 4, 0, 2, 1]
    run = [
        (
            SymbolDef(
                name=f"step_{i}",
                qualified_name=f"step_{i}",
                kind="function",
                path="lib/steps.py",
                start_line=10 * i + 1,
                end_line=10 * i + 5,
                signature=f"def step_{i}(value):",
                doc="",
            ),
            "lib.steps",
            [f"def step_{i}(value):\n"],
            10 * i + 1,
            rank,
        )
        for i, rank in enumerate(ranks)
    ]
    piece = outline("lib/steps.py", run)
    assert piece.text == "".join(f"def step_{i}(value):\n" for i in range(5))
    est = TokenEstimator()
    two = est.count("def step_0(value):\n") * 2
    short = likeliest(piece, two, est)
    assert short is not None
    assert short.text == "def step_2(value):\ndef step_4(value):\n"  # ranks 0 and 1, file order
    assert (short.start_line, short.end_line) == (21, 41)
    assert short.reason == "signatures of `step_2`, `step_4` (imported by this file from lib.steps)"
    assert [s.rank for s in short.signatures] == [0, 1]
    assert likeliest(piece, two * 10, est) is None  # all fit: the piece itself goes
    assert likeliest(piece, 1, est) is None  # none fits
