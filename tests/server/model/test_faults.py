"""Every fault of a model server ends in one ModelError with a fix, within the configured timeouts.

Against the test Ollama server's fault modes (tests/support/ollama_server.py): a server that hangs
before its headers or after the first token, answers 500, answers something that is not JSON as a
whole or in the middle of a stream, or cuts the stream. Times are asserted against the timeouts
configured here (small, so the tests are quick): the error comes no earlier than the timeout and
well before timeout + SLACK.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from enclave.config import Config, load_config
from enclave.server.cli.main import main as enclave_main
from enclave.server.completion.pipeline import CompletionResult, complete_text
from enclave.server.model.client import ChatDelta, ModelClient
from enclave.server.model.errors import (
    MalformedResponse,
    ModelError,
    ModelLoadTimeout,
    ModelTimeout,
    OllamaUnavailable,
    StreamInterrupted,
)
from tests.support.ollama_fixtures import config_for
from tests.support.ollama_server import Generation, Hang, OllamaTestServer

FIRST_TOKEN = 1.0  # ollama.first_token_timeout where the fault strikes before the first token
IDLE = 0.5  # ollama.idle_timeout where the fault strikes after it
SLACK = 2.0  # how much later than its timeout an error may come on a loaded 2-core machine
HANG = 20.0  # how long the server hangs: far longer than any timeout here
EARLY = 0.05  # asyncio's clock and time.monotonic() may differ by a tick


def fault_config(server: OllamaTestServer, **ollama: float) -> Config:
    values: dict[str, object] = {"first_token_timeout": FIRST_TOKEN, "idle_timeout": IDLE}
    values.update(ollama)
    return config_for(server, ollama=values, chat={"max_tokens": 400})


async def complete(client: ModelClient) -> CompletionResult:
    return await complete_text(
        client,
        prefix="def add(a, b):\n    ",
        suffix="\n",
        language="python",
        path="calc/add.py",
        context=[],
        multiline=True,
    )


async def chat(client: ModelClient) -> list[ChatDelta]:
    stream = client.chat(
        client.boundary.admit_messages([{"role": "user", "content": "Tell a long story."}]),
        think=False,
    )
    return [delta async for delta in stream]


ASKS: dict[str, Callable[[ModelClient], Awaitable[Any]]] = {"generate": complete, "chat": chat}


def one_line(error: ModelError) -> None:
    """What the CLI prints and editors show: a message and a fix, each a single line."""
    assert error.message and error.fix
    assert "\n" not in error.message and "\n" not in error.fix


async def settle(record: Generation | Hang, attribute: str, within: float = 2.0) -> None:
    """Wait for the server thread to mark ``record`` (it does so just after the client left)."""
    for _ in range(int(within / 0.01)):
        if getattr(record, attribute):
            return
        await asyncio.sleep(0.01)


async def timed(call: Awaitable[Any], error: type[ModelError]) -> tuple[ModelError, float]:
    started = time.monotonic()
    with pytest.raises(error) as caught:
        await call
    return caught.value, time.monotonic() - started


# -- hangs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
async def test_hang_before_headers_ends_at_the_first_token_timeout(
    ollama_server: OllamaTestServer, endpoint: str
) -> None:
    client = ModelClient(fault_config(ollama_server))
    try:
        ollama_server.set_fault("hang-before-headers", delay=HANG, endpoint=endpoint)
        error, elapsed = await timed(ASKS[endpoint](client), ModelTimeout)
        assert FIRST_TOKEN - EARLY <= elapsed < FIRST_TOKEN + SLACK, elapsed
        assert "ollama.first_token_timeout" in error.fix
        one_line(error)
        # The request was closed: the server's hang ended as soon as the client gave up.
        (hang,) = ollama_server.state.hangs
        await settle(hang, "ended_at")
        assert hang.client_gone and hang.ended_at - hang.started_at < FIRST_TOKEN + SLACK
        ollama_server.clear_fault()
        assert await client.version()  # and the client is still usable
    finally:
        await client.aclose()


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
async def test_hang_after_the_first_token_ends_at_the_idle_timeout(
    ollama_server: OllamaTestServer, endpoint: str
) -> None:
    client = ModelClient(fault_config(ollama_server, first_token_timeout=30.0))
    try:
        await client.model_info(client.config.ollama.chat_model)  # no /api/show in the timing
        ollama_server.set_fault("hang-after-first-token", delay=HANG, endpoint=endpoint)
        error, _ = await timed(ASKS[endpoint](client), ModelTimeout)
        (hang,) = ollama_server.state.hangs  # starts when the first part has been sent
        failed_at = time.monotonic()
        assert IDLE - EARLY <= failed_at - hang.started_at < IDLE + SLACK
        assert "ollama.idle_timeout" in error.fix and "stopped answering" in error.message
        one_line(error)
        await settle(hang, "ended_at")
        assert hang.client_gone, "the stream was not closed"
        record = ollama_server.state.generations[-1]
        await settle(record, "stop")
        assert record.stop == "client-closed"
    finally:
        await client.aclose()


async def test_the_total_timeout_still_bounds_the_whole_answer(
    ollama_server: OllamaTestServer,
) -> None:
    total = 3.0
    client = ModelClient(
        fault_config(
            ollama_server, first_token_timeout=30.0, idle_timeout=30.0, total_timeout=total
        )
    )
    try:
        await client.model_info(client.config.ollama.chat_model)
        ollama_server.set_fault("hang-after-first-token", delay=HANG, endpoint="chat")
        error, elapsed = await timed(chat(client), ModelTimeout)
        assert total - EARLY <= elapsed < total + SLACK, elapsed
        assert "ollama.total_timeout" in error.fix
        one_line(error)
    finally:
        await client.aclose()


# -- answers that are not Ollama's -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
async def test_a_500_is_one_error_with_the_server_message(
    ollama_server: OllamaTestServer, endpoint: str
) -> None:
    client = ModelClient(fault_config(ollama_server))
    try:
        ollama_server.set_fault("error-500", endpoint=endpoint)
        error, elapsed = await timed(ASKS[endpoint](client), ModelError)
        assert (
            "HTTP 500" in error.message and "llama runner process has terminated" in error.message
        )
        assert "Ollama server log" in error.fix
        assert elapsed < SLACK
        one_line(error)
    finally:
        await client.aclose()


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
async def test_a_body_that_is_not_json_is_a_malformed_response(
    ollama_server: OllamaTestServer, endpoint: str
) -> None:
    client = ModelClient(fault_config(ollama_server))
    try:
        ollama_server.set_fault("malformed-body", endpoint=endpoint)
        error, elapsed = await timed(ASKS[endpoint](client), MalformedResponse)
        assert "not Ollama's JSON" in error.message and "JSONDecodeError" in error.message
        assert "ollama.host" in error.fix
        assert elapsed < SLACK
        one_line(error)
    finally:
        await client.aclose()


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
async def test_a_malformed_line_mid_stream_ends_in_an_error_and_closes_the_stream(
    ollama_server: OllamaTestServer, endpoint: str
) -> None:
    client = ModelClient(
        config_for(ollama_server, chat={"max_tokens": 400}, completion={"max_tokens": 400})
    )
    received: list[ChatDelta] = []
    try:
        ollama_server.set_fault("malformed-chunk", endpoint=endpoint)
        if endpoint == "chat":
            stream = client.chat(
                client.boundary.admit_messages([{"role": "user", "content": "Tell a long story."}]),
                think=False,
            )
            with pytest.raises(MalformedResponse) as caught:
                async for delta in stream:
                    received.append(delta)
            assert received, "the parts before the broken line came through"
        else:
            with pytest.raises(MalformedResponse) as caught:
                await complete_text(
                    client,
                    prefix="# a long list of numbers\nnumbers = [\n",
                    suffix="",
                    language="python",
                    path="numbers.py",
                    context=[],
                    multiline=True,
                )
        assert "broke off with a line that is not Ollama's JSON" in caught.value.message
        assert "try again" in caught.value.fix
        one_line(caught.value)
        record = ollama_server.state.generations[-1]
        await settle(record, "stop")
        assert record.stop == "client-closed", "the stream was not closed"
    finally:
        await client.aclose()


async def test_a_cut_stream_is_interrupted_and_closed(ollama_server: OllamaTestServer) -> None:
    client = ModelClient(config_for(ollama_server, chat={"max_tokens": 400}))
    try:
        ollama_server.set_fault("cut-stream", endpoint="chat")
        with pytest.raises(StreamInterrupted) as caught:
            await chat(client)
        assert "ended before the model finished" in caught.value.message
        one_line(caught.value)
        record = ollama_server.state.generations[-1]
        await settle(record, "stop")
        assert record.stop == "cut"
    finally:
        await client.aclose()


# -- the short requests: /api/version, /api/show, warm-up (a generation without a prompt) -------


def _expected(call: str, fault: str) -> tuple[type[ModelError], str]:
    """The error of ``call`` under ``fault`` and words of its message or fix."""
    if fault.startswith("hang"):
        if call == "warm_up":
            return ModelLoadTimeout, "ollama.first_token_timeout"
        return ModelTimeout, "ollama.first_token_timeout"
    if call == "version":
        if fault == "error-500":
            return OllamaUnavailable, "HTTP 500"
        return OllamaUnavailable, "does not look like an Ollama server"
    if fault == "error-500":
        return ModelError, "HTTP 500"
    return MalformedResponse, "not Ollama's JSON"


@pytest.mark.parametrize(
    "fault",
    [
        "hang-before-headers",
        "hang-after-first-token",
        "error-500",
        "malformed-body",
        "malformed-chunk",
    ],
)
@pytest.mark.parametrize("call", ["version", "model_info", "warm_up"])
async def test_short_requests_end_in_one_error_within_the_timeout(
    ollama_server: OllamaTestServer, call: str, fault: str
) -> None:
    client = ModelClient(fault_config(ollama_server))
    endpoint = {"version": "version", "model_info": "show", "warm_up": "generate"}[call]
    requests: dict[str, Callable[[], Awaitable[Any]]] = {
        "version": client.version,
        "model_info": lambda: client.model_info("deepseek-r1"),
        "warm_up": lambda: client.warm_up(["deepseek-r1"]),
    }
    error_type, words = _expected(call, fault)
    try:
        ollama_server.set_fault(fault, delay=HANG, endpoint=endpoint)
        error, elapsed = await timed(requests[call](), error_type)
        assert words in f"{error.message} {error.fix}", error
        one_line(error)
        if fault.startswith("hang"):
            assert FIRST_TOKEN - EARLY <= elapsed < FIRST_TOKEN + SLACK, elapsed
            (hang,) = ollama_server.state.hangs
            await settle(hang, "ended_at")
            assert hang.client_gone
        else:
            assert elapsed < SLACK
        ollama_server.clear_fault()
        await requests[call]()  # recovered
    finally:
        await client.aclose()


async def test_refused_chat_says_how_to_start_ollama(ollama_server: OllamaTestServer) -> None:
    client = ModelClient(fault_config(ollama_server))
    ollama_server.set_fault("refused")
    try:
        error, elapsed = await timed(chat(client), OllamaUnavailable)
        assert "ollama serve" in error.fix and elapsed < SLACK
        one_line(error)
    finally:
        ollama_server.resume()
        await client.aclose()


# -- the command line: one line, no traceback ---------------------------------------------------


def _settings(server: OllamaTestServer, first_token: float = FIRST_TOKEN) -> str:
    return json.dumps(
        {
            "ollama": {
                "host": server.url,
                "chatModel": "deepseek-r1",
                "firstTokenTimeout": first_token,
                "idleTimeout": IDLE,
            },
            "chat": {"maxTokens": 400, "numCtx": 2048, "contextTokens": 600},
            "embedding": {"provider": "none"},
        }
    )


def _assert_one_error_line(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("enclave: error: "), stderr
    assert "Traceback" not in stderr


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    for name in list(os.environ):
        if name.startswith("ENCLAVE_") or name == "OLLAMA_HOST":
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("malformed-body", "not Ollama's JSON"),
        ("malformed-chunk", "broke off with a line that is not Ollama's JSON"),
        ("error-500", "HTTP 500"),
        ("hang-before-headers", "first_token_timeout"),
        ("hang-after-first-token", "idle_timeout"),
    ],
)
@pytest.mark.usefixtures("quiet_env")
def test_enclave_ask_prints_one_error_line_and_fails(
    ollama_server: OllamaTestServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    words: str,
) -> None:
    # Only the hang before the headers is timed by the first-token timeout; the others get time
    # for a real first token on a busy machine.
    first_token = FIRST_TOKEN if fault == "hang-before-headers" else 30.0
    ollama_server.set_fault(fault, delay=HANG, endpoint="chat")
    code = enclave_main(
        [
            "ask",
            *("--root", str(tmp_path), "--quiet", "--no-thinking"),
            *("--settings", _settings(ollama_server, first_token)),
            "what does add do?",
        ]
    )
    _, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert words in err
    if fault.startswith("hang"):
        (hang,) = ollama_server.state.hangs
        assert hang.ended_at - hang.started_at < first_token + SLACK  # not HANG: it gave up


def test_the_enclave_command_prints_one_error_line_for_a_malformed_server(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    ollama_server.set_fault("malformed-body")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ENCLAVE_") and key != "OLLAMA_HOST"
    }
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    enclave = Path(sys.executable).parent / "enclave"
    done = subprocess.run(
        [
            *(str(enclave), "ask", "--root", str(tmp_path), "--quiet"),
            *("--settings", _settings(ollama_server), "what does add do?"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    _assert_one_error_line(done.stderr)
    assert "not Ollama's JSON" in done.stderr and "ollama.host" in done.stderr


# -- the settings themselves --------------------------------------------------------------------

TIMEOUTS = [
    ("ollama", "connect_timeout"),
    ("ollama", "first_token_timeout"),
    ("ollama", "idle_timeout"),
    ("ollama", "total_timeout"),
    ("embedding", "timeout"),
    ("embedding", "query_timeout"),
]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", -1, 0, "0", 10**400, "soon"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_named_and_replaced(bad: object) -> None:
    value = float(bad) if bad in ("nan", "inf", "-inf") else bad  # TOML and JSON have them too
    for source in (
        {section: {key: value} for section, key in TIMEOUTS[:4]},
        {section: {key: value} for section, key in TIMEOUTS[4:]},
    ):
        config, problems = load_config(None, source, env={"XDG_CONFIG_HOME": "/nonexistent"})
        named = {p.key for p in problems}
        assert named == {f"{section}.{key}" for section, values in source.items() for key in values}
        assert all("using the default" in str(p) for p in problems)
        for section, values in source.items():
            for key in values:
                assert getattr(getattr(config, section), key) == getattr(
                    getattr(Config(), section), key
                )


def test_new_timeouts_come_from_every_layer(tmp_path: Path) -> None:
    (tmp_path / ".enclave.toml").write_text(
        "[ollama]\nidle_timeout = 7\n[embedding]\ntimeout = 9.5\n"
    )
    env = {"XDG_CONFIG_HOME": "/nonexistent", "ENCLAVE_EMBEDDING_QUERY_TIMEOUT": "0.25"}
    config, problems = load_config(tmp_path, {"ollama": {"idleTimeout": 8}}, env=env)
    assert not problems
    assert config.ollama.idle_timeout == 8.0  # the override wins over .enclave.toml
    assert config.embedding.timeout == 9.5 and config.embedding.query_timeout == 0.25
    defaults = Config()
    assert (defaults.ollama.idle_timeout, defaults.ollama.total_timeout) == (30.0, 600.0)
