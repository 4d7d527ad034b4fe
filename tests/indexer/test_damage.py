"""An index that checks itself: damage is reported by `status`, refused by queries and repaired by
the next plain `enclave index`; a full disk or read-only storage ends an update in one line, and
an update that did not finish is never served as a complete index.

Storage failures are real where the sandbox allows it (a tiny tmpfs for a full disk, a read-only
bind mount for read-only storage: both need root and `mount`); elsewhere the same OSError is
injected at the storage boundary (see ``_no_space`` and ``_read_only_lock``).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lancedb
import pytest

import enclave.indexer.process as process
from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import IndexProblem, open_index
from enclave.indexer.errors import is_storage_error, write_problem
from enclave.indexer.lock import WriteLock, lock_path_for
from enclave.indexer.store import Store
from enclave.server.cli.main import main
from tests.support.repos import make_repo

MODULES, FUNCTIONS = 40, 5
TOTAL = MODULES * FUNCTIONS  # one chunk and one symbol per function


def config(db: Path | None = None) -> Config:
    index = IndexConfig(db=str(db)) if db is not None else IndexConfig()
    return Config(index=index, embedding=EmbeddingConfig(provider="none"))


def module_files(modules: int, functions: int, words: int = 0) -> dict[str, str | bytes]:
    filler = " lorem ipsum" * words
    return {
        f"pkg/mod_{i:03d}.py": "".join(
            f"def function_{i}_{j}(value):\n"
            f"    '''Helper {j} of module {i}{filler}.'''\n"
            f"    return value + {j}\n\n"
            for j in range(functions)
        )
        for i in range(modules)
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("built") / "repo", module_files(MODULES, FUNCTIONS))
    summary = open_index(root, config()).update()
    assert summary.chunks_total == TOTAL and not summary.errors
    return root


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built repository and its index, to damage."""
    root = tmp_path / "repo"
    shutil.copytree(built, root, symlinks=True)
    return root


def assert_whole(root: Path, cfg: Config | None = None) -> None:
    """The index answers with everything: every chunk for a word all of them hold, every symbol."""
    index = open_index(root, cfg or config())
    status = index.status()
    assert status.healthy and not status.problem, status
    assert (status.files, status.chunks, status.symbols) == (MODULES, TOTAL, TOTAL)
    hits = index.search("helper module", k=TOTAL * 2, mode="lexical").hits
    assert len(hits) == TOTAL
    assert len(index.find_symbols("function", limit=TOTAL * 2)) == TOTAL


# ---- damage -------------------------------------------------------------------------------


def _files(db: Path, table: str, folder: str) -> list[Path]:
    return sorted(p for p in (db / f"{table}.lance" / folder).rglob("*") if p.is_file())


def _truncate(paths: list[Path]) -> None:
    assert paths
    for path in paths:
        os.truncate(path, path.stat().st_size // 2)


def _fts_files(db: Path) -> list[Path]:
    chunks = lancedb.connect(str(db)).open_table("chunks")
    uuid = next(i.index_uuid for i in chunks.list_indices() if i.index_type == "FTS")
    return _files(db, "chunks", f"_indices/{uuid}")


def _garbage(paths: list[Path]) -> None:
    assert paths
    for path in paths:
        path.write_bytes(b"garbage " * 100)


def _unlink(paths: list[Path]) -> None:
    assert paths
    for path in paths:
        path.unlink()


def _lose_rows(db: Path) -> None:  # not a damaged file: rows the catalog counts are gone
    lancedb.connect(str(db)).open_table("chunks").delete("path = 'pkg/mod_007.py'")


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    # case: (what is done to .enclave, the query that runs into it)
    "chunk data deleted": (lambda db: _unlink(_files(db, "chunks", "data")), "search"),
    "chunk data truncated": (lambda db: _truncate(_files(db, "chunks", "data")), "search"),
    "full-text index truncated": (lambda db: _truncate(_fts_files(db)), "search"),
    "garbage in meta data": (lambda db: _garbage(_files(db, "meta", "data")), "search"),
    "symbols data deleted": (lambda db: _unlink(_files(db, "symbols", "data")), "symbols"),
    "chunk manifests deleted": (lambda db: _unlink(_files(db, "chunks", "_versions")), "search"),
    "chunk rows of a file lost": (_lose_rows, ""),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_is_reported_refused_and_repaired_by_a_plain_update(repo: Path, case: str) -> None:
    damage, query = DAMAGE[case]
    damage(repo / ".enclave")

    status = open_index(repo, config()).status()
    assert status.exists and not status.healthy, status
    assert str(repo / ".enclave") in status.problem
    assert ("damaged" if query else "inconsistent") in status.problem
    assert status.fix == f"run `enclave index {repo}` to rebuild it"

    index = open_index(repo, config())
    if query == "search":  # never a raw ValueError/RuntimeError from lance
        with pytest.raises(IndexProblem, match="damaged or unreadable"):
            index.search("helper", mode="lexical")
    elif query == "symbols":
        with pytest.raises(IndexProblem, match="damaged or unreadable"):
            index.find_symbols("function")

    summary = open_index(repo, config()).update()  # plain, not --full
    assert summary.full and summary.files_indexed == MODULES
    assert any(note.endswith("rebuilding it from scratch") for note in summary.notes)
    assert_whole(repo)


def test_full_rebuild_works_with_garbage_in_meta(repo: Path) -> None:
    _garbage(_files(repo / ".enclave", "meta", "data"))
    summary = open_index(repo, config()).update(full=True)
    assert summary.files_indexed == MODULES
    assert_whole(repo)


def test_cli_status_reports_damage_and_index_repairs_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _unlink(_files(repo / ".enclave", "chunks", "data"))
    assert main(["status", "--root", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "problem:   the index at" in out and "damaged" in out
    assert f"fix:       run `enclave index {repo}` to rebuild it" in out
    # lexical only on purpose: with an embedding provider configured but absent, exit 2 (degraded)
    lexical = '{"embedding": {"provider": "none"}}'
    assert main(["index", str(repo), "-q", "--settings", lexical]) == 0
    captured = capsys.readouterr()
    assert "rebuilding it from scratch" in captured.err and "Traceback" not in captured.err
    assert f"indexed {MODULES} file(s)" in captured.out
    assert main(["status", "--root", str(repo)]) == 0


def test_storage_errors_are_told_from_our_own() -> None:
    ours = ValueError("unknown search mode")
    try:
        raise ours
    except ValueError as exc:
        assert not is_storage_error(exc)
    assert is_storage_error(RuntimeError("lance error: LanceError(IO): ..."))
    assert not is_storage_error(TypeError("a bug"))


def test_missing_manifests_raise_index_problem_but_bad_arguments_stay_value_errors(
    repo: Path,
) -> None:
    _unlink(_files(repo / ".enclave", "chunks", "_versions"))
    index = open_index(repo, config())
    with pytest.raises(IndexProblem):
        index.search("helper")
    with pytest.raises(ValueError, match="unknown search mode"):
        index.search("helper", mode="bogus")


# ---- an update that does not finish -------------------------------------------------------


def test_update_in_progress_is_served_an_interrupted_one_is_not(repo: Path) -> None:
    store = Store(str(repo / ".enclave"))
    store.set_meta({"update_started": "2026-01-01T00:00:00+00:00"})  # as a killed update leaves

    with WriteLock(lock_path_for(str(repo / ".enclave"))):  # a live writer (another process)
        index = open_index(repo, config())
        status = index.status()
        assert status.healthy and status.updating
        assert len(index.search("helper", k=TOTAL * 2, mode="lexical").hits) == TOTAL

    index = open_index(repo, config())  # the writer is gone: it was killed
    status = index.status()
    assert not status.healthy and not status.updating
    assert "incomplete" in status.problem and "2026-01-01" in status.problem
    assert status.fix == f"run `enclave index {repo}` to complete it"
    with pytest.raises(IndexProblem, match="incomplete"):
        index.search("helper")
    with pytest.raises(IndexProblem, match="incomplete"):
        index.definitions(["function_1_1"])

    summary = open_index(repo, config()).update()
    assert any("did not finish: completing it" in note for note in summary.notes)
    assert not summary.full
    assert_whole(repo)


def test_a_cancelled_update_is_served_marked_partial_and_finished_next_time(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "BATCH_FILES", 5)
    summary = open_index(repo, config()).update(full=True, cancelled=lambda: True)
    assert summary.cancelled and summary.files_indexed == 5
    index = open_index(repo, config())
    status = index.status()
    assert status.healthy and status.partial and status.files == 5  # said, not silent
    assert index.search("Helper", k=3).hits  # what was written is consistent and served

    summary = open_index(repo, config()).update(paths=["pkg/mod_001.py"])
    assert summary.files_indexed == MODULES - 5  # every file, not only the one asked for
    assert any("was cancelled: finishing it" in note for note in summary.notes)
    assert_whole(repo)
    assert not open_index(repo, config()).status().partial

    for i in range(10):
        path = repo / "pkg" / f"mod_{i:03d}.py"
        path.write_text(path.read_text().replace("Helper", "Helper, edited,"))
    summary = open_index(repo, config()).update(cancelled=lambda: True)
    assert summary.cancelled and summary.files_indexed == 5
    status = open_index(repo, config()).status()
    assert status.healthy and status.partial  # each file is old or new, none missing


def test_a_damaged_embedding_cache_is_dropped_on_rebuild(repo: Path) -> None:
    store = Store(str(repo / ".enclave"))
    store.add_vectors(4, ["a" * 64], [[1.0, 0.0, 0.0, 0.0]])
    _unlink(_files(repo / ".enclave", "embeddings", "data"))
    status = open_index(repo, config()).status()
    assert not status.healthy and "its embeddings table" in status.problem
    summary = open_index(repo, config()).update()
    assert summary.full and "embeddings" not in Store(str(repo / ".enclave")).existing()
    assert_whole(repo)


# ---- a full disk ----------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` (True), or False where mounting is not allowed."""
    path.mkdir(parents=True)
    mounted = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield mounted
    finally:
        if mounted:
            _umount(path)


def _no_space(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """Where no tmpfs can be mounted: the message Lance gives for ENOSPC, from the batch writes."""
    real = Store.write_batch
    calls = {"n": 0}

    def write_batch(self: Store, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise RuntimeError(
                "lance error: LanceError(IO): No space left on device (os error 28), "
                "/root/.cargo/registry/src/lance-file-13.0.0/src/writer/structural.rs:191:9"
            )
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "write_batch", write_batch)


def test_disk_full_midway_is_one_problem_and_never_a_silent_partial_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    modules, functions = 120, 10
    root = make_repo(tmp_path / "repo", module_files(modules, functions, words=20))
    monkeypatch.setattr(process, "BATCH_FILES", 10)  # many small commits: some land, then no space
    monkeypatch.setattr(process, "POOL_THRESHOLD", 10_000)  # parse in-process
    mnt = tmp_path / "tiny"
    with tiny_tmpfs(mnt, "768k") as real:
        if not real:
            _no_space(monkeypatch, after=3)
        db = mnt / "db"
        with pytest.raises(IndexProblem) as caught:
            open_index(root, config(db)).update()
        assert caught.value.message == f"no space left on the device holding the index at {db}"
        assert "free some space" in caught.value.fix

        index = open_index(root, config(db))
        status = index.status()
        assert status.exists and not status.healthy
        assert "incomplete" in status.problem and "enclave index" in status.fix
        assert 0 < status.chunks < modules * functions  # part of it is there, and not served:
        with pytest.raises(IndexProblem, match="incomplete"):
            index.search("helper", mode="lexical")

        assert main(["index", str(root), "--db", str(db), "-q"]) == 1  # still full
        err = capsys.readouterr().err
        assert err.startswith("enclave: error: no space left on the device holding the index")
        assert err.count("\n") == 1 and "Traceback" not in err

        if real:
            assert _mount("-o", "remount,size=64m", str(mnt))
        else:
            monkeypatch.undo()
        summary = open_index(root, config(db)).update()
        assert any("did not finish: completing it" in note for note in summary.notes)
        index = open_index(root, config(db))
        assert index.status().healthy
        hits = index.search("helper module", k=modules * functions * 2, mode="lexical").hits
        assert len(hits) == modules * functions
        index.close()


# ---- read-only storage ----------------------------------------------------------------------


@contextmanager
def read_only(path: Path) -> Iterator[bool]:
    """``path`` made read-only by a read-only bind mount over itself (True), or False where
    mounting is not allowed (root ignores permission bits, so chmod would not do)."""
    mounted = _mount("--bind", str(path), str(path))
    if mounted and not _mount("-o", "remount,ro,bind", str(path)):
        _umount(path)
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            _umount(path)


def _read_only_lock(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    """Where no bind mount is possible: the first write of an update (the lock file) fails as it
    does on read-only storage."""

    def enter(self: WriteLock) -> WriteLock:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(db / ".write.lock"))

    monkeypatch.setattr(WriteLock, "__enter__", enter)


def test_read_only_index_reads_but_an_update_ends_in_one_line(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = repo / ".enclave"
    (repo / "pkg" / "mod_000.py").write_text("def changed():\n    return 0\n")
    with read_only(db) as real:
        if not real:
            _read_only_lock(monkeypatch, db)
        with pytest.raises(IndexProblem) as caught:
            open_index(repo, config()).update()
        assert caught.value.message == (
            f"the index at {db} cannot be written (Read-only file system)"
        )
        assert "point --db at a writable place" in caught.value.fix

        index = open_index(repo, config())
        assert index.status().healthy  # nothing was written: the index is as it was
        assert index.search("helper", mode="lexical").hits

        assert main(["index", str(repo), "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"enclave: error: the index at {db} cannot be written")
        assert err.count("\n") == 1 and "Traceback" not in err
        index.close()


def test_write_problems_are_named() -> None:
    full = write_problem(RuntimeError("... No space left on device (os error 28), x.rs:1:1"), "D")
    assert full is not None and full.message == "no space left on the device holding the index at D"
    denied = write_problem(PermissionError(errno.EACCES, "Permission denied", "D/x"), "D")
    assert denied is not None and "cannot be written (Permission denied)" in denied.message
    assert write_problem(RuntimeError("lance error: Not found: x"), "D") is None
