"""LSP over stdio with bounded reads: framing errors close the connection, bad messages get answers.

pygls' own stdio loop reads a header line and a body of whatever size the client announces, and
loses the framing on a malformed header, after which it answers nothing (not even `shutdown`) and
never exits. This loop is the same protocol with limits a hostile or broken client cannot get
past: header lines are at most 8 KiB, bodies at most :data:`MAX_BODY` bytes, a malformed or
missing ``Content-Length`` closes the connection with one line in the log and exit code 1.
A body that is not JSON is answered with ParseError; a request whose params do not fit its
method (a string, a negative position) is answered with InvalidParams, and the server goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import Any, BinaryIO

from lsprotocol.types import ResponseErrorMessage
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

MAX_HEADER_LINE = 8 * 1024
MAX_BODY = 64 * 1024 * 1024  # a message larger than any document Enclave would read
READ_CHUNK = 1024 * 1024


class FramingError(Exception):
    """The byte stream is not LSP's framing: nothing after this point can be trusted."""


def _read_body(stream: BinaryIO, length: int) -> bytes:
    """Exactly ``length`` bytes (fewer only at end of input), read in bounded chunks."""
    parts: list[bytes] = []
    left = length
    while left > 0:
        chunk = stream.read(min(left, READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def content_length(headers: list[bytes]) -> int:
    """The body length the headers announce; FramingError when it is missing or malformed."""
    length: int | None = None
    for line in headers:
        name, sep, value = line.decode("ascii", "replace").partition(":")
        if not sep:
            raise FramingError(f"malformed header line {line[:80]!r}")
        if name.strip().lower() != "content-length":
            continue
        text = value.strip()
        if not text.isdigit():
            raise FramingError(f"Content-Length is {text[:40]!r}, not a byte count")
        length = int(text)
        if length > MAX_BODY:
            raise FramingError(f"Content-Length {length} is over the {MAX_BODY}-byte limit")
    if length is None:
        raise FramingError("a message without a Content-Length header")
    return length


def _reply_error(server: LanguageServer, msg_id: Any, error: JsonRpcException) -> None:
    response = ResponseErrorMessage(id=msg_id, error=error.to_response_error())
    server.protocol._send_data(response)


def dispatch(server: LanguageServer, body: bytes) -> None:
    """Hand one message to pygls, answering what it cannot structure."""
    protocol = server.protocol
    try:
        message = json.loads(body, object_hook=protocol.structure_message)
    except JsonRpcException as exc:  # pygls could not structure it for its method
        raw = json.loads(body)
        if isinstance(raw, dict) and "id" in raw and "method" in raw:
            cause = exc.__cause__ or exc
            method = raw.get("method")
            reason = f"invalid params for {method}: {cause}".splitlines()[0][:500]
            _reply_error(server, raw["id"], JsonRpcInvalidParams(message=reason))
        else:
            log.warning("ignored a message that does not fit its method: %s", exc)
        return
    except ValueError as exc:  # not JSON at all
        log.warning("the client sent a body that is not JSON: %s", exc)
        _reply_error(server, None, JsonRpcParseError(message=f"the body is not JSON: {exc}"))
        return
    if isinstance(message, dict) or not hasattr(message, "jsonrpc"):  # JSON, not JSON-RPC
        _reply_error(server, None, JsonRpcParseError(message="not a JSON-RPC 2.0 message"))
        return
    protocol.handle_message(message)


async def serve(server: LanguageServer, stdin: BinaryIO, stop: threading.Event) -> int:
    """Read and dispatch messages until the client exits, the input ends or the framing breaks."""
    loop = asyncio.get_running_loop()
    pool = server.thread_pool

    async def call(function: Any, *args: Any) -> Any:
        return await loop.run_in_executor(pool, function, *args)

    while not stop.is_set():
        headers: list[bytes] = []
        while True:
            line = await call(stdin.readline, MAX_HEADER_LINE + 1)
            if not line:
                return 0 if not headers else _broken("the input ended inside a message header")
            if len(line) > MAX_HEADER_LINE:
                return _broken("a header line is longer than 8 KiB")
            if line.strip():
                headers.append(line.rstrip(b"\r\n"))
            elif headers:
                break
        try:
            length = content_length(headers)
        except FramingError as exc:
            return _broken(str(exc))
        body = await call(_read_body, stdin, length)
        if len(body) < length:
            return _broken(f"the input ended {length - len(body)} bytes into a message body")
        try:
            dispatch(server, body)
        except Exception:  # a bug in a handler's dispatch: logged, the server goes on
            log.exception("handling a message failed")
    return 0


def _broken(reason: str) -> int:
    log.error("invalid LSP framing from the client: %s; closing the connection", reason)
    return 1


def run_stdio(server: LanguageServer, stdin: BinaryIO | None = None) -> int:
    """Serve LSP on stdin/stdout; the exit code (1 when the client broke the framing)."""
    stop = threading.Event()
    server._stop_event = stop  # pygls' exit handler sets it
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    code = 0
    try:
        code = asyncio.run(serve(server, stdin or sys.stdin.buffer, stop))
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
        code = 1
    except SystemExit as exc:  # the client's `exit`: 0 after `shutdown`, 1 without
        code = exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return code
