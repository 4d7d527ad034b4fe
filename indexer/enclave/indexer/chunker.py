"""Chunk a file and find its symbols and imports (indexing steps 3 and 4).

``analyze`` is a pure function of (path, text, language) so it can run in a process pool; the
only module-level state is the lazily built parsers and compiled queries.

A chunk is a definition (function, method, class, ...) with its qualified name, or a run of
other code ("block"), a document section, or a plain line window. Chunks never overlap, cover
every non-blank line exactly once, start and end on non-blank lines, and their text is exactly
their 1-based inclusive line range of the file. Oversized definitions split along their child
definitions (the header keeps the definition's kind and name, the lines between children become
"block" chunks named after the parent); what is still too large is cut into line windows.

Memory stays proportional to the text, whatever it holds: signatures, docs and names are clipped
(SIGNATURE_CHARS, DOC_CHARS, NAME_CHARS), so a definition-dense long line is not copied once per
symbol; and a text with a line over ``enclave.indexer.excludes.LONG_LINE_CHARS`` (minified; the
indexer skips such files before they get here) is not parsed: it becomes plain windows whose
over-long lines are cut to the chunk size, the one case where a chunk's text is not exactly its
lines. No chunk is then longer than max(max_chunk_chars, LONG_LINE_CHARS) characters.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from pathlib import PurePosixPath

from tree_sitter import Node, QueryCursor

from enclave.indexer.excludes import LONG_LINE_CHARS
from enclave.indexer.headings import Heading, markdown_headings, rst_headings
from enclave.indexer.langspec import LanguageSpec, error_query_for, query_for, spec_for
from enclave.indexer.languages import parser_for
from enclave.indexer.types import Chunk, FileAnalysis, SymbolDef

log = logging.getLogger(__name__)

WINDOW_LINES = 60  # size of the plain line windows used for files without a grammar
SIGNATURE_CHARS = 240  # a symbol's signature (its first line) is clipped to this
DOC_CHARS = 240  # and its doc line
NAME_CHARS = 200  # names, scopes and imports
# Bump when what a file becomes changes (chunk boundaries, names, search text): an index made by
# another version re-chunks every file on its next update (vectors of unchanged text are kept).
CHUNKER_VERSION = 2
QUALIFIED_CHARS = 400  # qualified names and heading paths
_ANONYMOUS = "<anonymous>"
_IMPORT_TRIM = "\"'`<> \t"
_XML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


class _File:
    """The file's lines, with O(1) character counts for any line range (0-based rows)."""

    __slots__ = ("cum", "lines")

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.cum = [0, *accumulate(map(len, self.lines))]  # characters before each row, no "\n"

    def blank(self, row: int) -> bool:
        line = self.lines[row]
        return not line or line.isspace()

    def chars(self, first: int, last: int) -> int:
        """Length of the text of rows first..last joined by newlines."""
        return self.cum[last + 1] - self.cum[first] + last - first

    def last_fitting(self, first: int, max_chars: int) -> int:
        """The last row such that rows first..row hold at most ``max_chars`` characters."""
        cum = self.cum
        limit = cum[first] + first + max_chars + 1
        return bisect_right(range(len(cum)), limit, key=lambda i: cum[i] + i) - 2


class _Emitter:
    """Appends chunks for line ranges, trimming blank edges and respecting the size limits."""

    def __init__(
        self, path: str, language: str, file: _File, max_lines: int, max_chars: int
    ) -> None:
        self.path = path
        self.language = language
        self.file = file
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.chunks: list[Chunk] = []

    def fits(self, first: int, last: int) -> bool:
        return last - first < self.max_lines and self.file.chars(first, last) <= self.max_chars

    def emit(self, first: int, last: int, kind: str, symbol: str) -> None:
        blank = self.file.blank
        while first <= last and blank(first):
            first += 1
        while last >= first and blank(last):
            last -= 1
        if first > last:
            return
        text = "\n".join(self.file.lines[first : last + 1])
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        self.chunks.append(
            Chunk(self.path, self.language, kind, symbol, first + 1, last + 1, text, digest)
        )

    def window(
        self,
        first: int,
        last: int,
        kind: str,
        symbol: str,
        size: int = 0,
        cuts: Callable[[], list[int]] | None = None,
    ) -> None:
        """Cover rows first..last with chunks of at most ``size`` lines (default: the limit) and
        ``max_chars`` characters, cutting preferably where a statement starts (``cuts()``: sorted
        rows, asked for only when a cut is needed) or at a blank line in the window's second half."""
        size = min(size or self.max_lines, self.max_lines)
        file = self.file
        blank = file.blank
        while last >= first and blank(last):
            last -= 1
        start = first
        while start <= last:
            while start <= last and blank(start):
                start += 1
            if start > last:
                return
            end = min(last, start + size - 1)
            by_chars = file.last_fitting(start, self.max_chars)
            if by_chars < end:
                end = max(start, by_chars)
            if end < last:
                end = self._cut(start, end, cuts() if cuts is not None else [])
            self.emit(start, end, kind, symbol)
            start = end + 1

    def _cut(self, start: int, end: int, cuts: list[int]) -> int:
        """Where to end a window that may reach ``end``: before a statement or at a blank line
        in its second half, else at ``end``."""
        floor = start + (end - start) // 2
        i = bisect_right(cuts, end + 1) - 1
        if i >= 0 and cuts[i] > floor:
            return cuts[i] - 1
        for row in range(end + 1, floor, -1):
            if self.file.blank(row):
                return row - 1
        return end


class _Def:
    __slots__ = (
        "children", "doc", "end", "first", "kind", "name", "node", "qualified", "sig_row", "start"
    )  # fmt: skip

    def __init__(self, kind: str, name: str, node: Node, first: int, end: int) -> None:
        self.kind = kind
        self.name = name
        self.qualified = name
        self.node = node  # the captured definition node (inside any wrapper)
        self.first = first  # first row of the definition, wrappers (decorators, export) included
        self.start = first  # first row of its chunk: comments/attributes right above included
        self.end = end
        self.doc = ""
        self.sig_row = first  # the line that names it (its signature line)
        self.children: list[_Def] = []


def analyze(
    path: str,
    text: str,
    language: str,
    *,
    max_chunk_lines: int = 120,
    max_chunk_chars: int = 6000,
) -> FileAnalysis:
    """Chunks, symbols and imports of one file. ``text`` uses "\\n" newlines; ``path`` is the
    repository-relative path stored in the results."""
    if max_chunk_lines < 1 or max_chunk_chars < 1:
        raise ValueError(
            f"chunk limits must be positive (got max_chunk_lines={max_chunk_lines}, "
            f"max_chunk_chars={max_chunk_chars}); fix the [index] chunk settings"
        )
    file = _File(text)
    longest = max(map(len, file.lines))
    if longest > LONG_LINE_CHARS:
        return _long_lines(path, language, file, longest, max_chunk_lines, max_chunk_chars)
    em = _Emitter(path, language, file, max_chunk_lines, max_chunk_chars)
    if language == "rst":
        symbols = _sections(em, rst_headings(file.lines))
        return FileAnalysis(em.chunks, symbols, [])

    parser = parser_for(language)
    query = query_for(language) if parser is not None else None
    if parser is None or query is None:
        return _windows(em, _no_grammar_note(path, language))
    src = text.encode("utf-8", "surrogatepass")
    try:
        tree = parser.parse(src)
    except Exception as exc:  # tree-sitter is error tolerant; this is a last resort
        log.warning("parsing %s failed (%s); using line windows", path, exc)
        return _windows(em, f"{language} parse failed ({exc}): line windows")
    root = tree.root_node
    errors = _count_errors(root, language) if root.has_error else 0
    if language == "markdown":
        symbols = _sections(em, markdown_headings(root, query, file.lines))
        return FileAnalysis(em.chunks, symbols, [], parse_errors=errors)

    spec = spec_for(language)
    top, defs, imports = _collect(root, src, file, spec, QueryCursor(query))
    _emit_region(em, 0, len(file.lines) - 1, top, "block", "", lambda: _rows(root))
    symbols = [
        SymbolDef(
            name=d.name.replace("::", ".").replace(":", ".").rpartition(".")[2],
            qualified_name=d.qualified,
            kind=d.kind,
            path=path,
            start_line=d.first + 1,
            end_line=d.end + 1,
            signature=_clip(file.lines[d.sig_row].strip(), SIGNATURE_CHARS),
            doc=_clip(d.doc, DOC_CHARS),
        )
        for d in defs
    ]
    return FileAnalysis(em.chunks, symbols, imports, parse_errors=errors)


def _collect(
    root: Node, src: bytes, file: _File, spec: LanguageSpec, cursor: QueryCursor
) -> tuple[list[_Def], list[_Def], list[str]]:
    """Run the language query once: definitions nested by range (top level, all) and imports."""
    found, imports = _matches(root, src, spec, cursor)
    top, defs = _nest(found, src, file, spec)
    return top, defs, imports


def _matches(
    root: Node, src: bytes, spec: LanguageSpec, cursor: QueryCursor
) -> tuple[list[tuple[int, int, _Def, str]], list[str]]:
    """The query's definitions (start byte, minus end byte, definition, explicit scope) in
    document order, outermost first, and the imported names."""
    found: list[tuple[int, int, _Def, str]] = []
    imports: list[str] = []
    seen: set[tuple[int, int]] = set()
    wrappers = spec.wrappers
    for _, captures in cursor.matches(root):
        kind = ""
        node: Node | None = None
        for capture, nodes in captures.items():
            if capture.startswith("definition."):
                kind, node = capture[11:], nodes[0]
            elif capture == "import":
                for n in nodes:
                    name = _text(src, n, NAME_CHARS).strip(_IMPORT_TRIM)
                    if name and name not in imports:
                        imports.append(name)
        if node is None:
            continue
        outer = node
        parent = node.parent
        while parent is not None and parent.type in wrappers:
            outer, parent = parent, parent.parent
        key = (outer.start_byte, outer.end_byte)
        if key in seen:
            continue
        seen.add(key)
        names = captures.get("name")
        name = _text(src, names[0], NAME_CHARS) if names else _ANONYMOUS
        scopes = captures.get("scope")
        scope = _text(src, scopes[0], NAME_CHARS) if scopes else ""
        end = outer.end_point
        d = _Def(
            kind, name, node, outer.start_point.row, end.row - (end.column == 0 and end.row > 0)
        )
        d.sig_row = names[0].start_point.row if names else node.start_point.row
        found.append((outer.start_byte, -outer.end_byte, d, scope))
    found.sort(key=lambda item: (item[0], item[1]))
    return found, imports


def _nest(
    found: list[tuple[int, int, _Def, str]], src: bytes, file: _File, spec: LanguageSpec
) -> tuple[list[_Def], list[_Def]]:
    """Nest the definitions by range: qualified names, methods, docs and overloads from their
    parents and siblings; (top level, all)."""
    top: list[_Def] = []
    stack: list[tuple[_Def, int]] = []
    defs: list[_Def] = []
    lines = file.lines
    for start_byte, neg_end, d, scope in found:
        while stack and stack[-1][1] <= start_byte:
            stack.pop()
        parent_def = stack[-1][0] if stack else None
        siblings = parent_def.children if parent_def is not None else top
        local = d.name.replace("::", ".").replace(":", ".")
        if scope:
            d.qualified = f"{scope}.{local}"
        elif parent_def is not None:
            d.qualified = f"{parent_def.qualified}.{local}"
        else:
            d.qualified = local
        d.qualified = _clip(d.qualified, QUALIFIED_CHARS)
        if (
            d.kind == "function"
            and parent_def is not None
            and parent_def.kind in spec.method_containers
        ):
            d.kind = "method"
        bound = (
            siblings[-1].end + 1
            if siblings
            else (parent_def.node.start_point.row + 1 if parent_def is not None else 0)
        )
        doc_rows = _attach_above(d, lines, bound, spec)
        if spec.docstrings:
            d.doc = _docstring(d.node, src)
        if not d.doc and doc_rows:
            d.doc = _comment_doc(lines, doc_rows)
        _absorb_overloads(d, siblings, defs)
        siblings.append(d)
        defs.append(d)
        stack.append((d, -neg_end))
    return top, defs


def _absorb_overloads(d: _Def, siblings: list[_Def], defs: list[_Def]) -> None:
    """TypeScript overload signatures right above their implementation (same name) become part
    of its definition: one chunk and one symbol, not a one-line chunk per signature."""
    if d.node.type != "function_declaration":
        return
    while (
        siblings
        and siblings[-1].node.type == "function_signature"
        and siblings[-1].name == d.name
        and siblings[-1].end < d.first
    ):
        overload = siblings.pop()
        defs.remove(overload)
        d.first, d.start = overload.first, min(d.start, overload.start)
        d.doc = d.doc or overload.doc


def _attach_above(d: _Def, lines: list[str], bound: int, spec: LanguageSpec) -> list[int]:
    """Extend ``d.start`` over the comment and attribute lines right above the definition (no
    blank line between, not above ``bound``); returns the comment rows, top first."""
    row = d.first
    comments: list[int] = []
    comment_prefixes, attribute_prefixes = spec.comment_prefixes, spec.attribute_prefixes
    while row - 1 >= bound:
        line = lines[row - 1].lstrip()
        if not line:
            break
        if attribute_prefixes and line.startswith(attribute_prefixes):
            pass
        elif comment_prefixes and line.startswith(comment_prefixes):
            comments.append(row - 1)
        else:
            break
        row -= 1
    d.start = row
    comments.reverse()
    return comments


def _comment_doc(lines: list[str], rows: list[int]) -> str:
    for row in rows:
        line = lines[row].strip().lstrip("/*!#-[").strip()
        if line.endswith("*/"):
            line = line[:-2].rstrip()
        line = _XML_TAG.sub("", line).strip()  # C# <summary> doc comments
        if line:
            return line
    return ""


def _docstring(node: Node, src: bytes) -> str:
    """First non-empty line of a Python docstring ("" if the body does not start with one)."""
    body = node.child_by_field_name("body")
    if body is None or not body.named_child_count:
        return ""
    first = body.named_child(0)
    if first is None or first.type != "expression_statement" or not first.named_child_count:
        return ""
    string = first.named_child(0)
    if string is None or string.type != "string":
        return ""
    raw = _text(src, string).lstrip("rRbBuUfF").strip("\"'")
    for line in raw.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _emit_region(
    em: _Emitter,
    first: int,
    last: int,
    children: list[_Def],
    header_kind: str,
    symbol: str,
    cuts: Callable[[], list[int]],
) -> None:
    """Chunk rows first..last: each child definition on its own, the lines before the first
    child as ``header_kind``, other lines as "block" (all named ``symbol``)."""
    cursor = first
    kind = header_kind
    cuts = functools.cache(cuts)
    for child in children:
        if child.end < cursor:  # shares its only line(s) with the previous chunk
            continue
        start = max(child.start, cursor)
        if start > cursor:
            em.window(cursor, start - 1, kind, symbol, cuts=cuts)
        kind = "block"
        if start == child.start:
            _emit_def(em, child)
        else:
            em.window(start, child.end, child.kind, child.qualified)
        cursor = child.end + 1
    if cursor <= last:
        em.window(cursor, last, kind, symbol, cuts=cuts)


def _emit_def(em: _Emitter, d: _Def) -> None:
    if em.fits(d.start, d.end):
        em.emit(d.start, d.end, d.kind, d.qualified)
    elif not d.children:
        em.window(d.start, d.end, d.kind, d.qualified, cuts=functools.cache(lambda: _rows(d.node)))
    else:
        _emit_region(em, d.start, d.end, d.children, d.kind, d.qualified, lambda: _rows(d.node))


def _rows(node: Node) -> list[int]:
    """Rows where the statements of a node's body start: preferred places to cut a window."""
    body = node.child_by_field_name("body") or node
    if body.named_child_count == 1:
        inner = body.named_child(0)
        if inner is not None and inner.named_child_count > 1:
            body = inner
    rows = sorted({child.start_point.row for child in body.named_children})
    return rows


def _sections(em: _Emitter, headings: list[Heading]) -> list[SymbolDef]:
    """One "section" chunk per heading (named by its heading path), symbols for headings."""
    file = em.file
    last_row = len(file.lines) - 1
    if headings:
        em.window(0, headings[0].row - 1, "section", "")
    path: list[Heading] = []
    symbols: list[SymbolDef] = []
    for i, heading in enumerate(headings):
        while path and path[-1].level >= heading.level:
            path.pop()
        path.append(heading)
        name = _clip(" > ".join(_clip(h.title, NAME_CHARS) for h in path), QUALIFIED_CHARS)
        end = headings[i + 1].row - 1 if i + 1 < len(headings) else last_row
        em.window(heading.row, end, "section", name)
        scope_end = last_row
        for later in headings[i + 1 :]:
            if later.level <= heading.level:
                scope_end = later.row - 1
                break
        while scope_end > heading.row and file.blank(scope_end):
            scope_end -= 1
        symbols.append(
            SymbolDef(
                name=_clip(heading.title, NAME_CHARS),
                qualified_name=name,
                kind="section",
                path=em.path,
                start_line=heading.row + 1,
                end_line=scope_end + 1,
                signature=_clip(file.lines[heading.title_row].strip(), SIGNATURE_CHARS),
                doc="",
            )
        )
    if not headings:
        em.window(0, last_row, "section", "")
    return symbols


def _windows(em: _Emitter, note: str) -> FileAnalysis:
    em.window(0, len(em.file.lines) - 1, "window", "", size=WINDOW_LINES)
    return FileAnalysis(em.chunks, [], [], note=note)


def _long_lines(
    path: str, language: str, file: _File, longest: int, max_lines: int, max_chars: int
) -> FileAnalysis:
    """A text with a line over LONG_LINE_CHARS (minified): not parsed (no symbols, whose
    signatures would each copy the line), plain windows of its lines, each cut to the chunk size."""
    cut = min(LONG_LINE_CHARS, max_chars)
    row = next(i for i, line in enumerate(file.lines) if len(line) == longest)
    clipped = _File("\n".join(line[:cut] for line in file.lines))
    em = _Emitter(path, language, clipped, max_lines, max_chars)
    note = (
        f"line {row + 1} has {longest:,} characters (over {LONG_LINE_CHARS:,}): minified or"
        f" generated; plain windows, lines cut at {cut:,} characters"
    )
    return _windows(em, note)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _no_grammar_note(path: str, language: str) -> str:
    if language != "text":
        return f"no grammar for {language!r}: line windows"
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix
    return f"no grammar for {suffix or name}: line windows"


def _count_errors(root: Node, language: str) -> int:
    """Number of ERROR and MISSING nodes (at least 1: the caller saw ``root.has_error``)."""
    query = error_query_for(language)
    if query is None:
        return 1
    captures = QueryCursor(query).captures(root)
    return sum(len(nodes) for nodes in captures.values()) or 1


def _text(src: bytes, node: Node, limit: int = 0) -> str:
    """The node's source text; with ``limit``, at most that many characters (clipped)."""
    if not limit:
        return src[node.start_byte : node.end_byte].decode("utf-8", "replace")
    end = min(node.end_byte, node.start_byte + 4 * limit + 4)  # UTF-8: at most 4 bytes a char
    return _clip(src[node.start_byte : end].decode("utf-8", "replace"), limit)
