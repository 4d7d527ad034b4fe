"""The commit record: `status` and the start of an update prove the index unchanged since its
last update without reading its rows, and read them all whenever the proof does not hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import open_index
from enclave.indexer.committed import COMMITTED
from enclave.indexer.store import Store
from tests.support.repos import commit_all, make_repo, write_files

FILES = {
    f"pkg/mod_{i}.py": f"def helper_{i}(x):\n    return x + {i}\n\n\nclass Thing{i}:\n    pass\n"
    for i in range(6)
}


def _config(tmp_path: Path) -> Config:
    return Config(
        index=IndexConfig(db=str(tmp_path / "index")), embedding=EmbeddingConfig(provider="none")
    )


def _no_full_check(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make Store.verify (which reads every row) record that it ran."""
    ran: list[str] = []
    verify = Store.verify

    def counted(self: Store) -> object:
        ran.append(self.uri)
        return verify(self)

    monkeypatch.setattr(Store, "verify", counted)
    return ran


def test_status_and_a_small_update_prove_the_index_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    config = _config(tmp_path)
    open_index(root, config).update()
    ran = _no_full_check(monkeypatch)
    status = open_index(root, config).status()
    assert status.healthy and (status.files, status.chunks, status.symbols) == (6, 12, 12), status
    write_files(root, {"pkg/mod_0.py": "def helper_0(x):\n    return x * 2\n"})
    commit_all(root, "one file")
    summary = open_index(root, config).update()
    assert summary.files_indexed == 1 and not summary.full, summary
    status = open_index(root, config).status()
    assert status.healthy and (status.files, status.chunks, status.symbols) == (6, 11, 11), status
    assert ran == []  # neither status nor the update read the tables to check them


def test_without_a_record_it_holds_the_tables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    config = _config(tmp_path)
    index = open_index(root, config)
    index.update()
    store = Store(str(tmp_path / "index"))
    store.set_meta({COMMITTED: '{"versions": "not a record"}'})
    ran = _no_full_check(monkeypatch)
    status = open_index(root, config).status()
    assert status.healthy and status.chunks == 12 and len(ran) == 1
    store.set_meta({COMMITTED: ""})
    store.table("chunks").delete("path = 'pkg/mod_3.py'")  # a change behind its back
    status = open_index(root, config).status()
    assert not status.healthy and "pkg/mod_3.py" in status.problem and len(ran) == 2, status


def test_an_update_compares_content_ids_without_building_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27: at 18,896 files, one catalog row object per file was a quarter of a one-file
    update. An update reads the paths and content ids it compares, and still finds the file
    changed, the file added and the file deleted."""
    root = make_repo(tmp_path / "repo", FILES)
    config = _config(tmp_path)
    open_index(root, config).update()
    built: list[str] = []
    catalog = Store.catalog

    def counted(self: Store) -> object:
        built.append(self.uri)
        return catalog(self)

    monkeypatch.setattr(Store, "catalog", counted)
    write_files(root, {"pkg/mod_0.py": "def helper_0(x):\n    return x * 2\n", "new.py": "N = 1\n"})
    (root / "pkg/mod_5.py").unlink()
    commit_all(root, "one changed, one added, one deleted")
    summary = open_index(root, config).update()
    assert (summary.files_indexed, summary.files_deleted, summary.files_unchanged) == (2, 1, 4)
    assert built == []
    status = open_index(root, config).status()
    assert status.healthy and status.files == 6, status
