"""The worker processes of a build: the next batch queued while the caller writes one, and
workers started before the build (`enclave index` on a repository without an index)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import enclave.indexer.process as process
from enclave.config import Config, EmbeddingConfig
from enclave.indexer.discover import git_blob_id
from enclave.indexer.types import Candidate
from enclave.server.cli.index_commands import _builds_many
from enclave.server.cli.main import main
from tests.support.repos import make_repo


def _files(count: int) -> dict[str, str | bytes]:
    return {
        f"pkg/mod_{i:03d}.py": f"def function_{i}(value):\n    return value + {i}\n"
        for i in range(count)
    }


def _candidates(root: Path, paths: list[str]) -> list[Candidate]:
    found = []
    for path in paths:
        data = (root / path).read_bytes()
        found.append(Candidate(path, len(data), git_blob_id(data), "python"))
    return found


def test_started_workers_take_the_next_batch_while_the_caller_writes_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(process.POOL_THRESHOLD + 16)
    root = make_repo(tmp_path / "repo", files)
    monkeypatch.setattr(process, "BATCH_FILES", 20)  # four batches and a part
    monkeypatch.setattr(process, "_started", None)

    process.start_workers()
    started = process._started
    assert isinstance(started, ProcessPoolExecutor)
    submitted: list[Any] = []
    submit = started.submit

    def counted(fn: Any, *args: Any) -> Any:
        submitted.append(fn)
        return submit(fn, *args)

    monkeypatch.setattr(started, "submit", counted)  # (the workers got their warm-up tasks)

    def no_second_pool(workers: int) -> ProcessPoolExecutor:
        raise AssertionError("the started workers were not used")

    monkeypatch.setattr(process, "_pool", no_second_pool)
    paths = sorted(files)
    got: list[str] = []
    tasks_seen: list[int] = []
    for batch in process.process_in_batches(root, _candidates(root, paths), pii=False):
        tasks_seen.append(len(submitted))  # tasks given to the workers when this batch came
        got += [rows.path for rows in batch]
        assert all(rows.file["state"] == "indexed" and rows.chunks for rows in batch)
    assert got == paths  # every file, in order
    assert process._started is None  # taken by the build
    # the first batch came while the second one's tasks were already queued: the workers did
    # not wait for the caller to write the first
    per_batch = max(1, 20 // (process._worker_count() * 4))
    assert tasks_seen[0] > -(-20 // per_batch), tasks_seen


def test_workers_no_build_took_are_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_started", None)
    process.start_workers()
    pool = process._started
    assert pool is not None
    process.stop_workers()
    assert process._started is None
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(process.warm_up)


def test_enclave_index_starts_the_workers_only_for_a_build_of_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(embedding=EmbeddingConfig(provider="none"))
    small = make_repo(tmp_path / "small", _files(5))
    assert not _builds_many(small, config, full=True)  # processed in-process anyway
    root = make_repo(tmp_path / "repo", _files(process.POOL_THRESHOLD + 1))
    assert _builds_many(root, config, full=False)  # no index yet
    assert not _builds_many(root / "pkg", config, full=False)  # not the repository's root

    started: list[bool] = []
    start = process.start_workers

    def recorded() -> None:
        start()
        started.append(process._started is not None)

    monkeypatch.setattr(process, "start_workers", recorded)
    settings = '{"embedding": {"provider": "none"}}'
    assert main(["index", str(root), "-q", "--settings", settings]) == 0
    assert started == [True] and process._started is None  # started, then taken by the build
    assert not _builds_many(root, config, full=False)  # built: an update changes a few files
    assert _builds_many(root, config, full=True)
