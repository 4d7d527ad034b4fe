"""llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``, the package's
``server`` extra): a model server nobody here wrote, for ``ollama.api = "openai"``.

It serves the tests' GGUF (SmolLM2-135M-Instruct) twice from one process, as its config file
allows: for chat and completions (``/v1/chat/completions``, ``/v1/completions`` with ``suffix``)
without an alias, so ``/v1/models`` lists the GGUF's path as its id, as llama.cpp's server does
without ``--alias`` (the tests name it by its file name, ``CHAT_MODEL``); and ``smollm2-embed``
for ``/v1/embeddings``. What it does differently from Ollama's ``/v1`` is what the tests are
for: no ``stream_options`` usage event, per-token embeddings from a model without pooling, a
path as the model id, any model name accepted, fields it does not know ignored.

``llama_cpp_server``: one per test session, started on a free loopback port on first use.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.llama_engine import gguf_path

CHAT_MODEL = gguf_path().name.removesuffix(".gguf")  # listed as the path: matched by file name
EMBED_MODEL = "smollm2-embed"
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(port: int) -> dict[str, object]:
    model = str(gguf_path())
    return {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": model, "n_ctx": 2048, "n_threads": 1,
             "chat_format": "chatml", "verbose": False},
            {"model": model, "model_alias": EMBED_MODEL, "n_ctx": 512, "n_threads": 1,
             "embedding": True, "verbose": False},
        ],
    }  # fmt: skip


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's URL (``http://127.0.0.1:PORT``); stopped when the session ends."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("llama-cpp-server")
    config = folder / "config.json"
    config.write_text(json.dumps(_config(port)))
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, folder / "server.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited at start:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:g} s")
