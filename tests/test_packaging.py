"""The package's shape: one `enclave` namespace in three folders whose paths are the import paths,
nothing generic installed, no import cycles, the indexer never importing the server.

Builds an sdist and a wheel of this checkout and installs them into scratch directories, so the
check covers what `pip install` really puts into site-packages, not only the editable install the
tests use.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.support.repos import make_repo

REPO = Path(__file__).resolve().parents[1]
# Each folder holding a part of the `enclave` package -> the folder its import paths start from.
PARTS = {
    REPO / "enclave": REPO,
    REPO / "indexer" / "enclave" / "indexer": REPO / "indexer",
    REPO / "server" / "enclave" / "server": REPO / "server",
}


def sources(folder: Path) -> list[Path]:
    """The .py files under ``folder``."""
    return sorted(
        Path(dirpath, name)
        for dirpath, _, names in os.walk(folder)
        for name in names
        if name.endswith(".py")
    )


def _module_name(path: Path) -> str:
    base = next(base for part, base in PARTS.items() if path.is_relative_to(part))
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_sources() -> list[Path]:
    return [path for part in PARTS for path in sources(part)]


def import_graph() -> dict[str, set[str]]:
    """Every module of the package -> the enclave modules it imports anywhere."""
    modules = {_module_name(p): p for p in all_sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # "from pkg import mod" imports pkg.mod; "from mod import name" imports mod
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                # the longest known module the import names ("from a.b import c" may name a.b.c)
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """Import cycles among the modules whose names start with ``within`` (Tarjan's SCCs)."""
    nodes = {
        n: {m for m in e if m.startswith(within)} for n, e in graph.items() if n.startswith(within)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(nodes.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # api.open_index imports the engine inside the function: the graph must still see it.
    assert len(graph) > 50  # the indexer and server folders are in it
    assert "enclave.indexer.engine" in graph["enclave.indexer.api"]
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.x"}, "a.z": set()}, "a.") == [["a.x", "a.y"]]


def test_no_import_cycle_among_the_indexer_modules() -> None:
    assert cycles(import_graph(), "enclave.indexer") == []


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert cycles(import_graph(), "enclave") == []


def test_the_indexer_is_a_library_without_the_server() -> None:
    """A CI job can use the indexer alone: it never imports the server, pygls or lsprotocol."""
    for path in sources(REPO / "indexer"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("enclave.server", "pygls", "lsprotocol")), (path, name)


def test_nothing_imports_the_old_top_level_names() -> None:
    for path in [
        *all_sources(),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "bench").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                assert node.module.split(".")[0] not in ("server", "indexer"), (path, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("server", "indexer"), (path, alias.name)


def test_the_checkout_has_no_links() -> None:
    """A link gives a file two paths and becomes a text file in a default Windows checkout."""
    staged = subprocess.run(
        ["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert staged and [line for line in staged if line.startswith("120000")] == []


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """The packages are listed by hand (three folders map onto one namespace): a new subpackage
    missing from the list would be left out of every install."""
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        _module_name(Path(dirpath) / "__init__.py")
        for part in PARTS
        for dirpath, _, names in os.walk(part)
        if "__init__.py" in names
    }
    assert found <= listed
    folders = {
        _module_name(Path(dirpath) / "x.py").rpartition(".")[0]
        for part in PARTS
        for dirpath, dirs, _ in os.walk(part)
        if Path(dirpath).name != "__pycache__"
    }
    assert folders == listed  # every folder, a data folder too (setuptools installs it as one)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source distribution, built from a copy of the checkout's tracked files (setuptools
    writes build/ and egg-info beside the sources)."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in tracked:
        if name.startswith(("enclave/", "indexer/", "server/")) or name in (
            "pyproject.toml",
            "README.md",
        ):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta as b; b.build_sdist({str(out)!r})"],
        cwd=source, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return next(out.glob("enclave_lsp-*.tar.gz"))


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the sdist (as pip does from a package index): what the sdist lacks,
    the wheel lacks."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(sdist)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return next(out.glob("enclave_lsp-*.whl"))


def test_the_sdist_holds_every_source_and_nothing_built(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for path in all_sources():
        assert str(path.relative_to(REPO)) in names
    assert "indexer/enclave/indexer/queries/python.scm" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith("build/")]


def test_the_wheel_installs_only_the_enclave_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"enclave"}, top
    assert "enclave/indexer/queries/python.scm" in names  # package data travels
    assert {"enclave/py.typed", "enclave/indexer/py.typed", "enclave/server/py.typed"} <= set(names)


def test_a_normal_install_imports_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert installed in ({"enclave"}, {"enclave", "bin"}), installed  # bin/: the console script
    probe = (
        "import enclave.indexer.api, enclave.server, enclave.indexer, enclave.server.cli, "
        "enclave.server.lsp.app, sys; "
        "print(enclave.indexer.api.__file__); "
        "import importlib.util as u; print(u.find_spec('server'), u.find_spec('indexer'))"
    )
    # -I: only the scratch install and the venv's site-packages (for dependencies) are seen.
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = [{str(target)!r}, {str(site)!r}]; {probe}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith(str(target / "enclave" / "indexer"))
    assert second == "None None"  # no top-level `server` or `indexer` anywhere on the path
    # and it runs: the command line from the scratch install, indexing a repository
    repo = make_repo(tmp_path / "repo", {"app.py": "def greet():\n    return 'hi'\n"})
    run = (
        f"import sys, runpy; sys.path[:0] = [{str(target)!r}, {str(site)!r}]; "
        "runpy.run_module('enclave', run_name='__main__', alter_sys=True)"
    )
    indexed = subprocess.run(
        [sys.executable, "-I", "-c", run, "index", ".", "--json", "--settings",
         '{"embedding": {"provider": "none"}}'],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["files_indexed"] == 1


def poisoned_workspace(root: Path) -> Path:
    """A repository whose own packages are named like ours and fail loudly if imported."""
    trap = "import pathlib; pathlib.Path(__file__).with_name('IMPORTED').touch(); raise SystemExit('shadowed')\n"
    # enough files that indexing starts its worker processes (python -c ...: cwd first on
    # sys.path unless told otherwise), and a package named like a module they import first
    files = {f"app/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(80)}
    for package in ("server", "server/lsp", "server/cli", "indexer", "enclave", "enclave/server",
                    "enclave/server/lsp", "enclave/server/cli", "enclave/indexer",
                    "multiprocessing"):  # fmt: skip
        files[f"{package}/__init__.py"] = trap
        files[f"{package}/__main__.py"] = trap
    return make_repo(root, files)


def _imported(root: Path) -> list[Path]:
    return sorted(root.rglob("IMPORTED"))


def test_the_console_script_cannot_be_shadowed_by_the_workspace(tmp_path: Path) -> None:
    root = poisoned_workspace(tmp_path / "repo")
    enclave = Path(sys.executable).with_name("enclave")
    done = subprocess.run(
        [str(enclave), "index", ".", "--json", "--settings", '{"embedding": {"provider": "none"}}'],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    # every file really indexed (a package-relative resource read by the old name would fail
    # here, and only for installed users: the tests' own sys.path has the checkout on it)
    assert summary["errors"] == [] and summary["chunks_total"] > 0
    assert summary["files_indexed"] == summary["files_seen"] > 0
    assert _imported(root) == []
    # The danger is real: `python -m` from the workspace runs the workspace's package...
    shadowed = subprocess.run(
        [sys.executable, "-m", "enclave", "--version"], cwd=root, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert shadowed.returncode != 0 and "shadowed" in shadowed.stderr
    assert _imported(root)
    for marker in _imported(root):
        marker.unlink()
    # ...and -P (what the editors use with a Python interpreter) keeps the workspace off sys.path.
    safe = subprocess.run(
        [sys.executable, "-P", "-m", "enclave", "--version"], cwd=root, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert safe.returncode == 0 and safe.stdout.startswith("enclave "), safe.stderr
    assert _imported(root) == []
