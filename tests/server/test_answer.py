"""`enclave ask` / `enclave explain` against the test Ollama server and a real indexed repository."""

from __future__ import annotations

import json
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
from tests.support.ollama_fixtures import env_for, use_env
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
    use_env(env, monkeypatch)
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
    # while the model thinks stderr shows how long; the reasoning only with --show-thinking
    assert re.search(r"^thought \d+ tokens in \d+\.\d s$", captured.err, re.MULTILINE)
    assert "thinking: " not in captured.err
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


# -- an answer cut at chat.maxTokens ---------------------------------------------------------------


def test_ask_whose_thinking_passes_its_budget_still_answers(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
) -> None:
    """As with a real Ollama and R1, thinking counts against num_predict, and R1 can think past
    any answer budget. Thinking has its own budget (chat.thinkTokens, 16 here): there the
    stream is closed and the model asked again, thinking off, to answer from its reasoning so
    far, with the answer's whole chat.maxTokens (24). The user gets the answer and one note."""
    ollama_server.state.think_tokens = 10_000
    code = main(["ask", "--show-thinking", "--root", str(indexed), "What does scale do?"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip(), captured.err
    assert (
        "note: the model's thinking reached chat.thinkTokens (16) and was stopped there; it "
        "answered from its reasoning so far (raise chat.thinkTokens for a longer think)"
    ) in captured.err.splitlines()
    thought, answered = ollama_server.state.generations[-2:]
    assert thought.body["think"] is True and thought.body["options"]["num_predict"] == 24 + 16
    assert answered.body["think"] is False and answered.body["options"]["num_predict"] == 24
    # the same messages first (the prompt cache holds them), then the reasoning so far
    first, then = thought.body["messages"], answered.body["messages"]
    assert then[: len(first)] == first and len(then) == len(first) + 1
    reasoning = captured.err.split("thinking: ", 1)[1].split("\n\nnote: ")[0].strip()
    assert reasoning and reasoning in then[-1]["content"]
    assert then[-1]["content"].startswith("Your reasoning so far, stopped at its budget:")


def test_ask_whose_thinking_takes_the_whole_budget_says_why_and_fails(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
) -> None:
    """Without a thinking budget of its own (chat.thinkTokens = 0) thinking and answer share
    chat.maxTokens: here thinking takes all of it, the stream ends with done_reason "length"
    and no content. The user gets one line with both fixes, exit 1."""
    ollama_server.state.think_tokens = 10_000
    no_budget = ["--show-thinking", "--settings", '{"chat": {"thinkTokens": 0}}']
    code = main(["ask", *no_budget, "--root", str(indexed), "What does scale do?"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "thinking: " in captured.err  # what it thought is still shown
    assert (
        "enclave: no answer: the model's thinking used all of chat.maxTokens (24) before it "
        'answered; raise it (--settings \'{"chat": {"maxTokens": 2048}}\' or '
        'ENCLAVE_CHAT_MAX_TOKENS=2048) or turn thinking off (--settings \'{"chat": {"think": '
        "false}}' or ENCLAVE_CHAT_THINK=false)"
    ) in captured.err
    body = ollama_server.state.generations[-1].body
    assert body["options"]["num_predict"] == 24 and body["think"] is True


def test_explain_cut_at_max_tokens_says_so_and_how_to_raise_it(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
) -> None:
    ollama_server.state.think_tokens = 8  # of its 16: the answer gets what is left
    settings = '{"chat": {"maxTokens": 40}}'
    target = str(indexed / "calc/ops.py") + ":6-8"
    code = main(["explain", "--json", "--settings", settings, "--root", str(indexed), target])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    generation = ollama_server.state.generations[-1]
    assert generation.body["options"]["num_predict"] == 40 + 16  # answer and thinking budgets
    # the model thought 8 of its 16 tokens and answered with the rest, then was cut
    assert data["thinking"].strip() and data["markdown"].strip(), data
    assert code == 0 and data["done_reason"] == "length"
    line = (
        'answer cut at chat.maxTokens (40); raise it (--settings \'{"chat": {"maxTokens": '
        "2048}}' or ENCLAVE_CHAT_MAX_TOKENS=2048)"
    )
    assert data["cut"] == line
    assert f"enclave: {line}" in captured.err.splitlines()


def test_a_whole_answer_is_not_called_cut(
    indexed: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "--json", "--settings", '{"chat": {"maxTokens": 400}}', "--root",
                 str(indexed), "Say hello."])  # fmt: skip
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 0 and data["done_reason"] == "stop" and data["cut"] == "", data
    assert "cut at" not in captured.err


# -- which definitions an explanation sends ----------------------------------------------------------

SHAPES = {
    "shapes/base.py": (
        "class Shape:\n"
        "    def __init__(self, name):\n"
        "        self.name = name\n"
        "\n"
        "    def describe(self):\n"
        '        return f"a {self.name}"\n'
    ),
    "shapes/geometry.py": (
        "from shapes.base import Shape\n"
        "\n"
        "\n"
        "class Circle(Shape):\n"
        "    def __init__(self, radius):\n"
        '        super().__init__("circle")\n'
        "        self.radius = radius\n"
        "        self.session.send(radius)\n"
        "\n"
        "    def area(self):\n"
        "        return 3.14159 * self.radius**2\n"
    ),
    "net/client.py": (
        "class Session:\n"
        "    def __init__(self, url):\n"
        "        self.url = url\n"
        "\n"
        "    def send(self, data):\n"
        "        return (self.url, data)\n"
        "\n"
        "\n"
        "class Transport:\n"
        "    def __init__(self, session):\n"
        "        self.session = session\n"
        "\n"
        "    def send(self, data):\n"
        "        return self.session.send(data)\n"
    ),
}


@pytest.fixture(scope="module")
def shapes(
    tmp_path_factory: pytest.TempPathFactory, _ollama_server_session: OllamaTestServer
) -> Path:
    base = tmp_path_factory.mktemp("shapes")
    root = make_repo(base / "repo", SHAPES)
    config, problems = load_config(root, None, env=env_for(_ollama_server_session, base / "xdg"))
    assert not problems
    index = open_index(root, config)
    index.update()
    index.close()
    return root


SENT = re.compile(r'<repository-data path="(?P<path>[^"]+)" lines="(?P<lines>\d+-\d+)"')


def test_explain_of_an_init_calling_super_sends_the_base_init_only(
    shapes: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reported case: `super().__init__()` brought the __init__ of unrelated classes of
    another module. super() is the base class; `self.session.send` has no receiver that can be
    named, so no class's `send` comes either; the base's method is sent as its own lines."""
    use_env(env_for(ollama_server, shapes.parent / "xdg"), monkeypatch)
    code = main(
        ["explain", "--json", "--root", str(shapes), str(shapes / "shapes/geometry.py:5-8")]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    prompt = ollama_server.state.generations[-1].body["messages"][-1]["content"]
    sent = [(m["path"], m["lines"]) for m in SENT.finditer(prompt)]
    assert sent == [("shapes/geometry.py", "5-8"), ("shapes/base.py", "2-3")], prompt
    for c in data["citations"][1:]:  # each label names exactly the lines it points at
        assert (c["path"], c["start_line"], c["end_line"], c["symbol"]) == (
            "shapes/base.py", 2, 3, "Shape.__init__"
        )  # fmt: skip


def test_explain_of_a_method_brings_what_self_and_known_receivers_call(
    shapes: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_env(env_for(ollama_server, shapes.parent / "xdg"), monkeypatch)
    (shapes / "use.py").write_text(
        "from net.client import Session\n\n\ndef post(url, data):\n"
        "    session = Session(url)\n    return session.send(data)\n"
    )
    code = main(["explain", "--json", "--root", str(shapes), str(shapes / "use.py:4-6")])
    assert code == 0, capsys.readouterr().err
    prompt = ollama_server.state.generations[-1].body["messages"][-1]["content"]
    sent = [(m["path"], m["lines"]) for m in SENT.finditer(prompt)]
    # `session = Session(url)`: session.send is Session.send (its lines), never Transport.send
    assert sent == [("use.py", "4-6"), ("net/client.py", "5-6")], prompt


def test_openai_mode_fits_the_prompt_to_the_servers_window(
    indexed: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    ollama_server: OllamaTestServer,
) -> None:
    """An OpenAI-compatible server runs at its own window (the API sends no num_ctx) and, as
    Ollama's /v1 does, cuts a longer prompt from the front: the system prompt and the data rules
    go first. chat.numCtx (8192 by default) is held to ollama.openaiContextLength, so the
    selection is cut to fit it and the server reads the whole prompt."""
    big = indexed / "calc" / "big.py"
    big.write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(250)))

    def explain(window: int) -> tuple[int, str]:
        settings = json.dumps({"ollama": {"api": "openai", "openaiContextLength": window}})
        args = ["explain", "--no-thinking", "--settings", settings, "--root", str(indexed)]
        code = main([*args, str(big)])
        return code, capsys.readouterr().err

    code, err = explain(8192)  # larger than the server really has (the stand-in: 2048)
    assert code == 0, err
    assert ollama_server.state.generations[-1].truncated  # the server cut the prompt's start
    code, err = explain(2048)
    assert code == 0, err
    assert not ollama_server.state.generations[-1].truncated
    assert "note: only lines 1-" in err and "raise chat.num_ctx for more" in err


def test_ask_sends_the_docs_section_about_a_function_after_the_code(
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The usage page that describes `scale` rides beside the function instead of taking an
    excerpt's place among the search's results: both are sent, the page after all the code and
    the other results (without riding, it came before the README)."""
    files = {
        **FILES,
        "docs/usage.md": (
            "# Scaling\n\nWhat does scaling do? `scale(values, factor)` multiplies every value"
            " by the factor: every value scaled by the factor, values times factor.\n"
        ),
    }
    root = make_repo(tmp_path / "repo", files)
    use_env(env_for(ollama_server, tmp_path / "xdg"), monkeypatch)
    assert main(["index", str(root)]) == 0
    capsys.readouterr()
    ollama_server.state.requests.clear()
    assert main(["ask", "--json", "--root", str(root), "What does scale do to every value?"]) == 0
    chats = [body for route, body in ollama_server.state.requests if route == "/api/chat"]
    user = chats[0]["messages"][-1]["content"]
    sent = re.findall(r'path="([^"]+)" lines="([^"]+)"', user)
    assert sent == [
        ("calc/ops.py", "6-8"), ("calc/ops.py", "1-3"), ("README.md", "1-3"),
        ("docs/usage.md", "1-3"),
    ], user  # fmt: skip
