"""The command's side of the local socket: a dead, hung, lying or oversized server is a reason to
read the index here, never an error or a wait past the timeout; the fingerprint follows exactly
the settings that shape each answer."""

from __future__ import annotations

import dataclasses
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enclave.config import Config
from enclave.server import local_socket


@pytest.fixture
def path() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="enc-ls-"))  # short: sun_path holds 108 bytes
    yield folder / "s.sock"


def serve_once(path: Path, answer: Callable[[socket.socket], object]) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def run() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                while connection.recv(65536):  # the request, to its end
                    pass
                answer(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_no_server_and_a_dead_one_answer_at_once(path: Path) -> None:
    assert local_socket.ask(path, b"{}\n") == (None, "no language server serves this folder")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a server that was killed
    started = time.monotonic()
    result, why = local_socket.ask(path, b"{}\n")
    assert result is None and "socket failed" in why
    assert time.monotonic() - started < 1


def test_a_hung_server_is_given_up_after_the_timeout(path: Path) -> None:
    release = threading.Event()
    serve_once(path, lambda connection: release.wait(10))
    started = time.monotonic()
    result, why = local_socket.ask(path, b"{}\n", timeout=0.3)
    release.set()
    assert result is None and "did not answer within 0.3 s" in why
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'{"something": "else"}', "neither a result nor a reason"),
        (b'{"fallback": "busy"}', "did not answer: busy"),
        (b"[" * (local_socket.MAX_REPLY + 1), "over"),
    ],
)
def test_a_reply_that_is_no_answer_is_a_reason(path: Path, reply: bytes, reason: str) -> None:
    serve_once(path, lambda connection: connection.sendall(reply))
    result, why = local_socket.ask(path, b"{}\n")
    assert result is None and reason in why


def test_an_answer_is_returned_as_sent(path: Path) -> None:
    serve_once(path, lambda connection: connection.sendall(b'{"result": {"chunks": 3}}\n'))
    assert local_socket.ask(path, b"{}\n") == ({"chunks": 3}, "")


def test_the_fingerprint_follows_the_settings_of_each_answer(tmp_path: Path) -> None:
    base = Config()
    chat = dataclasses.replace(base, chat=dataclasses.replace(base.chat, max_tokens=7))
    completion = dataclasses.replace(
        base, completion=dataclasses.replace(base.completion, context_tokens=99)
    )
    db = dataclasses.replace(base, index=dataclasses.replace(base.index, db=str(tmp_path)))
    for method in local_socket.METHODS:  # chat settings shape none of them
        assert local_socket.fingerprint(chat, method) == local_socket.fingerprint(base, method)
        assert local_socket.fingerprint(db, method) != local_socket.fingerprint(base, method)
    fp = local_socket.fingerprint
    assert fp(completion, "status") == fp(base, "status")
    assert fp(completion, "context") != fp(base, "context")


def test_a_request_is_refused_unless_it_is_this_servers_to_answer(tmp_path: Path) -> None:
    config = Config()
    request = local_socket.request_for("status", tmp_path, config, "1.0")
    message = json.loads(request)
    assert local_socket.refusal(message, tmp_path, config, "1.0") == ""
    assert "Enclave 1.0, the server 2.0" in local_socket.refusal(message, tmp_path, config, "2.0")
    assert "another folder" in local_socket.refusal(message, tmp_path / "x", config, "1.0")
    other = dataclasses.replace(config, index=dataclasses.replace(config.index, db="/elsewhere"))
    assert "not the server's" in local_socket.refusal(message, tmp_path, other, "1.0")
    assert "params" in local_socket.refusal({**message, "params": []}, tmp_path, config, "1.0")
