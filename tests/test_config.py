"""The configuration loader: layers, precedence, camelCase, and invalid values named and replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from enclave.config import (
    REPO_ADDS,
    REPO_INSIDE,
    REPO_LOWERS,
    REPO_NO,
    REPO_SETS,
    REPO_TURNS_ON,
    Config,
    SettingRule,
    load_config,
    normalize_host,
    to_wire,
    who_may_set,
)


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
    assert config.ollama.host == "http://127.0.0.1:11434"  # ...nor may it choose the server
    assert config.trust.never_send == ("secret/",)  # ...while tightening rules is the repo's own
    assert [(p.key, p.source) for p in problems] == [
        ("ollama.host", ".enclave.toml"),
        ("trust.allowed_hosts", ".enclave.toml"),
    ]
    assert "chooses where data is sent" in str(problems[0])
    assert "cannot allow hosts for itself" in str(problems[1])
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


# -- who may set what (docs/security.md, "Who may set what") ------------------------------------

POLICY_RULE = {  # the policy file line that governs each key the policy governs
    "trust.never_send": ('never_send = ["policy/"]', ("sample/", "policy/")),
    "trust.allowed_hosts": ('allowed_hosts = ["other.example"]', ()),
    "trust.redact_pii": ("redact_pii = true", True),
    "index.never_index": ('never_index = ["hr/**"]', ("hr/**",)),
    "audit.enabled": ("require_audit = true", True),
}


def _sample(key: str, default: Any) -> tuple[Any, Any]:
    """A valid value other than the default, as TOML/JSON gives it and as the loader keeps it."""
    if key == "ollama.headers":
        return {"X-Team": "t"}, (("X-Team", "t"),)
    if key in ("ollama.host", "ollama.hosts"):
        url = "http://127.0.0.2:11434"
        return (url, url) if key == "ollama.host" else ([url], (url,))
    if isinstance(default, bool):
        return not default, not default
    if isinstance(default, int):
        return default + 1, default + 1
    if isinstance(default, float):
        return default + 0.5, default + 0.5
    if isinstance(default, tuple):
        return ["sample/"], ("sample/",)
    other = {"embedding.provider": "none", "ollama.api": "openai", "index.db": "custom-db"}
    value = other.get(key, "http://127.0.0.2:8000/v1" if key == "embedding.url" else "sample")
    return value, value


def _as_env(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def _toml(section: str, key: str, value: Any) -> str:
    if isinstance(value, dict):  # an inline table
        text = "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()) + "}"
    else:
        text = json.dumps(value)
    return f"[{section}]\n{key} = {text}\n"


def _value(config: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


RULES = who_may_set()


@pytest.mark.parametrize("rule", RULES, ids=[r.key for r in RULES])
def test_who_may_set_each_setting(tmp_path: Path, rule: SettingRule) -> None:
    """Each row of the table, enforced by load_config: the user's layers (file, environment,
    editor), the repository's .enclave.toml and the administrator's policy."""
    section, name = rule.key.split(".")
    default = getattr(getattr(Config(), section), name)
    raw, kept = _sample(rule.key, default)
    xdg = tmp_path / "xdg"
    (xdg / "enclave").mkdir(parents=True)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"XDG_CONFIG_HOME": str(xdg)}

    # the user: configuration file, environment, editor (initializationOptions / --settings)
    (xdg / "enclave" / "config.toml").write_text(_toml(section, name, raw))
    by_file, file_problems = load_config(repo, env=env)
    (xdg / "enclave" / "config.toml").unlink()
    variable = f"ENCLAVE_{section.upper()}_{name.upper()}"
    by_env, env_problems = load_config(repo, env={**env, variable: _as_env(raw)})
    camel = name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
    by_editor, editor_problems = load_config(repo, {section: {camel: raw}}, env=env)
    for config, problems, says in (
        (by_file, file_problems, rule.user),
        (by_env, env_problems, rule.environment),
        (by_editor, editor_problems, rule.editor),
    ):
        if says == "sets it":
            assert problems == [] and _value(config, rule.key) == kept
        else:
            assert _value(config, rule.key) == default
            assert [p.key for p in problems] == [rule.key]

    # the repository, over what the user set (a second, different value where it matters)
    (repo / ".enclave.toml").write_text(_toml(section, name, raw))
    by_repo, repo_problems = load_config(repo, env=env)
    if rule.repository == REPO_SETS:
        assert repo_problems == [] and _value(by_repo, rule.key) == kept
    elif rule.repository == REPO_NO:
        assert _value(by_repo, rule.key) == default
        assert [(p.key, p.source) for p in repo_problems] == [(rule.key, ".enclave.toml")]
    elif rule.repository == REPO_ADDS:
        (xdg / "enclave" / "config.toml").write_text(_toml(section, name, ["mine/"]))
        (repo / ".enclave.toml").write_text(_toml(section, name, []))
        cleared, _ = load_config(repo, env=env)
        assert _value(cleared, rule.key) == ("mine/",)  # [] clears nothing
        (repo / ".enclave.toml").write_text(_toml(section, name, raw))
        added, _ = load_config(repo, env={**env, variable: "env/"})
        assert _value(added, rule.key) == ("env/", "sample/")  # stands over higher layers too
    elif rule.repository == REPO_TURNS_ON:
        (xdg / "enclave" / "config.toml").write_text(_toml(section, name, True))
        (repo / ".enclave.toml").write_text(_toml(section, name, False))
        kept_on, problems = load_config(repo, env=env)
        assert _value(kept_on, rule.key) is True and [p.key for p in problems] == [rule.key]
        (xdg / "enclave" / "config.toml").write_text(_toml(section, name, False))
        (repo / ".enclave.toml").write_text(_toml(section, name, True))
        turned_on, _ = load_config(repo, env={**env, variable: "false"})
        assert _value(turned_on, rule.key) is True  # stands over higher layers too
    elif rule.repository == REPO_LOWERS:
        (xdg / "enclave" / "config.toml").write_text(_toml(section, name, 1000))
        (repo / ".enclave.toml").write_text(_toml(section, name, 5000))
        kept_low, problems = load_config(repo, env=env)
        assert _value(kept_low, rule.key) == 1000 and [p.key for p in problems] == [rule.key]
        (repo / ".enclave.toml").write_text(_toml(section, name, 500))
        lowered, _ = load_config(repo, env={**env, variable: "2000"})
        assert _value(lowered, rule.key) == 500
    else:
        assert rule.repository == REPO_INSIDE
        assert repo_problems == [] and _value(by_repo, rule.key) == kept  # inside: allowed
        (tmp_path / "elsewhere").mkdir()
        (repo / "link").symlink_to(tmp_path / "elsewhere")
        for outside in (str(tmp_path / "elsewhere"), "../elsewhere", "link/db", "s3://b/p", "~/x"):
            (repo / ".enclave.toml").write_text(_toml(section, name, outside))
            refused, problems = load_config(repo, env=env)
            assert _value(refused, rule.key) == default, outside
            assert [p.key for p in problems] == [rule.key] and "inside itself" in str(problems[0])

    # the administrator's policy
    (repo / ".enclave.toml").unlink()
    if rule.policy:
        line, expected = POLICY_RULE[rule.key]
        (tmp_path / "policy.toml").write_text(line + "\n")
        loosest = False if isinstance(default, bool) else raw  # the user tries to turn it off
        (xdg / "enclave" / "config.toml").write_text(_toml(section, name, loosest))
        env_policy = {**env, "ENCLAVE_POLICY": str(tmp_path / "policy.toml")}
        governed, _ = load_config(repo, env=env_policy)
        assert _value(governed, rule.key) == expected
    else:
        assert rule.key not in POLICY_RULE


def test_the_table_in_docs_security_is_the_one_in_the_code() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "security.md").read_text(encoding="utf-8")
    section = docs.split("## Who may set what", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{r.key}` | {r.policy or '-'} | {r.user} | {r.editor} | {r.environment} | "
        f"{r.repository} |"
        for r in RULES
    ]
    assert rows == expected


def test_a_repository_cannot_loosen_the_users_rules(tmp_path: Path) -> None:
    """The issue's cases: never_send = [] and redact_pii = false from a repository change
    nothing the user set, and index.db cannot leave the repository."""
    xdg = tmp_path / "xdg" / "enclave"
    xdg.mkdir(parents=True)
    (xdg / "config.toml").write_text('[trust]\nnever_send = ["secret/"]\nredact_pii = true\n')
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / ".enclave.toml").write_text(
        f'[trust]\nnever_send = []\nredact_pii = false\n[index]\ndb = "{tmp_path / "out"}"\n'
        f'[audit]\npath = "{tmp_path / "victim.txt"}"\nmax_bytes = 100\nkeep = 0\n'
        "include_prompts = true\n"
    )
    config, problems = load_config(tmp_path / "repo", env={"XDG_CONFIG_HOME": str(xdg.parent)})
    assert config.trust.never_send == ("secret/",) and config.trust.redact_pii is True
    assert config.index.db == "" and config.audit == Config().audit
    assert sorted(p.key for p in problems) == [
        "audit.include_prompts", "audit.keep", "audit.max_bytes", "audit.path", "index.db",
        "trust.redact_pii",
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_a_configuration_file_that_is_not_a_small_regular_file_is_not_read(
    tmp_path: Path, kind: str
) -> None:
    repo_file = tmp_path / ".enclave.toml"
    if kind == "fifo":
        os.mkfifo(repo_file)  # opening it for reading would wait for a writer forever
    elif kind == "device":
        repo_file.symlink_to("/dev/zero")  # endless
    elif kind == "directory":
        repo_file.mkdir()
    else:
        repo_file.write_text("# padding\n" * 200_000)
    config, problems = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config == Config()
    assert len(problems) == 1 and str(repo_file) in problems[0].message
    reason = {"fifo": "a FIFO", "device": "a device", "directory": "a directory"}
    assert reason.get(kind, "larger than 1,048,576 bytes") in problems[0].message


def _camel(dotted: str) -> str:
    section, name = dotted.split(".")
    head, *rest = name.split("_")
    return f"{section}.{head}{''.join(part.title() for part in rest)}"


def test_vscode_takes_from_user_settings_only_what_a_repository_may_not_set() -> None:
    """A cloned repository's .vscode/settings.json is the repository speaking: VS Code ignores a
    workspace's value of a "machine"-scoped setting, and nothing else keeps it from loosening the
    user's rules (VS Code replaces a list, it does not join it) or starting another program."""
    manifest = Path(__file__).resolve().parents[1] / "editors" / "vscode" / "package.json"
    properties = json.loads(manifest.read_text())["contributes"]["configuration"]["properties"]
    kept = [rule.key for rule in who_may_set() if rule.repository != REPO_SETS]
    must_be_user_only = [f"enclave.{_camel(key)}" for key in kept]
    must_be_user_only += ["enclave.server.path", "enclave.server.pythonPath"]
    shared = [key for key in must_be_user_only if key in properties]
    assert len(shared) >= 15  # the table and the manifest name the same settings
    wrong = {key: properties[key].get("scope") for key in shared}
    wrong = {key: scope for key, scope in wrong.items() if scope not in ("machine", "application")}
    assert wrong == {}
