"""The language server with a team's shared index (index.shared on moto's S3 server): ready in
seconds, workspace symbols from the shared index and the local overlay (an uncommitted edit, an
untracked file, a deleted file), and not one object of the bucket written."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from enclave.config import Config, EmbeddingConfig, IndexConfig
from enclave.indexer.api import open_index
from tests.server.lsp.conftest import Session, _server_env, attach_session, make_client, options_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo, write_files
from tests.support.s3 import MotoServer, S3Store
from tests.support.shapes import FILES

# The server's environment is fixed when the fixture is declared: the store's port is chosen now.
MOTO = MotoServer()
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": MOTO.endpoint,
    "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="enclave-lsp-cache-"),
}
BUCKET = "team-shapes"
URI = f"s3://{BUCKET}/shapes"
EDITED = '''"""Plane geometry helpers, rewritten on this laptop."""


def rectangle_diagonal(width: float, height: float) -> float:
    return (width**2 + height**2) ** 0.5
'''


@pytest.fixture(scope="module")
def store() -> Iterator[S3Store]:
    MOTO.start()
    try:
        found = S3Store(MOTO.endpoint, BUCKET, AWS)
        found.client().create_bucket(Bucket=BUCKET)
        yield found
    finally:
        MOTO.stop()


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-P", "-m", "enclave.server.lsp"],
        server_env={**_server_env(), **AWS},
        client_factory=make_client,
    ),
)
async def shared_client(
    lsp_client: LanguageClient, tmp_path: Path, store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    root = make_repo(tmp_path / "repo", FILES)
    # the CI job indexes this commit into the bucket
    config = Config(index=IndexConfig(db=URI), embedding=EmbeddingConfig(provider="none"))
    open_index(root, config).update()
    attach_session(lsp_client, "visual-studio-code", root)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def lsp(shared_client: LanguageClient) -> Session:
    session: Session = shared_client.enclave_session  # type: ignore[attr-defined]
    return session


async def _symbols(lsp: Session, query: str) -> list[tuple[str, str]]:
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query=query))
    return [(s.name, s.location.uri.rsplit("/repo/", 1)[-1]) for s in found or []]


async def test_the_server_answers_from_the_shared_index_and_the_overlay(
    lsp: Session, ollama_server: OllamaTestServer, store: S3Store
) -> None:
    root = lsp.root
    write_files(
        root, {"shapes/geometry.py": EDITED, "app/units.py": "def to_metres(x):\n    return x\n"}
    )
    (root / "app/report.py").unlink()
    before = store.objects()

    began = time.monotonic()
    await lsp.start(
        options_for(ollama_server, index={"shared": URI}, embedding={"provider": "none"})
    )
    ready = await lsp.wait_status(lambda s: s["state"] in ("ready", "degraded", "error"))
    took = time.monotonic() - began
    assert ready["state"] == "ready", ready
    assert took < 30, took  # two small files to index locally; the shared index is only read

    assert await _symbols(lsp, "rectangle_diagonal") == [
        ("rectangle_diagonal", "shapes/geometry.py")
    ]
    assert await _symbols(lsp, "rectangle_perimeter") == []  # the edit shadows the shared rows
    assert await _symbols(lsp, "describe") == []  # deleted here
    assert await _symbols(lsp, "to_metres") == [("to_metres", "app/units.py")]  # untracked
    assert store.objects() == before
    assert (root / ".enclave" / "files.lance").is_dir()  # the overlay lives in the working tree
