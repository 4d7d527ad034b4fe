"""Every rule of the administrator's policy, enforced by the `enclave` commands (against the test
Ollama server and a real index): what the model server receives is the proof."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enclave.server.cli import main
from tests.support.ollama_fixtures import env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

POLICY = """\
allowed_models = ["qwen2.5-coder:*", "smollm2:135m", "nomic-embed-text"]
never_index = ["hr/**"]
redact_pii = true
never_send = ["payroll/**"]
allowed_hosts = []
"""
FILES = {
    "app/main.py": "def greet(name):\n    return 'hello ' + name\n",
    "app/contacts.py": (
        "def support_contact():\n"
        '    """Who to call when the brakes fail."""\n'
        "    return 'jane.doe@corp.example', '+49 89 1234 5678'\n"
    ),
    "hr/salaries.py": "SALARY_TABLE = {'jane': 123456}\n",
    "payroll/run.py": "def run_payroll():\n    return 'PAYROLL_SECRET_FORMULA'\n",
}
NO_EMBEDDINGS = '{"embedding": {"provider": "none"}}'


@pytest.fixture
def repo(tmp_path: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    (tmp_path / "policy.toml").write_text(POLICY)
    for name, value in env_for(ollama_server, tmp_path / "xdg").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENCLAVE_POLICY", str(tmp_path / "policy.toml"))
    monkeypatch.chdir(root)
    return root


def _sent(server: OllamaTestServer) -> str:
    return json.dumps([body for _, body in server.state.requests])


def _one_line_error(err: str) -> str:
    assert err.startswith("enclave: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_a_model_the_policy_does_not_allow_is_refused_before_any_request(
    repo: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "what does greet do?"]) == 1  # chat model deepseek-r1 (env_for)
    err = _one_line_error(capsys.readouterr().err)
    assert "the model deepseek-r1 is not allowed by the policy" in err
    assert "qwen2.5-coder:*, smollm2:135m, nomic-embed-text" in err
    assert not any(
        path in ("/api/chat", "/api/generate") for path, _ in ollama_server.state.requests
    )


def test_index_and_prompts_follow_never_index_pii_and_never_send(
    repo: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["index", ".", "--json", "--settings", NO_EMBEDDINGS]) == 0
    summary = json.loads(capsys.readouterr().out)
    skipped = {s["path"]: s for s in summary["skipped"]}
    assert "never_index" in skipped["hr/salaries.py"]["detail"]
    for query in ("SALARY_TABLE", "jane"):
        assert main(["search", query, "--mode", "lexical", "--text", "--json"]) == 0
        found = capsys.readouterr().out
        assert "hr/salaries.py" not in found and "jane.doe@corp.example" not in found
    assert main(["search", "support_contact", "--mode", "lexical", "--text", "--json"]) == 0
    assert "<redacted:email>" in capsys.readouterr().out  # indexed, without the address

    monkeypatch.setenv("ENCLAVE_OLLAMA_CHAT_MODEL", "smollm2:135m")  # an allowed model
    ollama_server.state.requests.clear()
    assert main(["explain", "app/contacts.py", "--no-thinking"]) == 0
    sent = _sent(ollama_server)
    assert "support_contact" in sent and "<redacted:email>" in sent and "<redacted:phone>" in sent
    assert "jane.doe@corp.example" not in sent and "1234 5678" not in sent

    ollama_server.state.requests.clear()
    capsys.readouterr()
    assert main(["explain", "payroll/run.py"]) == 1  # the policy's never_send
    assert "matches trust.never_send" in _one_line_error(capsys.readouterr().err)
    assert ollama_server.state.requests == []


def test_the_user_cannot_allow_a_host_the_policy_does_not(
    repo: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://203.0.113.9:11434")
    monkeypatch.setenv("ENCLAVE_TRUST_ALLOWED_HOSTS", "203.0.113.9")
    monkeypatch.setenv("ENCLAVE_OLLAMA_CHAT_MODEL", "smollm2:135m")
    assert main(["ask", "what does greet do?"]) == 1
    err = capsys.readouterr().err
    assert "is not on this machine and not allowed" in err.splitlines()[-1]
    assert "allowed by trust.allowed_hosts" not in err  # never told it is allowed


def test_status_shows_the_effective_policy_and_where_each_value_came_from(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_TRUST_NEVER_SEND", "drafts/")
    main(["status", "--json"])
    policy = json.loads(capsys.readouterr().out)["policy"]
    assert policy["file"] == str(tmp_path / "policy.toml") and policy["error"] is None
    rules = {r["key"]: r for r in policy["rules"]}
    source = f"policy {tmp_path / 'policy.toml'}"
    assert rules["trust.never_send"] == {
        "key": "trust.never_send",
        "value": ["drafts/", "payroll/**"],
        "source": f"ENCLAVE_* environment + {source}",
    }
    assert (
        rules["trust.redact_pii"]["value"] is True and rules["trust.redact_pii"]["source"] == source
    )
    assert rules["audit.include_prompts"]["source"] == "default"
    main(["status"])
    out = capsys.readouterr().out
    assert f"policy:    {tmp_path / 'policy.toml'}" in out
    assert "never_index            hr/**" in out


def test_a_malformed_policy_stops_every_command_that_sends_or_indexes(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "policy.toml").write_text('allowed_models = ["smollm2:135m"\n')  # cut short
    for argv in (
        ["ask", "hello"],
        ["index", ".", "--settings", NO_EMBEDDINGS],
        ["explain", "app/main.py"],
    ):
        assert main(argv) == 1
        err = _one_line_error(capsys.readouterr().err)
        assert "policy" in err and "not valid TOML" in err and "administrator" in err
    assert ollama_server.state.requests == []
    assert main(["status", "--json"]) == 1
    assert "not valid TOML" in json.loads(capsys.readouterr().out)["policy"]["error"]


def test_turning_pii_redaction_on_reindexes_what_was_indexed_before(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_POLICY", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")  # a policy with no rules
    assert main(["index", ".", "-q", "--settings", NO_EMBEDDINGS]) == 0
    assert main(["search", "support_contact", "--mode", "lexical", "--text", "--json"]) == 0
    assert "jane.doe@corp.example" in capsys.readouterr().out  # personal data kept: not asked

    monkeypatch.setenv("ENCLAVE_POLICY", str(tmp_path / "policy.toml"))  # redact_pii = true
    assert main(["index", ".", "--json", "--settings", NO_EMBEDDINGS]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert any("redaction of personal data" in note for note in summary["notes"])
    assert summary["files_indexed"] == 3  # every file again (hr/ is never indexed)
    assert main(["search", "support_contact", "--mode", "lexical", "--text", "--json"]) == 0
    found = capsys.readouterr().out
    assert "jane.doe@corp.example" not in found and "<redacted:email>" in found


def test_enclave_policy_cannot_replace_the_system_policy(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's case: `ENCLAVE_POLICY=/dev/null enclave ask x` sent what the system policy
    refuses (the chat model deepseek-r1 is not among its allowed models)."""
    system = tmp_path / "etc" / "policy.toml"  # the administrator's /etc/enclave/policy.toml
    system.parent.mkdir()
    system.write_text(POLICY)
    monkeypatch.setattr("enclave.policy.DEFAULT_POLICY_PATH", system)
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "loose.toml").write_text('allowed_models = ["*"]\n')
    for named in ("/dev/null", str(tmp_path / "empty.toml"), str(tmp_path / "loose.toml")):
        monkeypatch.setenv("ENCLAVE_POLICY", named)
        assert main(["ask", "what does greet do?"]) == 1
        err = _one_line_error(capsys.readouterr().err)
        refusal = "is a device" if named == "/dev/null" else "not allowed by the policy"
        assert refusal in err, err
    assert ollama_server.state.requests == []  # nothing reached the model server


def test_a_repository_cannot_loosen_what_the_user_set(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's cases: a cloned repository's `never_send = []` sent the user's never_send
    file, `redact_pii = false` turned the user's redaction off, `db` wrote the index elsewhere."""
    (tmp_path / "none.toml").write_text("")  # no policy: the user's own rules are at stake
    monkeypatch.setenv("ENCLAVE_POLICY", str(tmp_path / "none.toml"))
    user = tmp_path / "xdg" / "enclave"
    user.mkdir(parents=True, exist_ok=True)
    (user / "config.toml").write_text('[trust]\nnever_send = ["payroll/**"]\nredact_pii = true\n')
    outside = tmp_path / "world-readable"
    (repo / ".enclave.toml").write_text(
        f'[trust]\nnever_send = []\nredact_pii = false\n[index]\ndb = "{outside}"\n'
    )
    ollama_server.state.requests.clear()
    assert main(["explain", "payroll/run.py"]) == 1
    assert "matches trust.never_send" in capsys.readouterr().err.splitlines()[-1]
    assert ollama_server.state.requests == []

    assert main(["explain", "app/contacts.py", "--no-thinking"]) == 0
    sent = _sent(ollama_server)
    assert "support_contact" in sent and "<redacted:email>" in sent
    assert "jane.doe@corp.example" not in sent and "1234 5678" not in sent

    assert main(["index", ".", "-q", "--settings", NO_EMBEDDINGS]) == 0
    err = capsys.readouterr().err
    assert "invalid setting index.db (from .enclave.toml)" in err
    assert not outside.exists() and (repo / ".enclave" / "chunks.lance").is_dir()
