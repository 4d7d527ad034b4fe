"""Signatures of what the file imports (and, in Go, of its package's other files), ordered by what
the next line is likeliest to call: what the file uses, what similar code and other files call of
a module (member popularity, searched in the background), what the words near the cursor speak of.
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
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from enclave.indexer.errors import IndexProblem
from enclave.indexer.tokens import split_identifier
from enclave.indexer.types import SymbolDef
from enclave.server.completion.cursor import KEYWORDS, language_of
from enclave.server.completion.sources.bindings import (
    Binding,
    imported_not_used,
    member_uses,
    names_in,
)
from enclave.server.completion.sources.files import RepoFiles
from enclave.server.completion.sources.outline import outline, signature_lines
from enclave.server.completion.sources.symbols import Modules, Symbols
from enclave.server.completion.tuning import TUNING
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    from enclave.indexer.api import Index

log = logging.getLogger(__name__)


def outline_pieces(
    modules: Modules,
    sources: RepoFiles,
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
    piece per file: first what it imports and does not use yet, then the most recently used
    imports: what the next line may call.

    Where a module or package has more names than one piece shows, those this file uses come
    first, then those that code like the lines before the cursor uses elsewhere (``hints()``,
    asked only then: what similar code calls is what the next line is likely to call), then
    those other files use most. A module's names include those it takes from other files."""
    symbols = modules.symbols
    document = text.splitlines()
    before = "\n".join(document[:line])
    near = "\n".join(document[max(0, line - TUNING.words_lines) : line + 1])
    language = language_of(path)
    used = names_in(before, set(bound))
    # What the file imports and uses nowhere yet is what it is about to call: first.
    names = {name for name, binding in bound.items() if not binding.is_module}
    for name in imported_not_used(text, line, names):
        used[name] = len(before) + 1
    uses = member_uses(before, {b.name.split(".")[0] for b in bound.values() if b.is_module})
    wanted = _Wanted()
    for binding in bound.values():
        if binding.is_module:
            members = uses.get(binding.name, [])
            offered = _module_names(modules, binding, members, path, near, language, hints)
            wanted.want(offered, binding.module, used.get(binding.name, -1))
        else:
            found = symbols.top_level(binding.paths, binding.original)
            wanted.want(found, binding.module, used.get(binding.name, -1))
    if package:  # Go: the package's other files, the names this file uses first
        own, seen = _package_names(symbols, sources, package, before, near, hints)
        wanted.want(own, "this package", seen)
    return wanted.pieces(sources, shown, full)


class _Wanted:
    """The signatures to show, by file (file -> {def line: (symbol, import)}), with how
    recently each file's names were used and each signature's rank in its module's order."""

    def __init__(self) -> None:
        self.by_file: dict[str, dict[int, tuple[SymbolDef, str]]] = {}
        self.recency: dict[str, int] = {}
        self.signatures: set[tuple[str, str, str]] = set()
        self.ranks: dict[tuple[str, int], int] = {}

    def want(
        self, symbols: Sequence[SymbolDef], module: str, last_use: int | dict[str, int]
    ) -> None:
        """Show ``symbols`` (from ``module``, the likeliest to be called first), last used at
        ``last_use`` (or per name)."""
        for rank, symbol in enumerate(symbols):
            if (module, symbol.name, symbol.signature) in self.signatures:
                continue  # the same declaration in another file of it (Go build variants)
            self.signatures.add((module, symbol.name, symbol.signature))
            self.by_file.setdefault(symbol.path, {}).setdefault(symbol.start_line, (symbol, module))
            self.ranks.setdefault((symbol.path, symbol.start_line), rank)
            at = last_use if isinstance(last_use, int) else last_use.get(symbol.name, -1)
            self.recency[symbol.path] = max(self.recency.get(symbol.path, -1), at)

    def pieces(
        self, sources: RepoFiles, shown: set[tuple[str, int]], full: Sequence[ContextPiece]
    ) -> list[ContextPiece]:
        """One piece per file, most recently used first (ties keep their order); a full
        definition between two signatures of a file parts them into two pieces."""
        pieces: list[ContextPiece] = []
        for file in sorted(self.by_file, key=lambda f: -self.recency[f]):
            by_line = self.by_file[file]
            lines = sources.lines(file)
            if lines is None:
                continue
            run: list[tuple[SymbolDef, str, list[str], int, int]] = []
            for start in sorted(by_line):
                symbol, module = by_line[start]
                if (file, start) in shown:
                    continue
                signature, end = signature_lines(lines, symbol)
                # a full definition between the run's start and this signature ends the run
                if run and any(
                    p.path == file and run[0][0].start_line <= p.end_line and p.start_line <= end
                    for p in full
                ):
                    pieces.append(outline(file, run))
                    run = []
                run.append((symbol, module, signature, end, self.ranks[(file, start)]))
            if run:
                pieces.append(outline(file, run))
        return pieces


def _module_names(
    modules: Modules,
    binding: Binding,
    members: Sequence[str],
    path: str,
    near: str,
    language: str,
    hints: Callable[[], Counter[str]],
) -> list[SymbolDef]:
    """The names an imported module offers, likeliest to be called first: what the file already
    uses of it (``members``, last used first), then, when it has more names than are shown,
    what other files use of it (most used first: `logging.getLogger`), then its other public
    names."""
    symbols = modules.symbols
    top = [s for p in binding.paths for s in symbols.of_file(p) if "." not in s.qualified_name]
    taken = {n: b for p in binding.paths for n, b in modules.taken(p).items()}
    many = len(top) + len(taken) > TUNING.module_signatures
    # a name taken from elsewhere, not re-exported, is offered when code uses it through
    # the module: this file, similar code (its search runs anyway), other files' calls
    # (searched in the background only for a module of many names: a search per module
    # that takes anything cost every completion's p95 10 ms in bench/bench_server.py)
    reexports = {n for n, b in taken.items() if _reexport(binding.paths, b.paths)}
    calls = popular_members(symbols.index, path, binding.name) if many else Counter()
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
    said = affinity({s.name for s in exported}, near, binding.name) if many else {}
    exported.sort(
        key=lambda s: (
            rank.get(s.name, len(rank)),
            -hint[s.name],
            -calls[s.name],
            s.path,
            s.start_line,
        )
    )
    return _cut(exported, said)


def _package_names(
    symbols: Symbols,
    sources: RepoFiles,
    package: Sequence[str],
    before: str,
    near: str,
    hints: Callable[[], Counter[str]],
) -> tuple[list[SymbolDef], dict[str, int]]:
    """Go: the names of the package's other files, those this file uses first (and where it
    last used each: the second of the pair), then those similar code and the package's files
    use most."""
    own = [s for p in package for s in symbols.of_file(p) if "." not in s.qualified_name]
    seen = names_in(before, {s.name for s in own})
    users = Counter(n for p in package for n in sources.names(p))  # files using each name
    many = len(own) > TUNING.module_signatures
    hint = hints() if many else Counter()
    said = affinity({s.name for s in own}, near) if many else {}
    if said:
        _near_files(said, package, symbols, near)
    own.sort(
        key=lambda s: (-seen.get(s.name, -1), -hint[s.name], -users[s.name], s.path, s.start_line)
    )
    return _cut(own, said), seen


# (index, module name) -> (when searched, [(path, members used)] of the chunks found)
_popular: OrderedDict[tuple[str, str], tuple[float, list[tuple[str, Counter[str]]]]] = OrderedDict()
_popular_lock = threading.Lock()
_popular_asked: set[tuple[str, str]] = set()
_popular_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enclave-popular")


def popular_members(index: Index, path: str, module: str, *, wait: bool = False) -> Counter[str]:
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
        if kept is not None and time.monotonic() - kept[0] < TUNING.popular_seconds:
            return kept[1]
        if not wait:
            if key not in _popular_asked:
                _popular_asked.add(key)
                _popular_pool.submit(_search_uses, index, module, key)
            return kept[1] if kept is not None else []
    return _search_uses(index, module, key)


def _search_uses(index: Index, module: str, key: tuple[str, str]) -> list[tuple[str, Counter[str]]]:
    try:
        hits = index.search(module, k=TUNING.popular_chunks, mode="lexical").hits
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
        while len(_popular) > TUNING.popular_kept:
            _popular.popitem(last=False)
    return uses


def _cut(ordered: Sequence[SymbolDef], said: dict[str, float]) -> list[SymbolDef]:
    """The first TUNING.module_signatures of ``ordered``, then up to TUNING.said_signatures of the rest that
    the words near the cursor speak of (``said``: :func:`affinity`), most spoken of first.
    Added, never in place of the first: as an order, those guesses pushed out names other
    files call (bench/quality.py lost more cases than it won)."""
    rest = sorted(ordered[TUNING.module_signatures :], key=lambda s: -said.get(s.name, 0.0))
    spoken = [s for s in rest if said.get(s.name, 0.0) > 0]
    return [*ordered[: TUNING.module_signatures], *spoken[: TUNING.said_signatures]]


def _words(text: str) -> frozenset[str]:
    """The words ``text`` is made of, lower case, of 3 characters or more, keywords left out:
    ``encode_rfc2231`` -> encode, rfc, 2231; ``getLogger`` -> get, logger; ``HTTPServer`` ->
    http, server."""
    return frozenset(part for part in split_identifier(text) if len(part) >= 3) - KEYWORDS


_parts = lru_cache(maxsize=8192)(_words)  # of a name: names come back


def affinity(names: Collection[str], near: str, owner: str = "") -> dict[str, float]:
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
    said: dict[str, float], package: Sequence[str], symbols: Symbols, near: str
) -> None:
    """Add to ``said`` the names of the package's files that define what the lines near the
    cursor use (a type, a function, a method: `ptrs.PushPair` of `pointerReferences`): the
    functions written beside a type are those that work with it (`wrapTrunkReferences`)."""
    every = [s for p in package for s in symbols.of_file(p)]
    used = names_in(near, {s.name for s in every})
    close = {s.path for s in every if s.name in used}
    for symbol in every:
        if symbol.path in close and "." not in symbol.qualified_name and symbol.name not in used:
            said[symbol.name] = said.get(symbol.name, 0.0) + TUNING.near_file


def _public(name: str, language: str) -> bool:
    """A name other files are meant to use (Go: capitalised; elsewhere: no leading _)."""
    return name[:1].isupper() if language == "go" else not name.startswith("_")
