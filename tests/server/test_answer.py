"""`enclave ask` / `enclave explain` against the test Ollama server and a real indexed repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.config import load_config
from enclave.indexer.api import open_index
from enclave.server.cli import main
from tests.support.ollama_fixtures import env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

FILES = {
    "calc/ops.py": (
        "def add(a, b):\n"
        '    """Add two numbers and return the sum."""\n'
        "    return a + b\n"
        "\n"
        "\n"
        "def scale(values, factor):\n"
        '    """Multiply every value by factor."""\n'
        "    return [add(v, 0) * factor for v in values]\n"
    ),
    "README.md": "# Calc\n\nA tiny calculator library.\n",
}


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, _ollama_server_session: OllamaTestServer
) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("ask")
    root = make_repo(base / "repo", FILES)
    env = env_for(_ollama_server_session, base / "xdg")
    config, problems = load_config(root, None, env=env)
    assert not problems
    index = open_index(root, config)
    summary = index.update()
    index.close()
    assert summary.semantic and summary.chunks_total >= 3
    yield root


@pytest.fixture
def cli_env(
    indexed: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = env_for(ollama_server, indexed.parent / "xdg")
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


CITATION = re.compile(r"^  (?P<path>\S+):(?P<start>\d+)-(?P<end>\d+)", re.MULTILINE)


def assert_real_lines(root: Path, path: str, start: int, end: int) -> list[str]:
    lines = (root / path).read_text().splitlines()
    assert 1 <= start <= end <= len(lines), f"{path}:{start}-{end} is outside the file"
    return lines[start - 1 : end]


def test_ask_prints_answer_and_citations(
    indexed: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "--root", str(indexed), "How", "does", "add", "sum", "two", "numbers?"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    answer, _, sources = captured.out.partition("\nSources:\n")
    assert answer.strip(), "no answer text"
    assert "<think>" not in captured.out
    assert "thinking: " in captured.err  # thinking is shown apart, on stderr
    cited = CITATION.findall(sources)
    assert cited, captured.out
    for path, start, end in cited:
        assert_real_lines(indexed, path, int(start), int(end))
    first = dict(zip(("path", "start", "end"), cited[0], strict=True))
    assert first["path"] == "calc/ops.py"
    lines = assert_real_lines(indexed, first["path"], int(first["start"]), int(first["end"]))
    assert lines[0].startswith("def add(")


def test_ask_json(
    indexed: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "--json", "--root", str(indexed), "What does scale do?"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["model"] == "deepseek-r1" and data["markdown"].strip()
    assert data["thinking"].strip()
    paths = {c["path"] for c in data["citations"]}
    assert "calc/ops.py" in paths
    assert data["notes"] == []  # full context: semantic and lexical retrieval both worked
    scale = next(c for c in data["citations"] if c["symbol"] == "scale")
    lines = assert_real_lines(indexed, "calc/ops.py", scale["start_line"], scale["end_line"])
    assert lines[0].startswith("def scale(")


def test_explain_a_range_cites_selection_and_definitions(
    indexed: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(indexed / "calc/ops.py") + ":6-8"
    code = main(["explain", "--json", "--root", str(indexed), target])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["markdown"].strip() and data["thinking"].strip()
    assert data["citations"][0] == {
        "path": "calc/ops.py", "start_line": 6, "end_line": 8, "symbol": ""
    }  # fmt: skip
    others = data["citations"][1:]
    assert any(c["symbol"] == "add" and c["start_line"] == 1 for c in others)


def test_explain_bad_range_is_a_clear_error(
    indexed: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "--root", str(indexed), str(indexed / "calc/ops.py") + ":5-99"])
    err = capsys.readouterr().err
    assert code == 1 and "lines 5-99 are not in calc/ops.py (8 lines)" in err


def test_ask_when_ollama_is_down_says_how_to_start_it(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
) -> None:
    ollama_server.refuse()
    try:
        code = main(["ask", "--root", str(indexed), "anything?"])
    finally:
        ollama_server.resume()
    assert code == 1 and "ollama serve" in capsys.readouterr().err


def test_enclave_ask_as_a_process(indexed: Path, cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("enclave")), "ask", "--no-thinking", "What is Calc?"],
        cwd=indexed,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "\nSources:\n" in done.stdout and "thinking" not in done.stderr
    for path, start, end in CITATION.findall(done.stdout):
        assert_real_lines(indexed, path, int(start), int(end))


def test_ask_says_what_limited_its_context(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the query embedder is the configured model, not the one the index was built with
    monkeypatch.setenv("ENCLAVE_EMBEDDING_MODEL", "mxbai-embed-large")
    code = main(["ask", "--root", str(indexed), "What does scale do?"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: semantic search is off" in captured.err
    assert "(context from lexical matches only)" in captured.err
    assert "\nSources:\n" in captured.out  # lexical context was still used and cited


def test_answer_sources_put_code_before_changelogs_and_cap_each_file() -> None:
    """The reported case: a question about redirects whose search hits start with changelog
    entries. The answer's sources are the code first (the changelog after it unless the
    question is about history), and one file gives at most PER_FILE of them."""
    from enclave.indexer.types import SearchHit
    from enclave.server.answer import PER_FILE, answer_sources

    def hit(path: str, line: int) -> SearchHit:
        return SearchHit(path, line, line + 3, "", "", "", 1.0, "redirect")

    hits = [
        *(hit("CHANGELOG.md", 10 * i) for i in range(1, 4)),
        hit("docs/releases/2.1.rst", 1),
        *(hit("http/sessions.py", 100 * i) for i in range(1, 5)),
        hit("http/models.py", 7),
        hit("docs/api.md", 3),
    ]
    sources = answer_sources(hits, "how are redirects resolved", k=6)
    assert [(h.path, h.start_line) for h in sources] == [
        ("http/sessions.py", 100),
        ("http/sessions.py", 200),
        ("http/models.py", 7),
        ("docs/api.md", 3),  # reference docs stay with the code
        ("CHANGELOG.md", 10),
        ("CHANGELOG.md", 20),
    ]
    assert max(Counter(h.path for h in sources).values()) == PER_FILE
    history = answer_sources(hits, "when did redirect handling change?", k=6)
    assert [h.path for h in history[:3]] == [
        "CHANGELOG.md",
        "CHANGELOG.md",
        "docs/releases/2.1.rst",
    ]
