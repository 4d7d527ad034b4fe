"""What a file's imports bind, resolved to files of the repository.

``from .utils import quote as q`` binds ``q`` to ``quote`` in ``pkg/utils.py``; ``import pkg.utils
as u`` and ``from pkg import utils`` bind a module, as Go's ``import "example.com/m/pkg"`` binds a
package (its folder's files). Re-exports are followed a few steps (``__init__.py``, its ``from .x
import *`` as ``__all__`` allows, TypeScript ``index`` files, a barrel's ``export * from``).
``from pkg import name`` is a submodule only beside the package's ``__init__.py``; a module name
matched by its end (src layouts, installed names) is never a test or example module unless the
importer is one. Only the repository's own files resolve: the standard library and third-party
packages are not indexed.
The buffer may be half-typed, so imports are read line by line, never by parsing the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from keyword import iskeyword
from pathlib import PurePosixPath

from enclave.indexer.file_roles import outside_the_code

REEXPORT_DEPTH = 3
# Folders whose code the rest of a repository never imports: tests, examples, docs.

# the names: in parentheses, or to the end of the line, continued past a backslash at its end
_PY_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)?|(?:[^\n#;\\]|\\\n)*)",
    re.MULTILINE,
)
_PY_IMPORT = re.compile(
    r"^[ \t]*import[ \t]+([\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)",
    re.MULTILINE,
)
_JS_FROM = re.compile(
    r"^[ \t]*(?:import|export)[ \t]+(type[ \t]+)?([^;'\"]*?)[ \t]*from[ \t]*['\"]([^'\"]+)['\"]",
    re.MULTILINE,
)
_GO_SINGLE = re.compile(r'^[ \t]*import[ \t]+(?:(\w+|\.)[ \t]+)?"([^"]+)"', re.MULTILINE)
_GO_GROUP = re.compile(r"^[ \t]*import[ \t]*\(([^)]*)\)", re.MULTILINE)
_GO_SPEC = re.compile(r'^[ \t]*(?:(\w+|\.)[ \t]+)?"([^"]+)"', re.MULTILINE)
JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


@dataclass(frozen=True, slots=True)
class Binding:
    """A name a file uses and where it comes from: ``original`` in ``paths`` (a definition), or
    the whole of ``paths`` when ``original`` is empty (a module or package)."""

    name: str
    paths: tuple[str, ...]
    original: str
    module: str  # the import as written, for the report

    @property
    def is_module(self) -> bool:
        return not self.original


class Repository:
    """The repository's files as far as imports can tell: which exist, which module is which."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = frozenset(paths)
        self._modules: dict[str, list[str]] = {}
        self._folders: dict[str, list[str]] = {}
        for path in sorted(self.paths):
            pure = PurePosixPath(path)
            self._folders.setdefault(str(pure.parent), []).append(path)
            if pure.suffix != ".py":
                continue
            parts = list(pure.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            for start in range(len(parts)):  # "a.b.c", "b.c", "c": src layouts, links
                self._modules.setdefault(".".join(parts[start:]), []).append(path)

    def python_module(self, dotted: str, importer: str = "") -> str | None:
        """The file of an absolute module name; the one whose whole path matches first, else
        the shortest whose path ends with it, never a test or example module unless the
        ``importer`` is one (to a package, ``models.field`` is never a ``field.py`` in a test
        folder)."""
        found = self._modules.get(dotted, [])
        parts = dotted.split(".")
        for candidate in (f"{'/'.join(parts)}.py", f"{'/'.join(parts)}/__init__.py"):
            if candidate in found:
                return candidate
        if not outside_the_code(importer):
            found = [p for p in found if not outside_the_code(p)]
        if not found:  # `enclave.server.context` for server/context.py: drop leading parts
            return self.python_module(".".join(parts[1:]), importer) if len(parts) > 1 else None
        return min(found, key=len)

    def python_file(self, folder: str, name: str) -> str | None:
        """The module or package ``name`` in ``folder`` (``name.py``, ``name/__init__.py``)."""
        base = f"{folder}/{name}" if folder not in ("", ".") else name
        return next((c for c in (f"{base}.py", f"{base}/__init__.py") if c in self.paths), None)

    def folder(self, folder: str) -> list[str]:
        return self._folders.get(folder, [])

    def go_package(self, import_path: str) -> list[str]:
        """The Go files of the folder whose path ends the import path (longest match)."""
        parts = import_path.split("/")
        for start in range(len(parts)):
            files = [p for p in self.folder("/".join(parts[start:])) if p.endswith(".go")]
            if files:
                return [p for p in files if not p.endswith("_test.go")]
        return []

    def js_module(self, importer: str, spec: str) -> str | None:
        if not spec.startswith("."):
            return None  # a package, not the repository's own code
        base = PurePosixPath(importer).parent / spec
        normal = _normalise(str(base))
        if normal is None:
            return None
        stem = re.sub(r"\.(js|jsx|mjs|cjs)$", "", normal)
        candidates = [normal, *(stem + ext for ext in JS_EXTENSIONS)]
        candidates += [f"{stem}/index{ext}" for ext in JS_EXTENSIONS]
        return next((c for c in candidates if c in self.paths), None)


def _normalise(path: str) -> str | None:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _python_from(path: str, dots: str, module: str, repo: Repository) -> tuple[str | None, str]:
    """The file a ``from`` import names, and the folder its submodules are in ("" when it has
    none: a plain module, or a package not found)."""
    if dots:
        package = list(PurePosixPath(path).parent.parts)
        up = len(dots) - 1
        if up > len(package):
            return None, ""
        base = package[: len(package) - up] if up else package
        folder = "/".join([*base, *module.split(".")]) if module else "/".join(base)
        file = repo.python_file(str(PurePosixPath(folder).parent), PurePosixPath(folder).name)
        if not module and not base:
            file = "__init__.py" if "__init__.py" in repo.paths else None
        return file, folder or "."
    file = repo.python_module(module, path)
    return file, file.rsplit("/", 1)[0] if file and file.endswith("/__init__.py") else ""


def _python_bindings(path: str, text: str, repo: Repository) -> list[Binding]:
    found: list[Binding] = []
    for dots, module, names in _PY_FROM.findall(text):
        file, folder = _python_from(path, dots, module, repo)
        written = dots + module
        for item in names.strip("()").replace("\\", " ").replace("\n", ",").split(","):
            parts = item.split()
            if not parts or parts[0] == "*":
                continue
            original, alias = parts[0], parts[-1] if len(parts) == 3 else parts[0]
            # `from pkg import mod`: a submodule beside pkg/__init__.py (never one elsewhere
            # whose path happens to end so), else a name pkg/__init__.py binds
            sub = repo.python_file(folder, original) if folder else None
            if sub is None and file is None and module and not dots:  # (a namespace package)
                sub = repo.python_module(f"{module}.{original}", path)
            if sub and sub != file:  # (`from m.f import f`: f is a name)
                joined = written + original if written.endswith(".") else f"{written}.{original}"
                found.append(Binding(alias, (sub,), "", joined))
            elif file is not None:
                found.append(Binding(alias, (file,), original, written))
    for group in _PY_IMPORT.findall(text):
        for item in group.split(","):
            parts = item.split()
            if not parts:
                continue
            file = repo.python_module(parts[0], path)
            if file is None:
                continue
            alias = parts[-1] if len(parts) == 3 else parts[0]
            found.append(Binding(alias, (file,), "", parts[0]))
    return found


def star_imports(path: str, text: str, repo: Repository) -> list[tuple[str, str]]:
    """The repository's modules ``text`` (the file at ``path``) takes every public name of
    (Python ``from .fields import *``; TypeScript and JavaScript ``export * from "./atom"``, a
    barrel file's re-exports), each with the import as written."""
    found = []
    if PurePosixPath(path).suffix in JS_EXTENSIONS:
        for spec in _JS_STAR.findall(text):
            file = repo.js_module(path, spec)
            if file is not None and file != path:
                found.append((file, spec))
        return found
    for dots, module, names in _PY_FROM.findall(text):
        if names.strip("() \t") == "*":
            file = _python_from(path, dots, module, repo)[0]
            if file is not None and file != path:
                found.append((file, dots + module))
    return found


_JS_STAR = re.compile(r"^[ \t]*export[ \t]+\*[ \t]+from[ \t]*['\"]([^'\"]+)['\"]", re.MULTILINE)
# What a module exports by name (``export * from`` takes these, never its default export):
# ``export function f``, ``export declare abstract class C``, ``export const x``, ...
_JS_EXPORTED = re.compile(
    r"^[ \t]*export[ \t]+(?:declare[ \t]+)?(?:abstract[ \t]+)?(?:async[ \t]+)?"
    r"(?:function[ \t]*\*?|class|const|let|var|interface|type|enum|namespace)[ \t]+"
    r"([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_JS_EXPORT_LIST = re.compile(r"^[ \t]*export[ \t]+(?:type[ \t]+)?\{([^}]*)\}", re.MULTILINE)


_ALL = re.compile(
    r"^__all__[ \t]*(?::[^=\n]*)?(?:\+?=|\.extend\(|\.append\()[ \t]*([\[(]?[^\])]*[\])]?)",
    re.MULTILINE,
)
_QUOTED = re.compile(r"""['"]([A-Za-z_]\w*)['"]""")
_TOP_NAME = re.compile(
    r"^(?:(?:async[ \t]+)?def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE
)


def lists_all(text: str, path: str) -> bool:
    """Whether the Python module ``text`` lists what ``import *`` takes of it (``__all__``):
    then nothing else, not even what its own stars take."""
    return PurePosixPath(path).suffix == ".py" and _ALL.search(text) is not None


def exported_names(text: str, path: str, repo: Repository) -> frozenset[str]:
    """The names ``from module import *`` takes from a Python module (its text): those its
    ``__all__`` lists, else its public top-level names (defined or imported); those ``export *
    from`` takes from a TypeScript or JavaScript module: what it exports by name (declared
    ``export``, listed in ``export { a, b as c }``, re-exported ``from`` another file)."""
    if PurePosixPath(path).suffix in JS_EXTENSIONS:
        names = set(_JS_EXPORTED.findall(text))
        for listed in _JS_EXPORT_LIST.findall(text):
            for item in listed.split(","):
                parts = item.replace("type ", " ").split()
                if parts and parts[-1] != "default":
                    names.add(parts[-1])
        return frozenset(names)
    listed = [n for group in _ALL.findall(text) for n in _QUOTED.findall(group)]
    if listed:
        return frozenset(listed)
    names = {a or b for a, b in _TOP_NAME.findall(text)}
    names |= {b.name for b in _python_bindings(path, text, repo)}
    return frozenset(n for n in names if not n.startswith("_") and not iskeyword(n))


def _js_bindings(path: str, text: str, repo: Repository) -> list[Binding]:
    found: list[Binding] = []
    for _type, clause, spec in _JS_FROM.findall(text):
        file = repo.js_module(path, spec)
        if file is None:
            continue
        clause = clause.strip()
        star = re.match(r"\*\s+as\s+([\w$]+)", clause)
        if star:
            found.append(Binding(star.group(1), (file,), "", spec))
            continue
        braces = re.search(r"\{([^}]*)\}", clause)
        default = clause.split("{", 1)[0].strip().rstrip(",").strip()
        if default and re.fullmatch(r"[\w$]+", default):
            found.append(Binding(default, (file,), "default", spec))
        for item in (braces.group(1) if braces else "").split(","):
            parts = item.replace("type ", " ").split()
            if parts:
                original = parts[0]
                alias = parts[-1] if len(parts) == 3 else original
                found.append(Binding(alias, (file,), original, spec))
    return found


def _go_bindings(path: str, text: str, repo: Repository) -> list[Binding]:
    specs = [(alias, spec) for alias, spec in _GO_SINGLE.findall(text)]
    for group in _GO_GROUP.findall(text):
        specs += _GO_SPEC.findall(group)
    found: list[Binding] = []
    for alias, spec in specs:
        files = repo.go_package(spec)
        if files and alias not in ("_", "."):
            found.append(Binding(alias or spec.rsplit("/", 1)[-1], tuple(files), "", spec))
    return found


BINDERS: dict[str, Callable[[str, str, Repository], list[Binding]]] = {
    "python": _python_bindings,
    "javascript": _js_bindings,
    "typescript": _js_bindings,
    "tsx": _js_bindings,
    "go": _go_bindings,
}


def bindings(path: str, text: str, language: str, repo: Repository) -> dict[str, Binding]:
    """The names ``text`` (the file at ``path``) imports from the repository; a later import of
    a name wins, as it does at run time."""
    binder = BINDERS.get(language)
    return {b.name: b for b in binder(path, text, repo)} if binder else {}


def same_package(path: str, language: str, repo: Repository) -> tuple[str, ...]:
    """Files whose top-level names ``path`` uses without importing them (Go: its package)."""
    if language != "go":
        return ()
    folder = str(PurePosixPath(path).parent)
    return tuple(
        p for p in repo.folder(folder) if p != path and p.endswith(".go") and "_test" not in p
    )


def follow(
    binding: Binding,
    onward: Callable[[str, str], Binding | None],
    defined: Callable[[str, str], bool],
    depth: int = REEXPORT_DEPTH,
) -> Binding:
    """Follow a name through files that only re-export it (``__init__.py``, ``index.ts``):
    ``onward(file, name)`` is how that file takes the name (an import of it, or a
    ``from .x import *`` that gives it), None when it takes it from nowhere."""
    current = binding
    for _ in range(depth):
        if current.is_module or any(defined(p, current.original) for p in current.paths):
            return current
        found = onward(current.paths[0], current.original)
        if found is None:
            return current
        current = Binding(binding.name, found.paths, found.original, binding.module)
    return current


_CHAIN = re.compile(r"(?<![\w.$])[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")


def member_uses(text: str, heads: Collection[str] | None = None) -> dict[str, list[str]]:
    """For every ``module.f`` in ``text`` (``module`` dotted or not), ``{module: [f, ...]}``,
    last use first. One pass over the text serves every imported module. ``heads``: only the
    chains that start with one of these names (a file's module bindings; ``self.x`` and the
    like are most of a class's chains, and a large file's are thousands)."""
    last: dict[str, dict[str, int]] = {}
    for match in _CHAIN.finditer(text):
        chain = match.group(0)
        if heads is not None and chain[: chain.index(".")] not in heads:
            continue
        parts = chain.split(".")
        for cut in range(1, len(parts)):
            last.setdefault(".".join(parts[:cut]), {})[parts[cut]] = match.start()
    return {module: sorted(seen, key=lambda name: -seen[name]) for module, seen in last.items()}


_BARE_NAME = re.compile(r"(?<![\w.$])([A-Za-z_$][\w$]*)")
# Up to this many names, each is looked for on its own (str.rfind, in C); more, and one pass over
# every identifier of the text is cheaper (a Go package's names).
_FEW_NAMES = 64


def _bare(text: str, name: str, at: int) -> bool:
    """``name`` at ``at`` is a whole name, not an attribute (``x.name``) nor part of another."""
    if at > 0:
        before = text[at - 1]
        if before.isalnum() or before in "_.$":
            return False
    end = at + len(name)
    return end >= len(text) or not (text[end].isalnum() or text[end] in "_$")


def _last_bare(text: str, name: str) -> int:
    end = len(text)
    while (at := text.rfind(name, 0, end)) >= 0:
        if _bare(text, name, at):
            return at
        end = at + len(name) - 1
    return -1


def _first_bare(text: str, name: str) -> int:
    start = 0
    while (at := text.find(name, start)) >= 0:
        if _bare(text, name, at):
            return at
        start = at + 1
    return -1


def names_in(text: str, names: Collection[str]) -> dict[str, int]:
    """Where each of ``names`` is last used in ``text`` (bare, not as an attribute)."""
    last: dict[str, int] = {}
    if len(names) <= _FEW_NAMES:
        for name in names:
            at = _last_bare(text, name)
            if at >= 0:
                last[name] = at
        return last
    for match in _BARE_NAME.finditer(text):
        if match.group(1) in names:
            last[match.group(1)] = match.start()
    return last


def imported_not_used(text: str, line: int, names: Collection[str]) -> set[str]:
    """Those of ``names`` (names the document's import statements bind) that the document
    ``text`` writes once, bare, on a line above ``line`` (0-based, the cursor's): in their
    import, for a use not written yet. Substring searches only, in C: no pass in Python over the
    document's identifiers, no copy of it."""
    found = set()
    for name in names:
        at = _first_bare(text, name)
        if 0 <= at == _last_bare(text, name) and text.count("\n", 0, at) < line:
            found.add(name)
    return found


# What a local name holds, when the code says so: `x = Shelf(...)`, `x: Shelf`, `const x = new
# Shelf(...)`, `x := &Shelf{...}`, a Go method's receiver `func (s *Shelf)`. The class is written
# with a capital (a call of a lower-case function may return anything).
_TYPED = {
    "python": (
        re.compile(r"(?<![\w.])(\w+)[ \t]*(?::[ \t]*[\w.\[\], |]+)?=[ \t]*((?:\w+\.)?[A-Z]\w*)\("),
        re.compile(r"(?<![\w.])(\w+)[ \t]*:[ \t]*((?:\w+\.)?[A-Z]\w*)[ \t]*[,)=\n]"),
        re.compile(r"\bwith[ \t]+((?:\w+\.)?[A-Z]\w*)\(.*?\)[ \t]+as[ \t]+(\w+)", re.DOTALL),
    ),
    "ecmascript": (
        re.compile(
            r"(?<![\w$.])([\w$]+)[ \t]*(?::[^=;\n]*)?=[ \t]*new[ \t]+((?:[\w$]+\.)?[A-Z][\w$]*)"
        ),
        re.compile(r"(?<![\w$.])([\w$]+)\??[ \t]*:[ \t]*((?:[\w$]+\.)?[A-Z][\w$]*)[ \t]*[,);=\n<]"),
    ),
    "go": (
        re.compile(r"\bfunc[ \t]*\([ \t]*(\w+)[ \t]+\*?((?:\w+\.)?\w+)"),
        re.compile(r"(?<![\w.])(\w+)[ \t]*:?=[ \t]*&?((?:\w+\.)?[A-Z]\w*)[ \t]*\{"),
        re.compile(r"\bvar[ \t]+(\w+)[ \t]+\*?((?:\w+\.)?[A-Z]\w*)"),
    ),
}


def receiver_types(text: str, family: str) -> dict[str, str]:
    """Local names whose class the code states (the last statement wins), e.g. ``{"shelf":
    "Shelf", "s": "store.Shelf"}``."""
    found: list[tuple[int, str, str]] = []
    for pattern in _TYPED.get(family, ()):
        for match in pattern.finditer(text):
            name, cls = match.group(1), match.group(2)
            if pattern.pattern.startswith(r"\bwith"):
                name, cls = cls, name
            found.append((match.start(), name, cls))
    return {name: cls for _, name, cls in sorted(found)}


# -- what a piece of code refers to (explain) ----------------------------------------------------

_MEMBER = re.compile(
    r"(?<![\w$.])(super[ \t]*\([^()]*\)|[A-Za-z_$][\w$]*)[ \t]*\.[ \t]*([A-Za-z_$][\w$]*)"
)
_BARE = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)")
_BASES = (
    re.compile(r"^\s*class\s+\w+\s*\(([^)]*)\)"),  # Python: class Circle(Shape, Mixin):
    re.compile(r"\bclass\s+[\w$]+(?:\s*<[^>]*>)?\s+extends\s+([\w$.]+)"),  # JS/TS, Java
)


@dataclass(frozen=True, slots=True)
class References:
    """Names a piece of code uses: on their own (``bare``, most used first) and as members of a
    receiver (``members``: ``(receiver, name)`` in order of first use; the receiver is
    ``"super()"`` for a call through ``super()``, else the name before the dot). A member of a
    member (``a.b.c``'s ``c``) has no receiver that can be named, so it is in neither."""

    bare: tuple[str, ...]
    members: tuple[tuple[str, str], ...]


def references(text: str) -> References:
    counts: dict[str, int] = {}
    for match in _BARE.finditer(text):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    members: dict[tuple[str, str], None] = {}
    for match in _MEMBER.finditer(text):
        receiver = "super()" if match.group(1).startswith("super") else match.group(1)
        members[(receiver, match.group(2))] = None
    bare = sorted(counts, key=lambda name: -counts[name])  # stable: first use breaks ties
    return References(tuple(bare), tuple(members))


def class_bases(signature: str) -> list[str]:
    """The base classes a class's first line names (Python's bases, ``extends`` in JS, TS and
    Java), each as its last dotted part: ``class C(pkg.Base, Mixin, metaclass=M):`` -> Base,
    Mixin."""
    for pattern in _BASES:
        match = pattern.search(signature)
        if match:
            names = []
            for part in match.group(1).split(","):
                part = part.strip()
                if part and "=" not in part and not part.startswith("*"):
                    names.append(part.split("[")[0].split("<")[0].rsplit(".", 1)[-1].strip())
            return [n for n in names if n and n != "object"]
    return []
