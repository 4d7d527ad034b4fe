"""`enclave status`, `search` and `context` asked of the editor's running language server over its
local socket: the same answers as reading the index, without importing LanceDB; anything the
server cannot answer exactly (other settings, a bad request) is read from the index instead."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from enclave.server import local_socket
from tests.server.lsp.conftest import Session, _server_env, attach_session, make_client, options_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo
from tests.support.shapes import FILES

# Fixed when the fixture is declared; short, so that a socket path fits in sun_path.
RUNTIME = tempfile.mkdtemp(prefix="enc-run-")
SERVED = "answered by the language server"
# Runs the CLI and says on stderr whether it imported LanceDB.
CLI = (
    "import sys; from enclave.server.cli import main; code = main(sys.argv[1:]);"
    " print('lancedb imported:', 'lancedb' in sys.modules, file=sys.stderr); sys.exit(code)"
)


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-P", "-m", "enclave.server.lsp"],
        server_env={**_server_env(), "XDG_RUNTIME_DIR": RUNTIME},
        client_factory=make_client,
    ),
)
async def socket_client(lsp_client: LanguageClient, tmp_path: Path) -> AsyncIterator[None]:
    root = make_repo(tmp_path / "repo", FILES)
    attach_session(lsp_client, "visual-studio-code", root)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def lsp(socket_client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("XDG_RUNTIME_DIR", RUNTIME)
    session: Session = socket_client.enclave_session  # type: ignore[attr-defined]
    return session


def enclave(root: Path, options: dict[str, Any], *args: str) -> tuple[Any, str]:
    """Run an `enclave` command as a new process in ``root``: (its JSON, its stderr)."""
    env = {**_server_env(), "XDG_RUNTIME_DIR": RUNTIME}
    command = [sys.executable, "-P", "-c", CLI, "-v", *args, "--json"]
    done = subprocess.run(
        [*command, "--settings", json.dumps(options)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), done.stderr


async def test_the_cli_asks_the_editors_server_and_gets_the_answer_it_would_compute(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    options = options_for(ollama_server)
    await lsp.start(options)
    await lsp.wait_settled()
    path = local_socket.socket_path(lsp.root)
    assert path is not None and path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    report = str(lsp.root / "app/report.py")
    commands = [
        ["status"],
        ["search", "perimeter of a rectangle", "--k", "5", "--text"],
        ["search", "Rectangle", "--mode", "lexical", "--language", "python"],
        ["context", report, "--line", "6", "--character", "4"],
    ]
    for command in commands:
        served, said = enclave(lsp.root, options, *command)
        assert SERVED in said and "lancedb imported: False" in said, (command, said)
        here, said_here = enclave(lsp.root, options, *command, "--no-server")
        assert SERVED not in said_here and "lancedb imported: True" in said_here
        assert served == here, command
    assert served["pieces"], "the context holds the imported definitions"


async def test_what_the_server_cannot_answer_exactly_is_read_from_the_index(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    path = local_socket.socket_path(lsp.root, create=True)
    assert path is not None
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # left by a server that was killed: nobody listens on it
    stale.close()
    options = options_for(ollama_server)
    await lsp.start(options)
    await lsp.wait_settled()

    # Other completion settings shape the context, not the status: only the status is served.
    other = options_for(ollama_server, completion={"contextTokens": 120})
    report = str(lsp.root / "app/report.py")
    context, said = enclave(lsp.root, other, "context", report, "--line", "6", "--character", "4")
    assert SERVED not in said and "are not the server's" in said
    assert (
        context["budget_tokens"]
        < enclave(lsp.root, options, "context", report, "--line", "6", "--character", "4")[0][
            "budget_tokens"
        ]
    )
    _, said = enclave(lsp.root, other, "status")
    assert SERVED in said
    # A file outside the folder: the command refuses it in its own words, as without a server.
    outside = Path(tempfile.mkdtemp()) / "x.py"
    outside.write_text("import os\n")
    done = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "enclave.server.cli",
            "context",
            str(outside),
            "--line",
            "1",
            "--character",
            "0",
        ],
        cwd=lsp.root,
        env={**_server_env(), "XDG_RUNTIME_DIR": RUNTIME},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "not inside a repository" in done.stderr

    # Whatever arrives on the socket gets a reason, never a crash, and the next request is served.
    def raw(payload: bytes) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(str(path))
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            reply = b"".join(iter(lambda: client.recv(65536), b""))
        answer: dict[str, Any] = json.loads(reply)
        return answer

    assert "not JSON" in raw(b"{nope\n")["fallback"]
    assert "over" in raw(b"x" * (local_socket.MAX_REQUEST + 10) + b"\n")["fallback"]
    assert "protocol" in raw(b'{"protocol": 99}\n')["fallback"]
    assert (
        "unknown method"
        in raw(json.dumps({"protocol": 1, "tool": _tool(), "method": "index"}).encode() + b"\n")[
            "fallback"
        ]
    )
    _, said = enclave(lsp.root, options, "status")
    assert SERVED in said


def _tool() -> str:
    from enclave import package_version

    return package_version()


def test_the_socket_folder_must_be_the_users_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="enc-rt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert local_socket.socket_path(tmp_path, create=True) is not None
    (runtime / "enclave").chmod(0o755)  # others may list it, or put a socket of theirs there
    assert local_socket.socket_path(tmp_path) is None
    (runtime / "enclave").rmdir()
    (runtime / "enclave").symlink_to(tmp_path)  # a link to a folder somebody else chose
    assert local_socket.socket_path(tmp_path) is None
    assert os.path.islink(runtime / "enclave")
