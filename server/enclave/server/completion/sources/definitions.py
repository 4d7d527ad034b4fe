"""Definitions of the names used near the cursor, resolved through what the file's imports bind
(``enclave.server.completion.sources.bindings``), the class a local name holds, the file's own
package; each summarised to fit its share of the budget.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from enclave.indexer.file_roles import outside_the_code
from enclave.indexer.types import SymbolDef
from enclave.server.completion.cursor import BARE, language_of, names_near
from enclave.server.completion.sources.bindings import (
    Binding,
    bindings,
    receiver_types,
    same_package,
)
from enclave.server.completion.sources.files import RepoFiles
from enclave.server.completion.sources.imports import outline_pieces
from enclave.server.completion.sources.symbols import Modules, Symbols, repository
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import (
    TokenEstimator,
    keep_head,
)
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    from enclave.indexer.api import Index


def _definition_text(
    index: Index,
    sources: RepoFiles,
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


@dataclass(frozen=True, slots=True)
class _Pick:
    """A definition chosen for the names near the cursor, and why; ``called``: the cursor's
    line calls it (it goes first, before any signatures, however certain it is)."""

    score: float
    definition: SymbolDef
    why: str
    called: bool = False


_CALL = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*(?:[ \t]*\.[ \t]*[A-Za-z_$][\w$]*)*)[ \t]*\(")


def called_on(line: str) -> set[str]:
    """The names a line calls, as the names near the cursor spell them: ``self.store.get(k)``
    gives ``self.store.get``, ``store.get`` and ``get`` (every dotted tail of the callee)."""
    called: set[str] = set()
    for match in _CALL.finditer(line):
        parts = [part.strip() for part in match.group(1).split(".")]
        called |= {".".join(parts[start:]) for start in range(len(parts))}
    return called


def _resolve_near(
    symbols: Symbols,
    path: str,
    name: str,
    bare: set[str],
    bound: dict[str, Binding],
    package: tuple[str, ...],
    types: dict[str, str],
    modules: Modules,
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
        if binding is not None and binding.is_module:
            return _module_member(modules, name, head, binding, member)
        if "." in member:
            return []
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
        return [_Pick(TUNING.certain, d, why) for d in found]
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
                    TUNING.certain if definition.qualified_name == name else 2.0,
                    definition,
                    f"definition of `{name}` (used near the cursor, this {'file' if definition.path == path else 'package'})",
                )
            )
        elif definition.qualified_name == name or name not in bare:
            picks.append(_Pick(1.0, definition, f"definition of `{name}` (used near the cursor)"))
    return picks


def _module_member(
    modules: Modules, name: str, head: str, module: Binding, member: str
) -> list[_Pick]:
    """``module.member`` (``utils.quote``), also through the package's submodules
    (``pkg.sub.name``), as the module defines it or takes it from another file."""
    why = f"definition of `{name}` (module `{head}` imported by this file from {module.module})"
    *within, member = member.split(".")
    for sub in within:
        inner = modules.submodule(module, sub)
        if inner is None:
            return []
        module = inner
    return [_Pick(TUNING.certain, d, why) for d in modules.member(module, member)]


def _methods_of(
    symbols: Symbols,
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
            TUNING.certain if where else 3.0,
            d,
            f"definition of `{name}` ("
            + (f"a member of `{cls}`, " if head == cls else f"`{head}` is a `{cls}`, ")
            + f"{where or ('this file' if d.path == path else 'this package')})",
        )
        for d in found
    ]


def definition_pieces(
    index: Index,
    sources: RepoFiles,
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
    ``hints()``: the names similar code elsewhere uses (see outline_pieces)."""
    lines = text.splitlines()
    near = names_near(lines, line, language)[:40]
    first = max(0, line - TUNING.near_before)
    bare = set(BARE.findall("\n".join(lines[first : line + TUNING.near_after + 1])))
    symbols = Symbols(index, near, sources)
    modules, bound, package = _imports(symbols, sources, path, text, language)
    family = _family(language)
    typed = receiver_types("\n".join(lines[max(0, line - TUNING.typed_before) : line + 1]), family)
    called = called_on(lines[line]) if 0 <= line < len(lines) else set()
    picks: list[_Pick] = []
    for name in near:
        found = [
            pick
            for pick in _resolve_near(symbols, path, name, bare, bound, package, typed, modules)
            if _shows_more(pick.definition, path, window, family)
        ]
        picks += [replace(pick, called=_surely_called(name, found, called, path)) for pick in found]
    chosen = _choose(picks, cap, budget)
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
    # what the cursor's line calls comes first, before any signatures, however certain it is
    leads = [c.called or p.score >= TUNING.certain for p, c in zip(pieces, chosen, strict=True)]
    certain = [p for p, lead in zip(pieces, leads, strict=True) if lead]
    rest = [p for p, lead in zip(pieces, leads, strict=True) if not lead]
    # the outlines come before the less certain definitions, which the budget may drop: only
    # what comes before them is left out of them
    shown = {(p.path, p.start_line) for p in certain}
    outlines = outline_pieces(
        modules, sources, path, text, line, bound, package, shown, pieces, hints
    )
    return certain + outlines + rest


def _shows_more(definition: SymbolDef, path: str, window: tuple[int, int], family: str) -> bool:
    """Not already visible in the prefix/suffix, and of the file's language family (a Python
    `stop` is not defined by a TypeScript `stop()`)."""
    if definition.path == path and window[0] <= definition.start_line <= window[1]:
        return False
    return _family(language_of(definition.path)) == family


def _surely_called(name: str, found: Sequence[_Pick], called: set[str], path: str) -> bool:
    """The cursor's line calls ``name`` and ``found`` is what it calls: what the imports or
    the code say it is, or the one definition it may be (not a test's, from code that is not
    a test)."""
    if name not in called or not found:
        return False
    if found[0].score >= TUNING.certain:
        return True
    return len(found) == 1 and (
        not outside_the_code(found[0].definition.path) or outside_the_code(path)
    )


def _imports(
    symbols: Symbols, sources: RepoFiles, path: str, text: str, language: str
) -> tuple[Modules, dict[str, Binding], tuple[str, ...]]:
    """What the file's imports bind, each name followed through the files that only re-export
    it, and the other files of its package (Go); the symbols of every file they name (and of
    the files an imported module takes names from) read in one index call."""
    repo = repository(symbols.index.paths())
    modules = Modules(symbols, sources, language, repo)
    imported = {
        n: modules.package_first(b) for n, b in bindings(path, text, language, repo).items()
    }
    package = same_package(path, language, repo)
    files = {path, *package, *(p for b in imported.values() for p in b.paths)}
    files |= {
        p
        for b in imported.values()
        if b.is_module
        for m in b.paths
        for taken in modules.taken(m).values()
        for p in taken.paths
    }
    symbols.read(files)
    bound = {name: modules.follow(binding) for name, binding in imported.items()}
    return modules, bound, package


def _choose(picks: list[_Pick], cap: int, budget: int) -> list[_Pick]:
    """The definitions to show, what the cursor's line calls first, then the most certain
    (stable: closest names first within a score), while the tokens their lines promise fit:
    a class replaces the methods of it already chosen, a definition overlapping a chosen one
    is left out."""
    picks = sorted(picks, key=lambda pick: (not pick.called, -pick.score))
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
        expected += min(cap, (d.end_line - d.start_line + 1) * TUNING.line_tokens)
        if len(chosen) >= TUNING.max_definitions or expected >= budget:
            break
    return chosen
