"""The model client through the official ollama client against the test Ollama server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from enclave.config import Config
from enclave.server.completion.fit import fit_cursor_text
from enclave.server.completion.pipeline import CompletionResult, complete_text
from enclave.server.model.client import ChatDelta, ModelClient
from enclave.server.model.errors import (
    ContextTooLong,
    ModelBusy,
    ModelLoadTimeout,
    ModelNotFound,
    ModelTimeout,
    OllamaUnavailable,
    StreamInterrupted,
)
from enclave.server.types import ContextPiece
from tests.support.ollama_fixtures import config_for
from tests.support.ollama_server import CURRENT_VERSION, OllamaTestServer

PREFIX = "def add(a, b):\n    "
CONTEXT = [ContextPiece("calc/ops.py", 1, 2, "def sub(a, b):\n    return a - b\n", "similar code")]


async def complete(client: ModelClient, **kw: Any) -> CompletionResult:
    args: dict[str, Any] = {
        "prefix": PREFIX,
        "suffix": "\n\nprint(add(1, 2))\n",
        "language": "python",
        "path": "calc/add.py",
        "context": CONTEXT,
        "multiline": True,
    }
    args.update(kw)
    return await complete_text(client, **args)


def generations(server: OllamaTestServer, endpoint: str) -> list[dict[str, Any]]:
    return [body for path, body in server.state.requests if path == f"/api/{endpoint}"]


async def test_fim_completion_uses_suffix_and_returns_clean_code(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    result = await complete(model_client)
    assert result.fim is True
    assert result.text.strip(), "the model produced no code"
    assert "<think>" not in result.text and "```" not in result.text
    assert "return" in result.text  # SmolLM2 greedy: `return a + b`
    body = generations(ollama_server, "generate")[-1]
    assert body["suffix"].startswith("\n\nprint(add(1, 2))")
    assert body["options"]["num_ctx"] == 1024
    assert body["keep_alive"] == "30m"
    assert "think" not in body  # qwen2.5-coder has no thinking capability: flag not sent


async def test_chat_fill_completion_for_a_model_without_insert(
    ollama_server: OllamaTestServer,
) -> None:
    config = config_for(ollama_server, ollama={"completion_model": "deepseek-r1"})
    client = ModelClient(config)
    try:
        result = await complete(client)
    finally:
        await client.aclose()
    assert result.fim is False
    assert result.text.strip()
    assert "<think>" not in result.text and "```" not in result.text
    body = generations(ollama_server, "generate")[-1]
    assert body["think"] is False  # thinking off for completions
    assert "<CURSOR>" in body["prompt"] and "repository-data" in body["prompt"]
    # the model also answers questions (chat.num_ctx 2048): one window for both, never a reload
    assert body["options"]["num_ctx"] == 2048
    assert "suffix" not in body or not body["suffix"]


async def test_completion_strips_think_tags_the_model_writes_anyway(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    ollama_server.set_fault("think-tags", count=1)
    result = await complete(model_client)
    record = ollama_server.state.generations[-1]
    for _ in range(200):  # the server thread marks the record just after its last write
        if record.stop:
            break
        await asyncio.sleep(0.01)
    assert record.stop in ("done", "client-closed")  # closed early once the code was settled
    assert "<think>" not in result.text and "think>" not in result.text
    assert "Let me" not in result.text
    assert result.text.strip()


async def collect(stream: AsyncIterator[ChatDelta]) -> list[ChatDelta]:
    return [delta async for delta in stream]


async def test_chat_returns_thinking_apart(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    messages = [{"role": "user", "content": "What does the function add(a, b) return?"}]
    deltas = await collect(model_client.chat(model_client.boundary.admit_messages(messages)))
    thinking = "".join(d.thinking for d in deltas)
    content = "".join(d.content for d in deltas)
    assert thinking.strip() and content.strip()
    assert "<think>" not in content and "</think>" not in content
    body = generations(ollama_server, "chat")[-1]
    assert body["think"] is True and body["options"]["num_ctx"] == 2048


async def test_old_server_inline_think_tags_are_stripped_from_chat(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    ollama_server.state.version = "0.6.0"  # ignores `think`: R1 writes <think> into the answer
    messages = [{"role": "user", "content": "Name a prime number."}]
    deltas = await collect(model_client.chat(model_client.boundary.admit_messages(messages)))
    content = "".join(d.content for d in deltas)
    thinking = "".join(d.thinking for d in deltas)
    assert "think>" not in content and "<thi" not in content
    assert thinking.strip() and content.strip()


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("not-found", ModelNotFound, "ollama pull qwen2.5-coder:1.5b"),
        ("load-timeout", ModelLoadTimeout, "smaller"),
        ("busy", ModelBusy, "OLLAMA_NUM_PARALLEL"),
        ("cut-stream", StreamInterrupted, "try again"),
    ],
)
async def test_each_fault_gives_its_message_and_the_client_recovers(
    model_client: ModelClient,
    ollama_server: OllamaTestServer,
    fault: str,
    error: type[Exception],
    words: str,
) -> None:
    model_client.busy_backoff = 0.01
    await model_client.model_info("qwen2.5-coder:1.5b")  # cached: the fault hits generation
    ollama_server.set_fault(fault)
    with pytest.raises(error) as caught:
        await complete(model_client)
    assert words in f"{caught.value.message} {caught.value.fix}"  # type: ignore[attr-defined]
    ollama_server.clear_fault()
    result = await complete(model_client)
    assert result.text.strip()


async def test_busy_is_retried_with_backoff_then_succeeds(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    model_client.busy_backoff = 0.01
    ollama_server.set_fault("busy", count=2)
    result = await complete(model_client)
    assert result.text.strip()
    assert len(generations(ollama_server, "generate")) == 3


async def test_refused_connection_says_how_to_start_ollama(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    ollama_server.refuse()
    try:
        with pytest.raises(OllamaUnavailable) as caught:
            await complete(model_client)
        assert "ollama serve" in caught.value.fix
        with pytest.raises(OllamaUnavailable):
            await model_client.version()
    finally:
        ollama_server.resume()
    assert (await complete(model_client)).text.strip()


async def test_slow_first_token_times_out_and_client_stays_usable(
    ollama_server: OllamaTestServer,
) -> None:
    client = ModelClient(config_for(ollama_server, ollama={"first_token_timeout": 0.3}))
    try:
        ollama_server.set_fault("slow-first-token", count=1, delay=1.0)
        started = time.monotonic()
        with pytest.raises(ModelTimeout) as caught:
            await complete(client)
        assert time.monotonic() - started < 1.0
        assert "first_token_timeout" in caught.value.fix
        await asyncio.sleep(1.0)  # let the server finish the slow request
        assert (await complete(client)).text.strip()
    finally:
        await client.aclose()


async def test_model_not_pulled_in_show(ollama_server: OllamaTestServer) -> None:
    client = ModelClient(config_for(ollama_server, ollama={"completion_model": "codestral"}))
    try:
        with pytest.raises(ModelNotFound) as caught:
            await complete(client)
        assert caught.value.fix == "run `ollama pull codestral`"
    finally:
        await client.aclose()


async def test_cancelling_a_completion_stops_generation_within_200ms(
    ollama_server: OllamaTestServer,
) -> None:
    client = ModelClient(config_for(ollama_server, completion={"max_tokens": 400}))
    try:
        await client.model_info("qwen2.5-coder:1.5b")
        task = asyncio.create_task(complete(client, suffix=""))
        for _ in range(3000):  # the machine is shared: allow a slow first token
            await asyncio.sleep(0.01)
            gens = ollama_server.state.generations
            if gens and gens[-1].text:
                break
        record = ollama_server.state.generations[-1]
        assert record.text and not record.stop, "generation should be under way"
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if record.stop:
                break
            await asyncio.sleep(0.01)
        assert record.stop == "client-closed"
        assert record.stopped_at - cancelled_at < 0.2
        assert (await complete(client)).text.strip()  # still usable
    finally:
        await client.aclose()


async def test_closing_a_chat_stream_stops_generation(
    ollama_server: OllamaTestServer,
) -> None:
    client = ModelClient(config_for(ollama_server, chat={"max_tokens": 400}))
    try:
        stream = client.chat(
            client.boundary.admit_messages([{"role": "user", "content": "Tell a long story."}]),
            think=False,
        )
        first = await anext(stream)
        assert first.content
        closed_at = time.monotonic()
        await stream.aclose()  # type: ignore[attr-defined]
        record = ollama_server.state.generations[-1]
        for _ in range(100):
            if record.stop:
                break
            await asyncio.sleep(0.01)
        assert record.stop == "client-closed"
        assert record.stopped_at - closed_at < 0.2
    finally:
        await client.aclose()


async def test_truncation_is_detected_and_estimate_learns(
    ollama_server: OllamaTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    config: Config = config_for(
        ollama_server,
        # (the plain layout: its cut fills the whole allowance, not a multiple of a step)
        completion={
            "num_ctx": 512,
            "max_tokens": 8,
            "prefix_tokens": 1000,
            "cache_friendly": False,
        },
    )
    client = ModelClient(config)
    try:
        # Digits and punctuation tokenize far denser than 3 characters per token, so the
        # estimate lets through more than fits and the server cuts the start of the prompt.
        dense = "".join(f"{i}%{i * 7}|{i * 13}\n" for i in range(300))
        est = client.estimator("qwen2.5-coder:1.5b")
        before = est.chars_per_token
        cut = fit_cursor_text(dense + PREFIX, "\n", config.completion, est)  # as prepared
        with caplog.at_level(logging.WARNING):
            result = await complete(
                client, prefix=cut.prefix, suffix=cut.suffix, context=[], multiline=False
            )
        assert result.truncated is True
        assert "prompt was probably cut" in caplog.text
        assert client.estimator("qwen2.5-coder:1.5b").chars_per_token < before
    finally:
        await client.aclose()


async def test_an_unfitted_completion_prompt_is_refused_before_sending(
    ollama_server: OllamaTestServer,
) -> None:
    """The client never sends what Ollama would cut: text must be fitted to its budget first."""
    config: Config = config_for(ollama_server, completion={"num_ctx": 256, "max_tokens": 8})
    client = ModelClient(config)
    try:
        with pytest.raises(ContextTooLong) as caught:
            await complete(client, prefix="x = 1\n" * 400, context=[], multiline=False)
    finally:
        await client.aclose()
    assert "completion.num_ctx (256)" in caught.value.message
    assert generations(ollama_server, "generate") == []


async def test_num_ctx_is_sent_on_every_generation(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    await complete(model_client, multiline=False)
    await collect(
        model_client.chat(
            model_client.boundary.admit_messages([{"role": "user", "content": "hi"}]), think=False
        )
    )
    bodies = generations(ollama_server, "generate") + generations(ollama_server, "chat")
    assert len(bodies) == 2
    assert all(body["options"]["num_ctx"] > 0 for body in bodies)


async def test_one_model_for_everything_is_never_reloaded_by_a_num_ctx_change(
    ollama_server: OllamaTestServer,
) -> None:
    """Ollama reloads a model (dropping its prompt cache) when num_ctx changes: the warm-up, a
    completion and a question to the same model all send the same window."""
    config = config_for(ollama_server, ollama={"completion_model": "deepseek-r1"})
    client = ModelClient(config)
    try:
        await client.warm_up(["deepseek-r1"])
        await complete(client, multiline=False)
        await collect(
            client.chat(
                client.boundary.admit_messages([{"role": "user", "content": "hi"}]), think=False
            )
        )
    finally:
        await client.aclose()
    sent = [
        body["options"]["num_ctx"]
        for path, body in ollama_server.state.requests
        if path in ("/api/generate", "/api/chat")
    ]
    assert sent == [2048, 2048, 2048]  # the larger window, chat.num_ctx
    # two models: each keeps its own window
    separate = ModelClient(config_for(ollama_server))
    try:
        assert separate.context_size("qwen2.5-coder:1.5b") == 1024
        assert separate.context_size("deepseek-r1") == 2048
    finally:
        await separate.aclose()


async def test_model_info_and_version(model_client: ModelClient) -> None:
    assert await model_client.version() == CURRENT_VERSION
    info = await model_client.model_info("deepseek-r1")
    assert info.capabilities == {"completion", "thinking"}
    assert info.context_length == 8192 and info.size_bytes == 5_200_000_000
    await model_client.warm_up()


async def test_too_long_chat_is_refused_before_sending(
    model_client: ModelClient, ollama_server: OllamaTestServer
) -> None:
    huge = "word " * 5000  # about 8000 tokens by the estimate; chat.num_ctx is 2048
    with pytest.raises(ContextTooLong) as caught:
        await collect(
            model_client.chat(
                model_client.boundary.admit_messages([{"role": "user", "content": huge}])
            )
        )
    assert "chat.num_ctx" in caught.value.fix
    assert generations(ollama_server, "chat") == []  # never sent: Ollama would cut its start


async def test_a_settled_completion_stops_the_model_early(ollama_server: OllamaTestServer) -> None:
    config = config_for(
        ollama_server,
        ollama={"completion_model": "deepseek-r1"},
        completion={"max_tokens": 200},
    )
    client = ModelClient(config)
    try:
        result = await complete(client, multiline=False)
    finally:
        await client.aclose()
    assert result.text.strip() and "\n" not in result.text
    record = ollama_server.state.generations[-1]
    for _ in range(200):  # the server thread marks the record just after its last write
        if record.stop:
            break
        await asyncio.sleep(0.01)
    assert record.stop == "client-closed", (record.stop, record.text)
    assert len(record.text) < 600, "the model kept generating after the line was complete"
