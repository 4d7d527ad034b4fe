"""`enclave index` as a CI job uses it: an index in an S3 store (moto on loopback) brought from
its recorded commit to HEAD, a JSON summary, exit codes 0 / 1 / 2 (degraded) / 64 (usage), and
old table versions cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.server.cli import main
from enclave.server.cli.common import EXIT_DEGRADED, EXIT_FAIL, EXIT_OK, EXIT_USAGE
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import commit_all, git, make_repo, write_files
from tests.support.s3 import S3Store, free_port


def enclave(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "enclave.server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


FILES = {
    "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n",
    "billing/refund.py": "def refund_order(order):\n    return order.total\n",
    "users/login.py": "def check_password(user, password):\n    return user.hash == password\n",
    "users/profile.py": "def display_name(user):\n    return user.name.title()\n",
}


def test_a_ci_job_updates_the_shared_index_to_head(tmp_path: Path, s3_store: S3Store) -> None:
    env = {**s3_store.env, "ENCLAVE_EMBEDDING_PROVIDER": "none", "CI": "true"}
    root = make_repo(tmp_path / "repo", FILES)
    uri = f"s3://{s3_store.bucket}/repo"

    first = enclave(env, "index", str(root), "--db", uri, "--json")
    assert first.returncode == EXIT_OK, first.stderr
    built = json.loads(first.stdout)
    assert built["files_indexed"] == 4 and built["degraded"] == [] and built["exit_code"] == 0
    assert built["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert "\x1b[" not in first.stderr  # no progress bar (nor any terminal control) in a CI log

    # a commit touching two files: only those two are processed
    write_files(root, {"billing/invoice.py": "def total_with_vat(amount):\n    return amount\n"})
    write_files(root, {"users/profile.py": "def avatar_url(user):\n    return user.avatar\n"})
    commit_all(root, "two files")
    second = json.loads(enclave(env, "index", str(root), "--db", uri, "--json").stdout)
    assert (second["files_indexed"], second["files_unchanged"], second["files_deleted"]) == (
        2,
        2,
        0,
    )
    assert second["commit"] == git(root, "rev-parse", "HEAD").strip()

    # a rename and a deletion; old versions removed at once with --retain 0
    git(root, "mv", "billing/refund.py", "billing/refunds.py")
    git(root, "rm", "-q", "users/login.py")
    commit_all(root, "rename and delete")
    done = enclave(env, "index", str(root), "--db", uri, "--json", "--retain", "0")
    third = json.loads(done.stdout)
    assert (third["files_indexed"], third["files_deleted"]) == (1, 2)
    assert third["versions_removed"] > 0

    status = json.loads(enclave(env, "status", "--root", str(root), "--db", uri, "--json").stdout)
    assert status["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert status["files"] == 3 and status["healthy"]
    hits = json.loads(
        enclave(env, "search", "refund order", "--db", uri, "--json", "--root", str(root)).stdout
    )["results"]
    assert [h["path"] for h in hits][:1] == ["billing/refunds.py"]
    assert "users/login.py" not in {h["path"] for h in hits}


def test_an_older_commit_never_takes_the_shared_index_back(
    tmp_path: Path, s3_store: S3Store
) -> None:
    env = {**s3_store.env, "ENCLAVE_EMBEDDING_PROVIDER": "none"}
    root = make_repo(tmp_path / "repo", {"a.py": "def alpha():\n    return 1\n"})
    write_files(root, {"b.py": "def beta():\n    return 2\n"})
    commit_all(root, "add b")
    git(root, "worktree", "add", "-q", str(tmp_path / "old"), "HEAD~1")
    uri = f"s3://{s3_store.bucket}/repo"
    assert enclave(env, "index", str(root), "--db", uri, "--json").returncode == 0
    late = enclave(env, "index", str(tmp_path / "old"), "--db", uri, "--json")
    assert late.returncode == 0, late.stderr
    summary = json.loads(late.stdout)
    assert (
        summary["files_deleted"] == 0
        and summary["commit"] == git(root, "rev-parse", "HEAD").strip()
    )
    assert any("already contains HEAD" in note for note in summary["notes"])


def test_exit_codes_degraded_failed_and_usage(tmp_path: Path, s3_store: S3Store) -> None:
    # an embedding server that is not there: the index is built, lexical only -> degraded (2)
    env = {
        **s3_store.env,
        "ENCLAVE_EMBEDDING_PROVIDER": "ollama",
        "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}",
    }
    root = make_repo(tmp_path / "repo", FILES)
    db = str(tmp_path / "index")
    done = enclave(env, "index", str(root), "--db", db, "--json")
    assert done.returncode == EXIT_DEGRADED, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files_indexed"] == 4 and summary["exit_code"] == EXIT_DEGRADED
    assert summary["degraded"] and summary["degraded"][0].startswith("semantic search is off")
    # --json sends the summary to stdout (a file in CI): the reason is on stderr too
    assert "enclave: degraded: semantic search is off: Ollama is not reachable" in done.stderr
    done = enclave(env, "index", str(root), "--db", db)
    assert done.returncode == EXIT_DEGRADED and "enclave: degraded: semantic search" in done.stderr
    strict = enclave(env, "index", str(root), "--db", db, "--json", "--fail-on-degraded")
    assert strict.returncode == EXIT_FAIL
    assert "enclave: degraded: semantic search is off" in strict.stderr
    # a usage error is told apart from "degraded"
    usage = enclave(env, "index", str(root), "--retain", "-1")
    assert usage.returncode == EXIT_USAGE and "--retain: must be 0 or more" in usage.stderr
    # a failure: no such repository
    assert enclave(env, "index", str(tmp_path / "nowhere")).returncode == EXIT_FAIL


def test_the_store_endpoint_and_region_can_come_from_the_settings(
    tmp_path: Path, s3_store: S3Store
) -> None:
    env = {k: v for k, v in s3_store.env.items() if k not in ("AWS_ENDPOINT_URL", "AWS_REGION")}
    env["ENCLAVE_EMBEDDING_PROVIDER"] = "none"
    root = make_repo(tmp_path / "repo", FILES)
    uri = f"s3://{s3_store.bucket}/repo"
    settings = json.dumps({"index": {"s3Endpoint": s3_store.endpoint, "s3Region": "us-east-1"}})
    done = enclave(env, "index", str(root), "--db", uri, "--json", "--settings", settings)
    assert done.returncode == EXIT_OK, done.stderr
    assert json.loads(done.stdout)["files_indexed"] == 4
    assert any(key.startswith("repo/files.lance/") for key in s3_store.objects())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`enclave ARGS` in this process (the subprocess tests above cover the CLI's start)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def newcomer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's environment: a fresh HOME and user config, no ENCLAVE_* or OLLAMA_*
    variables, and no Ollama (OLLAMA_HOST at a port where nothing listens)."""
    for name in os.environ:
        if name.startswith(("ENCLAVE_", "OLLAMA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")


@pytest.mark.usefixtures("newcomer")
def test_a_first_run_without_ollama_and_the_default_configuration_is_not_degraded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Quick start chains `enclave index . && enclave search ...`: with the default
    embedding settings and no Ollama, the index is built (lexical), a warning names the fix, and
    the exit code is 0. Embedding settings given explicitly, by any layer, make it degraded."""
    root = make_repo(tmp_path / "repo", FILES)

    code, out, err = run(capsys, "index", str(root))
    assert code == EXIT_OK, err
    warning = [line for line in err.splitlines() if line.startswith("enclave: warning:")]
    assert len(warning) == 1 and "semantic search is off" in warning[0], err
    assert "ollama serve" in warning[0] and "degraded" not in err
    assert "semantic search: off: Ollama is not reachable" in out

    code, out, err = run(capsys, "index", str(root), "--json")
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert (summary["degraded"], summary["exit_code"], summary["semantic"]) == ([], 0, False)
    assert summary["warnings"][0].startswith("semantic search is off: Ollama is not reachable")
    assert "enclave: warning: semantic search is off" in err  # also with --json

    code, out, _ = run(capsys, "status", "--root", str(root), "--json")
    status = json.loads(out)
    assert status["semantic"] is False
    assert status["semantic_reason"].startswith("Ollama is not reachable")

    # asked for explicitly: by --settings, by the environment, by the repository's .enclave.toml
    settings = json.dumps({"embedding": {"provider": "ollama"}})
    code, out, err = run(capsys, "index", str(root), "--json", "--settings", settings)
    assert code == EXIT_DEGRADED, err
    assert json.loads(out)["degraded"][0].startswith("semantic search is off")
    assert "enclave: degraded: semantic search is off" in err
    with monkeypatch.context() as patch:
        patch.setenv("ENCLAVE_EMBEDDING_MODEL", "nomic-embed-text")
        assert run(capsys, "index", str(root))[0] == EXIT_DEGRADED
    (root / ".enclave.toml").write_text('[embedding]\nmodel = "nomic-embed-text"\n')
    code, _, err = run(capsys, "index", str(root))
    assert code == EXIT_DEGRADED and "enclave: degraded: semantic search is off" in err


def test_a_job_for_an_older_commit_finishing_late_exits_0_with_its_note(
    tmp_path: Path,
    s3_store: S3Store,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The harmless race: the shared index (with all its vectors) is at a newer commit; the late
    job does nothing, says so, reports the index's semantic state, and is not degraded."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    monkeypatch.setenv("ENCLAVE_EMBEDDING_MODEL", "nomic-embed-text")
    root = make_repo(tmp_path / "repo", {"a.py": "def alpha():\n    return 1\n"})
    write_files(root, {"b.py": "def beta():\n    return 2\n"})
    commit_all(root, "add b")
    git(root, "worktree", "add", "-q", str(tmp_path / "old"), "HEAD~1")
    uri = f"s3://{s3_store.bucket}/repo"
    code, out, err = run(capsys, "index", str(root), "--db", uri, "--json", "--fail-on-degraded")
    assert code == EXIT_OK, err
    assert json.loads(out)["semantic"] is True

    for flags in ((), ("--fail-on-degraded",)):
        code, out, err = run(capsys, "index", str(tmp_path / "old"), "--db", uri, "--json", *flags)
        assert code == EXIT_OK, err
        summary = json.loads(out)
        assert (summary["degraded"], summary["exit_code"]) == ([], EXIT_OK)
        assert summary["superseded"] and summary["semantic"] is True
        assert summary["semantic_reason"] == ""
        assert any("already contains HEAD" in note for note in summary["notes"])
    code, out, err = run(capsys, "index", str(tmp_path / "old"), "--db", uri)
    assert code == EXIT_OK, err
    assert "semantic search: on (nothing done)" in out and "off:" not in out
    assert "degraded" not in err
