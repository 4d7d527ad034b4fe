"""Every module, class and function a docstring or a doc names exists under that name.

Code moves; the prose about it has to follow. Checked: the Sphinx roles in the package's docstrings
(``:mod:``, ``:class:``, ``:func:``, ``:meth:``, ``:data:``, ``:attr:``, ``:exc:``), resolved as
a reader would (a dotted ``enclave.`` name from the top, a short one in the docstring's module or
class), the ``enclave.…`` names in README.md and docs/ (setting keys and command ids excepted),
and the source paths (``….py``) they mention.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.test_packaging import REPO, _module_name, all_sources

ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|exc):`~?([^`]+)`")
DOTTED = re.compile(r"(?<![\w./-])enclave(?:\.[A-Za-z_]\w*)+")
# a path into this checkout (examples such as pkg/mod.py are not checked)
SOURCE_PATH = re.compile(
    r"(?<![\w./-])((?:enclave|indexer|server|tests|bench|editors)/(?:[\w-]+/)*[\w-]+\.py)\b"
)
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MISSING = object()


def attribute_of(found: Any, name: str) -> Any:
    """``getattr``, and a dataclass field or annotated attribute that has no class-level value."""
    value = getattr(found, name, MISSING)
    if value is MISSING and name in getattr(found, "__annotations__", {}):
        return name
    return value


def resolve_dotted(name: str) -> bool:
    """True when ``name`` is a module of the package, or an attribute reached from one."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = attribute_of(found, attribute)
            if found is MISSING:
                return False
        return True
    return False


def resolve_short(name: str, module: ModuleType, owner: str | None) -> bool:
    """A short name as the docstring's reader finds it: in the module, then in its class."""
    if name.startswith("enclave."):
        return resolve_dotted(name)
    starts: list[Any] = [module]
    if owner is not None:
        starts.insert(0, getattr(module, owner, module))
    for start in starts:
        found: Any = start
        for attribute in name.split("."):
            found = attribute_of(found, attribute)
            if found is MISSING:
                break
        else:
            return True
    return False


def docstrings(path: Path) -> list[tuple[str, str | None, int]]:
    """(text, enclosing class name, line) of every docstring in the file."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST, owner: str | None) -> None:
        inner = node.name if isinstance(node, ast.ClassDef) and owner is None else owner
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=False)
            if text:
                found.append((text, inner, getattr(node, "lineno", 1)))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, None)
    return found


def names_that_are_not_code() -> set[str]:
    """Names that are strings of the protocol, not code: the VS Code extension's setting keys and
    command ids (``enclave.server.path``), and the ``enclave.…`` strings the package itself sends
    or logs under (``enclave.reindex``, logger names)."""
    manifest = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    contributes = manifest["contributes"]
    configuration = contributes["configuration"]
    sections = configuration if isinstance(configuration, list) else [configuration]
    keys = {key for section in sections for key in section.get("properties", {})}
    commands = {command["command"] for command in contributes.get("commands", [])}
    strings = {
        node.value
        for path in all_sources()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"enclave(\.\w+)+", node.value)
    }
    return keys | commands | strings


def test_every_role_in_a_docstring_names_something_that_exists() -> None:
    wrong = []
    for path in all_sources():
        module = importlib.import_module(_module_name(path))
        for text, owner, line in docstrings(path):
            for name in ROLE.findall(text):
                if not resolve_short(name, module, owner):
                    wrong.append(f"{path.relative_to(REPO)}:{line}: {name}")
    assert not wrong, "docstrings naming what does not exist (moved or renamed?):\n" + "\n".join(
        wrong
    )


def test_every_enclave_name_in_the_docs_and_docstrings_exists() -> None:
    not_code = names_that_are_not_code()
    wrong = []
    texts = [(doc, doc.read_text()) for doc in DOCS]
    texts += [(path, text) for path in all_sources() for text, _, _ in docstrings(path)]
    for place, text in texts:
        for name in DOTTED.findall(text):
            if name in not_code or any(name.startswith(f"{key}.") for key in not_code):
                continue
            if not resolve_dotted(name):
                wrong.append(f"{place.relative_to(REPO)}: {name}")
    assert not wrong, "names of code that does not exist:\n" + "\n".join(sorted(set(wrong)))


def test_every_source_path_in_the_docs_and_docstrings_exists() -> None:
    wrong = []
    texts = [(doc, doc.read_text()) for doc in DOCS]
    texts += [(path, text) for path in all_sources() for text, _, _ in docstrings(path)]
    for place, text in texts:
        for relative in SOURCE_PATH.findall(text):
            if not (REPO / relative).is_file():
                wrong.append(f"{place.relative_to(REPO)}: {relative}")
    assert not wrong, "paths of files that do not exist:\n" + "\n".join(sorted(set(wrong)))


@pytest.mark.parametrize(
    ("name", "exists"),
    [
        ("enclave.hosts.no_redirects", True),
        ("enclave.indexer.api.Index", True),
        ("enclave.indexer", True),
        ("enclave.hosts.no_such_thing", False),
        ("enclave.server.no_such_module", False),
    ],
)
def test_dotted_names_resolve_as_a_reader_expects(name: str, exists: bool) -> None:
    assert resolve_dotted(name) is exists
