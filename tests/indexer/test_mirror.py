"""The local copy of a shared index in an S3 store (enclave.indexer.mirror): queries read it once
it is complete, a new shared version is copied file by file, a broken copy gives way to the
store, and the bucket is only ever read."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import Index, open_index
from enclave.indexer.mirror import mirror_folder
from tests.indexer.test_layered import ci_build, laptop_config, laptop_with_changes
from tests.support.repos import commit_all, git, write_files
from tests.support.s3 import MotoServer, S3Store


@pytest.fixture
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A store of the test's own, to stop it."""
    server = MotoServer()
    server.start()
    env = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    S3Store(server.endpoint, "mirrored", env).client().create_bucket(Bucket="mirrored")
    try:
        yield server
    finally:
        server.stop()


def test_queries_read_the_verified_local_copy(
    tmp_path: Path, own_store: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    uri = "s3://mirrored/shop"
    ci = ci_build(tmp_path, uri)
    laptop = laptop_with_changes(tmp_path, ci)
    bucket = S3Store(own_store.endpoint, "mirrored", {})
    before = bucket.objects()

    index = open_index(laptop, laptop_config(uri))
    index.update()
    folder = mirror_folder(uri)
    assert not folder.exists()  # nothing is copied before the server is ready
    index.prefetch(wait=True)
    assert {p.name for p in folder.glob("*.lance")} == {
        "chunks.lance", "symbols.lance", "files.lance", "meta.lance"
    }  # fmt: skip
    assert bucket.objects() == before  # listed and read: not one object written or replaced
    assert folder.stat().st_mode & 0o777 == 0o700  # the team's code, for this user only
    assert not list(folder.glob("*.lance/_transactions/*"))

    own_store.stop()  # the store is gone: every answer now comes from the copy and the overlay
    with caplog.at_level(logging.WARNING):
        assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"
        hits = index.search("total with vat locally", k=5).hits
        assert hits[0].path == "billing/invoice.py" and "total_with_vat_locally" in hits[0].text
        assert all("total_with_tax" not in h.text for h in index.search("total with tax").hits)
        assert "users/login.py" not in {h.path for h in index.search("check password").hits}
        assert [s.path for s in index.definitions(["refund_order"])] == ["billing/refund.py"]
        assert index.definitions(["check_password"]) == []
        chunk = index.chunk_at("billing/refund.py", 1)
        assert chunk is not None and "refund_order" in chunk.text
        status = index.status()
        assert status.healthy and not status.shared_problem and status.files == 5
        assert status.shared_copy == str(folder)
    assert not caplog.records  # not one failed read of the store


def _copied(tmp_path: Path, s3_store: S3Store) -> tuple[Index, Path, Path, Path]:
    """A CI build in the store, a laptop's index over it with its copy made: the index, the
    CI checkout, the laptop's and the copy's folder."""
    uri = f"s3://{s3_store.bucket}/shop"
    ci = ci_build(tmp_path, uri)
    laptop = laptop_with_changes(tmp_path, ci)
    index = open_index(laptop, laptop_config(uri))
    index.update()
    index.prefetch(wait=True)
    return index, ci, laptop, mirror_folder(uri)


def test_a_new_shared_version_is_copied_file_by_file(tmp_path: Path, s3_store: S3Store) -> None:
    index, ci, laptop, folder = _copied(tmp_path, s3_store)
    first = {p: p.stat().st_mtime_ns for p in folder.glob("*.lance/data/*")}

    # CI publishes a commit; the laptop's next update compares with it and copies what is new
    write_files(ci, {"billing/credit.py": "def issue_store_credit(order):\n    return 5\n"})
    commit_all(ci, "credit")
    config = Config(
        index=IndexConfig(db=f"s3://{s3_store.bucket}/shop"),
        embedding=EmbeddingConfig(provider="none"),
    )
    open_index(ci, config).update()
    git(laptop, "pull", "-q", "--no-rebase")
    before = s3_store.objects()
    index.update()
    # until the copy is made, the store answers (the copy holds the older version)
    assert index.status().shared_copy == ""
    assert index.search("issue store credit", k=3).hits[0].path == "billing/credit.py"
    index.prefetch(wait=True)
    assert s3_store.objects() == before

    again = {p: p.stat().st_mtime_ns for p in folder.glob("*.lance/data/*")}
    kept = [p for p in first if p in again]
    assert kept and all(again[p] == first[p] for p in kept)  # never downloaded twice
    assert set(again) - set(first)  # the new rows' files
    for table in folder.glob("*.lance"):  # one version's manifest per table: older ones pruned
        assert len(list((table / "_versions").glob("*.manifest"))) == 1

    shutil.rmtree(ci)  # (nothing of the CI checkout is read by the laptop)
    assert index.search("issue store credit", k=3).hits[0].path == "billing/credit.py"
    assert "billing/credit.py" in index.paths()


def test_a_broken_copy_gives_way_to_the_store(
    tmp_path: Path, s3_store: S3Store, caplog: pytest.LogCaptureFixture
) -> None:
    index, _, _, folder = _copied(tmp_path, s3_store)
    for data in folder.glob("chunks.lance/data/*"):
        data.write_bytes(b"not a lance file")  # damaged on disk

    with caplog.at_level(logging.WARNING):
        assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"
    assert "the local copy of the shared index" in caplog.text and "failed" in caplog.text
    assert not index.status().shared_problem  # the store answered: nothing is unavailable
    assert not list(folder.glob("*.lance"))  # the broken copy is gone ...
    index.update()
    index.prefetch(wait=True)  # ... and made again after the next update
    assert list(folder.glob("chunks.lance/data/*"))
    assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"


def test_no_copy_while_the_ci_job_writes_nor_when_turned_off(
    tmp_path: Path, s3_store: S3Store
) -> None:
    from enclave.indexer.store import Store, storage_options_from_env

    uri = f"s3://{s3_store.bucket}/shop"
    ci = ci_build(tmp_path, uri)
    laptop = laptop_with_changes(tmp_path, ci)
    off = laptop_config(uri)
    off = Config(index=IndexConfig(shared=uri, shared_copy=False), embedding=off.embedding)
    index = open_index(laptop, off)
    index.update()
    index.prefetch(wait=True)
    assert not mirror_folder(uri).exists()

    # a CI update under way (its meta says so): the laptop reads the store, copies nothing
    Store(uri, storage_options_from_env()).set_meta({"update_started": "2026-12-03T09:00:00"})
    index = open_index(laptop, laptop_config(uri))
    index.update()
    index.prefetch(wait=True)
    assert not mirror_folder(uri).exists()
