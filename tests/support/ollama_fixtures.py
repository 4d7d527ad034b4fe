"""Pytest fixtures for the test Ollama server (register with ``pytest_plugins`` or import *).

- ``ollama_server``: one :class:`OllamaTestServer` per test session on a free loopback port,
  reset to a healthy state (no fault, default models, version) before each test that uses it.
- ``ollama_config``: a :class:`Config` pointing at it, with small token limits so tests are fast.
- ``model_client``: a :class:`ModelClient` on that config, closed after the test.
- ``recorder`` and ``redirector``: a server that records what reaches it, and a proxy in front of
  the test server that redirects (307, then 308) the requests that carry a prompt or a chunk's
  text to the recorder (tests.support.loopback_servers).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.server.model.client import ModelClient
from tests.support.loopback_servers import Recorder, Redirector
from tests.support.ollama_server import OllamaTestServer

FAST: dict[str, dict[str, object]] = {
    "ollama": {
        "chat_model": "deepseek-r1",
        "completion_model": "qwen2.5-coder:1.5b",
        "connect_timeout": 2.0,
        "first_token_timeout": 20.0,
        "total_timeout": 60.0,
    },
    "completion": {"max_tokens": 16, "num_ctx": 1024, "context_tokens": 200},
    "chat": {"max_tokens": 24, "num_ctx": 2048, "context_tokens": 600},
    "embedding": {"model": "nomic-embed-text"},
}


@pytest.fixture(scope="session")
def _ollama_server_session() -> Iterator[OllamaTestServer]:
    server = OllamaTestServer(0).start()
    yield server
    server.stop()


@pytest.fixture
def ollama_server(_ollama_server_session: OllamaTestServer) -> Iterator[OllamaTestServer]:
    server = _ollama_server_session
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder().start()
    yield server
    server.stop()


@pytest.fixture(params=[307, 308])
def redirector(
    request: pytest.FixtureRequest, ollama_server: OllamaTestServer, recorder: Recorder
) -> Iterator[Redirector]:
    server = Redirector(ollama_server.url, recorder.url, request.param).start()
    yield server
    server.stop()


def config_for(server: OllamaTestServer, **sections: dict[str, object]) -> Config:
    """A config aimed at ``server`` with the fast test limits, plus ``sections`` overrides."""
    data: dict[str, dict[str, object]] = {k: dict(v) for k, v in FAST.items()}
    data["ollama"]["host"] = server.url
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config, problems = load_config(None, data, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return config


@pytest.fixture
def ollama_config(ollama_server: OllamaTestServer) -> Config:
    return config_for(ollama_server)


@pytest.fixture
async def model_client(ollama_config: Config) -> AsyncIterator[ModelClient]:
    client = ModelClient(ollama_config)
    yield client
    await client.aclose()


__all__ = [
    "_ollama_server_session",
    "config_for",
    "model_client",
    "ollama_config",
    "ollama_server",
]


def env_for(server: OllamaTestServer, xdg: Path) -> dict[str, str]:
    """The environment of a CLI run aimed at ``server`` (no stray ENCLAVE_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(
        {
            "OLLAMA_HOST": server.url,
            "XDG_CONFIG_HOME": str(xdg),
            "ENCLAVE_OLLAMA_CHAT_MODEL": "deepseek-r1",
            "ENCLAVE_EMBEDDING_MODEL": "nomic-embed-text",
            "ENCLAVE_CHAT_MAX_TOKENS": "24",
            "ENCLAVE_CHAT_THINK_TOKENS": "16",
        }
    )
    return env


def use_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in ``env`` (``env_for``'s): no stray ENCLAVE_* setting of the calling shell stays."""
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
