"""`enclave doctor --json` against the test Ollama server: healthy, then each failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enclave.server.cli import main
from enclave.server.doctor import check_host, parse_version
from tests.support.ollama_server import CURRENT_VERSION, ModelSpec, OllamaTestServer
from tests.support.repos import make_repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ollama_server: OllamaTestServer) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in list(__import__("os").environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    monkeypatch.setenv("ENCLAVE_OLLAMA_CHAT_MODEL", "deepseek-r1:1.5b")
    monkeypatch.setenv("ENCLAVE_OLLAMA_COMPLETION_MODEL", "qwen2.5-coder:1.5b")
    monkeypatch.setenv("ENCLAVE_EMBEDDING_MODEL", "nomic-embed-text")
    monkeypatch.setenv("ENCLAVE_EMBEDDING_PROVIDER", "none")  # index health without embeddings
    return make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})


def doctor(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--json", "--root", str(repo)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_healthy_server(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index", str(repo), "--json", "-q"])
    capsys.readouterr()
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0 and report["ok"] is True
    assert report["version"] == CURRENT_VERSION
    assert checks["loopback"]["status"] == "ok"
    assert checks["ollama"]["status"] == "ok" and checks["ollama-version"]["status"] == "ok"
    assert checks["fim"]["status"] == "ok"
    assert checks["model:deepseek-r1:1.5b"]["status"] == "ok"
    assert "thinking" in checks["model:deepseek-r1:1.5b"]["message"]
    assert checks["memory"]["status"] == "ok"
    models = {m["name"]: m for m in report["models"]}
    assert models["qwen2.5-coder:1.5b"]["fim"] is True
    assert models["qwen2.5-coder:1.5b"]["capabilities"] == ["completion", "insert"]
    assert models["deepseek-r1:1.5b"]["roles"] == ["chat"]
    assert report["index"]["exists"] is True and report["index"]["files"] == 1
    # semantic search is off by our own configuration: reported, not hidden
    assert (
        checks["index"]["status"] == "warn"
        and "semantic search is off" in checks["index"]["message"]
    )


def test_ollama_not_running(
    repo: Path, capsys: pytest.CaptureFixture[str], ollama_server: OllamaTestServer
) -> None:
    ollama_server.refuse()
    try:
        code, report = doctor(repo, capsys)
    finally:
        ollama_server.resume()
    check = by_name(report)["ollama"]
    assert code == 1 and report["ok"] is False and report["version"] is None
    assert check["status"] == "error" and "not running" in check["message"]
    assert "ollama serve" in check["fix"]
    assert report["models"] == []


def test_model_not_pulled(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_OLLAMA_CHAT_MODEL", "llama9:70b")
    code, report = doctor(repo, capsys)
    check = by_name(report)["model:llama9:70b"]
    assert code == 1
    assert check["status"] == "error" and check["fix"] == "run `ollama pull llama9:70b`"
    assert {"name": "llama9:70b", "pulled": False}.items() <= report["models"][0].items()


def test_old_version_with_cves_and_no_thinking(
    repo: Path, capsys: pytest.CaptureFixture[str], ollama_server: OllamaTestServer
) -> None:
    ollama_server.state.version = "0.1.30"
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0  # warnings only
    assert "CVE-2024-37032" in checks["ollama-security"]["message"]
    assert (
        checks["ollama-thinking"]["status"] == "warn" and "0.9" in checks["ollama-thinking"]["fix"]
    )


def test_version_between_cves_and_thinking(
    repo: Path, capsys: pytest.CaptureFixture[str], ollama_server: OllamaTestServer
) -> None:
    ollama_server.state.version = "0.6.8"
    _, report = doctor(repo, capsys)
    checks = by_name(report)
    assert "ollama-security" not in checks
    assert checks["ollama-thinking"]["status"] == "warn"


def test_host_not_on_loopback_is_loud(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama_server: OllamaTestServer,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"0.0.0.0:{ollama_server.port}")
    _, report = doctor(repo, capsys)
    check = by_name(report)["loopback"]
    assert check["status"] == "warn" and "every network interface" in check["message"]
    refused = check_host("http://10.1.2.3:11434")  # not this machine, not allowed
    assert refused.status == "error" and "trust.allowed_hosts" in refused.fix
    allowed = check_host("http://10.1.2.3:11434", ("10.0.0.0/8",))  # allowed, still loud
    assert allowed.status == "warn" and allowed.message.startswith("!!! OLLAMA_HOST")
    assert check_host("http://[::1]:11434").status == "ok"
    assert check_host("http://localhost:11434").status == "ok"


def test_completion_model_without_fim_and_big_models(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama_server: OllamaTestServer,
) -> None:
    monkeypatch.setenv("ENCLAVE_OLLAMA_COMPLETION_MODEL", "deepseek-r1")
    ollama_server.state.models["deepseek-r1:latest"] = ModelSpec(
        ("completion", "thinking"), 900 * 1024**3, "671B"
    )
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0
    assert checks["fim"]["status"] == "warn" and "qwen2.5-coder:1.5b" in checks["fim"]["fix"]
    memory = checks["memory:deepseek-r1"]
    assert memory["status"] == "warn" and "may not load" in memory["message"]
    assert "qwen2.5-coder:1.5b" in checks["memory:completion-speed"]["fix"]


def test_wrong_embedding_model_and_missing_index(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_EMBEDDING_PROVIDER", "ollama")
    monkeypatch.setenv("ENCLAVE_EMBEDDING_MODEL", "smollm2:135m")
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0
    assert checks["model:smollm2:135m:embedding"]["status"] == "warn"
    assert checks["index"]["status"] == "warn" and "enclave index" in checks["index"]["fix"]


def test_human_output_names_the_fix(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_OLLAMA_CHAT_MODEL", "llama9")
    assert main(["doctor", "--root", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] model llama9 (chat) is not pulled" in out
    assert "fix: run `ollama pull llama9`" in out


def test_parse_version() -> None:
    assert parse_version("0.12.6") == (0, 12, 6)
    assert parse_version("v0.9.0-rc1") == (0, 9, 0)
    assert parse_version("0.5") == (0, 5, 0)


def test_a_model_the_policy_does_not_allow(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('allowed_models = ["qwen2.5-coder:*", "nomic-embed-text"]\n')
    monkeypatch.setenv("ENCLAVE_POLICY", str(policy))
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 1 and checks["policy"]["status"] == "ok"
    refused = checks["policy:deepseek-r1:1.5b"]
    assert refused["status"] == "error" and "not allowed by the policy" in refused["message"]
    assert refused["fix"] == "set the chat model to one the policy allows"
    assert "policy:qwen2.5-coder:1.5b" not in checks


def test_a_fleet_shows_each_host_and_its_state_never_its_headers(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.forward_proxy import ForwardProxy

    live, dead = ForwardProxy(ollama_server.url).start(), ForwardProxy(ollama_server.url).start()
    dead.kill()
    monkeypatch.setenv("ENCLAVE_OLLAMA_HOSTS", f"{dead.url},{live.url}")
    monkeypatch.setenv("ENCLAVE_OLLAMA_HEADERS", "Authorization: Bearer ${FLEET_DOCTOR_TOKEN}")
    monkeypatch.setenv("FLEET_DOCTOR_TOKEN", "d0ct0r-s3cret")
    try:
        code, report = doctor(repo, capsys)
        main(["status", "--json", "--root", str(repo)])
        status = capsys.readouterr()
    finally:
        live.stop()
        dead.stop()
    checks = by_name(report)
    assert code == 1  # a server of the fleet is down: an error to fix, though requests work
    assert checks[f"host:{live.url}"]["status"] == "ok"
    assert checks[f"host:{dead.url}"]["status"] == "error"
    assert "down" in checks[f"host:{dead.url}"]["message"]
    assert {h["name"]: h["state"] for h in report["hosts"]} == {dead.url: "down", live.url: "up"}
    # the models were checked through the live host
    assert checks["model:deepseek-r1:1.5b"]["status"] == "ok"
    assert any(
        {k.lower(): v for k, v in s.headers.items()}.get("authorization") == "Bearer d0ct0r-s3cret"
        for s in live.state.seen
    )
    assert "d0ct0r-s3cret" not in json.dumps(report) + status.out + status.err


def test_a_server_that_reports_no_capabilities_is_a_warning_not_an_error(
    repo: Path, capsys: pytest.CaptureFixture[str], ollama_server: OllamaTestServer
) -> None:
    """Ollama before 0.6.4 has no `capabilities` in /api/show; doctor said every model "cannot
    generate text" and failed."""
    ollama_server.state.version = "0.6.2"
    ollama_server.state.show_omits = ("capabilities",)
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0, report
    model = checks["model:deepseek-r1:1.5b"]
    assert model["status"] == "warn" and "reports no capabilities" in model["message"]
    assert "model:deepseek-r1:1.5b:generate" not in checks


def test_a_server_whose_show_has_no_model_info_is_read(
    repo: Path, capsys: pytest.CaptureFixture[str], ollama_server: OllamaTestServer
) -> None:
    """Ollama 0.6.4 to 0.12 leaves `model_info` out for some models; the official client's
    `show` then raised a validation error (ollama/ollama-python#607), reported as "not
    Ollama's JSON" for a model that works."""
    ollama_server.state.show_omits = ("model_info",)
    code, report = doctor(repo, capsys)
    checks = by_name(report)
    assert code == 0, report
    assert checks["model:qwen2.5-coder:1.5b"]["status"] == "ok"
    assert checks["fim"]["status"] == "ok"


def test_an_openai_server_with_a_smaller_window_than_the_prompts_is_an_error(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """vLLM says the window it runs (max_model_len); prompts fitted to a larger
    ollama.openaiContextLength would be cut from the front by it."""
    monkeypatch.setenv("ENCLAVE_OLLAMA_API", "openai")
    ollama_server.state.max_model_len = 2048
    code, report = doctor(repo, capsys)
    window = by_name(report)["window:deepseek-r1:1.5b"]
    assert code == 1 and window["status"] == "error", report
    assert window["fix"] == "set ollama.openaiContextLength = 2048"
    ollama_server.state.max_model_len = 32768
    code, report = doctor(repo, capsys)
    window = by_name(report)["window:deepseek-r1:1.5b"]
    assert window["status"] == "warn" and "32768-token window" in window["message"]
    monkeypatch.setenv("ENCLAVE_OLLAMA_OPENAI_CONTEXT_LENGTH", "32768")
    code, report = doctor(repo, capsys)
    assert code == 0 and "window:deepseek-r1:1.5b" not in by_name(report), report
