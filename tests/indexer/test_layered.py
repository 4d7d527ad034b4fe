"""A laptop reads the team's shared index (built by CI in an S3 store, moto on loopback) and
keeps a local overlay of what differs in its working tree (enclave.indexer.layered)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import open_index
from enclave.indexer.layered import LayeredIndex
from enclave.indexer.store import Store, storage_options_from_env
from tests.support.repos import git, make_repo, write_files
from tests.support.s3 import MotoServer, S3Store

FILES = {
    "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n",
    "billing/refund.py": "def refund_order(order):\n    return order.total\n",
    "users/login.py": "def check_password(user, password):\n    return user.hash == password\n",
    "users/profile.py": "def display_name(user):\n    return user.name.title()\n",
    "README.md": "# Shop\n\nBilling and users.\n",
}
LOCAL_EDIT = "def total_with_vat_locally(amount):\n    return amount * 1.2\n"
UNTRACKED = "def brand_new_helper(items):\n    return sorted(items)\n"


def ci_build(tmp_path: Path, uri: str) -> Path:
    """The CI job: a checkout of the team's repository, indexed into the shared store."""
    ci = make_repo(tmp_path / "ci", FILES)
    config = Config(index=IndexConfig(db=uri), embedding=EmbeddingConfig(provider="none"))
    open_index(ci, config).update()
    return ci


def laptop_with_changes(tmp_path: Path, ci: Path) -> Path:
    """A developer's clone with an uncommitted edit, an untracked file and a deleted file."""
    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "-q", str(ci), str(laptop))
    write_files(laptop, {"billing/invoice.py": LOCAL_EDIT, "notes/todo.py": UNTRACKED})
    (laptop / "users/login.py").unlink()
    return laptop


def laptop_config(uri: str, **embedding: object) -> Config:
    return Config(
        index=IndexConfig(shared=uri),
        embedding=EmbeddingConfig(**({"provider": "none"} | embedding)),  # type: ignore[arg-type]
    )


def test_the_overlay_shadows_the_shared_index_and_nothing_is_written_to_it(
    tmp_path: Path, s3_store: S3Store
) -> None:
    uri = f"s3://{s3_store.bucket}/shop"
    ci = ci_build(tmp_path, uri)
    laptop = laptop_with_changes(tmp_path, ci)
    before = s3_store.objects()

    index = open_index(laptop, laptop_config(uri))
    assert isinstance(index, LayeredIndex)
    summary = index.update()
    assert summary.files_indexed == 2  # the edited and the untracked file, nothing else
    assert any("1 of its file(s) hidden" in note for note in summary.notes)

    # search: the local version of the edited file, the untracked file, never the deleted one
    hits = index.search("total with vat locally", k=5).hits
    assert hits[0].path == "billing/invoice.py" and "total_with_vat_locally" in hits[0].text
    assert all("total_with_tax" not in h.text for h in index.search("total with tax", k=10).hits)
    assert index.search("brand new helper", k=3).hits[0].path == "notes/todo.py"
    assert "users/login.py" not in {h.path for h in index.search("check password", k=10).hits}
    assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"  # shared

    # symbols, definitions, chunks and paths: the same view
    assert [s.path for s in index.find_symbols("brand_new_helper")][:1] == ["notes/todo.py"]
    assert index.definitions(["check_password"]) == []
    assert index.definitions(["total_with_tax"]) == []
    assert [s.path for s in index.definitions(["refund_order"])] == ["billing/refund.py"]
    assert index.file_symbols("users/login.py") == []
    assert [s.name for s in index.file_symbols("billing/invoice.py")] == ["total_with_vat_locally"]
    chunk = index.chunk_at("billing/invoice.py", 1)
    assert chunk is not None and "total_with_vat_locally" in chunk.text
    assert index.symbols_in(["users/login.py", "billing/refund.py"])["users/login.py"] == []
    names = {s.name for s in index.all_symbols()}
    assert {"refund_order", "brand_new_helper", "total_with_vat_locally"} <= names
    assert not {"check_password", "total_with_tax"} & names
    assert index.paths() == frozenset(
        {"billing/invoice.py", "billing/refund.py", "users/profile.py", "README.md",
         "notes/todo.py"}
    )  # fmt: skip

    status = index.status()
    assert status.shared == uri and not status.shared_problem and status.healthy
    assert (status.overlay_files, status.files) == (2, 5)
    assert status.db == str(laptop / ".enclave")

    # the command line reads the same layered view
    done = subprocess.run(
        [sys.executable, "-P", "-m", "enclave.server.cli", "search", "check password", "--json",
         "--root", str(laptop), "--settings", json.dumps({"index": {"shared": uri}})],
        env={**s3_store.env, "ENCLAVE_EMBEDDING_PROVIDER": "none"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "users/login.py" not in {r["path"] for r in json.loads(done.stdout)["results"]}

    # reverting the edit: the file is the shared one again, and leaves the overlay
    git(laptop, "checkout", "--", "billing/invoice.py")
    summary = index.update()
    assert summary.files_deleted == 1
    assert index.status().overlay_files == 1
    assert index.search("total with tax", k=3).hits[0].path == "billing/invoice.py"

    assert s3_store.objects() == before  # not one object of the bucket written or replaced


def test_a_shared_index_of_another_embedding_model_is_said_with_the_fix(
    tmp_path: Path, s3_store: S3Store
) -> None:
    uri = f"s3://{s3_store.bucket}/shop"
    ci = ci_build(tmp_path, uri)
    # the CI job's vectors came from another model than the laptop's
    Store(uri, storage_options_from_env()).set_meta({"embedding_model": "ollama:team-embedder"})
    laptop = laptop_with_changes(tmp_path, ci)
    index = open_index(laptop, laptop_config(uri, provider="ollama"))
    status = index.status()
    assert not status.semantic
    assert "was embedded with ollama:team-embedder" in status.semantic_reason
    assert uri in status.semantic_reason
    assert "embedding.model" in status.semantic_fix
    assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"  # lexical


def test_the_shared_store_going_away_degrades_with_a_message(tmp_path: Path) -> None:
    server = MotoServer()  # a store of this test's own, to stop it
    server.start()
    try:
        env = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            patch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
            store = S3Store(server.endpoint, "away", env)
            store.client().create_bucket(Bucket="away")
            uri = "s3://away/shop"
            ci = ci_build(tmp_path, uri)
            laptop = laptop_with_changes(tmp_path, ci)
            index = open_index(laptop, laptop_config(uri))
            index.update()
            assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"

            server.stop()  # mid-session: the network to the store is gone
            hits = index.search("brand new helper", k=3).hits  # no crash: the overlay answers
            assert hits[0].path == "notes/todo.py"
            status = index.status()
            assert "the shared index at s3://away/shop is unavailable" in status.shared_problem
            assert status.shared_fix

            summary = index.update()  # falls back to a full local index, and says so
            assert any("indexed every file locally" in note for note in summary.notes)
            assert index.search("refund order", k=3).hits[0].path == "billing/refund.py"
            assert "users/login.py" not in index.paths()
            assert index.status().shared_problem
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)


def test_status_says_when_the_shared_index_is_missing(
    tmp_path: Path, s3_store: S3Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from enclave.server.cli import main

    laptop = make_repo(tmp_path / "laptop", FILES)
    settings = json.dumps({"index": {"shared": f"s3://{s3_store.bucket}/nothing-here"}})
    assert main(["status", "--root", str(laptop), "--settings", settings]) == 1
    out = capsys.readouterr().out
    assert f"shared:    s3://{s3_store.bucket}/nothing-here: the shared index" in out
    assert "is unavailable (no index at" in out and "fix:" in out


def test_a_search_before_the_first_update_finds_the_files_edited_here(
    tmp_path: Path, s3_store: S3Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a laptop with index.shared and no overlay yet, the edited files are hidden from the
    shared index: the CLI indexes the few that differ first (as the language server does at
    start) and says so; status counts only the shared index's own files as shadowed, and
    chunks without the shadowed rows."""
    from enclave.server.cli import main

    uri = f"s3://{s3_store.bucket}/shop"
    ci = ci_build(tmp_path, uri)
    laptop = laptop_with_changes(tmp_path, ci)
    settings = json.dumps({"index": {"shared": uri}, "embedding": {"provider": "none"}})
    args = ["--root", str(laptop), "--settings", settings, "--json"]
    assert main(["search", "total with vat locally", *args]) == 0
    captured = capsys.readouterr()
    hits = json.loads(captured.out)["results"]
    assert hits and hits[0]["path"] == "billing/invoice.py", captured.err
    assert "note: indexed 2 file(s) that differ from the shared index" in captured.err

    assert main(["status", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    # shadowed: the edited invoice.py; deleted: login.py; notes/todo.py was never the shared one
    assert (status["hidden_files"], status["overlay_files"], status["files"]) == (2, 2, 5)
    shared = Store(uri, storage_options_from_env())
    per_file = dict(
        zip(*shared.columns("files", ["path", "chunks"]).to_pydict().values(), strict=True)
    )
    overlay = Store(str(laptop / ".enclave"))
    expected = (
        sum(per_file.values())
        - per_file["billing/invoice.py"]
        - per_file["users/login.py"]
        + overlay.table("chunks").count_rows()
    )
    assert status["chunks"] == expected
    shared_symbols = shared.columns("symbols", ["path"]).column(0).to_pylist()
    kept = [p for p in shared_symbols if p not in ("billing/invoice.py", "users/login.py")]
    assert status["symbols"] == len(kept) + overlay.table("symbols").count_rows()

    # more files differ than a search indexes on its way: it says what to run instead
    write_files(laptop, {f"notes/n{i}.py": f"def note_{i}():\n    return {i}\n" for i in range(60)})
    assert main(["search", "note", *args]) == 0
    assert "60 file(s) differ from the shared index and are not indexed here yet" in (
        capsys.readouterr().err
    )
