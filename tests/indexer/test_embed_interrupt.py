"""Ctrl-C while embedding keeps every finished batch: the next run embeds only the rest, and the
result equals an uninterrupted build. The embedding server is the test model server, slowed down
(every /api/embed waits before answering, as a CPU does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from enclave.config import Config, EmbeddingConfig, OllamaConfig
from enclave.indexer.api import open_index
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

ENCLAVE = Path(sys.executable).with_name("enclave")
FILES = {
    f"pkg/mod_{i:02d}.py": f"def helper_{i}(value):\n    return value * {i} + {i * i}\n\n\n"
    f"class Thing{i}:\n    def run(self):\n        return helper_{i}({i})\n"
    for i in range(12)
}


def _embedded_texts(server: OllamaTestServer) -> list[str]:
    texts: list[str] = []
    for path, body in list(server.state.requests):
        if path == "/api/embed" and isinstance(body.get("input"), list):
            texts += [str(t) for t in body["input"]]
    return texts


def _run(root: Path, server: OllamaTestServer, xdg: Path) -> subprocess.Popen[str]:
    settings = {
        "ollama": {"host": server.url},
        "embedding": {"provider": "ollama", "model": "nomic-embed-text", "batchSize": 4},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
    env["XDG_CONFIG_HOME"] = str(xdg)
    return subprocess.Popen(
        [str(ENCLAVE), "index", str(root), "--settings", json.dumps(settings)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # a job started from a script may inherit SIGINT ignored: Ctrl-C must reach Python
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def test_ctrl_c_while_embedding_keeps_finished_batches(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    ollama_server.state.requests.clear()
    ollama_server.set_fault("hang-before-headers", endpoint="/api/embed", delay=0.4)
    config = Config(
        embedding=EmbeddingConfig(provider="ollama", model="nomic-embed-text", batch_size=4),
        ollama=OllamaConfig(host=ollama_server.url),
    )
    try:
        first = _run(root, ollama_server, tmp_path / "xdg")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until two batches are stored (the index says so)
            if first.poll() is not None:
                break
            status = open_index(root, config).status()
            if (
                status.exists
                and status.semantic
                and 0 < status.vectors_missing <= status.chunks - 8
            ):
                break
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        ollama_server.clear_fault()
    assert first.returncode == 130, err
    assert "interrupted (what was finished is kept)" in err and "Traceback" not in err
    status = open_index(root, config).status()
    assert status.healthy and status.partial and status.semantic  # works on what is embedded
    assert status.embedding_dim > 0 and status.vectors_missing > 0  # and says what is missing
    kept = status.chunks - status.vectors_missing
    assert kept >= 8

    ollama_server.state.requests.clear()
    second = _run(root, ollama_server, tmp_path / "xdg")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    sent_again = [t for t in _embedded_texts(ollama_server) if not t.endswith("dimension probe")]
    # only the rest: the batches finished before Ctrl-C were not sent again
    assert len(sent_again) == status.vectors_missing, (len(sent_again), status.chunks, kept)
    done = open_index(root, config).status()
    assert done.healthy and not done.partial and done.semantic and done.vectors_missing == 0

    fresh = make_repo(tmp_path / "fresh", FILES)
    open_index(fresh, config).update()
    clean = open_index(fresh, config)
    resumed = open_index(root, config)
    assert (resumed.status().chunks, resumed.status().symbols) == (
        clean.status().chunks,
        clean.status().symbols,
    )
    for query in ("helper value", "Thing run"):
        got = [(h.path, h.start_line) for h in resumed.search(query, k=5, mode="semantic").hits]
        want = [(h.path, h.start_line) for h in clean.search(query, k=5, mode="semantic").hits]
        assert got == want, query
