"""The `enclave` command line's shared behaviour: version, settings from the command line, the
transports `enclave lsp` accepts, and errors in one line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from enclave import package_version
from enclave.server.cli import main
from enclave.server.cli.common import EXIT_USAGE
from tests.support.repos import make_repo


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"enclave {package_version()}"
    assert package_version()[0].isdigit()  # the installed distribution's, not a placeholder


def test_settings_take_the_editor_shape_and_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "def a():\n    return 1\n"})
    (root / ".enclave.toml").write_text('[embedding]\nprovider = "ollama"\n')
    settings = json.dumps({"embedding": {"provider": "none"}, "index": {"maxFileBytes": 4096}})
    assert main(["index", str(root), "--json", "--settings", settings]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["semantic"] is False and "provider = none" in summary["semantic_reason"]
    assert summary["semantic_fix"]  # the reason and its fix travel apart


@pytest.mark.parametrize(
    ("value", "problem"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object, got list")],
)
def test_bad_settings_are_refused_in_one_line(
    value: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--root", str(tmp_path), "--settings", value]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: --settings") and problem in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_lsp_accepts_stdio_and_refuses_other_transports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["lsp", "--socket"]) == EXIT_USAGE
    assert "stdio only, not --socket" in capsys.readouterr().err
    # --stdio is what vscode-languageclient appends; the parser must take it (the server itself
    # is exercised over stdio by the language-server tests).
    from enclave.server.cli.main import build_parser

    args = build_parser().parse_args(["lsp", "--stdio"])
    assert args.stdio is True and args.transport is None


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["search", "x", "--k", "-1"], "argument --k: must be from 1 to 1000, got -1"),
        (["search", "x", "--k", "99999999999"], "argument --k: must be from 1 to 1000"),
        (["search", "x", "--k", "ten"], "argument --k: expected a whole number, got 'ten'"),
        (["context", "a.py", "--line", "0", "--character", "0"], "--line: must be 1 or more"),
        (["context", "a.py", "--line", "-181", "--character", "0"], "--line: must be 1 or more"),
        (["context", "a.py", "--line", "1", "--character", "-1"], "--character: must be 0 or"),
    ],
)
def test_invalid_numbers_are_refused_by_the_parser(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err


def test_context_past_the_end_and_without_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "def a():\n    return 1\n"})
    monkeypatch.chdir(root)
    assert main(["context", "a.py", "--line", "3", "--character", "0"]) == EXIT_USAGE
    assert "line 3 is past the end of a.py (2 lines)" in capsys.readouterr().err
    assert main(["context", "a.py", "--line", "2", "--character", "4", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["prefix"].endswith("    ")
    assert "no index for" in captured.err and "Traceback" not in captured.err


def test_a_config_file_that_is_not_utf8_is_reported_and_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    (root / ".enclave.toml").write_bytes(b'[ollama]\nchat_model = "caf\xe9"\n')
    assert (
        main(["index", str(root), "-q", "--settings", '{"embedding": {"provider": "none"}}']) == 0
    )
    err = capsys.readouterr().err
    assert ".enclave.toml" in err and "not UTF-8" in err and "Traceback" not in err


def test_help_summary_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`enclave --help`'s summary line left out dataset, customize and glossary."""
    from enclave.server.cli.main import build_parser

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    paragraphs = [" ".join(p.split()) for p in out.split("\n\n")]
    summary = next(p for p in paragraphs if p.startswith("The Enclave command line"))
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"dataset", "customize", "glossary", "index", "lsp"} <= set(commands)
    for command in commands:
        assert f" {command}," in summary or f" {command}." in summary, (command, summary)
