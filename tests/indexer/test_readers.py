"""Readers of a shared index keep working while a CI job writes it and removes old versions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import one_version_each, open_index
from enclave.indexer.store import Store
from tests.support.repos import commit_all, make_repo, write_files
from tests.support.s3 import S3Store

FILES = {
    "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n",
    "users/login.py": "def check_password(user, password):\n    return user.hash == password\n",
}


def config_for(db: str) -> Config:
    # retain_minutes=0: every update compacts and deletes every older version at once
    return Config(
        index=IndexConfig(db=db, retain_minutes=0), embedding=EmbeddingConfig(provider="none")
    )


def test_readers_keep_working_while_ci_writes_and_cleans_up(
    tmp_path: Path, s3_store: S3Store
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    config = config_for(f"s3://{s3_store.bucket}/repo")
    writer = open_index(root, config)
    writer.update()
    reader = open_index(root, config)  # another process's view: its own connection and caches
    assert reader.search("total with tax", k=3).hits[0].path == "billing/invoice.py"

    errors: list[BaseException] = []
    finished = threading.Event()
    removed: list[int] = []

    def ci_job() -> None:
        try:
            for i in range(4):
                write_files(root, {"churn.py": f"def churn_{i}(x):\n    return x * {i}\n"})
                commit_all(root, f"churn {i}")
                removed.append(writer.update().versions_removed)
        except BaseException as exc:
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=ci_job)
    thread.start()
    reads = 0
    while not finished.is_set() or reads == 0:
        assert reader.search("total with tax", k=3).hits[0].path == "billing/invoice.py"
        assert [s.name for s in reader.find_symbols("check_password")][:1] == ["check_password"]
        assert "users/login.py" in reader.paths()
        reads += 1
    thread.join()
    assert not errors, errors
    assert all(n > 0 for n in removed)  # old versions really were deleted under the reader
    assert [s.name for s in reader.definitions(["churn_3"])] == ["churn_3"]
    assert reader.status().healthy


def test_a_reader_that_hits_a_vanished_version_reloads_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    index = open_index(root, config_for(str(tmp_path / "index")))
    index.update()
    real = Store.table
    failures = iter([OSError(2, "Not found: _versions/3.manifest")])

    def vanishing(self: Store, name: str) -> object:
        failure = next(failures, None)
        if failure is not None:  # the first read finds its version deleted by a cleanup
            raise failure
        return real(self, name)

    monkeypatch.setattr(Store, "table", vanishing)
    assert index.search("total with tax", k=3).hits[0].path == "billing/invoice.py"


def test_a_burst_of_reads_sees_one_version_and_the_next_burst_sees_the_commit(
    tmp_path: Path,
) -> None:
    """Within one_version_each (one completion's queries) each table's version is read once: a
    commit meanwhile shows at the next burst, never half-way through one."""
    root = make_repo(tmp_path / "repo", FILES)
    config = Config(
        index=IndexConfig(db=str(tmp_path / "index")), embedding=EmbeddingConfig(provider="none")
    )
    writer = open_index(root, config)
    writer.update()
    reader = open_index(root, config)
    with one_version_each():
        assert reader.definitions(["churn"]) == []
        write_files(root, {"churn.py": "def churn(x):\n    return x\n"})
        commit_all(root, "churn")
        writer.update()
        assert reader.definitions(["churn"]) == []  # the version the burst began with
    assert [s.name for s in reader.definitions(["churn"])] == ["churn"]
