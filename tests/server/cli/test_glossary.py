"""`enclave glossary` and the glossary in real prompts: a term's definition reaches the model
server only when the term occurs in the question or in the code sent."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from enclave.server.cli import main
from enclave.server.model.prompts import GLOSSARY
from tests.support.ollama_fixtures import env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

FILES = {
    "car/brakes.py": (
        "def distribute(force, load):\n"
        "    # keeps the ABS from locking the rear wheels\n"
        "    return [force * share for share in load]\n"
    ),
    "shapes/square.py": "def perimeter(side):\n    return 4 * side\n",
}


@pytest.fixture
def repo(tmp_path: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    for name, value in env_for(ollama_server, tmp_path / "xdg").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENCLAVE_EMBEDDING_PROVIDER", "none")
    monkeypatch.chdir(root)
    return root


def _glossary_in_prompt(server: OllamaTestServer) -> list[str]:
    """The glossary lines of the last chat request the model server received."""
    bodies: list[dict[str, Any]] = [b for p, b in server.state.requests if p == "/api/chat"]
    assert bodies, "no chat request reached the model server"
    user = bodies[-1]["messages"][-1]["content"]
    if GLOSSARY not in user:
        return []
    block = user.split(GLOSSARY, 1)[1].split("</repository-data>", 1)[0]
    return [line for line in block.splitlines()[2:] if line]


def test_glossary_commands_and_only_relevant_terms_in_prompts(
    repo: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["glossary", "add", "EBD", "electronic", "brake-force", "distribution"]) == 0
    assert main(["glossary", "add", "ABS", "anti-lock braking system"]) == 0
    assert main(["glossary", "add", "ebd", "again"]) == 1
    assert "already defined at .enclave/glossary.md:3" in capsys.readouterr().err
    assert main(["glossary", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["term"] for t in listed["terms"]] == ["EBD", "ABS"]
    assert main(["glossary", "check"]) == 0

    assert main(["index", ".", "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "electronic", "--mode", "lexical", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits and hits[0]["path"] == ".enclave/glossary.md"  # indexed as a document

    ollama_server.state.requests.clear()
    assert main(["ask", "What", "does", "EBD", "stand", "for?"]) == 0
    assert _glossary_in_prompt(ollama_server) == ["EBD: electronic brake-force distribution"]

    ollama_server.state.requests.clear()
    assert main(["explain", "car/brakes.py", "--no-thinking"]) == 0  # the code says ABS
    assert _glossary_in_prompt(ollama_server) == ["ABS: anti-lock braking system"]

    ollama_server.state.requests.clear()
    assert main(["ask", "How", "is", "the", "perimeter", "of", "a", "square", "computed?"]) == 0
    assert _glossary_in_prompt(ollama_server) == []
    sent = json.dumps(ollama_server.state.requests)
    assert "brake-force" not in sent and "anti-lock" not in sent


def test_check_reports_malformed_lines_and_duplicates(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".enclave").mkdir()
    (repo / ".enclave" / "glossary.md").write_text("EBD: one\nno colon here\nEBD: two\n")
    assert main(["glossary", "check"]) == 1
    out = capsys.readouterr().out
    assert ".enclave/glossary.md:2: expected `TERM: definition`" in out
    assert ".enclave/glossary.md:3: 'EBD' is already defined at .enclave/glossary.md:1" in out
    assert main(["glossary", "check", "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["problems"]) == 2
