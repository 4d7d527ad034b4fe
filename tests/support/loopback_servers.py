"""Small HTTP servers on loopback ports that stand for misbehaving model servers in tests.

- :class:`Recorder`: records every request that reaches it (method, path, body) and answers 200
  with ``{}``: where a redirect points. A test asserts nothing arrived there.
- :class:`Redirector`: a forwarding proxy (``tests.support.forward_proxy``) in front of the
  session test server that answers the requests ``redirect(path)`` selects with a redirect
  (307, 308, ...) to the same path on another server, and forwards the rest.
- :class:`Hanging`: accepts a request, sends the answer's headers, then never the body (until the
  client hangs up or the server stops).
- :class:`Garbage`: answers every request 200 with an HTML page (a captive portal, a proxy).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.support.forward_proxy import ForwardProxy
from tests.support.forward_proxy import _Handler as _ForwardHandler

# Where a prompt or a chunk's text goes: the endpoints a redirect must never carry it to.
PROMPT_PATHS = (
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/create",
    "/api/blobs",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
)


def prompt_bearing(path: str) -> bool:
    return path.startswith(PROMPT_PATHS)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that hang up are normal here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        threading.Thread(target=self.serve_forever, daemon=True, name=type(self).__name__).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self.lock:
            headers = {name.lower(): value for name, value in handler.headers.items()}
            self.requests.append(Request(handler.command, handler.path, body, headers))

    def seen(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return


class _RecordHandler(_Quiet):
    def _answer(self) -> None:
        self.server.record(self)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer


class Recorder(_Server):
    def __init__(self) -> None:
        super().__init__(_RecordHandler)


class _HangHandler(_Quiet):
    def _answer(self) -> None:
        self.server.record(self)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", "4096")
        self.end_headers()
        self.wfile.flush()
        # the body never comes: wait until the client hangs up or the server stops
        while not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                with contextlib.suppress(OSError):
                    if not self.connection.recv(1, 0x2):  # MSG_PEEK: b"" once it closed
                        break
        self.close_connection = True

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer


class Hanging(_Server):
    def __init__(self) -> None:
        super().__init__(_HangHandler)


class _GarbageHandler(_Quiet):
    def _answer(self) -> None:
        self.server.record(self)
        page = b"<html><body>Please sign in to the network</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer


class Garbage(_Server):
    def __init__(self) -> None:
        super().__init__(_GarbageHandler)


class _RedirectHandler(_ForwardHandler):
    server: Redirector

    def _forward(self) -> None:
        server = self.server
        if not server.redirect(self.path):
            super()._forward()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server.redirected.append(self.path)
        self.send_response(server.status)
        self.send_header("Location", server.target.rstrip("/") + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = do_HEAD = _forward


class Redirector(ForwardProxy):
    """Forwards to ``upstream_url``; answers the paths ``redirect`` selects with ``status`` and
    ``Location: target + path``."""

    def __init__(
        self,
        upstream_url: str,
        target: str,
        status: int = 307,
        redirect: Callable[[str], bool] = prompt_bearing,
    ) -> None:
        super().__init__(upstream_url)
        self.RequestHandlerClass = _RedirectHandler
        self.target = target
        self.status = status
        self.redirect = redirect
        self.redirected: list[str] = []

    def start(self) -> Self:
        super().start()
        return self
