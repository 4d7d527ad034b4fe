"""The symbols table as one completion reads it, and what imported modules offer besides their own
definitions (the names they take from other files, followed to their definitions when wanted).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from enclave.indexer.types import SymbolDef
from enclave.server.completion.sources.bindings import Binding, Repository, bindings, reexported
from enclave.server.completion.sources.files import RepoFiles, head_of
from enclave.server.completion.tuning import TUNING

if TYPE_CHECKING:
    from enclave.indexer.api import Index


@lru_cache(maxsize=1024)
def taken_of(
    file: str, mtime_ns: int, size: int, path: str, language: str, repo: Repository
) -> dict[str, Binding]:
    """What the module ``path`` (on disk: ``file``) takes from other files by name, kept while
    neither it nor the repository's files change: its imports are read once, not at every
    completion. (Only names and paths come of it: no text of it reaches a prompt.)"""
    found = bindings(path, head_of(file) or "", language, repo)
    return {name: b for name, b in found.items() if not b.is_module and name == b.original}


@lru_cache(maxsize=4)
def repository(paths: frozenset[str]) -> Repository:
    return Repository(paths)


class Symbols:
    """The symbols table as one completion reads it. Every index call checks that the table is
    current (a LanceDB round trip): the definitions of the names near the cursor are asked for
    in one call, and each file's symbols once."""

    def __init__(self, index: Index, names: Sequence[str]) -> None:
        self.index = index
        self._files: dict[str, list[SymbolDef]] = {}
        self._named: dict[str, list[SymbolDef]] = {}
        wanted = [n for n in names if "." not in n]
        for found in index.definitions(wanted, limit=len(wanted) * TUNING.max_definitions * 2):
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
        return self._named.get(name, [])[: TUNING.max_definitions * 2]

    def top_level(self, paths: Sequence[str], name: str) -> list[SymbolDef]:
        return [s for p in paths for s in self.of_file(p) if s.qualified_name == name]


class Modules:
    """What an imported module offers besides its own definitions: the names it takes from
    other files of the repository (``from email._parseaddr import quote`` in email/utils.py
    makes ``utils.quote``), followed to their definitions only when wanted."""

    def __init__(self, symbols: Symbols, sources: RepoFiles, language: str, repo: Repository):
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
                taken_of(*version, path, self.language, self.repo) if version else {}
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
        symbols :func:`enclave.server.completion.sources.definitions.definition_pieces` reads
        with the rest, in one index call)."""
        onward = [b for p in module.paths for n, b in self.taken(p).items() if n in wanted]
        found = (self._definition(b)[:1] for b in onward)
        return [d for defs in found for d in defs if d.path not in module.paths]
