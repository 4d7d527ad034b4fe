"""`enclave glossary` and the glossary in real prompts: a term's definition reaches the model
server only when the term occurs in the question or in the code sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enclave.server.cli import main
from enclave.server.model.prompts import GLOSSARY
from tests.server import secrets
from tests.support.ollama_fixtures import env_for, use_env
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
    use_env(env_for(ollama_server, tmp_path / "xdg"), monkeypatch)
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


@pytest.mark.parametrize(
    ("words", "why"),
    [
        (
            ["\udcff\udcfe", "a definition"],
            "cannot add '\\udcff\\udcfe': the term is not valid UTF-8",
        ),
        (["EBD", "brake\udcff force"], "cannot add 'EBD': the definition is not valid UTF-8"),
        (["A\rB", "carriage return"], "cannot add 'A\\rB': the term holds a line break"),
        (["A\x1bB", "escape"], "cannot add 'A\\x1bB': the term holds a line break or a control"),
    ],
)
def test_bad_arguments_to_add_are_one_line_and_change_nothing(
    words: list[str], why: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["glossary", "add", "ABS", "anti-lock braking system"]) == 0
    before = (repo / ".enclave" / "glossary.md").read_bytes()
    capsys.readouterr()
    assert main(["glossary", "add", *words]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"enclave: error: {why}"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (repo / ".enclave" / "glossary.md").read_bytes() == before
    assert main(["glossary", "check"]) == 0


def test_add_to_a_glossary_with_a_byte_that_is_not_utf8(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".enclave").mkdir()
    before = b"EBD: electronic brake-force distribution\n\xff\xfe broken\n"
    (repo / ".enclave" / "glossary.md").write_bytes(before)
    assert main(["glossary", "add", "ABS", "anti-lock braking system"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "enclave: error: .enclave/glossary.md is not UTF-8 text (byte 0xff on line 2); nothing "
        "was added (save the file as UTF-8 or remove that byte, then add the term again)\n"
    )
    assert (repo / ".enclave" / "glossary.md").read_bytes() == before
    assert main(["glossary", "check"]) == 1  # check names the file and the problem
    assert ".enclave/glossary.md:0: cannot read it" in capsys.readouterr().out


def test_no_secret_of_a_script_a_key_file_or_the_glossary_reaches_context_or_a_prompt(
    repo: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export DB_PASSWORD=...`, low-entropy prefixed tokens and a glossary definition's
    `password=...`: redacted in `enclave context` and in what the model server receives."""
    files = {
        "deploy.sh": secrets.DEPLOY_SH,
        "orders/client.py": secrets.CLIENT_PY,
        ".enclave/glossary.md": secrets.GLOSSARY_MD,
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    assert main(["index", ".", "-q"]) == 0
    capsys.readouterr()

    for target, line in (("deploy.sh", 5), ("orders/client.py", 6)):
        assert main(["context", target, "--line", str(line), "--character", "0", "--json"]) == 0
        out = capsys.readouterr().out
        report = json.loads(out)
        assert secrets.leaked(out) == [] and "<redacted:" in report["prefix"]
    assert "def sk_list_items(items):" in report["suffix"]  # a name, not a key: kept

    ollama_server.state.requests.clear()
    assert main(["ask", "What", "is", "STAGING?"]) == 0
    assert _glossary_in_prompt(ollama_server) == [
        "STAGING: the staging database; password=<redacted:secret-keyword> for the CI user"
    ]
    for target in ("deploy.sh", "orders/client.py"):
        assert main(["explain", target, "--no-thinking"]) == 0
    sent = json.dumps(ollama_server.state.requests)
    assert "export DB_PASSWORD=" in sent and "OPENAI_KEY" in sent  # the files were sent...
    assert secrets.leaked(sent) == []  # ...without their secrets
