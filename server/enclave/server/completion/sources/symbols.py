"""The symbols table as one completion reads it, and what imported modules offer besides their own
definitions (the names they take from other files, a package's ``from .x import *`` included,
followed to their definitions when wanted) and the submodules a package reaches.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from enclave.indexer.types import SymbolDef
from enclave.server.completion.sources.bindings import (
    JS_EXTENSIONS,
    Binding,
    Repository,
    bindings,
    exported_names,
    follow,
    lists_all,
    star_imports,
)
from enclave.server.completion.sources.files import REDACTED, RepoFiles, head_of
from enclave.server.completion.tuning import TUNING

if TYPE_CHECKING:
    from enclave.indexer.api import Index


@lru_cache(maxsize=1024)
def taken_of(
    file: str, mtime_ns: int, size: int, path: str, language: str, repo: Repository
) -> tuple[dict[str, Binding], tuple[tuple[str, str], ...]]:
    """What the module ``path`` (on disk: ``file``) takes from other files by name, and the
    modules it takes every public name of (``from .x import *``: file, import as written), kept
    while neither it nor the repository's files change: its imports are read once, not at
    every completion. (Only names and paths come of it: no text of it reaches a prompt.)"""
    text = head_of(file) or ""
    found = bindings(path, text, language, repo)
    taken = {name: b for name, b in found.items() if not b.is_module}
    stars = tuple(star_imports(path, text, repo)) if language != "go" else ()
    return taken, stars


@lru_cache(maxsize=1024)
def exports_of(
    file: str, mtime_ns: int, size: int, path: str, repo: Repository
) -> tuple[frozenset[str], bool]:
    """The names ``from <the module at path> import *`` (``export * from``) takes, and whether
    it also takes those the module's own stars give it (not past a Python ``__all__``), kept
    while the module does not change."""
    text = head_of(file) or ""
    return exported_names(text, path, repo), not lists_all(text, path)


# A line binding a name a TypeScript or JavaScript module exports to a value (what an importer
# can reach of it). Not Python's module-level assignments: measured with bench/quality.py, they
# cost the budget more than they gave (urllib3 97.8 -> 97.0 %, flask 100 -> 97.4 %, jinja2 99.2
# -> 97.6 %: loggers, type variables and constants pushed out the functions called).
_DECLARED = re.compile(r"^export[ \t]+(?:declare[ \t]+)?(?:const|let|var)[ \t]+([A-Za-z_$][\w$]*)")


@lru_cache(maxsize=1024)
def declared_of(file: str, mtime_ns: int, size: int, path: str) -> dict[str, SymbolDef]:
    """:meth:`Symbols.declared` of the file ``path`` (on disk: ``file``), from its redacted
    lines, kept while it does not change: not scanned again at every completion."""
    names: dict[str, SymbolDef] = {}
    for number, line in enumerate(REDACTED.lines(path, (file, mtime_ns, size)) or (), 1):
        match = _DECLARED.match(line)
        if match and match.group(1) not in names:
            names[match.group(1)] = SymbolDef(
                match.group(1), match.group(1), "variable", path, number, number, line.strip(), ""
            )
    return names


@lru_cache(maxsize=4)
def repository(paths: frozenset[str]) -> Repository:
    return Repository(paths)


class Symbols:
    """The symbols table as one completion reads it. Every index call checks that the table is
    current (a LanceDB round trip): the definitions of the names near the cursor are asked for
    in one call, and each file's symbols once."""

    def __init__(
        self, index: Index, names: Sequence[str], sources: RepoFiles | None = None
    ) -> None:
        self.index = index
        self.sources = sources  # the files, for the names they bind without a definition
        self._declared: dict[str, dict[str, SymbolDef]] = {}
        self._files: dict[str, list[SymbolDef]] = {}
        self._by_name: dict[str, dict[str, list[SymbolDef]]] = {}  # path -> qualified -> defs
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
        """The definitions of ``paths`` whose qualified name is ``name`` (asked once per name a
        package offers: looked up, not searched); where a file defines none, the module-level
        line that binds the name to a value (:meth:`declared`)."""
        found: list[SymbolDef] = []
        for path in paths:
            if path not in self._by_name:
                table: dict[str, list[SymbolDef]] = {}
                for symbol in self.of_file(path):
                    table.setdefault(symbol.qualified_name, []).append(symbol)
                self._by_name[path] = table
            own = self._by_name[path].get(name)
            if own is not None:
                found += own
            elif "." not in name and (value := self.declared(path).get(name)) is not None:
                found.append(value)
        return found

    def declared(self, path: str) -> dict[str, SymbolDef]:
        """The names a TypeScript or JavaScript module exports bound to a value the index has no
        definition for (``export const defineProperty = Object.defineProperty``, ``export var
        isObservableMap = createInstanceofPredicate(...)``), each as a one-line definition of
        kind ``variable``: what importing files call or read as any other name."""
        if path not in self._declared:
            script = PurePosixPath(path).suffix in JS_EXTENSIONS
            version = self.sources.version(path) if self.sources and script else None
            self._declared[path] = declared_of(*version, path) if version else {}
        return self._declared[path]


class Modules:
    """What an imported module offers besides its own definitions: the names it takes from
    other files of the repository (``from email._parseaddr import quote`` in email/utils.py
    makes ``utils.quote``), followed to their definitions only when wanted."""

    def __init__(self, symbols: Symbols, sources: RepoFiles, language: str, repo: Repository):
        self.symbols, self.sources, self.language, self.repo = symbols, sources, language, repo
        self._imported: dict[str, dict[str, Binding]] = {}
        self._starred: dict[str, set[str]] = {}  # of a module: the names its stars give it
        self._taken: dict[str, dict[str, Binding]] = {}

    def defined(self, file: str, name: str) -> bool:
        return bool(self.symbols.top_level([file], name))

    def imported(self, path: str) -> dict[str, Binding]:
        """The names the module at ``path`` takes from other files (none in Go: a package
        offers only what it declares), by name or by ``from .x import *``."""
        if path not in self._imported:
            self._imported[path] = {}  # (a cycle of stars meets it empty)
            version = self.sources.version(path) if self.language != "go" else None
            explicit, stars = (
                taken_of(*version, path, self.language, self.repo) if version else ({}, ())
            )
            taken = dict(explicit)
            starred: set[str] = set()
            for star, written in stars:
                at = self.sources.version(star)
                names, onward = exports_of(*at, star, self.repo) if at else (frozenset(), False)
                if onward:  # a barrel of barrels: what its own stars give it
                    self.imported(star)
                    names |= self._starred.get(star, set())
                for name in sorted(names):
                    if name not in taken:
                        taken[name] = Binding(name, (star,), name, written)
                        starred.add(name)
            self._imported[path], self._starred[path] = taken, starred
        return self._imported[path]

    def taken(self, path: str) -> dict[str, Binding]:
        """Of what the module at ``path`` imports, the names it offers as its own: ``x as y``
        is its own use of ``x`` (``as _x``: private), except in a package's entry
        (``__init__.py``, ``index.ts``), whose imports are what the package offers."""
        if path not in self._taken:
            entry = PurePosixPath(path).stem in ("__init__", "index", "mod")
            self._taken[path] = {
                name: b
                for name, b in self.imported(path).items()
                if name == b.original or (entry and not name.startswith("_"))
            }
        return self._taken[path]

    def follow(self, binding: Binding) -> Binding:
        """``binding`` followed through the files that only re-export its name."""
        return follow(binding, lambda path, name: self.imported(path).get(name), self.defined)

    def package_first(self, binding: Binding) -> Binding:
        """``from pkg import field`` (a submodule pkg/field.py) when pkg/__init__.py binds
        ``field`` itself (``from .field import field``, ``from .fields import *``): the
        package's name, as at run time, not the submodule."""
        at = PurePosixPath(binding.paths[0])
        if not binding.is_module or "." in binding.name or self.language != "python":
            return binding
        stem, folder = (
            (at.parent.name, at.parent.parent) if at.stem == "__init__" else (at.stem, at.parent)
        )
        entry = str(folder / "__init__.py")
        if entry not in self.repo.paths or not binding.module.endswith(stem):
            return binding
        own = self.imported(entry).get(stem)
        if own is None:
            return binding
        written = binding.module[: -len(stem)]
        written = written[:-1] if written.strip(".") else written  # `pkg.models.`, `.`
        return Binding(binding.name, (entry,), stem, written)

    def submodule(self, package: Binding, name: str) -> Binding | None:
        """``pkg.sub`` of an imported package ``pkg``: its module or package ``sub`` beside its
        ``__init__.py``."""
        for path in package.paths:
            at = PurePosixPath(path)
            found = (
                self.repo.python_file(str(at.parent), name) if at.name == "__init__.py" else None
            )
            if found is not None:
                return Binding(name, (found,), "", f"{package.module}.{name}")
        return None

    def _definition(self, taken: Binding) -> list[SymbolDef]:
        final = self.follow(taken)
        return [] if final.is_module else self.symbols.top_level(final.paths, final.original)

    def member(self, module: Binding, name: str) -> list[SymbolDef]:
        """The definition ``module.name`` refers to: the module's own, else the one it takes."""
        own = self.symbols.top_level(module.paths, name)
        if own:
            return own
        for path in module.paths:
            onward = self.imported(path).get(name)
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
