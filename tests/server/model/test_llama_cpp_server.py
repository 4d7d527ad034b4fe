"""``ollama.api = "openai"`` against a server nobody here wrote: llama-cpp-python's own
OpenAI-compatible server (tests.support.llama_cpp_server) with the tests' model. An inline
completion (chat prompt, and fill-in-the-middle through ``/v1/completions``), a question, and an
index with embeddings through ``/v1/embeddings``, each through the command line or the model
client as the editor uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.indexer.api import open_index
from enclave.server.completion.pipeline import complete_text
from enclave.server.model.client import ModelClient
from tests.support.llama_cpp_server import CHAT_MODEL, EMBED_MODEL
from tests.support.repos import make_repo

ADD = "def add(a, b):\n    return a + b\n"


def settings(url: str, **ollama: object) -> dict[str, dict[str, object]]:
    return {
        "ollama": {
            "api": "openai",
            "host": url,
            "chat_model": CHAT_MODEL,
            "connect_timeout": 2.0,
            "first_token_timeout": 30.0,
            **ollama,
        },
        "completion": {"max_tokens": 16, "num_ctx": 1024, "context_tokens": 200},
        "chat": {"max_tokens": 48, "num_ctx": 2048, "context_tokens": 600},
        "embedding": {"provider": "openai", "url": url, "model": EMBED_MODEL},
    }


def config_of(values: dict[str, dict[str, object]]) -> Config:
    config, problems = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return config


@pytest.mark.parametrize("fim", [False, True])
async def test_an_inline_completion(llama_cpp_server: str, fim: bool) -> None:
    client = ModelClient(config_of(settings(llama_cpp_server, openai_fim=fim)))
    try:
        result = await complete_text(
            client,
            prefix="def add(a, b):\n    return ",
            suffix="\n\nprint(add(1, 2))\n",
            language="python",
            path="calc.py",
            context=[],
            multiline=False,
        )
    finally:
        await client.aclose()
    assert result.fim is fim and "<think>" not in result.text
    if not fim:  # (SmolLM2 has no fill-in-the-middle tokens: through `suffix` it writes prose,
        assert result.text.strip()  # which the completion's checks rightly drop)


async def test_a_question(llama_cpp_server: str, tmp_path: Path) -> None:
    """Answered; this server sends no usage event, so the audit log says the prompt's tokens
    are unknown (null), not 0."""
    values = settings(llama_cpp_server)
    values["audit"] = {"enabled": True, "path": str(tmp_path / "audit.jsonl")}
    client = ModelClient(config_of(values))
    content, done = "", ""
    try:
        async for delta in client.chat(
            client.boundary.admit_messages([{"role": "user", "content": "Say hello."}])
        ):
            content += delta.content
            done = delta.done_reason or done
    finally:
        await client.aclose()
    assert content.strip() and done in ("stop", "length")
    (record,) = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert record["purpose"] == "chat" and record["prompt_tokens"] is None


def test_an_index_with_embeddings_and_ask_from_the_command_line(
    llama_cpp_server: str, tmp_path: Path
) -> None:
    root = make_repo(
        tmp_path / "repo", {"calc.py": ADD, "text/slug.py": "def slug(s):\n    return s.lower()\n"}
    )
    config = config_of(settings(llama_cpp_server))
    summary = open_index(root, config).update()
    assert summary.semantic and summary.embedded > 0, summary.semantic_reason
    hits = open_index(root, config).search("add two numbers", k=2, mode="semantic").hits
    assert {hit.path for hit in hits} == {"calc.py", "text/slug.py"}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "enclave", "ask", "What does add return?", "--settings",
         json.dumps(settings(llama_cpp_server))],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
