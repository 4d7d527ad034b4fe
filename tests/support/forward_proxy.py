"""A small HTTP forwarding proxy on a loopback port, for fleets of model servers in tests.

Each proxy stands for one host of a fleet in front of the one session test server: requests are
forwarded as they are (method, path, headers, body) and answers streamed back part by part as
they arrive (chunked), so a streamed answer reaches the client token by token, and a client that
hangs up closes the upstream connection too (the model stops generating).

The proxy records each request's path and headers (to show that ``ollama.headers`` arrive), and
can stand for a failing host:

- ``kill()``: stop listening and drop every open connection, both sides (a host that died);
  ``revive()``
  listens again on the same port.
- ``fail_with(status)``: answer every request with that status and Ollama's ``{"error": ...}``
  body (a crashed runner, 500; a proxy with no upstream, 502) until ``fail_with(None)``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class ProxyState:
    upstream: tuple[str, int]
    seen: list[Seen] = field(default_factory=list)
    failing: int | None = None
    connections: set[socket.socket] = field(default_factory=set)
    upstreams: set[http.client.HTTPConnection] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.state.lock:
            self.server.state.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _forward(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with state.lock:
            state.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
            failing = state.failing
        if failing is not None:
            data = json.dumps({"error": f"upstream failed (HTTP {failing})"}).encode()
            self.send_response(failing)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        upstream = http.client.HTTPConnection(*state.upstream, timeout=120)
        with state.lock:
            state.upstreams.add(upstream)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("POST", "PUT", "DELETE"):
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                data = answer.read1(65536)
                if not data:
                    break
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client (or the upstream) hung up
        finally:
            with state.lock:
                state.upstreams.discard(upstream)
            upstream.close()

    do_GET = do_POST = do_DELETE = do_HEAD = _forward


class ForwardProxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_url: str, port: int = 0) -> None:
        host, _, port_text = upstream_url.split("://", 1)[1].rstrip("/").rpartition(":")
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = ProxyState((host, int(port_text)))
        self.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients and upstreams that hang up are normal here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ForwardProxy:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="proxy")
        self._thread.start()
        return self

    def kill(self) -> None:
        """Stop listening and cut every open connection: connections are refused from now on."""
        self.shutdown()
        self.socket.close()
        with self.state.lock:
            for conn in list(self.state.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            for upstream in list(self.state.upstreams):  # the server sees its client gone
                if upstream.sock is not None:
                    with contextlib.suppress(OSError):
                        upstream.sock.shutdown(socket.SHUT_RDWR)

    def revive(self) -> None:
        self.socket = socket.socket(self.address_family, self.socket_type)
        self.server_bind()
        self.server_activate()
        self.start()

    def fail_with(self, status: int | None) -> None:
        with self.state.lock:
            self.state.failing = status

    def paths(self, prefix: str = "/") -> list[str]:
        with self.state.lock:
            return [s.path for s in self.state.seen if s.path.startswith(prefix)]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.kill()
        self.server_close()
