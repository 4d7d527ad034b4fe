"""Discovery (indexer/discover.py) on real git repositories and plain directories on disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType

import pytest

from enclave.config import IndexConfig
from enclave.indexer import discover as discover_module
from enclave.indexer.discover import (
    DiscoveryError,
    SourceText,
    discover,
    git_blob_id,
    is_secret_filename,
    read_source,
)
from enclave.indexer.types import Candidate, Discovery, Skipped
from tests.support.repos import commit_all, git, make_repo, write_files

APP = "def main():\n    return 1\n"
CFG = IndexConfig(max_file_bytes=2000, exclude=("generated/", "*.snap"))

FILES: dict[str, str | bytes] = {
    ".gitignore": "build/\n*.log\n",
    ".enclaveignore": "docs/private/\n",
    "src/app.py": APP,
    "src/util.py": "X = 1\n",
    "old.py": "gone = True\n",
    "docs/readme.md": "# Readme\n",
    "docs/private/notes.md": "private notes\n",
    "generated/schema.py": "GENERATED = 1\n",
    "tests/ui.snap": "snapshot\n",
    "package-lock.json": "{}\n",
    "web/app.min.js": "var a=1;\n",
    "web/app.js.map": "{}\n",
    "api/service_pb2.py": "# generated\n",
    "node_modules/lib/index.js": "module.exports = 1;\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0",
    "data.dat": b"head\0tail",
    "big.txt": "x" * 2500,
    ".env": "API_KEY=1\n",
    ".env.production": "API_KEY=2\n",
    "config/server.pem": "cert\n",
    "deploy/id_rsa": "key\n",
    ".aws/credentials": "[default]\n",
    "config/secrets.yaml": "token: 1\n",
}


def paths(discovery: Discovery) -> set[str]:
    return {c.path for c in discovery.candidates}


def skipped(discovery: Discovery) -> dict[str, Skipped]:
    return {s.path: s for s in discovery.skipped}


def ls_files_blobs(root: Path) -> dict[str, str]:
    out = {}
    for line in git(root, "ls-files", "-s").splitlines():
        meta, path = line.split("\t", 1)
        out[path] = meta.split()[1]
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    (root / "src" / "util.py").write_text("X = 2  # changed\n")  # modified, not committed
    (root / "old.py").unlink()  # deleted from the working tree
    write_files(root, {"new.py": "fresh = 1\n", "build/out.py": "ignored\n", "run.log": "x\n"})
    os.symlink("/etc/hostname", root / "escape.txt")
    os.symlink("src/app.py", root / "alias.py")
    os.symlink("missing.py", root / "dangling.py")
    os.symlink("src", root / "srclink")
    os.symlink(".env", root / "settings.txt")
    return root


def test_candidates_are_exactly_the_files_worth_indexing(repo: Path) -> None:
    found = discover(repo, CFG)
    assert found.is_git
    assert paths(found) == {
        ".enclaveignore",
        ".gitignore",
        "alias.py",
        "data.dat",
        "docs/readme.md",
        "new.py",
        "src/app.py",
        "src/util.py",
    }
    assert found.head_commit == git(repo, "rev-parse", "HEAD").strip()
    assert [c.path for c in found.candidates] == sorted(paths(found))
    app = next(c for c in found.candidates if c.path == "src/app.py")
    assert app.language == "python"
    assert app.size == len(APP)


def test_skipped_files_carry_the_reason(repo: Path) -> None:
    why = skipped(discover(repo, CFG))
    for secret in (".env", ".env.production", "config/server.pem", "deploy/id_rsa"):
        assert why[secret].reason == "secret-file"
    assert why[".aws/credentials"].reason == "secret-file"
    assert why["config/secrets.yaml"].reason == "secret-file"
    assert why["big.txt"].reason == "too-large"
    assert why["big.txt"].detail == "2.4 KB > 2.0 KB cap"
    assert why["escape.txt"].reason == "symlink-outside"
    assert why["dangling.py"].reason == "unreadable"
    assert why["settings.txt"] == Skipped(
        "settings.txt", "secret-file", "links to a secret-bearing file"
    )
    assert why["srclink"] == Skipped("srclink", "excluded", "symbolic link to a directory")
    assert why["docs/private/notes.md"] == Skipped(
        "docs/private/notes.md", "excluded", ".enclaveignore"
    )
    assert why["generated/schema.py"].detail == "index.exclude setting"
    assert why["tests/ui.snap"].detail == "index.exclude setting"
    assert why["package-lock.json"].detail == "lockfile"
    assert why["web/app.min.js"].detail == "minified or generated file"
    assert why["web/app.js.map"].detail == "minified or generated file"
    assert why["api/service_pb2.py"].detail == "minified or generated file"
    assert why["logo.png"].detail == "binary file type (.png)"
    assert why["node_modules/"].detail == "vendored directory (1 file)"
    # gitignored files are simply not there: no noise about them
    for quiet in ("build/out.py", "run.log", "old.py"):
        assert quiet not in why


def test_content_ids_match_git(repo: Path) -> None:
    found = {c.path: c for c in discover(repo, CFG).candidates}
    blobs = ls_files_blobs(repo)
    assert found["src/app.py"].content_id == blobs["src/app.py"]
    assert found["src/util.py"].content_id != blobs["src/util.py"]
    for changed in ("src/util.py", "new.py"):
        assert found[changed].content_id == git(repo, "hash-object", changed).strip()
    assert found["alias.py"].content_id == found["src/app.py"].content_id
    assert git_blob_id(b"X = 2  # changed\n") == found["src/util.py"].content_id


def test_clean_tracked_files_are_not_read(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[int] = []
    real = discover_module.git_blob_id

    def counting(data: bytes) -> str:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(discover_module, "git_blob_id", counting)
    found = discover(repo, CFG)
    # only the modified file, the untracked one and the in-repo symlink were read
    assert sorted(hashed) == sorted(
        len(x) for x in (b"X = 2  # changed\n", b"fresh = 1\n", APP.encode())
    )
    assert len(found.candidates) == 8


def test_changes_after_a_commit_are_seen(repo: Path) -> None:
    commit_all(repo)
    (repo / "src" / "app.py").write_text("def main():\n    return 2\n")
    found = {c.path: c for c in discover(repo, CFG).candidates}
    assert found["src/app.py"].content_id == git(repo, "hash-object", "src/app.py").strip()
    assert "old.py" not in found


def test_submodules_and_nested_repositories_are_noted(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "outer", {"main.py": "x = 1\n"})
    sha = git(root, "rev-parse", "HEAD").strip()
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{sha},libs/shared")
    make_repo(root / "inner", {"inner.py": "y = 1\n"})
    found = discover(root, IndexConfig())
    assert paths(found) == {"main.py"}
    assert "git submodule not indexed: libs/shared" in found.notes
    assert "nested git repository not indexed: inner/" in found.notes


def test_empty_repository_works(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "empty", {"a.py": "a = 1\n", "b/c.md": "# c\n"}, commit=False)
    found = discover(root, IndexConfig())
    assert found.is_git and found.head_commit is None
    assert paths(found) == {"a.py", "b/c.md"}
    assert {c.content_id for c in found.candidates} == {
        git(root, "hash-object", "a.py").strip(),
        git(root, "hash-object", "b/c.md").strip(),
    }


def test_subdirectory_of_a_repository(repo: Path) -> None:
    found = discover(repo / "src", CFG)
    assert paths(found) == {"app.py", "util.py"}
    assert any("subdirectory" in note for note in found.notes)


def test_plain_directory_walk_honours_nested_gitignores(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_files(
        root,
        {
            ".gitignore": "*.tmp\n",
            ".enclaveignore": "secret_plans/\n",
            "main.py": "print(1)\n",
            "scratch.tmp": "x\n",
            "pkg/.gitignore": "gen/\n!keep.tmp\n",
            "pkg/mod.py": "y = 1\n",
            "pkg/keep.tmp": "kept\n",
            "pkg/gen/out.py": "ignored\n",
            "other/gen/x.py": "kept: the rule is pkg's\n",
            "secret_plans/a.md": "no\n",
            "venv/pyvenv.cfg": "home = /usr\n",
            "venv/lib/site.py": "vendored\n",
            "tools/venv/__init__.py": "a package named venv\n",
            ".git-credentials": "https://u:p@host\n",
            "img/logo.png": "png",
        },
    )
    os.symlink(root / "pkg", root / "pkglink")
    found = discover(root, IndexConfig())
    assert not found.is_git and found.head_commit is None
    assert found.notes == ["not a git repository: walked the directory tree"]
    assert paths(found) == {
        ".enclaveignore",
        ".gitignore",
        "main.py",
        "other/gen/x.py",
        "pkg/.gitignore",
        "pkg/keep.tmp",
        "pkg/mod.py",
        "tools/venv/__init__.py",
    }
    why = skipped(found)
    assert why[".git-credentials"].reason == "secret-file"
    assert why["secret_plans/"].detail == ".enclaveignore"
    assert why["venv/"].detail == "vendored directory"
    assert why["img/logo.png"].reason == "excluded"
    assert why["pkglink"].detail == "symbolic link to a directory"
    main = next(c for c in found.candidates if c.path == "main.py")
    assert main.content_id == git_blob_id(b"print(1)\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nope", "no such directory"),
        (lambda p: (p / "file.txt", (p / "file.txt").write_text("x"))[0], "not a directory"),
    ],
)
def test_bad_paths_raise_a_clear_error(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    target = make(tmp_path)
    with pytest.raises(DiscoveryError) as info:
        discover(target, IndexConfig())
    assert info.value.message == f"{message}: {target}"
    assert "pass the path" in info.value.fix


def test_git_failure_raises_a_clear_error(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "broken", {"a.py": "a = 1\n"})
    (root / ".git" / "index").write_bytes(b"not an index at all")
    with pytest.raises(DiscoveryError) as info:
        discover(root, IndexConfig())
    assert info.value.message.startswith(f"git failed in {root}")
    assert "git status" in info.value.fix


def candidate(path: str) -> Candidate:
    return Candidate(path=path, size=0, content_id="", language="text")


def test_read_source_decodes_and_normalises(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "bom.py": b"\xef\xbb\xbfx = 1\n",
            "crlf.py": b"a = 1\r\nb = 2\rc = 3\r\n",
            "latin.py": b"name = 'caf\xe9'\n",
            "nul.c": b"int x;\0\n",
        },
    )
    assert read_source(tmp_path, candidate("bom.py")) == SourceText("bom.py", "x = 1\n")
    crlf = read_source(tmp_path, candidate("crlf.py"))
    assert isinstance(crlf, SourceText)
    assert crlf.text == "a = 1\nb = 2\nc = 3\n"
    latin = read_source(tmp_path, candidate("latin.py"))
    assert latin == SourceText("latin.py", "name = 'caf\ufffd'\n", "invalid UTF-8 replaced")
    binary = read_source(tmp_path, candidate("nul.c"))
    assert isinstance(binary, Skipped) and binary.reason == "binary"


def test_read_source_refuses_a_link_swapped_to_outside(repo: Path) -> None:
    found = {c.path: c for c in discover(repo, CFG).candidates}
    alias = found["alias.py"]
    assert read_source(repo, alias) == SourceText("alias.py", APP)
    (repo / "alias.py").unlink()
    os.symlink("/etc/passwd", repo / "alias.py")
    refused = read_source(repo, alias)
    assert isinstance(refused, Skipped) and refused.reason == "symlink-outside"
    (repo / "alias.py").unlink()
    os.symlink(".env.production", repo / "alias.py")
    secret = read_source(repo, alias)
    assert isinstance(secret, Skipped) and secret.reason == "secret-file"
    (repo / "alias.py").unlink()
    gone = read_source(repo, alias)
    assert isinstance(gone, Skipped) and gone.reason == "unreadable"


def test_binary_file_with_a_text_name_is_found_then_refused(repo: Path) -> None:
    found = {c.path: c for c in discover(repo, CFG).candidates}
    refused = read_source(repo, found["data.dat"])
    assert refused == Skipped("data.dat", "binary", "NUL byte in the first 8 KiB")


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.local",
        "prod.env",
        "certs/server.PEM",
        "tls.key",
        "home/.ssh/id_rsa",
        "id_ed25519.pub",
        "store.p12",
        "app.keystore",
        ".aws/credentials",
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        "vault.kdbx",
        "config/secrets.yml",
        "secrets.yaml",
        "infra/terraform.tfstate",
    ],
)
def test_secret_file_names(name: str) -> None:
    assert is_secret_filename(name)


@pytest.mark.parametrize(
    "name", ["environment.py", "keys.py", "src/key_utils.go", "credentials.md", "aws/creds.py"]
)
def test_ordinary_file_names_are_not_secret(name: str) -> None:
    assert not is_secret_filename(name)


def test_git_blob_id_matches_git(tmp_path: Path) -> None:
    data = b"hello\nworld\n\0binary"
    (tmp_path / "f").write_bytes(data)
    assert git_blob_id(data) == git(tmp_path, "hash-object", "f").strip()
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_invalid_patterns_are_left_out_and_noted(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a = 1\n", "b.tmp": "b\n", ".enclaveignore": "\\\n"})
    found = discover(root, IndexConfig(exclude=("!", "*.tmp")))
    assert paths(found) == {"a.py", ".enclaveignore"}
    assert skipped(found)["b.tmp"].detail == "index.exclude setting"
    assert found.notes == [
        "invalid pattern '\\\\' in .enclaveignore left out",
        "invalid pattern '!' in index.exclude setting left out",
    ]


def _pathlib_calls(run: Callable[[], object]) -> int:
    """How many functions of the standard library's pathlib ``run()`` called."""
    import pathlib
    import sys

    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == pathlib.__file__:
            calls += 1

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def test_discovery_does_no_pathlib_work_per_file(tmp_path: Path) -> None:
    """Every update starts with discovery over the whole repository (issue 27: at 18,896 files,
    the Path objects made per file were a quarter of a one-file update): the per-file work is on
    strings, so a repository 10 times larger costs discovery no more pathlib calls."""
    sizes = {}
    for count in (20, 200):
        files: dict[str, str | bytes] = {f"pkg/m{i}.py": f"X{i} = {i}\n" for i in range(count)}
        files |= {"README.md": "# r\n", "a/b/c.tar.gz": "", "Makefile": "all:\n", ".bashrc": ""}
        root = make_repo(tmp_path / str(count), files)
        (root / "pkg/m0.py").write_text("X0 = 'modified: read and hashed'\n")
        (root / "untracked.py").write_text("U = 1\n")
        found = discover(root, IndexConfig())
        assert len(found.candidates) == count + 4  # all but the .gz file (binary)
        sizes[count] = _pathlib_calls(partial(discover, root, IndexConfig()))
    assert sizes[200] == sizes[20], sizes


def _same(memo: discover_module.DiscoveryMemo, root: Path, cfg: IndexConfig) -> Discovery:
    """Discovery with the memo equals discovery without it: every candidate, every skip."""
    remembered, fresh = discover(root, cfg, memo), discover(root, cfg)
    assert remembered.candidates == fresh.candidates
    assert sorted(map(repr, remembered.skipped)) == sorted(map(repr, fresh.skipped))
    return remembered


def test_a_remembered_discovery_is_the_same_discovery(repo: Path) -> None:
    """An editor's server discovers the repository on every save, taking the decisions of the
    last run again for the files git reports clean (issue 27): whatever changed since, the
    result is the one a fresh discovery gives."""
    commit_all(repo)
    memo = discover_module.DiscoveryMemo()
    assert paths(_same(memo, repo, CFG)) >= {"src/app.py", "docs/readme.md", "new.py"}
    assert "src/app.py" in memo.decisions  # clean and tracked: remembered
    assert "alias.py" not in memo.decisions  # a link: decided again every time
    assert _same(memo, repo, CFG).candidates == discover(repo, CFG).candidates  # nothing changed

    (repo / "src" / "app.py").write_text("def main():\n    return 3\n")  # edited
    (repo / "docs" / "readme.md").unlink()  # deleted
    (repo / "new.py").unlink()
    os.symlink("/etc/hostname", repo / "new.py")  # a clean file turned into a link outside
    found = _same(memo, repo, CFG)
    app = next(c for c in found.candidates if c.path == "src/app.py")
    assert app.content_id == git(repo, "hash-object", "src/app.py").strip()
    assert "docs/readme.md" not in paths(found)
    assert skipped(found)["new.py"].reason == "symlink-outside"

    (repo / "src" / "util.py").write_text("X = 4\n")  # committed between two discoveries,
    commit_all(repo)  # as a pull or a checkout does: clean, with another blob
    util = next(c for c in _same(memo, repo, CFG).candidates if c.path == "src/util.py")
    assert util.content_id == git(repo, "hash-object", "src/util.py").strip()

    (repo / ".enclaveignore").write_text("docs/private/\nsrc/app.py\n")  # a rule changed
    assert skipped(_same(memo, repo, CFG))["src/app.py"].detail == ".enclaveignore"
    narrower = IndexConfig(max_file_bytes=5, exclude=CFG.exclude)  # a setting changed
    assert "src/util.py" not in paths(_same(memo, repo, narrower))


def test_a_remembered_discovery_checks_only_what_git_reports_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the last run's decisions, no clean tracked file is checked on disk again: a one-file
    update costs the same Python work in a repository of any size."""
    files: dict[str, str | bytes] = {f"pkg/m{i}.py": f"X{i} = {i}\n" for i in range(200)}
    root = make_repo(tmp_path / "repo", files)
    memo = discover_module.DiscoveryMemo()
    discover(root, IndexConfig(), memo)
    (root / "pkg/m7.py").write_text("X7 = 'edited'\n")
    (root / "untracked.py").write_text("U = 1\n")
    looked_at: list[str] = []
    real_lstat = os.lstat

    def lstat(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        relative = os.path.relpath(path, root)
        if relative.startswith("pkg/") or relative.endswith(".py"):  # the repository's files
            looked_at.append(relative)
        return real_lstat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", lstat)
    found = discover(root, IndexConfig(), memo)
    assert sorted(looked_at) == ["pkg/m7.py", "untracked.py"]
    assert len(found.candidates) == 201
