"""LSP framing and malformed messages, sent as raw bytes to the real server over stdio.

A broken header closes the connection (exit code 1, one log line) instead of leaving a server
that answers nothing and never exits; a body is never read past the size limit; a message that
does not fit its method is answered with an error and the server goes on.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENCLAVE = Path(sys.executable).with_name("enclave")


def frame(payload: Any) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Server:
    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
        env.update({"XDG_CONFIG_HOME": str(cwd / "xdg"), "OLLAMA_HOST": "http://127.0.0.1:9"})
        self.process = subprocess.Popen(
            [str(ENCLAVE), "lsp", "--stdio"], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._buffer = b""

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(self, msg_id: int, method: str, params: Any) -> None:
        self.send(frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}))

    def _read(self, timeout: float) -> bool:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self.process.stdout.fileno(), 65536)
        self._buffer += chunk
        return bool(chunk)

    def messages(self, timeout: float = 20.0) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    self._buffer = rest[length:]
                    yield json.loads(rest[:length])
                    continue
            if not self._read(max(0.0, deadline - time.monotonic())):
                return

    def response(self, msg_id: Any, timeout: float = 20.0) -> dict[str, Any]:
        for message in self.messages(timeout):
            if message.get("id") == msg_id and "method" not in message:
                return message
        raise AssertionError(f"no response to {msg_id!r}")

    def exit_code(self, timeout: float = 10.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")

    def initialize(self) -> None:
        self.request(0, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        assert "result" in self.response(0)
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def shutdown_and_exit(self) -> int:
        self.request(99, "shutdown", None)
        assert self.response(99).get("error") is None
        self.send(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.exit_code()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"Content-Length: abc\r\n\r\n{}", "Content-Length is 'abc', not a byte count"),
        (b"Content-Length: -5\r\n\r\n{}", "Content-Length is '-5', not a byte count"),
        (
            b"Content-Length: 99999999999\r\n\r\n{}",
            "Content-Length 99999999999 is over the 67108864-byte limit",
        ),
        (b"Content-Type: text/plain\r\n\r\n{}", "a message without a Content-Length header"),
        (b"X-" + b"a" * 10_000 + b"\r\n\r\n", "a header line is longer than 8 KiB"),
    ],
)
def test_broken_framing_closes_the_connection(server: Server, header: bytes, reason: str) -> None:
    server.initialize()
    started = time.monotonic()
    server.send(header)
    assert server.exit_code(timeout=15) == 1
    assert time.monotonic() - started < 15
    log = server.stderr()
    assert f"invalid LSP framing from the client: {reason}; closing the connection" in log
    assert "MemoryError" not in log and "Traceback" not in log


def test_messages_that_do_not_fit_are_answered_and_the_server_goes_on(server: Server) -> None:
    server.initialize()
    server.request(1, "workspace/symbol", "a string, not an object")
    error = server.response(1)["error"]
    assert error["code"] == -32602 and "invalid params for workspace/symbol" in error["message"]
    position = {"line": -3, "character": -1}
    server.request(2, "textDocument/inlineCompletion", {
        "textDocument": {"uri": "file:///tmp/x.py"}, "position": position,
        "context": {"triggerKind": 1},
    })  # fmt: skip
    assert server.response(2)["error"]["code"] == -32602
    server.request(3, "enclave/explain", "explain this")
    assert server.response(3)["error"]["code"] == -32602
    server.send(frame(b"{this is not json"))
    parse = server.response(None)
    assert parse["error"]["code"] == -32700
    server.request(4, "workspace/symbol", {"query": "x"})
    assert server.response(4).get("result") == []
    assert server.shutdown_and_exit() == 0


def test_an_endless_header_block_closes_the_connection(server: Server) -> None:
    """Header lines that never end in a blank line were kept for ever (RSS 245 -> 553 MB)."""
    server.initialize()
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    try:  # the server hangs up as soon as the block is over the limit
        for _ in range(10_000):  # 10 MB if nothing stopped it
            server.send(line * 10)
    except BrokenPipeError:
        pass
    assert server.exit_code(timeout=15) == 1
    log = server.stderr()
    reason = "a message header of more than 32 lines"
    assert f"invalid LSP framing from the client: {reason}; closing the connection" in log
    assert "Traceback" not in log


def deep(depth: int) -> bytes:
    return b'{"jsonrpc": "2.0", "id": 7, "method": "workspace/symbol", "params": {"query": "x", ' \
        b'"deep": ' + b"[" * depth + b"]" * depth + b"}}"  # fmt: skip


@pytest.mark.parametrize(
    ("body", "msg_id", "reason"),
    [
        (b'[{"jsonrpc": "2.0", "id": 5, "method": "workspace/symbol", "params": {"query": ""}}]',
         None, "a batch (a JSON array) of messages"),
        (b'{"jsonrpc": "1.0", "id": 5, "method": "workspace/symbol", "params": {"query": ""}}',
         5, '"jsonrpc" is \'1.0\', not "2.0"'),
        (b'{"id": 5, "method": "workspace/symbol", "params": {"query": ""}}',
         5, '"jsonrpc" is \'None\', not "2.0"'),
        (b'{"jsonrpc": "2.0", "id": 5, "method": 42, "params": {}}',
         5, '"method" must be a string, not int'),
        (b'{"jsonrpc": "2.0", "method": 42}', None, '"method" must be a string, not int'),
        (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "workspace/symbol", "params": {}}',
         None, "the id must be a string or an integer, not dict"),
        (b'{"jsonrpc": "2.0", "id": true, "method": "shutdown"}',
         None, "the id must be a string or an integer, not bool"),
        (b'"a string"', None, "the body is not a JSON-RPC 2.0 object"),
        (deep(100), 7, "deeper than 64 levels"),
    ],
)  # fmt: skip
def test_invalid_requests_are_answered_at_once_and_the_server_goes_on(
    server: Server, body: bytes, msg_id: Any, reason: str
) -> None:
    """Batches, JSON-RPC 1.0, a number as the method and an object as the id were never answered
    or answered with a Python TypeError; each is InvalidRequest (-32600) now."""
    server.initialize()
    server.send(frame(body))
    started = time.monotonic()
    answer = server.response(msg_id, timeout=10)
    assert time.monotonic() - started < 5
    assert answer["error"]["code"] == -32600 and reason in answer["error"]["message"], answer
    assert "Error" not in answer["error"]["message"]  # no Python exception's text
    server.request(4, "workspace/symbol", {"query": "x"})
    assert server.response(4).get("result") == []
    assert server.shutdown_and_exit() == 0
    assert "Traceback" not in server.stderr()


def test_params_nested_200000_deep_get_a_parse_error_and_the_server_goes_on(
    server: Server,
) -> None:
    server.initialize()
    server.send(frame(deep(200_000)))
    answer = server.response(None, timeout=10)
    assert answer["error"]["code"] == -32700, answer
    assert "deeper than 64 levels" in answer["error"]["message"]
    server.request(4, "workspace/symbol", {"query": "x"})
    assert server.response(4).get("result") == []
    assert server.shutdown_and_exit() == 0
    assert "Traceback" not in server.stderr()
