"""``ollama.api = "openai"``: the model client through the OpenAI-compatible wire format.

The test server answers ``/v1/*`` as Ollama does (``tests.support.openai_routes``) with the same
tiny model: chat streamed as server-sent events with reasoning apart, completions with and
without ``suffix``, embeddings, and an index built with the ``openai`` embedding provider.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from enclave.indexer.api import open_index
from enclave.indexer.embed import make_embedder
from enclave.server.completion.pipeline import CompletionResult, complete_text
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import ModelError, ModelNotFound, StreamInterrupted
from tests.support.forward_proxy import ForwardProxy
from tests.support.ollama_fixtures import config_for, env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo


@pytest.fixture
async def openai_client(ollama_server: OllamaTestServer) -> AsyncIterator[ModelClient]:
    client = ModelClient(config_for(ollama_server, ollama={"api": "openai"}))
    yield client
    await client.aclose()


def bodies(server: OllamaTestServer, path: str) -> list[dict[str, Any]]:
    return [body for route, body in server.state.requests if route == path]


async def _chat(client: ModelClient, think: bool) -> tuple[str, str]:
    thinking, content = "", ""
    async for delta in client.chat(
        client.boundary.admit_messages([{"role": "user", "content": "Say hello."}]), think=think
    ):
        thinking += delta.thinking
        content += delta.content
    return thinking, content


async def _complete(
    client: ModelClient, suffix: str = "\n", prefix: str = "def add(a, b):\n    return "
) -> CompletionResult:
    """One single-line completion of ``prefix`` in m.py, with no context."""
    return await complete_text(
        client, prefix=prefix, suffix=suffix, language="python", path="m.py", context=[],
        multiline=False,
    )  # fmt: skip


async def test_chat_streams_with_reasoning_deltas_kept_apart(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    thinking, content = await _chat(openai_client, think=True)
    assert thinking.strip() and content.strip()
    assert "<think>" not in content and "</think>" not in content
    (body,) = bodies(ollama_server, "/v1/chat/completions")
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "options" not in body  # OpenAI's fields, not Ollama's
    # no effort asked: the model's default, which for a thinking model is to think (openai.go)
    assert "reasoning_effort" not in body
    assert not bodies(ollama_server, "/api/chat")


async def test_vllm_reasoning_content_deltas_go_to_thinking(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    ollama_server.state.reasoning_field = "reasoning_content"  # as vLLM names it
    thinking, content = await _chat(openai_client, think=True)
    assert thinking.strip() and content.strip() and "think>" not in content


async def test_the_usage_event_gives_the_token_counts(openai_client: ModelClient) -> None:
    backend = openai_client.fleet.hosts[0].backend
    stream = await backend.chat(
        model="deepseek-r1", messages=[{"role": "user", "content": "Hi"}], options={}
    )
    parts = [part async for part in stream]
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].prompt_eval_count > 0 and parts[-1].eval_count > 0
    assert parts[-1].done_reason in ("stop", "length")


async def test_think_tags_in_the_content_go_to_thinking(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    ollama_server.set_fault("think-tags")  # a server that leaves the model's tags in the text
    thinking, content = await _chat(openai_client, think=True)
    (body,) = bodies(ollama_server, "/v1/chat/completions")
    assert "reasoning_effort" not in body
    assert thinking.strip() and content.strip() and "think>" not in content


async def test_completion_with_suffix_on_v1_completions(ollama_server: OllamaTestServer) -> None:
    config = config_for(ollama_server, ollama={"api": "openai", "openai_fim": True})
    client = ModelClient(config)
    try:
        result = await _complete(client, suffix="\n\nprint(add(1, 2))\n")
    finally:
        await client.aclose()
    assert result.fim and result.prompt_tokens > 0
    (body,) = bodies(ollama_server, "/v1/completions")
    assert body["suffix"] == "\n\nprint(add(1, 2))\n" and body["model"] == "qwen2.5-coder:1.5b"
    assert body["max_tokens"] == 16 and body["stop"] == ["\n"]


async def test_completion_without_fim_uses_the_chat_prompt(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    result = await _complete(openai_client)
    assert not result.fim
    assert not bodies(ollama_server, "/v1/completions")
    (body,) = bodies(ollama_server, "/v1/chat/completions")
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]


async def test_closing_the_stream_stops_the_server(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    stream = openai_client.chat(
        openai_client.boundary.admit_messages([{"role": "user", "content": "Tell a long story."}]),
        think=False,
    )
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):
        generation = ollama_server.state.generations[-1]
        if generation.stop:
            break
        await asyncio.sleep(0.05)
    assert generation.stop == "client-closed"


async def test_a_cut_stream_is_an_error_not_a_short_answer(
    openai_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    await openai_client.model_info("deepseek-r1")
    ollama_server.set_fault("cut-stream", count=1, endpoint="/v1/chat/completions")
    with pytest.raises(StreamInterrupted):
        await _chat(openai_client, think=False)


async def test_a_model_the_server_does_not_list_is_not_found(
    ollama_server: OllamaTestServer,
) -> None:
    client = ModelClient(
        config_for(ollama_server, ollama={"api": "openai", "chat_model": "llama-9000"})
    )
    try:
        with pytest.raises(ModelNotFound):
            await _chat(client, think=False)
    finally:
        await client.aclose()


async def test_failover_and_headers_between_two_openai_hosts(
    ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_TEST_OPENAI_TOKEN", "0pen-s3cret")
    first, second = ForwardProxy(ollama_server.url).start(), ForwardProxy(ollama_server.url)
    second.start()
    config = config_for(
        ollama_server,
        ollama={
            "api": "openai",
            "hosts": [first.url, second.url],
            "headers": {"Authorization": "Bearer ${ENCLAVE_TEST_OPENAI_TOKEN}"},
        },
        embedding={"provider": "openai"},
    )
    client = ModelClient(config)
    try:
        await client.version()
        first.kill()
        _, content = await _chat(client, think=False)
        assert content.strip() and second.paths("/v1/chat/completions")
        assert make_embedder(config).embed(["x = 1"])  # the first host is dead: the second
    finally:
        await client.aclose()
        first.stop()
        second.stop()
    seen = {s.path: {k.lower(): v for k, v in s.headers.items()} for s in second.state.seen}
    assert {"/v1/models", "/v1/chat/completions", "/v1/embeddings"} <= set(seen)
    assert all(h.get("authorization") == "Bearer 0pen-s3cret" for h in seen.values())


def test_embeddings_through_v1(ollama_server: OllamaTestServer) -> None:
    config = config_for(ollama_server, embedding={"provider": "openai"})
    embedder = make_embedder(config)
    assert embedder.model_id == "openai:nomic-embed-text" and embedder.dim > 0
    vectors = embedder.embed(["def add(a, b): return a + b", "a river bank"])
    assert len(vectors) == 2 and all(abs(sum(x * x for x in v) - 1) < 1e-6 for v in vectors)
    assert bodies(ollama_server, "/v1/embeddings") and not bodies(ollama_server, "/api/embed")


def test_embedding_url_must_be_allowed(ollama_server: OllamaTestServer) -> None:
    from enclave.indexer.embed import EmbeddingUnavailable

    config = config_for(
        ollama_server, embedding={"provider": "openai", "url": "https://embed.corp/v1"}
    )
    with pytest.raises(EmbeddingUnavailable) as caught:
        make_embedder(config)
    assert "trust.allowed_hosts" in caught.value.fix and "embedding.url" in caught.value.fix


def test_an_index_built_with_the_openai_embedding_provider(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(
        tmp_path / "repo",
        {"calc.py": "def add(a, b):\n    return a + b\n", "README.md": "# Calc\n\nSums.\n"},
    )
    env = env_for(ollama_server, tmp_path / "xdg")
    env.update({"ENCLAVE_EMBEDDING_PROVIDER": "openai", "ENCLAVE_OLLAMA_API": "openai"})
    done = subprocess.run(
        [sys.executable, "-m", "enclave", "index", str(root), "--json", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"semantic": true' in done.stdout
    assert bodies(ollama_server, "/v1/embeddings") and not bodies(ollama_server, "/api/embed")
    from enclave.config import load_config

    config, _ = load_config(root, None, env=env)
    index = open_index(root, config)
    try:
        assert index.status().embedding_model == "openai:nomic-embed-text"
    finally:
        index.close()
    assert os.environ.get("ENCLAVE_EMBEDDING_PROVIDER") != "openai"  # nothing leaked here


def test_ask_through_the_cli_on_the_openai_api(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
    env = env_for(ollama_server, tmp_path / "xdg")
    env.update({"ENCLAVE_OLLAMA_API": "openai", "ENCLAVE_EMBEDDING_PROVIDER": "none"})
    done = subprocess.run(
        [sys.executable, "-m", "enclave", "explain", f"{root / 'calc.py'}:1-2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and "<think>" not in done.stdout
    assert bodies(ollama_server, "/v1/chat/completions") and not bodies(ollama_server, "/api/chat")


async def test_an_unreachable_openai_server_says_which(ollama_server: OllamaTestServer) -> None:
    from enclave.server.model.errors import OllamaUnavailable

    gone = ForwardProxy(ollama_server.url).start()
    gone.kill()
    client = ModelClient(config_for(ollama_server, ollama={"api": "openai", "host": gone.url}))
    try:
        with pytest.raises(OllamaUnavailable) as caught:
            await _chat(client, think=False)
    finally:
        await client.aclose()
        gone.stop()
    assert "OpenAI-compatible" in caught.value.message and gone.url in caught.value.message
    assert "ollama.host" in caught.value.fix


async def test_every_openai_request_is_audited(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    import json

    log = tmp_path / "audit.jsonl"
    config = config_for(
        ollama_server,
        ollama={"api": "openai", "openai_fim": True},
        audit={"path": str(log)},
        embedding={"provider": "openai"},
    )
    client = ModelClient(config)
    try:
        await _chat(client, think=False)
        await complete_text(
            client,
            prefix="x = ",
            suffix="\n",
            language="python",
            path="m.py",
            context=[],
            multiline=False,
        )
    finally:
        await client.aclose()
    make_embedder(config).embed(["y = 2"])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    purposes = [r["purpose"] for r in records]
    assert {"chat", "completion", "embedding"} <= set(purposes)
    chat = next(r for r in records if r["purpose"] == "chat")
    assert chat["prompt_tokens"] > 0 and chat["output_tokens"] > 0  # from the usage event


async def test_a_chat_model_that_cannot_think_answers_with_the_default_settings(
    ollama_server: OllamaTestServer,
) -> None:
    """No capability is claimed that the API does not give: asking qwen2.5-coder to think (the
    default chat.think) made Ollama answer 400 "does not support thinking" to every question."""
    config = config_for(ollama_server, ollama={"api": "openai", "chat_model": "qwen2.5-coder:1.5b"})
    client = ModelClient(config)
    try:
        thinking, content = await _chat(client, think=True)
    finally:
        await client.aclose()
    assert content.strip() and not thinking
    assert "reasoning_effort" not in bodies(ollama_server, "/v1/chat/completions")[0]


async def test_completions_turn_thinking_off_so_a_reasoning_model_answers(
    ollama_server: OllamaTestServer,
) -> None:
    """With deepseek-r1 as the completion model, a think longer than the completion's 16 tokens
    left the suggestion empty; ``reasoning_effort: "none"`` turns it off on Ollama's /v1."""
    ollama_server.state.think_tokens = 64
    config = config_for(ollama_server, ollama={"api": "openai", "completion_model": "deepseek-r1"})
    client = ModelClient(config)
    try:
        result = await _complete(client)
    finally:
        await client.aclose()
    (body,) = bodies(ollama_server, "/v1/chat/completions")
    assert body["reasoning_effort"] == "none"
    assert result.text.strip()


async def test_r1_thinking_past_its_budget_is_stopped_and_answers(
    ollama_server: OllamaTestServer,
) -> None:
    """R1 behind /v1 thinks by default and its reasoning counts against max_tokens: at
    chat.thinkTokens (16) the stream is closed and the answer asked for with
    reasoning_effort "none", with the answer's whole chat.maxTokens (24)."""
    ollama_server.state.think_tokens = 10_000
    chat: dict[str, object] = {"max_tokens": 24, "think_tokens": 16}
    config = config_for(ollama_server, ollama={"api": "openai"}, chat=chat)
    client = ModelClient(config)
    question = "Explain step by step how a hash map resolves collisions."
    thinking, content = "", ""
    try:
        async for delta in client.chat(
            client.boundary.admit_messages([{"role": "user", "content": question}])
        ):
            thinking, content = thinking + delta.thinking, content + delta.content
    finally:
        await client.aclose()
    thought, answered = bodies(ollama_server, "/v1/chat/completions")
    assert "reasoning_effort" not in thought and thought["max_tokens"] == 24 + 16
    assert answered["reasoning_effort"] == "none" and answered["max_tokens"] == 24
    assert thinking.strip() and content.strip()
    assert thinking.strip() in answered["messages"][-1]["content"]


async def test_thinking_turned_off_for_questions_sends_none(
    ollama_server: OllamaTestServer,
) -> None:
    config = config_for(ollama_server, ollama={"api": "openai"}, chat={"think": False})
    client = ModelClient(config)
    try:
        thinking, content = await _chat(client, think=False)
    finally:
        await client.aclose()
    assert bodies(ollama_server, "/v1/chat/completions")[0]["reasoning_effort"] == "none"
    assert content.strip() and not thinking


async def test_a_server_that_rejects_the_effort_is_asked_again_without_it(
    ollama_server: OllamaTestServer,
) -> None:
    """A server whose schema takes only low/medium/high answers 400 to "none": the completion is
    sent again without it, and the backend never sends it to that server again."""
    ollama_server.state.reasoning_efforts = ("low", "medium", "high")
    config = config_for(ollama_server, ollama={"api": "openai", "completion_model": "deepseek-r1"})
    client = ModelClient(config)
    try:
        for _ in range(2):
            result = await _complete(client)
            assert result.text.strip()
    finally:
        await client.aclose()
    efforts = [b.get("reasoning_effort") for b in bodies(ollama_server, "/v1/chat/completions")]
    assert efforts == ["none", None, None]


async def test_fim_on_a_server_that_rejects_suffix_names_the_setting(
    ollama_server: OllamaTestServer,
) -> None:
    """vLLM answers 400 to `suffix` on /v1/completions: with ollama.openai_fim every completion
    failed with a bare HTTP 400."""
    ollama_server.state.v1_suffix = False
    config = config_for(ollama_server, ollama={"api": "openai", "openai_fim": True})
    client = ModelClient(config)
    try:
        with pytest.raises(ModelError) as caught:
            await _complete(client, suffix="\n\nprint(add(1, 2))\n")
    finally:
        await client.aclose()
    assert "does not take `suffix`" in caught.value.message
    assert "ollama.openai_fim = false" in caught.value.fix
