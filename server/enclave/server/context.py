"""Completion context: what a completion at one position sends to the model, and why.

One code path serves the language server and `enclave context`: :func:`prepare_completion` cuts
the prefix and suffix to their token budgets, decides single- vs multi-line from the syntax at the
cursor, and gathers repository context pieces (definitions of names used near the cursor and
imported by the file, resolved through the symbols table; recently edited buffers; similar
chunks), each labelled with its path and reason and fitted to ``completion.context_tokens``.

Positions are LSP's: 0-based ``line`` and a 0-based ``character`` counted in UTF-16 code units.
The JSON report (:func:`report_of`) uses 1-based inclusive lines like every CLI output.
Nothing here calls the model; index calls are synchronous (run this off the event loop).
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from enclave.config import Config
from enclave.indexer.errors import IndexProblem
from enclave.indexer.languages import language_for_path, parser_for
from enclave.indexer.redact import redact
from enclave.indexer.tokens import split_identifier
from enclave.indexer.types import SearchHit, SymbolDef
from enclave.server.bindings import (
    Binding,
    Repository,
    bindings,
    member_uses,
    names_in,
    receiver_types,
    reexported,
    same_package,
)
from enclave.server.model.budget import (
    SHORTENED,
    Dropped,
    Shrink,
    TokenEstimator,
    added_tokens,
    context_tokens,
    fit_cursor_text,
    fit_pieces,
    keep_head,
    overlaps,
)
from enclave.server.trust import Boundary, Material
from enclave.server.types import ContextPiece, Signature

if TYPE_CHECKING:
    from enclave.indexer.api import Index

INDENT_LANGUAGES = {"python"}
_KEYWORD_TEXT = """
and as assert async await break case catch class const continue def default del do elif else
enum except export extends false final finally fn for from func function go if impl import
in interface is lambda let match mod new nil none not null or package pass pub raise return
self static struct super switch this throw true try type use var void while with yield print
len str int float bool dict list set tuple range object string number boolean any int64
int32 err
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BLOCK_OPENERS = (":", "{", "=>", "do", "then")
_LIST_OPENERS = ("(", "[")

NEAR_BEFORE = 40  # lines above the cursor whose names are looked up
NEAR_AFTER = 10
TYPED_BEFORE = 120  # lines above the cursor read for what class a local name holds
MAX_DEFINITIONS = 6
LINE_TOKENS = 12  # a guess of tokens per line, to fetch only definitions that can fit
MAX_SIMILAR = 4
SIMILAR_HITS = 10  # similar code searched for: MAX_SIMILAR shown, all of it names what it calls
MAX_RECENT = 3
RECENT_WINDOW = 8  # lines either side of a recent edit
RECENT_REASON = "recently edited (open buffer, unsaved text included)"
DEFINITION_SHARE = 0.35  # of the context budget, for whole definitions (the rest: signatures)
CERTAIN = 4.0  # the score of a definition an import binds: these lead the pieces
DEFINITION_REASON = "definition of"
OUTLINE_REASON = "signatures of"  # a piece of a file's signature lines only, bodies left out
SIGNATURE_LINES = 3
OVERLOAD_LINES = 16  # a signature with TypeScript overloads may take this many lines
OVERLOAD_SCAN = 200  # lines read for them (the comments between overloads are left out)
MODULE_SIGNATURES = 24  # signatures shown of one imported module or package
SAID_SIGNATURES = 8  # more of them, for names the words near the cursor speak of
NEAR_FILE = 1.0  # and for the names of a file defining what the lines near the cursor use
WORDS_LINES = 10  # lines above the cursor (and its own) whose words, comments too, are read
MAX_NAMES_BYTES = 1 << 20  # of a package file read to learn which names it uses
POPULAR_CHUNKS = 60  # chunks read to learn which members of a module the repository calls
POPULAR_SECONDS = 300.0  # how long that is kept (it orders signatures only: staleness is cheap)
POPULAR_KEPT = 256  # module names kept
# The start of a TypeScript function or method signature, to its name: overloads repeat it.
_OVERLOAD = re.compile(
    r"\s*(?:(?:export|default|declare|async|public|private|protected|static)\s+)*(?:function\s*\*?\s*)?[\w$]+\s*(?=[(<])"
)
_BARE = re.compile(r"(?<![\w.$])([A-Za-z_$][\w$]*)")


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecentEdit:
    """An open buffer edited recently (its unsaved text) and the 0-based line last edited."""

    path: str
    text: str
    line: int


@dataclass(slots=True)
class PreparedCompletion:
    """Everything a completion sends to the model, with the reasons."""

    path: str
    language: str
    line: int  # 0-based
    character: int  # UTF-16 code units, as received
    prefix: str
    suffix: str
    multiline: bool
    multiline_reason: str
    pieces: list[ContextPiece] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    budget_tokens: int = 0
    notes: list[str] = field(default_factory=list)
    estimator: TokenEstimator = field(default_factory=TokenEstimator)


def relative_path(index: Index | None, path: str | Path) -> str:
    """A repository-relative POSIX path; absolute paths are made relative to the index root."""
    candidate = Path(path)
    if candidate.is_absolute() and index is not None:
        try:
            return candidate.resolve().relative_to(Path(index.root).resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{path} is not inside the repository {index.root}") from None
    return candidate.as_posix() if isinstance(path, Path) else path


def language_of(path: str) -> str:
    return language_for_path(path)


def utf16_to_index(line_text: str, character: int) -> int:
    """Convert a UTF-16 column to an index into ``line_text`` (clamped to the line)."""
    units = 0
    for index, char in enumerate(line_text):
        if units >= character:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line_text)


def split_at(text: str, line: int, character: int) -> tuple[str, str]:
    """The document text before and after an LSP position (clamped to the document)."""
    lines = text.splitlines(keepends=True)
    if line >= len(lines):
        return text, ""
    offset = sum(len(part) for part in lines[:line])
    body = lines[line].rstrip("\r\n")
    offset += utf16_to_index(body, character)
    return text[:offset], text[offset:]


def _syntax_at_cursor(prefix: str, suffix: str, language: str) -> tuple[str, str]:
    """What tree-sitter says of the cursor: ("string" or "comment" when it is inside one, else
    ""; the innermost bracket still open before it, "(", "[" or "{", else "").

    Parses only the prefix/suffix window (a few KB: about a millisecond), not the whole file.
    Unfinished code parses into error nodes, but its brackets are still tokens of their own
    (never the text of a string or a comment), so their balance tells what is open.
    """
    parser = parser_for(language)
    if parser is None:
        return "", ""
    head = prefix.encode("utf-8")
    tree = parser.parse(head + suffix.encode("utf-8"))
    cursor = len(head)
    literal = ""
    node = tree.root_node.descendant_for_byte_range(max(cursor - 1, 0), cursor)
    while node is not None:
        kind = node.type
        if "comment" in kind and node.start_byte < cursor <= node.end_byte:
            literal = "comment"
            break
        if "string" in kind and node.start_byte < cursor < node.end_byte:
            literal = "string"
            break
        node = node.parent
    return literal, "" if literal else _open_bracket(tree.root_node, cursor)


_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _open_bracket(root: Any, cursor: int) -> str:
    """The innermost bracket token before byte ``cursor`` that no token closes before it."""
    stack: list[str] = []
    pending = [root]
    while pending:
        node = pending.pop()
        if node.start_byte >= cursor:
            continue
        if node.child_count:
            if node.end_byte <= cursor and not node.has_error:
                continue  # complete code before the cursor: its brackets close what they open
            pending.extend(reversed(node.children))  # (in order: the last pushed comes first)
            continue
        kind = node.type
        if kind in ("(", "[", "{") and node.end_byte <= cursor:
            stack.append(kind)
        elif kind in _CLOSERS and node.end_byte <= cursor and stack[-1:] == [_CLOSERS[kind]]:
            stack.pop()
    return stack[-1] if stack else ""


def decide_multiline(prefix: str, suffix: str, language: str) -> tuple[bool, str]:
    """Single- or multi-line completion, from the syntax around the cursor (with the reason)."""
    literal, bracket = _syntax_at_cursor(prefix, suffix, language)
    if literal:
        return False, f"the cursor is inside a {literal}"
    if bracket in _LIST_OPENERS:
        return False, "inside an open argument list or list: its next item, on one line"
    line_before = prefix.rsplit("\n", 1)[-1]
    line_after = suffix.split("\n", 1)[0]
    if line_after.strip() and line_after.strip() not in (")", "]", "}", ");", "})", "];", "),"):
        return False, "text follows the cursor on this line"
    if line_before.strip():
        stripped = line_before.rstrip()
        if stripped.endswith(_LIST_OPENERS):
            return False, "an argument list or a list opens here: the rest of it, on this line"
        if stripped.endswith(_BLOCK_OPENERS):
            return True, "the line opens a block"
        return False, "completing the rest of a line"
    # An empty line: multi-line when it opens a block body or starts a new top-level statement.
    previous = [part for part in prefix.split("\n")[:-1] if part.strip()]
    last = previous[-1].rstrip() if previous else ""
    if last.endswith((*_BLOCK_OPENERS, *_LIST_OPENERS)) or (
        language in INDENT_LANGUAGES and last.endswith(":")
    ):
        return True, "empty line after a block opener"
    following = [part for part in suffix.split("\n")[1:] if part.strip()]
    indent = len(line_before)
    next_indent = len(following[0]) - len(following[0].lstrip()) if following else 0
    if not following or next_indent < indent or (indent == 0 and next_indent == 0):
        return True, "empty line at the end of a block"
    return False, "empty line inside a block"


# A name that labels a value rather than refers to a definition: a keyword argument or an
# assignment's target (`width=2`, `x = f()`), and elsewhere than Python a key of a composite
# or object literal or a parameter's name (`Diff: mode`, `{ name: value }`, `(x: T)`).
_ASSIGNED = re.compile(r"\s*=(?![=>])")
_KEYED = re.compile(r"\s*:(?![:=])")
_KEY_OPENERS = ("{", ",", "(")


def _labels_only(line: str, match: re.Match[str], language: str) -> bool:
    """Whether the name ``match`` found on ``line`` is a label (see _ASSIGNED, _KEYED)."""
    if _ASSIGNED.match(line, match.end()):
        return True
    if language in INDENT_LANGUAGES or not _KEYED.match(line, match.end()):
        return False
    before = line[: match.start()].rstrip()
    return not before or before.endswith(_KEY_OPENERS)


def names_near(lines: Sequence[str], line: int, language: str = "") -> list[str]:
    """Identifiers near the cursor, closest first; dotted names also give their parts. Names
    that only label a value (keyword arguments, literal keys) are no use of a definition."""
    order: dict[str, int] = {}
    start, end = max(0, line - NEAR_BEFORE), min(len(lines), line + NEAR_AFTER + 1)
    for number in range(start, end):
        distance = abs(line - number) * 2 + (1 if number > line else 0)
        code = lines[number].split("#", 1)[0]
        for match in _IDENT.finditer(code):
            if _labels_only(code, match, language):
                continue
            dotted = match.group(0)
            parts = dotted.split(".")
            candidates = [*parts, *(".".join(parts[i : i + 2]) for i in range(len(parts) - 1))]
            if len(parts) > 2:  # `email.utils.quote` of `import email.utils`
                candidates.append(".".join(parts[:3]))
            for name in candidates:
                if len(name) < 2 or name.lower() in KEYWORDS:
                    continue
                if name not in order or distance < order[name]:
                    order[name] = distance
    return sorted(order, key=lambda n: order[n])


class _Sources:
    """Repository files as the index stores them (secrets redacted), read once per completion.

    Reading and redacting a file costs well under a millisecond, a chunk query several: the
    definitions' text comes from here, and from the index only when the file cannot be read.
    """

    def __init__(self, index: Index) -> None:
        self.root = Path(index.root)
        self._lines: dict[str, list[str] | None] = {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            try:
                text = (self.root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._lines[path] = None
            else:
                self._lines[path] = redact(text, path).text.splitlines(keepends=True)
        return self._lines[path]

    def text(self, path: str) -> str | None:
        lines = self.lines(path)
        return None if lines is None else "".join(lines)

    def version(self, path: str) -> tuple[str, int, int] | None:
        """The file as it is on disk (its path, mtime and size), the key of what is learnt
        from it and kept while it does not change; None when it cannot be read."""
        try:
            stat = (self.root / path).stat()
        except OSError:
            return None
        return str(self.root / path), stat.st_mtime_ns, stat.st_size

    def names(self, path: str) -> frozenset[str]:
        """The identifiers ``path`` uses (none when it cannot be read)."""
        version = self.version(path)
        return _names_of(*version) if version else frozenset()


def _head(path: str) -> str | None:
    """The first MAX_NAMES_BYTES of a file, as what names and imports are learnt from."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_NAMES_BYTES)
    except OSError:
        return None


@lru_cache(maxsize=512)
def _names_of(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """The identifiers of one file as it is on disk (kept while it does not change)."""
    return frozenset(_BARE.findall(_head(path) or ""))


@lru_cache(maxsize=1024)
def _taken_of(
    file: str, mtime_ns: int, size: int, path: str, language: str, repo: Repository
) -> dict[str, Binding]:
    """What the module ``path`` (on disk: ``file``) takes from other files by name, kept while
    neither it nor the repository's files change: its imports are read once, not at every
    completion. (Only names and paths come of it: no text of it reaches a prompt.)"""
    found = bindings(path, _head(file) or "", language, repo)
    return {name: b for name, b in found.items() if not b.is_module and name == b.original}


def _definition_text(
    index: Index,
    sources: _Sources,
    definition: SymbolDef,
    cap: int,
    est: TokenEstimator,
    used: Collection[str] = (),
) -> tuple[str, int, int]:
    """The redacted text of a definition, summarised when it is over ``cap`` tokens: a long
    class as its head, then its members in order, whole if the code near the cursor uses them
    (``used``: attribute names) and they fit, else their signatures."""
    lines = sources.lines(definition.path)
    first, last = definition.start_line, definition.end_line
    if lines is not None and 1 <= first <= last <= len(lines):
        text = "".join(lines[first - 1 : last])
    else:
        chunk = index.chunk_at(definition.path, definition.start_line)
        if chunk is None:
            head = definition.signature + (f"\n    # {definition.doc}" if definition.doc else "")
            return head, definition.start_line, definition.start_line
        chunk_lines = chunk.text.splitlines(keepends=True)
        first = max(definition.start_line, chunk.start_line)
        last = min(definition.end_line, chunk.end_line)
        text = "".join(chunk_lines[first - chunk.start_line : last - chunk.start_line + 1])
    if est.count(text) <= cap:
        return text, first, last
    if definition.kind == "class":
        members = [
            s
            for s in index.file_symbols(definition.path)
            if s.qualified_name.startswith(definition.qualified_name + ".")
            and s.qualified_name.count(".") == definition.qualified_name.count(".") + 1
        ]
        whole = {s.start_line: _member_text(lines, s) for s in members if s.name in used}
        head = keep_head(text, cap // 4 if whole else cap // 2, est)
        room = cap - est.count(head)
        head_end = first + head.count("\n") - 1
        outline: list[str] = []
        for member in members:
            if member.start_line <= head_end:
                continue  # (shown in the head)
            body = whole.get(member.start_line)
            if body is None or est.count(body) > room // 2:
                body = f"    {member.signature} ...\n"
            outline.append(body)
        return head + keep_head("".join(outline), room, est), first, last
    clipped = keep_head(text, cap, est)
    return clipped, first, first + clipped.count("\n") - 1 if clipped.endswith("\n") else last


def _member_text(lines: Sequence[str] | None, member: SymbolDef) -> str | None:
    if lines is None or not 1 <= member.start_line <= member.end_line <= len(lines):
        return None
    return "".join(lines[member.start_line - 1 : member.end_line])


def _overlaps(piece: ContextPiece, path: str, start: int, end: int) -> bool:
    return piece.path == path and piece.start_line <= end and start <= piece.end_line


_FAMILIES = {"typescript": "ecmascript", "tsx": "ecmascript", "javascript": "ecmascript",
             "c": "c-family", "cpp": "c-family", "java": "jvm", "kotlin": "jvm"}  # fmt: skip


def _family(language: str) -> str:
    """Languages whose code can define names for each other (TS uses JS, C++ uses C headers)."""
    return _FAMILIES.get(language, language)


@lru_cache(maxsize=4)
def _repository(paths: frozenset[str]) -> Repository:
    return Repository(paths)


@dataclass(frozen=True, slots=True)
class _Pick:
    """A definition chosen for the names near the cursor, and why."""

    score: float
    definition: SymbolDef
    why: str


class _Symbols:
    """The symbols table as one completion reads it. Every index call checks that the table is
    current (a LanceDB round trip): the definitions of the names near the cursor are asked for
    in one call, and each file's symbols once."""

    def __init__(self, index: Index, names: Sequence[str]) -> None:
        self.index = index
        self._files: dict[str, list[SymbolDef]] = {}
        self._named: dict[str, list[SymbolDef]] = {}
        wanted = [n for n in names if "." not in n]
        for found in index.definitions(wanted, limit=len(wanted) * MAX_DEFINITIONS * 2):
            self._named.setdefault(found.name, []).append(found)
            if found.qualified_name != found.name:
                self._named.setdefault(found.qualified_name, []).append(found)

    def read(self, paths: Collection[str]) -> None:
        """Read the symbols of ``paths`` (those not read yet) in one index call."""
        missing = [p for p in paths if p not in self._files]
        if missing:
            self._files.update(self.index.symbols_in(missing))

    def of_file(self, path: str) -> list[SymbolDef]:
        if path not in self._files:
            self._files[path] = self.index.file_symbols(path)
        return self._files[path]

    def named(self, name: str) -> list[SymbolDef]:
        """Definitions whose name or qualified name is ``name`` (one of the names given)."""
        return self._named.get(name, [])[: MAX_DEFINITIONS * 2]

    def top_level(self, paths: Sequence[str], name: str) -> list[SymbolDef]:
        return [s for p in paths for s in self.of_file(p) if s.qualified_name == name]


class _Modules:
    """What an imported module offers besides its own definitions: the names it takes from
    other files of the repository (``from email._parseaddr import quote`` in email/utils.py
    makes ``utils.quote``), followed to their definitions only when wanted."""

    def __init__(self, symbols: _Symbols, sources: _Sources, language: str, repo: Repository):
        self.symbols, self.sources, self.language, self.repo = symbols, sources, language, repo
        self._taken: dict[str, dict[str, Binding]] = {}

    def defined(self, file: str, name: str) -> bool:
        return bool(self.symbols.top_level([file], name))

    def taken(self, path: str) -> dict[str, Binding]:
        """The names the module at ``path`` takes from other files (none in Go: a package
        offers only what it declares); ``x as _x`` is private to it."""
        if path not in self._taken:
            version = self.sources.version(path) if self.language != "go" else None
            self._taken[path] = (
                _taken_of(*version, path, self.language, self.repo) if version else {}
            )
        return self._taken[path]

    def _definition(self, taken: Binding) -> list[SymbolDef]:
        final = reexported(taken, self.sources.text, self.language, self.repo, self.defined)
        return [] if final.is_module else self.symbols.top_level(final.paths, final.original)

    def member(self, module: Binding, name: str) -> list[SymbolDef]:
        """The definition ``module.name`` refers to: the module's own, else the one it takes."""
        own = self.symbols.top_level(module.paths, name)
        if own:
            return own
        for path in module.paths:
            onward = self.taken(path).get(name)
            if onward is not None:
                return self._definition(onward)
        return []

    def forwarded(self, module: Binding, wanted: Collection[str]) -> list[SymbolDef]:
        """The definitions of the ``wanted`` names ``module`` takes from other files (whose
        symbols :func:`_definition_pieces` read with the rest, in one index call)."""
        onward = [b for p in module.paths for n, b in self.taken(p).items() if n in wanted]
        found = (self._definition(b)[:1] for b in onward)
        return [d for defs in found for d in defs if d.path not in module.paths]


def _resolve_near(
    symbols: _Symbols,
    path: str,
    name: str,
    bare: set[str],
    bound: dict[str, Binding],
    package: tuple[str, ...],
    types: dict[str, str],
    modules: _Modules,
) -> list[_Pick]:
    """The definitions one name near the cursor refers to, as far as can be known: through the
    import that binds it, a module's member, a method of an object whose class the code states
    (``shelf = Shelf()``, ``shelf: Shelf``), a method of the class being written, a name of the
    file's own package; a bare name nothing binds by name alone; an attribute (``x.get``) only
    when one definition in the repository has that name."""
    head, _, member = name.partition(".")
    binding = bound.get(head)
    dotted, _, last = name.rpartition(".")
    if "." in dotted and dotted in bound and bound[dotted].is_module:
        head, member, binding = dotted, last, bound[dotted]  # `import email.utils`
    if member:
        if "." in member:
            return []
        if binding is not None and binding.is_module:
            why = f"definition of `{name}` (module `{head}` imported by this file from {binding.module})"
            return [_Pick(CERTAIN, d, why) for d in modules.member(binding, member)]
        if head in types:
            return _methods_of(symbols, path, name, types[head], bound, package)
        if binding is not None:  # `Shelf.create`: a member of an imported class
            return _methods_of(symbols, path, name, head, bound, package)
        if head in ("self", "cls", "this"):
            own = [s for s in symbols.of_file(path) if s.qualified_name.endswith("." + member)]
            return [
                _Pick(3.0, d, f"definition of `{member}` (a method of this file's class)")
                for d in own
            ]
        return []
    if binding is not None:
        if binding.is_module:
            return []
        shown = name if binding.original in (name, "default") else f"{binding.original} as {name}"
        why = f"definition of `{shown}` (imported by this file from {binding.module})"
        found = symbols.top_level(binding.paths, binding.original)
        return [_Pick(CERTAIN, d, why) for d in found]
    found = symbols.named(name)
    if name not in bare and len(found) != 1:
        return []  # `.get` of an object of unknown class: any of the repository's `get`s
    picks = []
    for definition in found:
        if definition.path == path or definition.path in package:
            # a top-level name of this file or package is bound by scope, as surely as by an
            # import (Go: the package's names need none)
            picks.append(
                _Pick(
                    CERTAIN if definition.qualified_name == name else 2.0,
                    definition,
                    f"definition of `{name}` (used near the cursor, this {'file' if definition.path == path else 'package'})",
                )
            )
        elif definition.qualified_name == name or name not in bare:
            picks.append(_Pick(1.0, definition, f"definition of `{name}` (used near the cursor)"))
    return picks


def _methods_of(
    symbols: _Symbols,
    path: str,
    name: str,
    cls: str,
    bound: dict[str, Binding],
    package: tuple[str, ...],
) -> list[_Pick]:
    """``x.member`` where ``x`` is a ``cls``: the member as that class defines it (found through
    the import that binds the class, else in this file or package), never another class's."""
    head, member = name.split(".", 1)
    owner, _, local = cls.rpartition(".")
    binding = bound.get(owner or local)
    if owner and binding is not None and binding.is_module:
        files, class_name, where = (
            binding.paths,
            local,
            f"imported by this file from {binding.module}",
        )
    elif not owner and binding is not None and not binding.is_module:
        files, class_name = binding.paths, binding.original
        where = f"imported by this file from {binding.module}"
    elif not owner:
        files, class_name, where = (path, *package), local, ""
    else:
        return []
    qualified = f"{class_name}.{member}"
    found = [s for f in files for s in symbols.of_file(f) if s.qualified_name == qualified]
    return [
        _Pick(
            CERTAIN if where else 3.0,
            d,
            f"definition of `{name}` ("
            + (f"a member of `{cls}`, " if head == cls else f"`{head}` is a `{cls}`, ")
            + f"{where or ('this file' if d.path == path else 'this package')})",
        )
        for d in found
    ]


def _definition_pieces(
    index: Index,
    sources: _Sources,
    path: str,
    text: str,
    line: int,
    language: str,
    window: tuple[int, int],
    cap: int,
    budget: int,
    est: TokenEstimator,
    hints: Callable[[], Counter[str]] = Counter,
) -> list[ContextPiece]:
    """Definitions of the names near the cursor (the ones the file's imports bind first), then
    the signatures of the rest of what the file imports, then less certain definitions.
    ``hints()``: the names similar code elsewhere uses (see _outline_pieces)."""
    lines = text.splitlines()
    near = names_near(lines, line, language)[:40]
    first = max(0, line - NEAR_BEFORE)
    bare = set(_BARE.findall("\n".join(lines[first : line + NEAR_AFTER + 1])))
    repo = _repository(index.paths())
    symbols = _Symbols(index, near)

    modules = _Modules(symbols, sources, language, repo)
    imported = bindings(path, text, language, repo)
    package = same_package(path, language, repo)
    files = {path, *package, *(p for b in imported.values() for p in b.paths)}
    # (and the files an imported module takes names from: one index call for all)
    files |= {
        p
        for b in imported.values()
        if b.is_module
        for m in b.paths
        for taken in modules.taken(m).values()
        for p in taken.paths
    }
    symbols.read(files)
    bound = {  # each imported name followed through the files that only re-export it
        name: reexported(binding, sources.text, language, repo, modules.defined)
        for name, binding in imported.items()
    }
    family = _family(language)
    typed = receiver_types("\n".join(lines[max(0, line - TYPED_BEFORE) : line + 1]), family)
    picks: list[_Pick] = []
    for name in near:
        for pick in _resolve_near(symbols, path, name, bare, bound, package, typed, modules):
            definition = pick.definition
            if definition.path == path and window[0] <= definition.start_line <= window[1]:
                continue  # already visible in the prefix/suffix
            if _family(language_of(definition.path)) != family:
                continue  # a Python `stop` is not defined by a TypeScript `stop()`
            picks.append(pick)
    picks.sort(key=lambda pick: -pick.score)  # stable: closest names first within a score
    chosen: list[_Pick] = []
    expected = 0  # tokens, guessed from line counts: fetch no more text than can fit
    for pick in picks:
        d = pick.definition
        inside = [c for c in chosen if c.definition.path == d.path
                  and d.start_line <= c.definition.start_line
                  and c.definition.end_line <= d.end_line
                  and d.end_line - d.start_line > c.definition.end_line - c.definition.start_line]  # fmt: skip
        if inside:  # `Shelf(...)` after `shelf.get`: the class, whose text keeps `get` whole
            chosen = [
                pick if c is inside[0] else c
                for c in chosen
                if not any(c is other for other in inside[1:])
            ]
            continue
        if any(c.definition.path == d.path and c.definition.start_line <= d.end_line
               and d.start_line <= c.definition.end_line for c in chosen):  # fmt: skip
            continue
        chosen.append(pick)
        expected += min(cap, (d.end_line - d.start_line + 1) * LINE_TOKENS)
        if len(chosen) >= MAX_DEFINITIONS or expected >= budget:
            break
    members = {name.rsplit(".", 1)[1] for name in near if "." in name}  # `x.get` uses `get`
    texts = [
        _definition_text(index, sources, pick.definition, cap, est, members) for pick in chosen
    ]
    pieces = [
        ContextPiece(
            path=pick.definition.path, start_line=first, end_line=last, text=body,
            reason=pick.why, symbol=pick.definition.qualified_name, score=pick.score,
        )
        for pick, (body, first, last) in zip(chosen, texts, strict=True)
    ]  # fmt: skip
    certain = [p for p in pieces if p.score >= CERTAIN]
    rest = [p for p in pieces if p.score < CERTAIN]
    # the outlines come before the less certain definitions, which the budget may drop: only
    # what comes before them is left out of them
    shown = {(p.path, p.start_line) for p in certain}
    outlines = _outline_pieces(
        modules, sources, path, text, line, bound, package, shown, pieces, hints
    )
    return certain + outlines + rest


def _signature_lines(lines: Sequence[str], definition: SymbolDef) -> tuple[list[str], int]:
    """The lines of a definition up to the end of its signature (see ``_signature``), and the
    file line of the last of them."""
    last = min(definition.end_line, definition.start_line + OVERLOAD_SCAN - 1, len(lines))
    own = lines[definition.start_line - 1 : last]
    signature = _signature(own)
    return signature, definition.start_line + _reach(own, signature) - 1


def _reach(lines: Sequence[str], shown: Sequence[str]) -> int:
    """How many of ``lines`` it takes to find ``shown`` in them, in order (``shown`` was taken
    from them, some lines left out)."""
    at = 0
    for wanted in shown:
        while at < len(lines) and lines[at].rstrip("\n") != wanted.rstrip("\n"):
            at += 1
        at += 1
    return min(at, len(lines))


def _signature(lines: Sequence[str]) -> list[str]:
    """The first of ``lines`` (a definition's), up to the end of its signature (at most
    SIGNATURE_LINES); TypeScript overloads (``f(a: A): R;`` declarations before the
    implementation's) run on to the implementation's signature, the comments between them left
    out (at most OVERLOAD_LINES)."""
    overload = _OVERLOAD.match(lines[0]) if lines else None
    if overload is not None:
        return _overloads(lines, overload.group(0))
    out: list[str] = []
    for text in lines[:SIGNATURE_LINES]:
        out.append(text if text.endswith("\n") else text + "\n")
        stripped = text.split("#", 1)[0].strip()
        if not stripped.startswith("@") and stripped.endswith((":", "{", ";", "=>")):
            break
    return out


def _overloads(lines: Sequence[str], start: str) -> list[str]:
    """A TypeScript signature, and while a declaration ends with ``;`` and the next one starts
    as this one did (``start``), that one too: the overloads, then the implementation's."""
    out: list[str] = []
    comment = ended = False
    for text in lines:
        stripped = text.strip()
        if comment or stripped.startswith("/*"):
            comment = "*/" not in (stripped[2:] if not comment else stripped)
            continue
        if not stripped or stripped.startswith("//"):
            continue
        if ended and not text.startswith(start):
            break  # the declaration after the last overload is not this function's
        out.append(text if text.endswith("\n") else text + "\n")
        ended = stripped.endswith(";")
        if len(out) >= OVERLOAD_LINES or stripped.endswith(("{", "=>")):
            break
    return out


def _shrinker(sources: _Sources | None, est: TokenEstimator) -> Shrink:
    """The shorter form of a piece that does not fit whole: a definition's signature, or the
    first signatures of an outline. A name whose definition does not fit still shows how to
    call it, which is what the next line most likely needs."""

    def shrink(piece: ContextPiece, room: int) -> ContextPiece | None:
        if _is_definition(piece):
            head = _signature(piece.text.splitlines(keepends=True))
            text = "".join(head)
            if not head or len(head) == piece.text.count("\n") or est.count(text) > room:
                return None
            reason = OUTLINE_REASON + piece.reason[len(DEFINITION_REASON) :]
            end = piece.start_line + _reach(piece.text.splitlines(keepends=True), head) - 1
            return replace(piece, text=text, end_line=end, reason=reason, symbol="")
        if piece.signatures:
            return _likeliest(piece, room, est)
        if piece.reason.startswith(OUTLINE_REASON):
            text = keep_head(piece.text, room, est)
            if not text.endswith("\n") or text == piece.text:
                return None  # nothing whole fits (or all of it would have)
            return replace(piece, text=text, end_line=_last_line(sources, piece, text))
        return None

    return shrink


def _definitions_within(
    candidates: Sequence[ContextPiece], share: int, est: TokenEstimator, shrink: Shrink
) -> list[ContextPiece]:
    """Whole definitions while they fit ``share`` tokens (the first, the most certain one, even
    past it), then their signatures: the rest of the budget goes to the signatures of what else
    the file imports, which the next line is as likely to call as the names already used."""
    out: list[ContextPiece] = []
    spent = 0
    for piece in candidates:
        if _is_definition(piece):
            cost = added_tokens(piece, est, ())
            if spent and spent + cost > share:  # (the first is whole whenever it fits)
                piece = shrink(piece, cost) or piece
            else:
                spent += cost
        out.append(piece)
    return out


def _last_line(sources: _Sources | None, piece: ContextPiece, text: str) -> int:
    """The file line of the last of ``text``'s lines (the first lines of ``piece``'s)."""
    lines = sources.lines(piece.path) if sources is not None else None
    if lines is None:
        return piece.end_line
    wanted = [line.strip() for line in text.splitlines()]
    at = piece.start_line
    for number in range(piece.start_line, min(piece.end_line, len(lines)) + 1):
        if wanted and lines[number - 1].strip() == wanted[0]:
            wanted.pop(0)
            at = number
    return at


def _outline_pieces(
    modules: _Modules,
    sources: _Sources,
    path: str,
    text: str,
    line: int,
    bound: dict[str, Binding],
    package: tuple[str, ...],
    shown: set[tuple[str, int]],
    full: Sequence[ContextPiece],
    hints: Callable[[], Counter[str]] = Counter,
) -> list[ContextPiece]:
    """The signatures of what the file imports (and, in Go, of its package's other files), one
    piece per file, the most recently used imports first: what the next line may call.

    Where a module or package has more names than one piece shows, those this file uses come
    first, then those that code like the lines before the cursor uses elsewhere (``hints()``,
    asked only then: what similar code calls is what the next line is likely to call), then
    those other files use most. A module's names include those it takes from other files."""
    symbols = modules.symbols
    document = text.splitlines()
    before = "\n".join(document[:line])
    near = "\n".join(document[max(0, line - WORDS_LINES) : line + 1])
    language = language_of(path)
    used = names_in(before, set(bound))
    uses = member_uses(before)
    # file -> {def line: (symbol, import)}, and how recently the file's names were used
    wanted: dict[str, dict[int, tuple[SymbolDef, str]]] = {}
    recency: dict[str, int] = {}
    signatures: set[tuple[str, str, str]] = set()
    ranks: dict[tuple[str, int], int] = {}

    def want(symbols: Sequence[SymbolDef], module: str, last_use: int | dict[str, int]) -> None:
        """Show ``symbols`` (from ``module``, the likeliest to be called first), last used at
        ``last_use`` (or per name)."""
        for rank, symbol in enumerate(symbols):
            if (module, symbol.name, symbol.signature) in signatures:
                continue  # the same declaration in another file of it (Go build variants)
            signatures.add((module, symbol.name, symbol.signature))
            wanted.setdefault(symbol.path, {}).setdefault(symbol.start_line, (symbol, module))
            ranks.setdefault((symbol.path, symbol.start_line), rank)
            at = last_use if isinstance(last_use, int) else last_use.get(symbol.name, -1)
            recency[symbol.path] = max(recency.get(symbol.path, -1), at)

    for binding in bound.values():
        if binding.is_module:
            members = uses.get(binding.name, [])
            top = [
                s for p in binding.paths for s in symbols.of_file(p) if "." not in s.qualified_name
            ]
            taken = {n: b for p in binding.paths for n, b in modules.taken(p).items()}
            # what the file already uses of the module (last used first), then, when it has more
            # names than are shown, what other files use of it (most used first:
            # `logging.getLogger`), then its other public names
            many = len(top) + len(taken) > MODULE_SIGNATURES
            # a name taken from elsewhere, not re-exported, is offered when code uses it through
            # the module: this file, similar code (its search runs anyway), other files' calls
            # (searched in the background only for a module of many names: a search per module
            # that takes anything cost every completion's p95 10 ms in bench/bench_server.py)
            reexports = {n for n, b in taken.items() if _reexport(binding.paths, b.paths)}
            calls = _popular_members(symbols.index, path, binding.name) if many else Counter()
            hint = hints() if many or len(reexports) < len(taken) else Counter()
            # a name the module takes from another file is one of its own to its users when a
            # package's entry (``__init__.py``, ``index.ts``) takes it from the package's own
            # files, or when code uses it through the module (``utils.quote``); otherwise it is
            # most often what the module itself needed (``from string import Template``)
            offers = {
                n
                for n in taken
                if n in members
                or calls[n]
                or hint[f"{binding.name}.{n}"]
                or (n in reexports and _public(n, language))
            }
            exported = [
                s
                for s in top
                if s.name in members
                or calls[s.name]
                # a private name that similar code calls (Python's are reachable; Go's never)
                or (hint[s.name] and language != "go")
                or _public(s.name, language)
            ] + modules.forwarded(binding, offers)
            rank = {name: i for i, name in enumerate(members)}
            said = _affinity({s.name for s in exported}, near, binding.name) if many else {}
            exported.sort(
                key=lambda s: (
                    rank.get(s.name, len(rank)),
                    -hint[s.name],
                    -calls[s.name],
                    s.path,
                    s.start_line,
                )
            )
            want(_cut(exported, said), binding.module, used.get(binding.name, -1))
        else:
            found = symbols.top_level(binding.paths, binding.original)
            want(found, binding.module, used.get(binding.name, -1))
    if package:  # Go: the package's other files, the names this file uses first
        own = [s for p in package for s in symbols.of_file(p) if "." not in s.qualified_name]
        seen = names_in(before, {s.name for s in own})
        users = Counter(n for p in package for n in sources.names(p))  # files using each name
        hint = hints() if len(own) > MODULE_SIGNATURES else Counter()
        said = _affinity({s.name for s in own}, near) if len(own) > MODULE_SIGNATURES else {}
        if said:
            _near_files(said, package, symbols, near)
        own.sort(
            key=lambda s: (
                -seen.get(s.name, -1),
                -hint[s.name],
                -users[s.name],
                s.path,
                s.start_line,
            )
        )
        want(_cut(own, said), "this package", seen)
    pieces: list[ContextPiece] = []
    for file in sorted(wanted, key=lambda f: -recency[f]):  # stable: ties keep their order
        by_line = wanted[file]
        lines = sources.lines(file)
        if lines is None:
            continue
        run: list[tuple[SymbolDef, str, list[str], int, int]] = []
        for start in sorted(by_line):
            symbol, module = by_line[start]
            if (file, start) in shown:
                continue
            signature, end = _signature_lines(lines, symbol)
            # a full definition between the run's start and this signature ends the run
            if run and any(
                p.path == file and run[0][0].start_line <= p.end_line and p.start_line <= end
                for p in full
            ):
                pieces.append(_outline(file, run))
                run = []
            run.append((symbol, module, signature, end, ranks[(file, start)]))
        if run:
            pieces.append(_outline(file, run))
    return pieces


# (index, module name) -> (when searched, [(path, members used)] of the chunks found)
_popular: OrderedDict[tuple[str, str], tuple[float, list[tuple[str, Counter[str]]]]] = OrderedDict()
_popular_lock = threading.Lock()
_popular_asked: set[tuple[str, str]] = set()
_popular_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enclave-popular")


def _popular_members(index: Index, path: str, module: str, *, wait: bool = False) -> Counter[str]:
    """For the name a module is bound to (``logging``, ``utils``), how many chunks of other
    files use each of its members (``logging.getLogger``), from a full-text search for the
    name, kept a few minutes per index and name. The file being written is left out: its saved
    text is no guide to the line not written yet.

    A name not searched yet is searched in the background (a search per module would double a
    first completion's time), unless ``wait``: until then its members keep the file's order."""
    counts: Counter[str] = Counter()
    for where, members in _module_uses(index, module, wait):
        if where != path:
            counts.update(members)
    return counts


def _module_uses(index: Index, module: str, wait: bool) -> list[tuple[str, Counter[str]]]:
    """The chunks that mention ``module`` most, each as its path and the members it uses."""
    key = (index.db_uri, module)
    with _popular_lock:
        kept = _popular.get(key)
        if kept is not None and time.monotonic() - kept[0] < POPULAR_SECONDS:
            return kept[1]
        if not wait:
            if key not in _popular_asked:
                _popular_asked.add(key)
                _popular_pool.submit(_search_uses, index, module, key)
            return kept[1] if kept is not None else []
    return _search_uses(index, module, key)


def _search_uses(index: Index, module: str, key: tuple[str, str]) -> list[tuple[str, Counter[str]]]:
    try:
        hits = index.search(module, k=POPULAR_CHUNKS, mode="lexical").hits
    except IndexProblem as problem:
        log.debug("which members of %s are used is unknown: %s", module, problem)
        hits = []
    except Exception:  # a bug; in the background nobody else would see it
        log.exception("could not learn which members of %s are used", module)
        hits = []
    use = re.compile(rf"(?<![\w.$]){re.escape(module)}\.([A-Za-z_$][\w$]*)")
    uses = [(hit.path, Counter(set(use.findall(hit.text)))) for hit in hits]
    with _popular_lock:
        _popular_asked.discard(key)
        _popular[key] = (time.monotonic(), uses)
        _popular.move_to_end(key)
        while len(_popular) > POPULAR_KEPT:
            _popular.popitem(last=False)
    return uses


def _cut(ordered: Sequence[SymbolDef], said: dict[str, float]) -> list[SymbolDef]:
    """The first MODULE_SIGNATURES of ``ordered``, then up to SAID_SIGNATURES of the rest that
    the words near the cursor speak of (``said``: :func:`_affinity`), most spoken of first.
    Added, never in place of the first: as an order, those guesses pushed out names other
    files call (bench/quality.py lost more cases than it won)."""
    rest = sorted(ordered[MODULE_SIGNATURES:], key=lambda s: -said.get(s.name, 0.0))
    spoken = [s for s in rest if said.get(s.name, 0.0) > 0]
    return [*ordered[:MODULE_SIGNATURES], *spoken[:SAID_SIGNATURES]]


def _words(text: str) -> frozenset[str]:
    """The words ``text`` is made of, lower case, of 3 characters or more, keywords left out:
    ``encode_rfc2231`` -> encode, rfc, 2231; ``getLogger`` -> get, logger; ``HTTPServer`` ->
    http, server."""
    return frozenset(part for part in split_identifier(text) if len(part) >= 3) - KEYWORDS


_parts = lru_cache(maxsize=8192)(_words)  # of a name: names come back


def _affinity(names: Collection[str], near: str, owner: str = "") -> dict[str, float]:
    """How much each of ``names`` is what the text ``near`` the cursor speaks of: its words
    found there (``# Encode as per RFC 2231`` for ``encode_rfc2231``), each worth less the more
    of ``names`` share it. The words of the ``owner``'s name (the module's: `log` for
    `log.get_logger`) say nothing of one name more than another."""
    words = _words(near) - _parts(owner)
    ordered = sorted(words)
    parts = {name: _parts(name) for name in names}
    shared = Counter(part for found in parts.values() for part in found)

    def said(part: str) -> bool:
        # the word, a word that begins it (`format` for `formatted`) or one it begins
        # (`hexdump` for `hex`)
        if any(part[:n] in words for n in range(3, len(part) + 1)):
            return True
        at = bisect.bisect_left(ordered, part)
        return at < len(ordered) and ordered[at].startswith(part)

    return {name: sum(1 / shared[p] for p in found if said(p)) for name, found in parts.items()}


def _reexport(entries: Sequence[str], sources: Sequence[str]) -> bool:
    """Whether the files ``entries`` are a package's entry (``pkg/__init__.py``,
    ``lib/index.ts``) taking a name from files of that package (``sources``)."""
    folders = set()
    for entry in entries:
        at = PurePosixPath(entry)
        if at.stem not in ("__init__", "index", "mod"):
            return False
        folders.add(str(at.parent))
    return all(any(f == "." or p.startswith(f + "/") for f in folders) for p in sources)


def _near_files(
    said: dict[str, float], package: Sequence[str], symbols: _Symbols, near: str
) -> None:
    """Add to ``said`` the names of the package's files that define what the lines near the
    cursor use (a type, a function, a method: `ptrs.PushPair` of `pointerReferences`): the
    functions written beside a type are those that work with it (`wrapTrunkReferences`)."""
    every = [s for p in package for s in symbols.of_file(p)]
    used = names_in(near, {s.name for s in every})
    close = {s.path for s in every if s.name in used}
    for symbol in every:
        if symbol.path in close and "." not in symbol.qualified_name and symbol.name not in used:
            said[symbol.name] = said.get(symbol.name, 0.0) + NEAR_FILE


def _public(name: str, language: str) -> bool:
    """A name other files are meant to use (Go: capitalised; elsewhere: no leading _)."""
    return name[:1].isupper() if language == "go" else not name.startswith("_")


def _outline(file: str, run: Sequence[tuple[SymbolDef, str, list[str], int, int]]) -> ContextPiece:
    """One piece of ``run``'s signatures (symbol, module, lines, last line, rank), in file order."""
    modules = sorted({module for _, module, _, _, _ in run})
    whence = (
        " (this package)"
        if modules == ["this package"]
        else f" (imported by this file from {', '.join(modules)})"
    )
    signatures = tuple(
        Signature(rank, symbol.name, symbol.start_line, end, "".join(lines))
        for symbol, _, lines, end, rank in run
    )
    return ContextPiece(
        path=file, start_line=signatures[0].start_line, end_line=signatures[-1].end_line,
        text="".join(s.text for s in signatures), reason=_outline_reason(signatures, whence),
        symbol="", score=3.5, signatures=signatures,
    )  # fmt: skip


def _outline_reason(signatures: Sequence[Signature], whence: str) -> str:
    names = ", ".join(f"`{s.name}`" for s in signatures[:6])
    return f"{OUTLINE_REASON} {names}{', ...' if len(signatures) > 6 else ''}{whence}"


def _likeliest(piece: ContextPiece, room: int, est: TokenEstimator) -> ContextPiece | None:
    """The shorter form of a piece of signatures: those the next line is likeliest to call that
    fit ``room`` tokens, in file order (None when none or all of them fit)."""
    kept: list[int] = []
    used = 0
    for at in sorted(range(len(piece.signatures)), key=lambda i: piece.signatures[i].rank):
        cost = est.count(piece.signatures[at].text)
        if used + cost <= room:
            kept.append(at)
            used += cost
    if not kept or len(kept) == len(piece.signatures):
        return None
    signatures = tuple(piece.signatures[i] for i in sorted(kept))
    whence = piece.reason[piece.reason.rindex(" (") :]  # (names never hold " (")
    return replace(
        piece, text="".join(s.text for s in signatures), start_line=signatures[0].start_line,
        end_line=signatures[-1].end_line, reason=_outline_reason(signatures, whence),
        signatures=signatures,
    )  # fmt: skip


def _recent_pieces(
    path: str, recent: Sequence[RecentEdit], cap: int, est: TokenEstimator
) -> list[ContextPiece]:
    pieces: list[ContextPiece] = []
    for edit in recent:
        if edit.path == path:
            continue
        lines = edit.text.splitlines(keepends=True)
        start = max(0, edit.line - RECENT_WINDOW)
        end = min(len(lines), edit.line + RECENT_WINDOW + 1)
        body = keep_head("".join(lines[start:end]), cap, est)
        if not body.strip():
            continue
        pieces.append(
            ContextPiece(
                path=edit.path, start_line=start + 1, end_line=start + len(body.splitlines()),
                text=body, reason=RECENT_REASON,
                score=1.0 - len(pieces) / 10,
            )
        )  # fmt: skip
        if len(pieces) >= MAX_RECENT:
            break
    return pieces


def _similar_hits(index: Index, path: str, prefix: str, window: tuple[int, int]) -> list[SearchHit]:
    """Code like the lines before the cursor (the cursor's own neighbourhood left out), by
    full-text search of their identifiers: code is like code through the names it uses. (A
    hybrid search found less of what the next line calls, in bench/quality.py, and embedding
    the query cost each completion an embedding request.)"""
    tail = " ".join(prefix.splitlines()[-6:])
    words = [w for w in _WORDS.findall(tail) if w.lower() not in KEYWORDS]
    query = " ".join(words[-40:])  # identifiers only: quotes would make a phrase query
    if not query:
        return []
    found = index.search(query, k=SIMILAR_HITS, mode="lexical")
    return [
        hit
        for hit in found.hits
        if not (hit.path == path and hit.start_line <= window[1] and window[0] <= hit.end_line)
    ]


def _names_elsewhere(hits: Sequence[SearchHit], path: str) -> Counter[str]:
    """In how many of ``hits`` from other files each identifier occurs, and each member used
    through a name (``utils.quote``: a dotted key)."""
    names: Counter[str] = Counter()
    for hit in hits:
        if hit.path != path:
            names.update(set(_WORDS.findall(hit.text)))
            names.update({f"{q}.{m}" for q, ms in member_uses(hit.text).items() for m in ms})
    return names


def _similar_pieces(hits: Sequence[SearchHit], cap: int, est: TokenEstimator) -> list[ContextPiece]:
    pieces: list[ContextPiece] = []
    for hit in hits:
        body = keep_head(hit.text, cap, est)
        label = f" `{hit.symbol}`" if hit.symbol else ""
        pieces.append(
            ContextPiece(
                path=hit.path, start_line=hit.start_line,
                end_line=hit.start_line + max(0, body.rstrip("\n").count("\n")),
                text=body, reason=f"similar code{label} to the lines before the cursor "
                "(full-text search)",
                symbol=hit.symbol, score=round(hit.score, 4),
            )
        )  # fmt: skip
        if len(pieces) >= MAX_SIMILAR:
            break
    return pieces


def _current(piece: ContextPiece, sources: _Sources | None, recent: Sequence[RecentEdit]) -> bool:
    """The piece's lines still read as it shows them: in its open buffer for a recent edit,
    else in its file as the index has it (on disk, redacted)."""
    lines: list[str] | None = None
    if piece.reason.startswith(RECENT_REASON):
        edit = next((e for e in recent if e.path == piece.path), None)
        lines = edit.text.splitlines(keepends=True) if edit is not None else None
    elif sources is not None:
        lines = sources.lines(piece.path)
    if not lines or not 1 <= piece.start_line <= piece.end_line <= len(lines):
        return False
    span = lines[piece.start_line - 1 : piece.end_line]
    if "".join(span).rstrip("\n") == piece.text.rstrip("\n"):
        return True
    # A summary (signatures only, or a long class's head and its members' signatures): each of
    # its lines is still one of the span's, in order.
    rest = iter(line.strip() for line in span)
    return all(_summary_line(line) in rest for line in piece.text.splitlines() if line.strip())


def _summary_line(line: str) -> str:
    line = line.strip()
    return line[: -len(" ...")] if line.endswith(" ...") else line


def _stable_order(
    keep: Sequence[ContextPiece],
    candidates: Sequence[ContextPiece],
    current: Callable[[ContextPiece], bool],
) -> list[ContextPiece]:
    """The previous pieces still current, in their order, then the new definitions.

    A kept piece that is a candidate again, or whose lines still read the same, stays where it
    was; a new candidate that shows lines of a kept piece is left out. Of the new candidates only
    definitions (of the names now near the cursor) join: similar code and signatures change with
    every line typed, and each piece that joins makes the model read everything after it again.
    """
    wanted = {_same(c) for c in candidates}  # (scores change with every query)
    kept = [piece for piece in keep if _same(piece) in wanted or current(piece)]
    new = [c for c in candidates if _is_definition(c) and not any(overlaps(c, k) for k in kept)]
    return kept + new


def _same(piece: ContextPiece) -> tuple[str, int, int, str]:
    """What a piece shows: two pieces that show the same lines the same way are one."""
    return piece.path, piece.start_line, piece.end_line, piece.text


def _is_definition(piece: ContextPiece) -> bool:
    return piece.reason.startswith(DEFINITION_REASON)


def _fit_stable(
    ordered: list[ContextPiece],
    kept: set[ContextPiece],
    budget: int,
    est: TokenEstimator,
    shrink: Shrink,
) -> tuple[list[ContextPiece], list[Dropped]]:
    """Fit ``ordered`` (kept pieces first); when a definition the names near the cursor now
    need does not fit behind them, not even as its signature, kept pieces other than
    definitions make room, last first: the prompt changes from the first piece that goes, and
    no earlier."""
    evictable = [p for p in reversed(ordered) if p in kept and not _is_definition(p)]
    evicted: list[Dropped] = []
    while True:
        pieces, dropped = fit_pieces(ordered, budget, est, shrink, by_file=True)
        short = [
            d.piece
            for d in dropped
            if _is_definition(d.piece)
            and d.piece not in kept
            and d.why.startswith("over")
            and not d.why.endswith(SHORTENED)
        ]
        if not short or not evictable:
            return pieces, dropped + evicted
        gone = evictable.pop(0)
        ordered = [p for p in ordered if p is not gone]
        evicted.append(Dropped(gone, "made room for a definition the names near the cursor need"))


def _guarded(
    prepared: PreparedCompletion, what: str, gather: Callable[..., list[ContextPiece]], *args: Any
) -> list[ContextPiece]:
    """Run one context source; an index failure costs that source, never the completion.

    Only index problems are absorbed; any other exception is a bug and fails the request.
    """
    try:
        return gather(*args)
    except IndexProblem as exc:
        log.warning("context source %r failed: %s", what, exc)
        prepared.notes.append(f"{what} unavailable: {exc}")
        return []


def _candidates(
    prepared: PreparedCompletion,
    index: Index | None,
    sources: _Sources | None,
    text: str,
    recent: Sequence[RecentEdit],
    window: tuple[int, int],
    cap: int,
) -> list[ContextPiece]:
    """Every context piece worth considering at the cursor, best first."""
    path, est, budget = prepared.path, prepared.estimator, prepared.budget_tokens
    if index is None or sources is None:
        prepared.notes.append("no index yet: repository context limited to open buffers")
        return _recent_pieces(path, recent, cap, est)
    candidates: list[ContextPiece] = []
    # Index queries release the GIL: the similar-code search and the definitions' texts run
    # side by side, which keeps the whole pipeline within a few tens of milliseconds.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="enclave-context") as pool:
        similar = pool.submit(_similar_hits, index, path, prepared.prefix, window)

        @cache  # asked once per module or package with many names: counted once
        def hints() -> Counter[str]:  # (a failed search is reported with its pieces below)
            try:
                return _names_elsewhere(similar.result(), path)
            except IndexProblem:
                return Counter()

        candidates += _guarded(
            prepared, "definitions", _definition_pieces, index, sources, path, text,
            prepared.line, prepared.language, window, cap, budget, est, hints,
        )  # fmt: skip
        candidates += _recent_pieces(path, recent, cap, est)
        candidates += _guarded(
            prepared, "similar code", lambda: _similar_pieces(similar.result(), cap, est)
        )
    return candidates


def prepare_completion(
    index: Index | None,
    path: str | Path,
    text: str,
    line: int,
    character: int,
    config: Config,
    *,
    recent: Sequence[RecentEdit] = (),
    estimator: TokenEstimator | None = None,
    keep: Sequence[ContextPiece] = (),
    refresh: bool = True,
) -> PreparedCompletion:
    """Cut prefix/suffix, decide multi-line, and gather the context pieces for one position.

    ``keep``: the pieces the previous completion at this editing spot sent. Those still true to
    their files go first, in their order: the prompt's beginning stays the same from one
    keystroke to the next, so the model's prompt cache is reused (see :func:`_stable_order`).
    ``refresh`` (the caller's choice when the cursor reached another line: new names near it):
    new candidates follow the kept pieces, and a definition those names need may push kept
    pieces out; without it, the kept pieces are all there is.

    ``path`` is repository-relative (or absolute inside the index root); ``text`` is the (possibly unsaved) document; ``line`` and
    ``character`` are a 0-based LSP position (UTF-16 columns). ``index`` may be None (no index
    yet): then only the recently edited buffers are used. ``estimator`` is the completion
    model's (it learns from the server's token counts); every budget is measured with it.
    """
    path = relative_path(index, path)
    boundary = Boundary(config)
    boundary.admit(Material(path, ()))  # a file that must never be sent gets no completion
    settings = config.completion
    language = language_of(path)
    est = estimator or TokenEstimator()
    before, after = split_at(text, line, character)
    cut = fit_cursor_text(before, after, settings, est, path=path, language=language)
    prefix, suffix, budget = cut.prefix, cut.suffix, cut.context_tokens
    multiline, why = decide_multiline(prefix, suffix, language)
    first_line = line - prefix.count("\n") + 1
    window = (first_line, line + 1 + suffix.count("\n"))
    cap = max(64, budget // 4)
    prepared = PreparedCompletion(
        path=path, language=language, line=line, character=character, prefix=prefix,
        suffix=suffix, multiline=multiline, multiline_reason=why, budget_tokens=budget,
        estimator=est,
    )  # fmt: skip
    sources = _Sources(index) if index is not None else None  # one read of each file
    if keep and not refresh:
        # Typing on the line the pieces were chosen at: they are all there is (nothing is
        # searched), less any whose lines changed.
        kept = [p for p in keep if _current(p, sources, recent)]
        pieces, prepared.dropped = fit_pieces(kept, budget, est, by_file=True)
    else:
        shrink = _shrinker(sources, est)
        candidates = _candidates(prepared, index, sources, text, recent, window, cap)
        candidates = _definitions_within(candidates, int(budget * DEFINITION_SHARE), est, shrink)
        if keep:
            ordered = _stable_order(keep, candidates, lambda p: _current(p, sources, recent))
            pieces, prepared.dropped = _fit_stable(ordered, set(keep), budget, est, shrink)
        else:
            pieces, prepared.dropped = fit_pieces(candidates, budget, est, shrink, by_file=True)
    # What the model client will send, exactly: the trust boundary redacts the text around the
    # cursor and every piece, and leaves out pieces from files that must not be sent.
    sealed = boundary.admit(Material(path, (prefix, suffix), tuple(pieces)))
    prepared.prefix, prepared.suffix = sealed.texts
    prepared.pieces = list(sealed.pieces)
    prepared.dropped += [Dropped(piece, f"never sent: {why}") for piece, why in sealed.dropped]
    if sealed.redactions:
        prepared.notes.append(f"{sealed.redactions} secret(s) redacted before sending")
    return prepared


def _piece_json(piece: ContextPiece, tokens: int) -> dict[str, Any]:
    return {
        "path": piece.path,
        "start_line": piece.start_line,
        "end_line": piece.end_line,
        "symbol": piece.symbol,
        "reason": piece.reason,
        "score": piece.score,
        "tokens": tokens,
        "text": piece.text,
    }


def report_of(prepared: PreparedCompletion) -> dict[str, Any]:
    """JSON-ready description of a prepared completion (1-based lines); a piece's tokens are
    what it adds to the prompt (the first of its file pays the file's block)."""
    est = prepared.estimator
    costs = context_tokens(prepared.pieces, est)
    return {
        "path": prepared.path,
        "line": prepared.line + 1,
        "character": prepared.character,
        "language": prepared.language,
        "multiline": prepared.multiline,
        "multiline_reason": prepared.multiline_reason,
        "prefix_tokens": est.count(prepared.prefix),
        "suffix_tokens": est.count(prepared.suffix),
        "prefix": prepared.prefix,
        "suffix": prepared.suffix,
        "budget_tokens": prepared.budget_tokens,
        "used_tokens": sum(costs),
        "pieces": [_piece_json(p, cost) for p, cost in zip(prepared.pieces, costs, strict=True)],
        # (a piece left out is costed alone, as the first of its file)
        "dropped": [
            {**_piece_json(d.piece, added_tokens(d.piece, est, ())), "why_dropped": d.why}
            for d in prepared.dropped
        ],
        "notes": prepared.notes,
    }
