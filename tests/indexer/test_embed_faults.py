"""A hung or broken embedding server never holds up search or indexing beyond its timeouts.

Search embeds its query with ``embedding.query_timeout`` (default 1 s) and falls back to lexical
results with the reason; indexing embeds batches with ``embedding.timeout`` and finishes without
vectors, saying why. Against the test Ollama server's fault modes on /api/embed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.indexer.api import open_index
from enclave.indexer.embed import EmbeddingUnavailable
from enclave.indexer.embed_served import OllamaEmbedder
from enclave.server.cli.main import main as enclave_main
from tests.support.meaning import MEANING
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import commit_all, make_repo, write_files

FILES = {path: MEANING[path] for path in ("text/slug.py", "db/pool.py")}
QUERY_TIMEOUT = 1.0  # the default of embedding.query_timeout, which these tests rely on
SLACK = 1.5  # how much later than its timeout a fallback may come on a loaded 2-core machine
HANG = 30.0  # how long the server hangs: far longer than any timeout here
EARLY = 0.05
FAULTS = ["hang-before-headers", "hang-after-first-token", "error-500", "malformed-body"]


def config(server: OllamaTestServer, **embedding: object) -> Config:
    values: dict[str, dict[str, object]] = {
        "ollama": {"host": server.url, "connect_timeout": 2.0},
        "embedding": {"provider": "ollama", "model": "nomic-embed-text", **embedding},
    }
    loaded, problems = load_config(None, values, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return loaded


@pytest.fixture
def indexed(tmp_path: Path, ollama_server: OllamaTestServer) -> Path:
    """A repository indexed with vectors from the (healthy) test server."""
    root = make_repo(tmp_path / "repo", FILES)
    summary = open_index(root, config(ollama_server)).update()
    assert summary.semantic and summary.embedded > 0, summary.semantic_reason
    return root


def test_the_defaults() -> None:
    assert Config().embedding.query_timeout == QUERY_TIMEOUT
    assert Config().embedding.timeout == 60.0


@pytest.mark.parametrize("fresh", [True, False], ids=["new-index", "after-update"])
@pytest.mark.parametrize("fault", FAULTS)
def test_search_falls_back_to_lexical_within_the_query_timeout(
    indexed: Path, ollama_server: OllamaTestServer, fault: str, fresh: bool
) -> None:
    index = open_index(indexed, config(ollama_server))
    if not fresh:  # the embedder of the update is reused for the query
        index.update()
    ollama_server.set_fault(fault, delay=HANG, endpoint="embed")
    started = time.monotonic()
    result = index.search("slugify", k=3)
    elapsed = time.monotonic() - started
    assert result.hits and result.hits[0].path == "text/slug.py"
    off = result.semantic_off
    assert off is not None
    assert off.message.startswith("semantic search is off for this query: ")
    assert off.fix and "\n" not in off.message
    if fault.startswith("hang"):
        assert QUERY_TIMEOUT - EARLY <= elapsed < QUERY_TIMEOUT + SLACK, elapsed
        assert "within 1 s (embedding.query_timeout)" in off.message
        assert "raise embedding.query_timeout" in off.fix
        (hang,) = ollama_server.state.hangs
        for _ in range(100):
            if hang.ended_at:
                break
            time.sleep(0.01)
        assert hang.client_gone, "the request was not closed"
    else:
        assert elapsed < SLACK, elapsed
        words = "HTTP 500" if fault == "error-500" else "not Ollama's embedding JSON"
        assert words in off.message
    ollama_server.clear_fault()
    again = index.search("slugify", k=3)
    assert again.semantic_off is None  # the next query is semantic again


def test_enclave_search_prints_lexical_results_and_the_note(
    indexed: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    for name in list(os.environ):
        if name.startswith("ENCLAVE_") or name == "OLLAMA_HOST":
            monkeypatch.delenv(name)
    settings = {"ollama": {"host": ollama_server.url}, "embedding": {"model": "nomic-embed-text"}}
    ollama_server.set_fault("hang-before-headers", delay=HANG, endpoint="embed")
    started = time.monotonic()
    code = enclave_main(
        ["search", "--root", str(indexed), "--settings", json.dumps(settings), "slugify"]
    )
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 0
    assert "text/slug.py" in out
    assert "semantic search is off for this query" in err and "lexical results only" in err
    assert "Traceback" not in err
    assert elapsed < QUERY_TIMEOUT + 2 * SLACK + 3.0, elapsed  # process-free, but opens the index


def test_a_one_file_update_against_a_hung_server_finishes_lexical_with_the_reason(
    indexed: Path, ollama_server: OllamaTestServer
) -> None:
    timeout = 1.5
    index = open_index(indexed, config(ollama_server, timeout=timeout))
    write_files(indexed, {"text/slug.py": FILES["text/slug.py"] + "\n\ndef unslug(s):\n    pass\n"})
    commit_all(indexed)
    ollama_server.set_fault("hang-before-headers", delay=HANG, endpoint="embed")
    started = time.monotonic()
    summary = index.update()
    elapsed = time.monotonic() - started
    assert summary.files_indexed == 1
    assert not summary.semantic
    assert f"did not embed a batch of 1 chunks within {timeout:g} s" in summary.semantic_reason
    assert "(embedding.timeout)" in summary.semantic_reason
    assert "raise embedding.timeout" in summary.semantic_fix
    (hang,) = ollama_server.state.hangs  # one request, given up after the batch timeout
    for _ in range(100):
        if hang.ended_at:
            break
        time.sleep(0.01)
    assert hang.client_gone
    assert timeout - EARLY <= hang.ended_at - hang.started_at < timeout + SLACK
    assert elapsed < HANG / 2, elapsed  # the update did not wait for the server
    # Lexical search works, and says why semantic search is off.
    ollama_server.clear_fault()
    result = index.search("unslug", k=1)
    assert result.hits[0].path == "text/slug.py"


@pytest.mark.parametrize("fault", ["malformed-body", "malformed-chunk", "error-500"])
def test_indexing_against_a_broken_server_builds_lexical_and_says_why(
    tmp_path: Path, ollama_server: OllamaTestServer, fault: str
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    ollama_server.set_fault(fault, endpoint="embed")
    summary = open_index(root, config(ollama_server)).update()
    assert not summary.semantic and summary.files_indexed == len(FILES)
    if fault == "error-500":
        assert "HTTP 500" in summary.semantic_reason
    else:
        assert "not Ollama's embedding JSON" in summary.semantic_reason
        assert "ollama.host" in summary.semantic_fix
    assert "\n" not in summary.semantic_reason


def test_queries_and_batches_have_their_own_timeouts(ollama_server: OllamaTestServer) -> None:
    embedder = OllamaEmbedder(config(ollama_server, timeout=1.2, query_timeout=0.3))
    ollama_server.set_fault("hang-before-headers", delay=HANG, endpoint="embed")
    for query, wait, setting in ((True, 0.3, "query_timeout"), (False, 1.2, "timeout")):
        started = time.monotonic()
        with pytest.raises(EmbeddingUnavailable) as caught:
            embedder.embed(["where is the connection pool"], query=query)
        elapsed = time.monotonic() - started
        assert wait - EARLY <= elapsed < wait + SLACK, (query, elapsed)
        assert f"(embedding.{setting})" in caught.value.message
    ollama_server.clear_fault()
    assert len(embedder.embed(["back again"], query=True)) == 1
