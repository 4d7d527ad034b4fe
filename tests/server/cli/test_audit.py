"""The audit log written by real `enclave` processes against the test Ollama server, and
`enclave audit` reading it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.server.cli import main
from tests.support.ollama_fixtures import env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

CODE = "def brake_force(speed):\n    return speed * 0.8  # UNIQUE_CODE_MARKER\n"


@pytest.fixture
def repo(tmp_path: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", {"car/brakes.py": CODE})
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    for name, value in env_for(ollama_server, tmp_path / "xdg").items():
        monkeypatch.setenv(name, value)
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
