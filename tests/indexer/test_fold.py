"""When an update folds its rows into the full-text index (LanceDB's optimize), and that rows it
leaves unfolded are found all the same: on disk and in an S3 store (moto on loopback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import open_index
from enclave.indexer.store import Store, storage_options_from_env
from enclave.indexer.tables import FOLDED_AT
from enclave.indexer.writer import FOLD_ROWS
from tests.support.repos import commit_all, make_repo, write_files
from tests.support.s3 import S3Store

FILES = {
    "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n",
    "users/login.py": "def check_password(user, password):\n    return user.hash == password\n",
}
CHANGE = {"billing/refund.py": "def refund_marmalade_order(order):\n    return order.total\n"}


def where(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "disk":
        return str(tmp_path / "index")
    s3_store: S3Store = request.getfixturevalue("s3_store")
    return f"s3://{s3_store.bucket}/repo"


def full_text_keys(s3_store: S3Store) -> set[str]:
    return {key for key in s3_store.objects() if "/chunks.lance/_indices/" in key}


@pytest.mark.parametrize("kind", ["disk", "s3"])
def test_full_text_search_finds_rows_a_small_update_left_unfolded(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = where(kind, tmp_path, request)
    config = Config(index=IndexConfig(db=db), embedding=EmbeddingConfig(provider="none"))
    root = make_repo(tmp_path / "repo", FILES)
    open_index(root, config).update()
    store = Store(db, storage_options_from_env() if kind == "s3" else None)
    assert store.unindexed_rows() == 0  # a build folds everything

    write_files(root, CHANGE)
    commit_all(root, "one file")
    summary = open_index(root, config).update()
    assert summary.files_indexed == 1 and summary.versions_removed == 0
    assert store.unindexed_rows() == 1  # the new chunk is not in the full-text index ...
    hits = open_index(root, config).search("refund marmalade order", k=3, mode="lexical").hits
    assert [h.path for h in hits][:1] == ["billing/refund.py"]  # ... and is found all the same


def test_a_ci_update_folds_only_past_its_thresholds(tmp_path: Path, s3_store: S3Store) -> None:
    db = f"s3://{s3_store.bucket}/repo"
    config = Config(index=IndexConfig(db=db), embedding=EmbeddingConfig(provider="none"))
    root = make_repo(tmp_path / "repo", FILES)
    open_index(root, config).update()
    store = Store(db, storage_options_from_env())
    built = full_text_keys(s3_store)

    # a one-file change: its row is written, the full-text index is not
    write_files(root, CHANGE)
    commit_all(root, "one file")
    open_index(root, config).update()
    assert full_text_keys(s3_store) == built

    # rows past FOLD_ROWS: folded in, a new full-text index written
    many = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(FOLD_ROWS))
    write_files(root, {"generated_helpers.py": many})
    commit_all(root, "many rows")
    open_index(root, config).update()
    assert store.unindexed_rows() == 0
    folded = full_text_keys(s3_store)
    assert folded - built

    # a day after the last fold, even a small change folds (and old versions are removed then)
    day_ago = (datetime.now(UTC) - timedelta(days=1, minutes=1)).isoformat(timespec="seconds")
    store.set_meta({FOLDED_AT: day_ago})
    write_files(root, {"users/login.py": "def check_passphrase(user):\n    return True\n"})
    commit_all(root, "small again")
    open_index(root, config).update()
    assert store.unindexed_rows() == 0 and full_text_keys(s3_store) - folded
    assert store.meta()[FOLDED_AT] > day_ago
