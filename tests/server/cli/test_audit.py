"""The audit log written by real `enclave` processes against the test Ollama server, and
`enclave audit` reading it back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from enclave.audit import read_records
from enclave.server.cli import main
from tests.support.ollama_fixtures import env_for, use_env
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

CODE = "def brake_force(speed):\n    return speed * 0.8  # UNIQUE_CODE_MARKER\n"


@pytest.fixture
def repo(tmp_path: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", {"car/brakes.py": CODE})
    use_env(env_for(ollama_server, tmp_path / "xdg"), monkeypatch)
    monkeypatch.chdir(root)
    return root


def test_concurrent_processes_write_valid_jsonl_without_prompt_text(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asks = [
        subprocess.Popen(
            [sys.executable, "-m", "enclave", "ask", f"QUESTION_MARKER_{n} what is brake_force?"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(3)
    ]
    explain = subprocess.run(
        [sys.executable, "-m", "enclave", "explain", "car/brakes.py", "--no-thinking"],
        cwd=repo,
        capture_output=True,
        timeout=180,
    )
    assert explain.returncode == 0, explain.stderr
    for ask in asks:
        assert ask.wait(timeout=180) == 0, ask.stderr.read() if ask.stderr else ""
    log = repo / ".enclave" / "audit.jsonl"
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert sorted(r["purpose"] for r in records) == ["ask", "ask", "ask", "explain"]
    assert "QUESTION_MARKER" not in text and "UNIQUE_CODE_MARKER" not in text
    explained = next(r for r in records if r["purpose"] == "explain")
    assert {"path": "car/brakes.py", "start_line": 1, "end_line": 2} in explained["files"]
    assert explained["model"] == "deepseek-r1" and explained["outcome"] == "ok"
    assert explained["prompt_tokens"] > 0 and explained["output_tokens"] > 0
    assert explained["prompt_sha256"].startswith("sha256:") and explained["duration_ms"] > 0

    assert main(["audit", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == 4 and summary["by_purpose"]["ask"]["requests"] == 3
    assert main(["audit", "--json", "--purpose", "explain", "--records"]) == 0
    only = json.loads(capsys.readouterr().out)
    assert only["requests"] == 1 and only["records"][0]["purpose"] == "explain"
    assert main(["audit", "--json", "--model", "smollm2:135m"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 0
    assert main(["audit", "--json", "--since", "2999-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 0
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "by purpose:" in out and "deepseek-r1" in out


def test_prompts_are_logged_only_when_asked(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCLAVE_AUDIT_INCLUDE_PROMPTS", "true")
    monkeypatch.setenv("ENCLAVE_AUDIT_PATH", "logs/requests.jsonl")
    assert main(["explain", "car/brakes.py", "--no-thinking"]) == 0
    record = json.loads((repo / "logs" / "requests.jsonl").read_text())
    assert "UNIQUE_CODE_MARKER" in record["prompt"]
    assert not (repo / ".enclave" / "audit.jsonl").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["audit", "--since", "last tuesday"])
    assert "expected 7d, 24h" in capsys.readouterr().err


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` read-only by a read-only bind mount over itself; where mounting is not allowed
    (root ignores permission bits), the log's path is taken by a directory, which no one can
    append to either."""
    folder.mkdir(parents=True, exist_ok=True)

    def mount(*args: str) -> bool:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return False
        return subprocess.run(["mount", *args], capture_output=True).returncode == 0

    mounted = mount("--bind", str(folder), str(folder))
    if mounted and not mount("-o", "remount,ro,bind", str(folder)):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
        mounted = False
    if not mounted:
        (folder / "audit.jsonl").mkdir()
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
        else:
            (folder / "audit.jsonl").rmdir()


def test_a_required_audit_log_that_cannot_be_written_refuses_before_sending(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system = tmp_path / "etc" / "policy.toml"  # the administrator's /etc/enclave/policy.toml
    system.parent.mkdir()
    system.write_text("require_audit = true\n")
    monkeypatch.setattr("enclave.policy.DEFAULT_POLICY_PATH", system)
    ollama_server.state.requests.clear()
    with unwritable(repo / ".enclave"):
        for argv in (["ask", "what is brake_force?"], ["explain", "car/brakes.py"]):
            assert main(argv) == 1
            err = capsys.readouterr().err  # (ask first notes that there is no index)
            assert err.count("enclave: error:") == 1 and "Traceback" not in err, err
            line = err.splitlines()[-1]
            assert line.startswith("enclave: error: the audit log ") and "require_audit" in line
    assert ollama_server.state.requests == []  # nothing reached the model server
    assert main(["explain", "car/brakes.py", "--no-thinking"]) == 0  # writable again: sent
    assert len(read_records(repo / ".enclave" / "audit.jsonl")[0]) == 1


def test_a_repository_cannot_point_the_audit_log_at_a_file_outside(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: the outside file's content was deleted by the rotation."""
    victim = tmp_path / "victim.txt"
    victim.write_text("a file of the user's, outside the repository\n" * 10)
    (repo / ".enclave.toml").write_text(
        f'[audit]\npath = "{victim}"\nmax_bytes = 100\nkeep = 0\ninclude_prompts = true\n'
    )
    assert main(["ask", "what is brake_force?"]) == 0
    err = capsys.readouterr().err
    assert "invalid setting audit.path (from .enclave.toml): a repository cannot set it" in err
    assert victim.read_text() == "a file of the user's, outside the repository\n" * 10
    records, _ = read_records(repo / ".enclave" / "audit.jsonl")  # the default log instead
    assert [r["purpose"] for r in records] == ["ask"] and "prompt" not in records[0]


def test_since_far_in_the_past_selects_everything(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = repo / ".enclave" / "audit.jsonl"
    log.parent.mkdir(exist_ok=True)
    log.write_text('{"time":"2026-01-02T03:04:05.000+00:00","model":"m","purpose":"ask"}\n')
    for since in ("99999999999d", "9" * 5000 + "h"):  # once a traceback (OverflowError)
        assert main(["audit", "--json", "--since", since]) == 0
        assert json.loads(capsys.readouterr().out)["requests"] == 1


def test_a_repository_whose_enclave_folder_is_a_link_chooses_nothing(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cloned repository that commits `.enclave` as a link to a folder of its choosing (a
    world-readable one, or one it wants a file in) gets neither the index (the code's text), nor
    the audit log, nor the Modelfile written there."""
    elsewhere = tmp_path / "world-readable"
    elsewhere.mkdir()
    (repo / ".enclave").symlink_to(elsewhere)
    assert main(["index", str(repo)]) == 1
    err = capsys.readouterr().err
    assert err.count("enclave: error:") == 1 and "Traceback" not in err, err
    assert f"{repo / '.enclave'} is a link (to {elsewhere})" in err and "rm " in err
    assert main(["customize"]) == 1
    assert "is a link" in capsys.readouterr().err
    assert main(["explain", "car/brakes.py", "--no-thinking"]) == 1  # its index is not opened
    assert "is a link" in capsys.readouterr().err
    # the user puts the index elsewhere: answered, and the log is not written through the link
    monkeypatch.setenv("ENCLAVE_INDEX_DB", str(tmp_path / "index"))
    assert main(["explain", "car/brakes.py", "--no-thinking"]) == 0
    assert "leads outside the repository (a link)" in caplog.text  # a warning, once
    assert list(elsewhere.iterdir()) == []
