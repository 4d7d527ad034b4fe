"""The settings schema: every generated copy is current, and a new field reaches every copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from enclave import settings_schema
from enclave.config import (
    REPO_SETS,
    CompletionConfig,
    Config,
    _setting,
    to_wire,
    who_may_set,
)

REPO = Path(__file__).resolve().parents[1]


def test_no_generated_file_is_stale() -> None:
    """Replaces the drift tests: regenerate in memory and compare with the files in the checkout."""
    result = subprocess.run(
        [sys.executable, "-m", "enclave.settings_schema", "--check", "--root", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # names each stale file and the command
    assert result.stdout == ""


def test_a_stale_file_is_named_with_the_command_that_regenerates_it(tmp_path: Path) -> None:
    for path in settings_schema.outputs(REPO):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    doc = tmp_path / settings_schema.PROTOCOL_DOC
    doc.write_text(doc.read_text().replace("| `chat.think` |", "| `chat.thinks` |"))
    assert settings_schema.main(["--check", "--root", str(tmp_path)]) == 1
    assert settings_schema.stale(tmp_path) == [settings_schema.PROTOCOL_DOC]
    assert settings_schema.main(["--root", str(tmp_path)]) == 0
    assert settings_schema.stale(tmp_path) == []


def test_outside_a_checkout_it_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert settings_schema.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a checkout of Enclave" in err


def test_the_schema_holds_every_setting_a_client_sends_with_its_default() -> None:
    spec = settings_schema.schema()
    wire = json.loads(json.dumps(to_wire(Config())))
    schema_defaults = {
        section: {key: prop["default"] for key, prop in value["properties"].items()}
        for section, value in spec["properties"].items()
    }
    assert schema_defaults == wire  # every default equal (headers: {} either way)
    user_only = {
        ".".join(settings_schema.camel(part) for part in rule.key.split("."))
        for rule in who_may_set()
        if rule.repository != REPO_SETS and rule.user != "no"
    }
    marked = {key for key, prop in settings_schema._settings(spec) if prop["x-user-only"]}
    assert marked == user_only


@dataclass(frozen=True, slots=True)
class _ChatWithExtra:
    think: bool = _setting(True, "Ask the model for its thinking.")
    answer_style: str = _setting("plain", "How answers are written.", choices=("plain", "bullets"))


@dataclass(frozen=True, slots=True)
class _ConfigWithExtra:
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    chat: _ChatWithExtra = field(default_factory=_ChatWithExtra)


def test_adding_a_setting_is_one_field_and_the_generator(tmp_path: Path) -> None:
    """A field with its metadata reaches the schema, VS Code, Neovim, the docs' table and the
    table of who may set what."""
    for path in settings_schema.outputs(REPO):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    out = settings_schema.outputs(tmp_path, _ConfigWithExtra)
    spec = json.loads(out[settings_schema.SCHEMA_FILE])
    prop = spec["properties"]["chat"]["properties"]["answerStyle"]
    assert prop["enum"] == ["plain", "bullets"] and prop["default"] == "plain"
    manifest = json.loads(out[settings_schema.VSCODE_MANIFEST])
    vscode = manifest["contributes"]["configuration"]["properties"]["enclave.chat.answerStyle"]
    assert (
        vscode["scope"] == "window" and vscode["markdownDescription"] == "How answers are written."
    )
    assert '"chat.answerStyle",' in out[settings_schema.VSCODE_KEYS]
    assert (
        "answerStyle = { type = 'string', default = 'plain' },"
        in out[settings_schema.NVIM_SETTINGS]
    )
    assert (
        "| `chat.answerStyle` | `plain` \\| `bullets` | `plain` | How answers are written. |"
        in out[settings_schema.PROTOCOL_DOC]
    )
    assert (
        "| `chat.answer_style` | - | sets it | sets it | sets it | sets it |"
        in (out[settings_schema.SECURITY_DOC])
    )
