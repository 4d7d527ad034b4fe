"""Embeddings through a fleet (``ollama.hosts``) fail over as chat does: a host that hangs after
sending its headers costs one ``embedding.timeout`` and is then left alone (its back-off counted
from when it failed), a host that answers garbage is skipped, and the healthy host embeds.

The healthy host is the session test server; the bad ones are real loopback servers
(``tests.support.loopback_servers``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.indexer.api import open_index
from enclave.indexer.embed import EmbeddingUnavailable, make_embedder
from enclave.indexer.embed_served import OllamaEmbedder
from enclave.modelservers import DOWN_FIRST
from tests.support.forward_proxy import ForwardProxy
from tests.support.loopback_servers import Garbage, Hanging
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

# Longer than the 10 s a failed server used to be avoided for, counted from when the request was
# SENT: the hung request itself outlasted it, so the next batch went to the hung server again
# (the reported case: 60 s per batch, a one-file index not done after 120 s).
TIMEOUT = 10.5


def fleet(*urls: str, **embedding: object) -> Config:
    values: dict[str, dict[str, object]] = {
        "ollama": {"hosts": list(urls), "connect_timeout": 2.0},
        "embedding": {"provider": "ollama", "model": "nomic-embed-text", **embedding},
    }
    loaded, problems = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return loaded


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging().start()
    yield server
    server.stop()


@pytest.fixture
def garbage() -> Iterator[Garbage]:
    server = Garbage().start()
    yield server
    server.stop()


def test_a_one_file_index_with_a_host_that_hangs_after_headers_costs_one_timeout(
    tmp_path: Path, hanging: Hanging, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
    config = fleet(hanging.url, ollama_server.url, timeout=TIMEOUT)
    began = time.monotonic()
    summary = open_index(root, config).update()
    took = time.monotonic() - began
    assert summary.semantic and summary.embedded >= 1, summary.semantic_reason
    # One wait on the hung host (the first request), then every batch went to the healthy one;
    # once its back-off was over it got a health probe with a short wait, never chunk text.
    seen = [r.path for r in hanging.seen()]
    assert seen.count("/api/embed") == 1 and set(seen) <= {"/api/embed", "/api/tags"}
    assert took < 3 * TIMEOUT, f"{took:.1f} s"  # the reported case: not done after 120 s


def test_a_failed_host_is_left_alone_for_its_back_off_then_probed_before_a_batch(
    garbage: Garbage, ollama_server: OllamaTestServer
) -> None:
    """As for chat (a garbage host is skipped): an answer that is not the API's JSON is a
    failure of that host; it is left alone, then probed with a short request before a batch."""
    embedder = OllamaEmbedder(fleet(garbage.url, ollama_server.url))
    now = [1000.0]  # the fleet's clock, still while the (slow, shared) test server embeds
    embedder.fleet.clock = lambda: now[0]
    assert len(embedder.embed(["def add(a, b): return a + b"])) == 1
    bad, good = embedder.fleet.hosts
    assert embedder.fleet.state(bad) == "down" and "JSONDecodeError" in bad.last_error
    assert bad.down_until == now[0] + DOWN_FIRST and embedder.fleet.state(good) == "up"
    for _ in range(3):  # in its back-off: not asked again
        assert len(embedder.embed(["x = 1"])) == 1
    assert len(garbage.seen()) == 1
    now[0] += DOWN_FIRST  # the back-off is over: a short probe first, not a batch
    assert len(embedder.embed(["y = 2"])) == 1
    assert [r.path for r in garbage.seen()] == ["/api/embed", "/api/tags"]
    assert embedder.fleet.state(bad) == "down" and bad.failures == 2


def test_a_host_answering_garbage_is_skipped_while_indexing(
    tmp_path: Path, garbage: Garbage, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
    summary = open_index(root, fleet(garbage.url, ollama_server.url)).update()
    assert summary.semantic and summary.embedded >= 1, summary.semantic_reason
    seen = [r.path for r in garbage.seen()]
    assert seen.count("/api/embed") == 1 and set(seen) <= {"/api/embed", "/api/tags"}


def test_when_every_host_fails_the_error_is_one_line(hanging: Hanging, garbage: Garbage) -> None:
    with pytest.raises(EmbeddingUnavailable) as caught:
        make_embedder(fleet(garbage.url, hanging.url, timeout=1.0))
    assert "\n" not in str(caught.value)
    assert "did not embed a batch of 1 chunks within 1 s (embedding.timeout)" in str(caught.value)


def test_a_busy_host_passes_the_batch_on_without_being_marked_down(
    ollama_server: OllamaTestServer,
) -> None:
    """As for chat: 503 says "busy", not "down" (one fault, one decision for both clients)."""
    busy = ForwardProxy(ollama_server.url).start()
    try:
        busy.fail_with(503)
        embedder = OllamaEmbedder(fleet(busy.url, ollama_server.url))
        assert len(embedder.embed(["def add(a, b): return a + b"])) == 1
        assert busy.paths("/api/embed")
        assert [embedder.fleet.state(h) for h in embedder.fleet.hosts] == ["up", "up"]
    finally:
        busy.stop()


def test_a_runner_that_crashes_while_embedding_moves_the_batch_to_the_next_host(
    ollama_server: OllamaTestServer,
) -> None:
    """Current Ollama answers a crashed embedding runner with 400 (server/routes.go,
    EmbedHandler), which once read as "the model cannot make embeddings" and stopped the
    batch. A second front end on the same test model plays the host whose runner crashed."""
    crashing = OllamaTestServer().start()
    try:
        crashing.set_fault("runner-crash", endpoint="/api/embed")
        embedder = OllamaEmbedder(fleet(crashing.url, ollama_server.url))
        vectors = embedder.embed(["def add(a, b): return a + b"])
        assert len(vectors) == 1 and len(vectors[0]) > 0
        assert [p for p, _ in crashing.state.requests] == ["/api/embed"]
        # alone, the host's failure names the runner and the log, not the model
        alone = OllamaEmbedder(fleet(crashing.url))
        with pytest.raises(EmbeddingUnavailable) as caught:
            alone.embed(["def add(a, b): return a + b"])
        assert "runner for 'nomic-embed-text' failed" in caught.value.message
        assert "cannot make embeddings" not in str(caught.value)
    finally:
        crashing.stop()
