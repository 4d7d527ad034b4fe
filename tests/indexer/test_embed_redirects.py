"""Chunk text is never sent where a redirect points: an embedding server answering 307/308 gets
a one-line refusal, and the index is still built (lexical), saying why semantic search is off.

A redirecting proxy in front of the session test server answers ``/api/embed`` and
``/v1/embeddings`` with a redirect to ANOTHER loopback server that records every request: nothing
may arrive there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.indexer.api import open_index
from enclave.indexer.embed import EmbeddingUnavailable, make_embedder
from tests.support.loopback_servers import Recorder, Redirector
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

SECRET = "def rotate_the_launch_codes(): return 'chunk text that must stay here'\n"


def config_at(url: str, provider: str = "ollama") -> Config:
    values: dict[str, dict[str, object]] = {
        "ollama": {"host": url, "connect_timeout": 2.0},
        "embedding": {"provider": provider, "model": "nomic-embed-text", "timeout": 20.0},
    }
    loaded, problems = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return loaded


def assert_refused(message: str, redirector: Redirector, recorder: Recorder) -> None:
    assert redirector.redirected, "the redirect never came: the test proves nothing"
    assert recorder.seen() == [], "chunk text followed the redirect"
    assert "\n" not in message
    assert f"redirected the request to {recorder.url}" in message
    assert "did not follow" in message and redirector.url in message


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_embeddings_are_not_sent_where_a_redirect_points(
    provider: str, redirector: Redirector, recorder: Recorder
) -> None:
    with pytest.raises(EmbeddingUnavailable) as caught:
        make_embedder(config_at(redirector.url, provider))
    assert_refused(caught.value.message, redirector, recorder)
    assert "point ollama.host at the final address" in caught.value.fix


def test_enclave_index_builds_lexical_and_sends_no_chunk_there(
    tmp_path: Path, redirector: Redirector, recorder: Recorder
) -> None:
    root = make_repo(tmp_path / "repo", {"launch.py": SECRET})
    summary = open_index(root, config_at(redirector.url)).update()
    assert summary.chunks_written >= 1 and not summary.semantic
    assert_refused(summary.semantic_reason.splitlines()[0], redirector, recorder)


def test_a_redirect_to_a_host_not_allowed_says_to_allow_it(
    ollama_server: OllamaTestServer, recorder: Recorder
) -> None:
    """The fix names the allow-list when the target is not allowed (here: not loopback)."""
    away = Redirector(ollama_server.url, "http://10.255.255.1:11434", 307).start()
    try:
        with pytest.raises(EmbeddingUnavailable) as caught:
            make_embedder(config_at(away.url))
    finally:
        away.stop()
    assert "redirected the request to http://10.255.255.1:11434/api/embed" in caught.value.message
    assert "add '10.255.255.1' to trust.allowed_hosts" in caught.value.fix
