"""Writers of one index in an S3 store never lose data: the write lease (enclave.indexer.lease)
against moto's S3 server, which honours conditional writes (If-None-Match / If-Match)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from enclave.indexer.errors import IndexProblem
from enclave.indexer.lease import S3Lease, lease_holder
from enclave.indexer.store import storage_options_from_env
from tests.support.repos import commit_all, git, make_repo, write_files
from tests.support.s3 import S3Store


def start_index(
    env: dict[str, str], root: Path, uri: str, machine: str = "ci-1"
) -> subprocess.Popen[str]:
    """`enclave index` as a job on its own machine: its own cache, so no lock file is shared
    with the other jobs (only the lease in the bucket is)."""
    cache = Path(env["XDG_CACHE_HOME"]) / machine
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "enclave.server.cli", "index", str(root), "--db", uri,
         "--json"],
        env={**env, "ENCLAVE_EMBEDDING_PROVIDER": "none", "XDG_CACHE_HOME": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def many_files(prefix: str, count: int) -> dict[str, str]:
    return {
        f"{prefix}/module_{i}.py": f"def {prefix}_function_{i}(value):\n    return value + {i}\n"
        for i in range(count)
    }


def test_two_jobs_writing_one_index_at_once_lose_nothing(tmp_path: Path, s3_store: S3Store) -> None:
    """Two CI jobs, for two commits, run at the same moment: they take turns, and afterwards the
    index holds the files of both commits (the newer one contains the older one's)."""
    root = make_repo(tmp_path / "repo", many_files("first", 60))
    older = git(root, "rev-parse", "HEAD").strip()
    write_files(root, many_files("second", 60))
    commit_all(root, "second")
    newer = git(root, "rev-parse", "HEAD").strip()
    git(root, "worktree", "add", "-q", str(tmp_path / "older"), older)
    uri = f"s3://{s3_store.bucket}/repo"

    jobs = [
        start_index(s3_store.env, tmp_path / "older", uri, "ci-1"),
        start_index(s3_store.env, root, uri, "ci-2"),
    ]
    results = [job.communicate(timeout=300) for job in jobs]
    for job, (out, err) in zip(jobs, results, strict=True):
        assert job.returncode == 0, err
        json.loads(out)
    # (usually one of them logged "waiting for another job to finish writing": they overlapped)

    status = subprocess.run(
        [sys.executable, "-P", "-m", "enclave.server.cli", "status", "--db", uri, "--json",
         "--root", str(root)],
        env={**s3_store.env, "ENCLAVE_EMBEDDING_PROVIDER": "none"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = json.loads(status.stdout)
    assert found["healthy"], found["problem"]
    assert found["files"] == 120 and found["commit"] == newer
    assert lease_holder(uri, storage_options_from_env()) is None  # released by both


def test_a_second_writer_waits_for_the_lease_then_writes(tmp_path: Path, s3_store: S3Store) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "def alpha():\n    return 1\n"})
    uri = f"s3://{s3_store.bucket}/repo"
    with S3Lease(uri, storage_options_from_env()) as held:
        assert lease_holder(uri, storage_options_from_env())["owner"] == held.owner  # type: ignore[index]
        job = start_index(s3_store.env, root, uri)
        time.sleep(6)
        assert job.poll() is None  # still waiting: it wrote nothing while the lease was held
        assert not any(key.endswith(".lance/_versions/1.manifest") for key in s3_store.objects())
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert "waiting for another job to finish writing" in err
    assert json.loads(out)["files_indexed"] == 1


def test_an_expired_lease_is_taken_over_and_its_holder_stops(s3_store: S3Store) -> None:
    uri = f"s3://{s3_store.bucket}/repo"
    options = storage_options_from_env()
    stalled = S3Lease(uri, options, seconds=1.0)
    assert stalled._try_take()  # taken, then its process stalls: no heartbeat renews it
    time.sleep(1.2)
    with S3Lease(uri, options, wait=10) as taker:  # expired: taken over with If-Match
        assert lease_holder(uri, options)["owner"] == taker.owner  # type: ignore[index]
        renewal = threading.Thread(target=stalled._heartbeat)  # the stalled writer wakes up
        renewal.start()
        renewal.join(timeout=10)
        with pytest.raises(IndexProblem, match="another writer took the write lease over"):
            stalled.check()
        taker.check()  # the new holder is unaffected
    assert lease_holder(uri, options) is None


def test_a_store_that_ignores_conditional_writes_is_refused(s3_store: S3Store) -> None:
    uri = f"s3://{s3_store.bucket}/repo"
    lease = S3Lease(uri, storage_options_from_env(), wait=5)
    real = lease._client.put_object

    def unconditional(**kwargs: Any) -> Any:  # a store that drops If-None-Match / If-Match
        kwargs.pop("IfNoneMatch", None)
        kwargs.pop("IfMatch", None)
        return real(**kwargs)

    lease._client.put_object = unconditional
    with pytest.raises(IndexProblem, match="does not honour conditional writes") as caught:
        lease.__enter__()
    assert "index.lease = false" in caught.value.fix


def test_a_writer_that_lost_its_lease_stops_and_the_next_run_completes(
    tmp_path: Path, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from enclave.config import Config, EmbeddingConfig, IndexConfig
    from enclave.indexer.api import open_index

    root = make_repo(tmp_path / "repo", many_files("first", 10))
    config = Config(
        index=IndexConfig(db=f"s3://{s3_store.bucket}/repo"),
        embedding=EmbeddingConfig(provider="none"),
    )

    def lost(self: S3Lease) -> None:
        raise IndexProblem("this update stopped: another writer took the write lease over", "")

    with monkeypatch.context() as patch:
        patch.setattr(S3Lease, "check", lost)
        with pytest.raises(IndexProblem, match="took the write lease over"):
            open_index(root, config).update()
    status = open_index(root, config).status()
    assert not status.healthy and "did not finish" in status.problem  # never taken for whole
    summary = open_index(root, config).update()
    assert any("did not finish: completing it" in note for note in summary.notes)
    assert summary.files_indexed == 10 and open_index(root, config).status().healthy
