"""The administrator's policy: parsed strictly, merged so it only tightens, and failing closed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from enclave.config import load_config, policy_rules
from enclave.indexer.redact import redact_pii
from enclave.policy import load_policy

POLICY = """\
allowed_models = ["deepseek-r1:*", "qwen2.5-coder:1.5b", "nomic-embed-text"]
never_index = ["hr/**"]
redact_pii = true
never_send = ["payroll/**"]
allowed_hosts = ["ollama.corp.example", "gpu.corp.example"]
require_audit = true
"""


def _env(tmp_path: Path, policy: str | bytes | None) -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    if policy is not None:
        path = tmp_path / "policy.toml"
        if isinstance(policy, bytes):
            path.write_bytes(policy)
        else:
            path.write_text(policy)
        env["ENCLAVE_POLICY"] = str(path)
    return env


def test_no_policy_file_leaves_the_settings_alone(tmp_path: Path) -> None:
    config, problems = load_config(tmp_path, env=_env(tmp_path, None))
    assert problems == [] and config.policy.path == "" and config.policy.broken() is None
    assert config.policy.why_not_model("anything") is None


def test_the_policy_only_tightens_what_users_and_repositories_set(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "enclave"
    user.mkdir(parents=True)
    (user / "config.toml").write_text(
        '[trust]\nallowed_hosts = ["gpu.corp.example", "exfil.example"]\nredact_pii = false\n'
        "[audit]\nenabled = false\n"
    )
    (tmp_path / ".enclave.toml").write_text(
        '[trust]\nnever_send = ["secret/"]\n[index]\nnever_index = ["nothing"]\n'
    )
    config, problems = load_config(
        tmp_path, {"trust": {"redactPii": False}}, env=_env(tmp_path, POLICY)
    )
    # a repository may not pretend to be the policy
    assert [(p.key, p.source) for p in problems] == [("index.never_index", ".enclave.toml")]
    assert config.trust.never_send == ("secret/", "payroll/**")  # union
    assert config.trust.allowed_hosts == ("gpu.corp.example",)  # intersection: exfil dropped
    assert config.trust.redact_pii is True  # the user's `false` cannot turn it off
    assert config.audit.enabled is True
    assert config.index.never_index == ("hr/**",)
    rules = {r["key"]: r for r in policy_rules(config)}
    policy = f"policy {tmp_path / 'policy.toml'}"
    assert rules["trust.never_send"]["source"] == f".enclave.toml + {policy}"
    assert rules["trust.allowed_hosts"]["source"] == f"{user / 'config.toml'} within {policy}"
    assert rules["trust.redact_pii"]["source"] == policy
    assert rules["allowed_models"]["value"] == [
        "deepseek-r1:*", "qwen2.5-coder:1.5b", "nomic-embed-text"
    ]  # fmt: skip
    # with no hosts of the user's own, the policy's list stands
    (tmp_path / "other").mkdir()
    alone, _ = load_config(None, env=_env(tmp_path / "other", POLICY))
    assert alone.trust.allowed_hosts == ("ollama.corp.example", "gpu.corp.example")


def test_allowed_models_match_names_tags_and_patterns(tmp_path: Path) -> None:
    policy = load_policy(_env(tmp_path, POLICY))
    assert policy.why_not_model("deepseek-r1:1.5b") is None
    assert policy.why_not_model("nomic-embed-text:latest") is None  # tag :latest implied
    assert policy.why_not_model("qwen2.5-coder:1.5b") is None
    why = policy.why_not_model("llama3")
    assert why is not None and "llama3" in why and "deepseek-r1:*, qwen2.5-coder:1.5b" in why
    assert policy.why_not_model("qwen2.5-coder:7b") is not None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("allowed_models = [", "not valid TOML"),
        ('allowed_model = ["x"]', "unknown key 'allowed_model'"),
        ('allowed_models = "deepseek-r1"', "must be a list of non-empty strings"),
        ('redact_pii = "yes"', "must be true or false"),
        (b'never_index = ["\xff"]', "not UTF-8"),
    ],
)
def test_a_malformed_policy_fails_closed(tmp_path: Path, content: str | bytes, reason: str) -> None:
    config, _ = load_config(tmp_path, env=_env(tmp_path, content))
    broken = config.policy.broken()
    assert broken is not None and reason in broken and str(tmp_path / "policy.toml") in broken
    for model in ("deepseek-r1", "anything-at-all"):  # nothing is allowed any more
        assert config.policy.why_not_model(model) == broken


def test_a_policy_named_but_missing_fails_closed(tmp_path: Path) -> None:
    policy = load_policy({"ENCLAVE_POLICY": str(tmp_path / "nope.toml")})
    assert policy.error and "does not exist" in (policy.broken() or "")


def test_personal_data_is_redacted_and_lines_kept() -> None:
    text = (
        "owner = 'jane.doe@corp.example'\n"
        "# call +49 89 1234 5678 or (555) 123-4567 or 555-123-4567\n"
        "version = '1.2.3'; day = '2024-01-15'; n = 12345678901; host = '10.0.0.1'\n"
        "@property\n"
    )
    done = redact_pii(text)
    assert "jane.doe" not in done.text and "1234 5678" not in done.text
    assert "123-4567" not in done.text
    assert done.text.count("\n") == text.count("\n")
    assert done.text.splitlines()[2:] == text.splitlines()[2:]  # no false alarms
    assert [(f.line, f.kind) for f in done.findings] == [
        (1, "email"), (2, "phone"), (2, "phone"), (2, "phone")
    ]  # fmt: skip


@pytest.fixture
def system_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The administrator's /etc/enclave/policy.toml, at a path only tests can give."""
    path = tmp_path / "etc" / "policy.toml"
    path.parent.mkdir()
    path.write_text(
        'allowed_models = ["smollm2:*"]\nnever_send = ["payroll/**"]\nallowed_hosts = []\n'
    )
    monkeypatch.setattr("enclave.policy.DEFAULT_POLICY_PATH", path)
    return path


def test_the_environment_policy_applies_beside_the_system_one(
    tmp_path: Path, system_policy: Path
) -> None:
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert load_policy(xdg).why_not_model("deepseek-r1") is not None  # the system policy alone
    added = tmp_path / "added.toml"
    for looser in ("", 'allowed_models = ["*"]\nallowed_hosts = ["exfil.example"]\n'):
        added.write_text(looser)  # an empty policy, or one that allows everything
        policy = load_policy({**xdg, "ENCLAVE_POLICY": str(added)})
        why = policy.why_not_model("deepseek-r1")
        assert why is not None and str(system_policy) in why
        config, _ = load_config(tmp_path, env={**xdg, "ENCLAVE_POLICY": str(added)})
        assert config.trust.allowed_hosts == () and "payroll/**" in config.trust.never_send
    # a stricter one tightens further: both lists apply, the union of never_*
    added.write_text(
        'allowed_models = ["smollm2:135m"]\nnever_send = ["hr/**"]\nredact_pii = true\n'
    )
    policy = load_policy({**xdg, "ENCLAVE_POLICY": str(added)})
    assert policy.why_not_model("smollm2:135m") is None
    assert str(added) in (policy.why_not_model("smollm2:360m") or "")  # allowed by one only
    assert policy.never_send == ("payroll/**", "hr/**") and policy.redact_pii is True
    assert policy.path == f"{system_policy} + {added}"


@pytest.mark.parametrize("kind", ["null", "zero", "fifo", "directory", "huge"])
def test_a_policy_path_that_is_not_a_small_regular_file_fails_closed(
    tmp_path: Path, kind: str
) -> None:
    path = {"null": Path("/dev/null"), "zero": Path("/dev/zero")}.get(kind, tmp_path / "p.toml")
    if kind == "fifo":
        os.mkfifo(path)  # reading would wait for a writer forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        path.write_text("# padding\n" * 200_000)
    started = time.monotonic()
    policy = load_policy({"ENCLAVE_POLICY": str(path)})
    assert time.monotonic() - started < 2  # /dev/zero once read 1.5 GB in 2 s
    reason = {"directory": "a directory", "fifo": "a FIFO", "huge": "larger than 1,048,576"}
    broken = policy.broken()
    assert broken is not None and reason.get(kind, "a device") in broken and str(path) in broken
