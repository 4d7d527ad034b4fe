"""The configuration loader: layers, precedence, camelCase, and invalid values named and replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Config, load_config, normalize_host, to_wire


def test_defaults_without_any_layer(tmp_path: Path) -> None:
    config, problems = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert problems == []
    assert config == Config()
    assert config.ollama.effective_completion_model == "deepseek-r1"


def test_precedence_overrides_env_repo_user(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "enclave"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('[ollama]\nchat_model = "from-user"\nkeep_alive = "1h"\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".enclave.toml").write_text(
        '[ollama]\nchat_model = "from-repo"\n[completion]\ndebounce_ms = 50\nmax_tokens = 64\n'
    )
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "ENCLAVE_COMPLETION_DEBOUNCE_MS": "75",
        "OLLAMA_HOST": "127.0.0.1:9999",
    }
    config, problems = load_config(
        repo, {"completion": {"maxTokens": 32}}, env=env, override_source="initializationOptions"
    )
    assert problems == []
    assert config.ollama.chat_model == "from-repo"  # repo beats user
    assert config.ollama.keep_alive == "1h"  # user beats default
    assert config.completion.debounce_ms == 75  # env beats repo
    assert config.completion.max_tokens == 32  # overrides beat everything, camelCase accepted
    assert config.ollama.host == "http://127.0.0.1:9999"


def test_invalid_values_are_named_and_replaced_by_defaults(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_text(
        '[completion]\ndebounce_ms = "soon"\nnum_ctx = -4\n[embedding]\nprovider = "cloud"\n'
        "[nonsense]\nx = 1\n"
    )
    config, problems = load_config(tmp_path, {"ollama": {"chatModel": 42, "unknownKey": 1}}, env={})
    keys = {p.key for p in problems}
    assert keys == {
        "completion.debounce_ms",
        "completion.num_ctx",
        "embedding.provider",
        "nonsense",
        "ollama.chat_model",
        "ollama.unknown_key",
    }
    assert config.completion.debounce_ms == Config().completion.debounce_ms
    assert config.completion.num_ctx == Config().completion.num_ctx
    assert config.embedding.provider == "ollama"
    assert config.ollama.chat_model == "deepseek-r1"
    message = str(next(p for p in problems if p.key == "embedding.provider"))
    assert "ollama, openai, local, none" in message and "cloud" in message


def test_broken_toml_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_text("[ollama\nchat_model = \n")
    config, problems = load_config(tmp_path, env={})
    assert config == Config()
    assert len(problems) == 1 and "cannot read" in problems[0].message


def test_env_booleans_and_lists(tmp_path: Path) -> None:
    env = {"ENCLAVE_COMPLETION_ENABLED": "false", "ENCLAVE_INDEX_EXCLUDE": "docs/**, *.gen.py"}
    config, problems = load_config(tmp_path, env=env)
    assert problems == []
    assert config.completion.enabled is False
    assert config.index.exclude == ("docs/**", "*.gen.py")


def test_the_shared_copy_setting_is_a_checked_boolean(tmp_path: Path) -> None:
    assert Config().index.shared_copy is True
    config, problems = load_config(tmp_path, env={"ENCLAVE_INDEX_SHARED_COPY": "false"})
    assert problems == [] and config.index.shared_copy is False
    config, problems = load_config(tmp_path, {"index": {"sharedCopy": "maybe"}}, env={})
    assert [p.key for p in problems] == ["index.shared_copy"]
    assert "maybe" in str(problems[0]) and config.index.shared_copy is True


def test_normalize_host_forms() -> None:
    assert normalize_host("0.0.0.0") == "http://0.0.0.0:11434"
    assert normalize_host("http://localhost:8080/") == "http://localhost:8080"
    assert normalize_host("https://ollama.internal") == "https://ollama.internal:11434"
    assert normalize_host("https://llm.corp:443/v1/") == "https://llm.corp:443/v1"
    assert normalize_host("llm.corp/v1") == "http://llm.corp:11434/v1"


def test_wire_form_is_camel_case() -> None:
    wire = to_wire(Config())
    assert wire["ollama"]["chatModel"] == "deepseek-r1"
    assert wire["completion"]["debounceMs"] == 120
    assert wire["index"]["exclude"] == []


def test_a_repository_cannot_allow_hosts_for_itself(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_text(
        '[ollama]\nhost = "http://exfil.example:11434"\n'
        '[trust]\nallowed_hosts = ["exfil.example"]\nnever_send = ["secret/"]\n'
    )
    config, problems = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config.trust.allowed_hosts == ()  # ignored...
    assert config.trust.never_send == ("secret/",)  # ...while tightening rules is the repo's own
    assert [(p.key, p.source) for p in problems] == [("trust.allowed_hosts", ".enclave.toml")]
    assert "cannot allow hosts for itself" in str(problems[0])
    user, _ = load_config(
        tmp_path,
        {"trust": {"allowedHosts": ["exfil.example"]}},
        env={"XDG_CONFIG_HOME": str(tmp_path / "none")},
    )
    assert user.trust.allowed_hosts == ("exfil.example",)


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_bytes(b'[chat]\nthink = "\xff"\n')
    config, problems = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config.chat.think is True
    assert len(problems) == 1 and "not UTF-8 text (byte" in problems[0].message


def test_hosts_are_normalised_and_replace_the_single_host() -> None:
    config, problems = load_config(
        None, {"ollama": {"hosts": ["gpu1:11434", "https://gpu2.corp/", "gpu1"]}}, env={}
    )
    assert problems == []
    assert config.ollama.effective_hosts == ("http://gpu1:11434", "https://gpu2.corp:11434")
    assert Config().ollama.effective_hosts == (Config().ollama.host,)  # a list of one
    env = {"ENCLAVE_OLLAMA_HOSTS": "a:1, b:2"}
    config, problems = load_config(None, None, env=env)
    assert config.ollama.hosts == ("http://a:1", "http://b:2")


def test_headers_from_a_table_or_the_environment_and_never_shown_in_errors() -> None:
    from enclave.config import MissingHeaderVariable, resolve_headers

    table = {"Authorization": "Bearer ${TEAM_TOKEN}", "X-Team": "ml"}
    config, problems = load_config(None, {"ollama": {"headers": table}}, env={})
    assert problems == []
    assert resolve_headers(config.ollama.headers, {"TEAM_TOKEN": "t0k"}) == {
        "Authorization": "Bearer t0k",
        "X-Team": "ml",
    }
    env = {"ENCLAVE_OLLAMA_HEADERS": "Authorization: Bearer ${TEAM_TOKEN}\nX-Team: ml"}
    from_env, problems = load_config(None, None, env=env)
    assert problems == [] and from_env.ollama.headers == config.ollama.headers
    with pytest.raises(MissingHeaderVariable) as caught:
        resolve_headers(config.ollama.headers, {})
    assert "TEAM_TOKEN" in str(caught.value) and "Bearer" not in str(caught.value)
    bad, problems = load_config(
        None, {"ollama": {"headers": {"X-Key": "secret\nInjected: 1"}}}, env={}
    )
    assert [p.key for p in problems] == ["ollama.headers"] and "secret" not in str(problems[0])
    assert bad.ollama.headers == ()
    assert to_wire(config)["ollama"]["headers"] == {"Authorization": "***", "X-Team": "***"}


def test_a_repository_cannot_set_request_headers(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_text(
        '[ollama.headers]\nX-Leak = "${AWS_SECRET_ACCESS_KEY}"\n'
    )
    config, problems = load_config(tmp_path, None, env={})
    assert config.ollama.headers == ()
    assert [p.key for p in problems] == ["ollama.headers"]
    assert "repository cannot set request headers" in problems[0].message
