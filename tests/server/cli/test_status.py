"""`enclave status` and `enclave doctor` tell the truth now: counts agree with `enclave index`,
and the semantic state comes from this command's configuration and a live check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enclave.server.cli import main
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import git, make_repo

NONE = json.dumps({"embedding": {"provider": "none"}})


def left_out_repo(root: Path) -> Path:
    """Files left out at each stage: by name before reading, by content after."""
    return make_repo(
        root,
        {
            "app/main.py": "def main():\n    return 1\n",
            "app/util.py": "def helper():\n    return 2\n",
            ".env": "TOKEN=abc\n",  # a secret-bearing name: never read
            "id_rsa": "not really a key\n",
            "vendor/big.min.js": "var a=1;" * 4000,  # minified: read, then left out
            "data/blob.bin": b"\x00\x01\x02" * 100,  # binary
        },
    )


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main([*args, "--json"])
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_index_and_status_count_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = left_out_repo(tmp_path / "repo")
    built = run_json(capsys, "index", str(root), "--settings", NONE)
    status = run_json(capsys, "status", "--root", str(root), "--settings", NONE)
    assert built["files_skipped"] == status["files_skipped"] == 4
    assert status["files"] == 2
    # an update that reads nothing new still counts every file left out, as status does
    (root / "app" / "util.py").write_text("def helper():\n    return 3\n")
    git(root, "commit", "-qam", "edit")
    again = run_json(capsys, "index", str(root), "--settings", NONE)
    assert again["files_indexed"] == 1 and again["files_skipped"] == 4
    assert run_json(capsys, "status", "--root", str(root))["files_skipped"] == 4
    main(["status", "--root", str(root), "--settings", NONE])
    assert "files:     2 indexed, 4 skipped" in capsys.readouterr().out


def test_status_and_doctor_judge_semantic_search_with_their_own_settings(
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reported case: an editor session with provider = none built the index; the CLI,
    with its default settings and OLLAMA_HOST at a working server, must not repeat that."""
    root = left_out_repo(tmp_path / "repo")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # the editor's Ollama: down
    run_json(capsys, "index", str(root), "--settings", NONE)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    status = run_json(capsys, "status", "--root", str(root))
    assert status["semantic"] is False
    assert (status["semantic_reason"], status["semantic_fix"]) == (
        "the index has no vectors yet",
        f"run `enclave index {root}`",
    )
    report = run_json(capsys, "doctor", "--root", str(root))
    index_check = next(c for c in report["checks"] if c["name"] == "index")
    assert "no vectors yet" in index_check["message"]
    assert "pull" not in index_check["fix"] and "enclave index" in index_check["fix"]

    run_json(capsys, "index", str(root))  # embedded through the working server
    assert run_json(capsys, "status", "--root", str(root))["semantic"] is True
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    status = run_json(capsys, "status", "--root", str(root))
    assert status["semantic"] is False
    assert status["semantic_reason"] == "Ollama is not reachable at http://127.0.0.1:9"
