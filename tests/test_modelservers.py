"""One path to the model servers (enclave.modelservers): a host that failed for the model client
is down for the embedders of the same process, and the reverse; faults are told apart once.

The healthy host is the session test server; the failing one a real loopback server answering
every request with an HTML page (``tests.support.loopback_servers.Garbage``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from enclave.config import Config, load_config
from enclave.hosts import RedirectRefused
from enclave.indexer.embed_served import OllamaEmbedder
from enclave.modelservers import failover, fault_of
from enclave.server.customize import create, plan
from enclave.server.model.client import ModelClient
from tests.support.loopback_servers import Garbage, Recorder
from tests.support.ollama_fixtures import config_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo


@pytest.fixture
def garbage() -> Iterator[Garbage]:
    server = Garbage().start()
    yield server
    server.stop()


def frozen_clock() -> float:
    """The fleets' clock, still: a failed host stays in its back-off for the whole test."""
    return 1000.0


def fleet(garbage: Garbage, ollama_server: OllamaTestServer) -> Config:
    return config_for(
        ollama_server,
        ollama={"hosts": [garbage.url, ollama_server.url]},
        embedding={"provider": "ollama", "model": "nomic-embed-text"},
    )


async def _ask(client: ModelClient) -> bool:
    """What a completion asks first: its model's capabilities (``/api/show``), from the host
    that would answer."""
    info = await client.model_info(client.config.ollama.effective_completion_model)
    return "insert" in info.capabilities


async def test_a_host_down_for_the_model_client_is_skipped_by_the_next_embedding(
    garbage: Garbage, ollama_server: OllamaTestServer
) -> None:
    config = fleet(garbage, ollama_server)
    client = ModelClient(config)
    client.fleet.clock = frozen_clock  # still while the (slow, shared) test model answers
    try:
        assert await _ask(client)  # the first host answered garbage: the second one answered
    finally:
        await client.aclose()
    assert garbage.seen() and client.host_states()[0].state == "down"
    asked = len(garbage.seen())
    embedder = OllamaEmbedder(config)  # another client of the same servers, in this process
    embedder.fleet.clock = frozen_clock
    assert len(embedder.embed(["def add(a, b): return a + b"])) == 1
    assert len(garbage.seen()) == asked  # the down host got no chunk text, not even a probe
    assert embedder.fleet.state(embedder.fleet.hosts[0]) == "down"


async def test_a_host_down_for_the_embedders_is_skipped_by_the_next_model_request(
    garbage: Garbage, ollama_server: OllamaTestServer
) -> None:
    config = fleet(garbage, ollama_server)
    embedder = OllamaEmbedder(config)
    embedder.fleet.clock = frozen_clock
    assert len(embedder.embed(["x = 1"])) == 1
    assert [r.path for r in garbage.seen()] == ["/api/embed"]
    client = ModelClient(config)
    client.fleet.clock = frozen_clock
    try:
        assert await _ask(client)
        assert client.host_states()[0].state == "down"
    finally:
        await client.aclose()
    assert [r.path for r in garbage.seen()] == ["/api/embed"]  # no prompt went there


def _status(code: int, body: str = "{}") -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/embeddings")
    response = httpx.Response(code, text=body, request=request)
    return httpx.HTTPStatusError("status", request=request, response=response)


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        (ConnectionError("refused"), "down"),
        (httpx.ReadTimeout("silent"), "down"),
        (RedirectRefused("redirected", "point it at the final address"), "down"),
        (ValueError("Expecting value"), "down"),
        (ollama.ResponseError("boom", 500), "down"),
        (_status(502), "down"),
        (ollama.ResponseError("server busy", 503), "busy"),
        (_status(503), "busy"),
        (ollama.ResponseError("model 'x' not found", 404), "missing"),
        (_status(404), "missing"),
        (ollama.ResponseError("invalid input", 400), ""),
        (_status(401), ""),
        # current Ollama answers a runner that failed while embedding with 400 (EmbedHandler)
        (
            ollama.ResponseError(
                'do embedding request: Post "http://127.0.0.1:5/v1/embeddings": EOF', 400
            ),
            "down",
        ),
        (ollama.ResponseError("the input length exceeds the context length", 400), ""),
    ],
)
def test_both_apis_faults_mean_the_same_for_a_fleet(exc: BaseException, decision: str) -> None:
    assert failover(exc) == decision


def test_the_openai_apis_error_message_is_read_from_its_structured_field() -> None:
    fault = fault_of(_status(400, '{"error": {"message": "input too long", "type": "x"}}'))
    assert (fault.kind, fault.status, fault.error) == ("status", 400, "input too long")


@pytest.mark.parametrize(
    ("error", "status", "not_found"),
    [
        ("model 'deepseek-r1' not found", 404, True),
        ("model 'deepseek-r1' not found", 500, True),  # Ollama's words behind a proxy
        ("blob sha256:0a1b not found", 400, False),  # "not found", but not the model
        ('pull model manifest: file does not exist; "not found"', 500, False),
    ],
)
def test_a_missing_model_is_told_by_status_then_by_ollamas_exact_words(
    error: str, status: int, not_found: bool
) -> None:
    assert fault_of(ollama.ResponseError(error, status)).not_found is not_found


@pytest.mark.parametrize(
    "error",
    [
        "timed out waiting for llama-server to start - ",  # Ollama >= 0.30 (llm/llama_server.go)
        "timed out waiting for llama runner to start - progress 0.00 - ",  # before 0.30
    ],
)
def test_a_load_timeout_is_recognised_in_the_words_of_every_version(error: str) -> None:
    assert fault_of(ollama.ResponseError(error, 500)).load_timeout


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder().start()
    yield server
    server.stop()


async def test_ollama_api_key_reaches_no_server_unless_the_headers_name_it(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official client sends ``Authorization: Bearer $OLLAMA_API_KEY`` to any host when the
    variable is set; the model client, the embedder and customize must not."""
    monkeypatch.setenv("OLLAMA_API_KEY", "sk-meant-for-ollama-com")
    ollama_section: dict[str, object] = {
        "host": recorder.url,
        "connect_timeout": 2.0,
        "first_token_timeout": 5.0,
    }
    values: dict[str, dict[str, object]] = {
        "ollama": ollama_section,
        "embedding": {"provider": "ollama", "model": "nomic-embed-text"},
    }
    config, problems = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    client = ModelClient(config)
    with contextlib.suppress(Exception):  # the recorder's answers are not Ollama's: no matter
        await client.version()
    await client.aclose()
    with contextlib.suppress(Exception):
        OllamaEmbedder(config).embed(["def add(a, b): return a + b"])
    root = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    with contextlib.suppress(Exception):
        create(config, plan(root, config, base="smollm2:135m"), lambda status: None)
    seen = recorder.seen()
    assert {r.path for r in seen} >= {"/api/version", "/api/embed", "/api/show"}
    assert [r.path for r in seen if "authorization" in r.headers] == []
    # where the user's headers put it, it goes (theirs, not the environment's)
    ollama_section["headers"] = {"Authorization": "Bearer team-proxy-token"}
    config, _ = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    client = ModelClient(config)
    with contextlib.suppress(Exception):
        await client.version()
    await client.aclose()
    assert recorder.seen()[-1].headers["authorization"] == "Bearer team-proxy-token"
