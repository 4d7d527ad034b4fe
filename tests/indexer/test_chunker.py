"""Tests for indexer.chunker.analyze: chunk rules, symbols and imports for every language.

Sample files live in tests/data/chunker/ as "<name>.txt" (so linters leave them alone); each
test checks the chunk invariants (sorted, no overlap, every non-blank line covered once, exact
text, limits) on top of its own expectations.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.indexer.chunker import WINDOW_LINES, analyze
from enclave.indexer.languages import SUPPORTED_LANGUAGES, language_for_path
from enclave.indexer.types import FileAnalysis

DATA = Path(__file__).parent / "data" / "chunker"


def check_chunks(
    text: str, result: FileAnalysis, max_lines: int = 120, max_chars: int = 6000
) -> None:
    """Assert the chunk rules every analysis must satisfy."""
    lines = text.split("\n")
    covered: list[int] = []
    previous_end = 0
    for chunk in result.chunks:
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines), chunk
        assert chunk.start_line > previous_end, f"overlap or disorder at {chunk}"
        previous_end = chunk.end_line
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert lines[chunk.start_line - 1].strip(), f"chunk starts on a blank line: {chunk}"
        assert lines[chunk.end_line - 1].strip(), f"chunk ends on a blank line: {chunk}"
        assert chunk.content_hash == hashlib.sha256(chunk.text.encode()).hexdigest()
        if chunk.start_line != chunk.end_line:  # one over-long line cannot be cut
            assert chunk.end_line - chunk.start_line + 1 <= max_lines, chunk
            assert len(chunk.text) <= max_chars, chunk
        covered.extend(range(chunk.start_line, chunk.end_line + 1))
    non_blank = {i + 1 for i, line in enumerate(lines) if line.strip()}
    assert non_blank <= set(covered), f"uncovered lines: {sorted(non_blank - set(covered))}"
    for symbol in result.symbols:
        assert 1 <= symbol.start_line <= symbol.end_line <= len(lines), symbol


def analyze_sample(
    name: str, max_lines: int = 120, max_chars: int = 6000
) -> tuple[str, FileAnalysis]:
    text = (DATA / f"{name}.txt").read_text("utf-8")
    language = language_for_path(name)
    result = analyze(
        f"src/{name}", text, language, max_chunk_lines=max_lines, max_chunk_chars=max_chars
    )
    check_chunks(text, result, max_lines=max_lines, max_chars=max_chars)
    assert all(c.path == f"src/{name}" and c.language == language for c in result.chunks)
    return text, result


# file -> (chunks expected as (kind, symbol), symbols expected as (kind, qualified), imports)
EXPECTED: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]], list[str]]] = {
    "sample.py": (
        {("class", "Session"), ("function", "outer"), ("block", "")},
        {("method", "Session.request"), ("function", "Session.request.helper"),
         ("method", "Session.name"), ("function", "outer.inner")},
        ["__future__", "os.path", "sys", ".", "..pkg.mod"],
    ),
    "sample.js": (
        {("function", "greet"), ("function", "add"), ("class", "Counter"), ("function", "load")},
        {("function", "greet.shout"), ("method", "Counter.increment"),
         ("method", "Counter.create"), ("method", "Counter.constructor")},
        ["react", "./styles.css", "path", "./helpers.js", "./lazy.js"],
    ),
    "sample.ts": (
        {("type", "UserId"), ("interface", "Repository"), ("enum", "Status"),
         ("namespace", "Util"), ("class", "UserService"), ("class", "Base"),
         ("function", "handler")},
        {("function", "Util.clamp"), ("method", "UserService.get"),
         ("function", "handler.format")},
        ["@angular/core", "./models", "./api", "fs"],
    ),
    "sample.tsx": (
        {("interface", "Props"), ("function", "Header"), ("class", "Page")},
        {("method", "Page.render"), ("function", "Header.onClick")},
        ["react", "./Button"],
    ),
    "sample.go": (
        {("struct", "Server"), ("interface", "Handler"), ("method", "Server.Start"),
         ("method", "Server.Addr"), ("function", "NewServer")},
        {("type", "ID"), ("type", "Alias")},
        ["fmt", "net/http", "os"],
    ),
    "sample.rs": (
        {("struct", "Store"), ("trait", "Storable"), ("enum", "Mode"), ("impl", "Store"),
         ("module", "helpers"), ("function", "main")},
        {("method", "Store.new"), ("method", "Store.get"), ("method", "Store.from"),
         ("function", "helpers.assist.nested"), ("method", "Storable.key")},
        ["std::collections::HashMap", "crate::net", "super::util", "serde::Serialize"],
    ),
    "sample.java": (
        {("class", "UserService"), ("enum", "Role"), ("record", "Point")},
        {("method", "UserService.findById"), ("constructor", "UserService.UserService"),
         ("class", "UserService.Cache"), ("method", "UserService.Cache.clear"),
         ("interface", "UserService.Listener"), ("method", "Point.sum")},
        ["java.util.List", "java.util.Map", "java.lang.Math.max", "com.example.util"],
    ),
    "sample.c": (
        {("struct", "point"), ("enum", "color"), ("type", "size_t2"), ("function", "add"),
         ("function", "name_of"), ("function", "main")},
        set(),
        ["stdio.h", "util.h"],
    ),
    "sample.cpp": (
        {("namespace", "engine"), ("function", "engine.Renderer.count"), ("function", "main")},
        {("class", "engine.Renderer"), ("method", "engine.Renderer.draw"),
         ("struct", "engine.Config"), ("function", "engine.clamp")},
        ["vector", "engine/core.hpp"],
    ),
    "sample.cs": (
        {("namespace", "Shop.Orders")},
        {("class", "Shop.Orders.Order"), ("method", "Shop.Orders.Order.Total"),
         ("interface", "Shop.Orders.IRepository"), ("struct", "Shop.Orders.Money"),
         ("enum", "Shop.Orders.State"), ("record", "Shop.Orders.Line")},
        ["System", "System.Collections.Generic", "System.Math"],
    ),
    "sample.rb": (
        {("module", "Billing"), ("function", "main")},
        {("class", "Billing.Invoice"), ("method", "Billing.Invoice.to_s"),
         ("method", "Billing.Invoice.build"), ("method", "Billing.Invoice.initialize")},
        ["json", "lib/helper"],
    ),
    "sample.php": (
        {("class", "UserController"), ("interface", "Renderable"), ("trait", "Loggable"),
         ("function", "helper")},
        {("method", "UserController.show"), ("method", "Loggable.log")},
        ["App\\Models\\User", "Illuminate\\Support\\Facades"],
    ),
    "sample.sh": ({("function", "usage"), ("function", "build"), ("block", "")}, set(),
                  ["./lib/common.sh", "$HOME/.profile"]),
    "sample.lua": (
        {("function", "M.add"), ("function", "M.method"), ("function", "helper")},
        {("function", "helper.inner")},
        ["json", "lib.util"],
    ),
    "sample.kt": (
        {("interface", "UserRepository"), ("class", "User"), ("class", "UserService"),
         ("object", "Registry"), ("function", "main")},
        {("method", "UserService.lookup"), ("function", "UserService.lookup.normalize"),
         ("method", "Registry.register")},
        ["kotlinx.coroutines.launch", "java.util.UUID"],
    ),
    "sample.swift": (
        {("protocol", "Shape"), ("struct", "Circle"), ("class", "ViewController"),
         ("enum", "Direction"), ("extension", "Circle"), ("function", "main")},
        {("method", "Circle.area"), ("method", "ViewController.viewDidLoad"),
         ("method", "Circle.diameter"), ("function", "main.helper")},
        ["Foundation", "UIKit"],
    ),
}  # fmt: skip


def test_every_supported_code_language_has_a_sample() -> None:
    covered = {language_for_path(name) for name in EXPECTED}
    assert covered == SUPPORTED_LANGUAGES - {"markdown"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    _, result = analyze_sample(name)
    chunk_kinds, symbol_kinds, imports = EXPECTED[name]
    chunks = {(c.kind, c.symbol) for c in result.chunks}
    assert chunk_kinds <= chunks, f"missing chunks: {chunk_kinds - chunks}"
    symbols = {(s.kind, s.qualified_name) for s in result.symbols}
    # every chunked definition is also a symbol, and nested ones are symbols too
    assert (chunk_kinds - {("block", "")}) | symbol_kinds <= symbols, symbols
    assert result.imports == imports
    assert result.parse_errors == 0
    assert result.note == ""
    for symbol in result.symbols:
        assert symbol.name == symbol.qualified_name.rpartition(".")[2]
        assert symbol.signature and symbol.name in symbol.signature, symbol


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_split_small(name: str) -> None:
    """With tiny limits every sample still satisfies the rules (splits, headers, windows)."""
    _, result = analyze_sample(name, max_lines=3, max_chars=80)
    assert len(result.chunks) > len(analyze_sample(name)[1].chunks)


def test_python_details() -> None:
    _, result = analyze_sample("sample.py")
    by_symbol = {c.symbol: c for c in result.chunks}
    session = by_symbol["Session"]
    # the comment and decorator above the class belong to its chunk
    assert session.text.startswith("# A comment about Session.\n@dataclass\nclass Session:")
    symbols = {s.qualified_name: s for s in result.symbols}
    assert symbols["Session"].signature == "class Session:"  # the class line, not "@dataclass"
    assert symbols["Session"].doc == "A session."
    assert symbols["Session.name"].signature == "def name(self) -> str:"
    assert symbols["Session.request.helper"].doc == "inner comment"
    assert symbols["outer"].signature == "def outer(a,"
    assert symbols["Session"].start_line == 11  # the decorator line
    assert symbols["Session"].end_line == 25


def test_docs_from_comments() -> None:
    docs = {
        "sample.go": ("Server.Start", "Start starts the server."),
        "sample.rs": ("Storable", "Things that can be stored."),
        "sample.java": ("UserService", "A user service."),
        "sample.cs": ("Shop.Orders.Order", "An order."),
        "sample.rb": ("Billing.Invoice.to_s", "Formats the invoice."),
        "sample.lua": ("M.add", "Adds two numbers."),
        "sample.js": ("greet", "Greets someone."),
    }
    for name, (qualified, doc) in docs.items():
        _, result = analyze_sample(name)
        symbols = {s.qualified_name: s for s in result.symbols}
        assert symbols[qualified].doc == doc, name


def test_go_method_chunk_includes_doc_comment() -> None:
    _, result = analyze_sample("sample.go")
    start = next(c for c in result.chunks if c.symbol == "Server.Start")
    assert start.text.splitlines()[0] == "// Start starts the server."
    assert start.kind == "method"


def test_typescript_overloads_are_one_definition_with_their_implementation() -> None:
    source = (
        "/** Combines values. */\n"
        "export function combine(a: number): number;\n"
        "export function combine(a: string): string;\n"
        "export function combine(a: any): any {\n  return a;\n}\n\n"
        "function other(): void {}\n"
    )
    result = analyze("a.ts", source, "typescript")
    assert [(c.symbol, c.start_line, c.end_line) for c in result.chunks] == [
        ("combine", 1, 6),
        ("other", 8, 8),
    ]
    combine = result.symbols[0]
    assert (combine.name, combine.start_line, combine.doc) == ("combine", 2, "Combines values.")
    assert [s.name for s in result.symbols] == ["combine", "other"]


def test_oversized_class_splits_along_methods() -> None:
    methods = "\n\n".join(
        f"    def m{i}(self, x):\n"
        + "".join(f"        x = x + {j}\n" for j in range(20))
        + "        return x"
        for i in range(10)
    )
    text = f'class Big:\n    """Big class."""\n\n    limit = 3\n\n{methods}\n\nprint(Big)\n'
    result = analyze("big.py", text, "python")
    check_chunks(text, result)
    kinds = [(c.kind, c.symbol) for c in result.chunks]
    assert kinds[0] == ("class", "Big")  # the header: signature, docstring, fields
    assert result.chunks[0].text.endswith("limit = 3")
    assert [k for k in kinds if k[0] == "method"] == [("method", f"Big.m{i}") for i in range(10)]
    assert kinds[-1] == ("block", "")


def test_oversized_function_is_windowed_under_the_limits() -> None:
    body = "".join(f"    total += compute({i}, value)\n" for i in range(500))
    text = f"def huge(value):\n    total = 0\n{body}    return total\n"
    result = analyze("huge.py", text, "python")
    check_chunks(text, result)
    assert len(result.chunks) >= 5
    assert {(c.kind, c.symbol) for c in result.chunks} == {("function", "huge")}
    assert [s.qualified_name for s in result.symbols] == ["huge"]


def test_block_between_children_keeps_parent_symbol() -> None:
    filler = "".join(f"    field_{i} = {i}\n" for i in range(30))
    text = (
        "class Holder:\n"
        + filler
        + "    def first(self):\n        return 1\n"
        + filler
        + "    def second(self):\n        return 2\n"
    )
    result = analyze("holder.py", text, "python", max_chunk_lines=40)
    check_chunks(text, result, max_lines=40)
    kinds = [(c.kind, c.symbol) for c in result.chunks]
    assert kinds == [
        ("class", "Holder"),
        ("method", "Holder.first"),
        ("block", "Holder"),
        ("method", "Holder.second"),
    ]


def test_top_level_code_merges_into_blocks_up_to_the_limits() -> None:
    text = "\n".join(f"value_{i} = {i}" for i in range(50)) + "\n"
    result = analyze("flat.py", text, "python", max_chunk_lines=20)
    check_chunks(text, result, max_lines=20)
    assert [(c.start_line, c.end_line) for c in result.chunks] == [(1, 20), (21, 40), (41, 50)]
    assert {c.kind for c in result.chunks} == {"block"}


def test_syntax_errors_still_chunked() -> None:
    text = (
        "import os\n\ndef broken(:\n    return 1\n\nclass Fine:\n    def ok(self):\n        pass\n"
    )
    result = analyze("broken.py", text, "python")
    check_chunks(text, result)
    assert result.parse_errors >= 1
    assert ("method", "Fine.ok") in {(s.kind, s.qualified_name) for s in result.symbols}
    assert result.imports == ["os"]


def test_markdown_sections_by_heading() -> None:
    _, result = analyze_sample("sample.md")
    assert [(c.kind, c.symbol, c.start_line) for c in result.chunks] == [
        ("section", "", 1),
        ("section", "Enclave", 3),
        ("section", "Enclave > Install", 7),
        ("section", "Enclave > Install > From source", 11),
        ("section", "Enclave > Usage", 18),
        ("section", "License", 23),
    ]
    # the "# not a heading" line inside the code block stays in its section
    assert "# not a heading" in result.chunks[3].text
    symbols = {s.qualified_name: s for s in result.symbols}
    assert symbols["Enclave"].end_line == 21
    assert symbols["Enclave > Usage"].signature == "Usage"


def test_rst_sections_by_heading() -> None:
    _, result = analyze_sample("sample.rst")
    assert [(c.symbol, c.start_line) for c in result.chunks] == [
        ("", 1),
        ("Enclave", 3),
        ("Enclave > Install", 9),
        ("Enclave > Install > From source", 14),
        ("Enclave > Usage", 21),
        ("License", 28),
    ]
    assert {c.kind for c in result.chunks} == {"section"}
    assert "----" in result.chunks[4].text  # a transition is not a heading


def test_unknown_language_windows() -> None:
    text = "\n".join(f"key_{i} = {i}" for i in range(150)) + "\n"
    result = analyze("conf/settings.toml", text, "text")
    check_chunks(text, result)
    assert {c.kind for c in result.chunks} == {"window"}
    assert max(c.end_line - c.start_line + 1 for c in result.chunks) <= WINDOW_LINES
    assert result.note == "no grammar for .toml: line windows"
    assert result.symbols == [] and result.imports == []


def test_empty_and_blank_files() -> None:
    for text in ("", "\n\n   \n"):
        for language in ("python", "text", "markdown", "rst"):
            result = analyze("empty", text, language)
            assert result.chunks == []


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_chunk_lines"):
        analyze("a.py", "x = 1\n", "python", max_chunk_lines=0)


# ---- property test: generated Python sources -------------------------------------------------

_names = st.sampled_from(["alpha", "beta", "gamma", "run", "load", "save", "_private", "Thing"])
_statements = st.sampled_from(
    [
        "x = 1",
        "y = compute(x, 'a string')",
        "if x:\n    y = 2\nelse:\n    y = 3",
        "for i in range(3):\n    print(i)",
        "# a comment",
        "items = [\n    1,\n    2,\n]",
        '"""A loose string."""',
        "",
        "    ",
        "return x",
    ]
)
_broken = st.sampled_from(["def (:", "class :", "x = (1,", ")))", "if x", "@", "    y ="])


def _indent(block: str, depth: int) -> str:
    pad = "    " * depth
    return "\n".join(pad + line if line.strip() else line for line in block.split("\n"))


@st.composite
def _function(draw: st.DrawFn, depth: int = 0) -> str:
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append("# explains the function")
    parts.extend(draw(st.lists(st.sampled_from(["@decorator", "@cache(size=2)"]), max_size=2)))
    parts.append(f"def {draw(_names)}(a, b=2):")
    body: list[str] = []
    if draw(st.booleans()):
        body.append('"""Docstring line.\n\nMore."""')
    body.extend(draw(st.lists(_statements, min_size=1, max_size=8)))
    if depth < 2 and draw(st.booleans()):
        body.append(draw(_function(depth + 1)))
    body.append("return a")
    parts.append(_indent("\n".join(body), 1))
    return "\n".join(parts)


@st.composite
def _class(draw: st.DrawFn) -> str:
    header = [f"class {draw(_names)}(Base):"]
    members = ['"""A class."""', "attribute = 1"]
    members.extend(draw(st.lists(_function(depth=1), min_size=0, max_size=4)))
    return "\n".join(header) + "\n" + _indent("\n\n".join(members), 1)


_piece = st.one_of(_function(), _class(), _statements, _broken, st.just(""), st.just("\n\n"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(_piece, max_size=12),
    max_lines=st.sampled_from([2, 5, 12, 120]),
    max_chars=st.sampled_from([40, 300, 6000]),
    trailing_newline=st.booleans(),
)
def test_generated_python_obeys_chunk_rules(
    pieces: list[str], max_lines: int, max_chars: int, trailing_newline: bool
) -> None:
    text = "\n".join(pieces) + ("\n" if trailing_newline else "")
    result = analyze("gen.py", text, "python", max_chunk_lines=max_lines, max_chunk_chars=max_chars)
    check_chunks(text, result, max_lines=max_lines, max_chars=max_chars)
    for chunk in result.chunks:
        assert chunk.kind in {"function", "method", "class", "block"}


def test_unknown_language_name_gets_windows_and_a_note() -> None:
    result = analyze("src/report.cob", "IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\n", "cobol")
    assert result.note == "no grammar for 'cobol': line windows"
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [("window", 1, 2)]


def test_threads_share_nothing_mutable() -> None:
    """The LSP server may analyze from several threads: results match a serial run."""
    names = sorted(EXPECTED)
    texts = {name: (DATA / f"{name}.txt").read_text("utf-8") for name in names}

    def run(name: str) -> FileAnalysis:
        return analyze(name, texts[name], language_for_path(name))

    serial = [run(name) for name in names * 3]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(run, names * 3))
    assert parallel == serial
