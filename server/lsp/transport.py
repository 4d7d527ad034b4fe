"""LSP over stdio with bounded reads: framing errors close the connection, bad messages get answers.

pygls' own stdio loop reads a header line and a body of whatever size the client announces, and
loses the framing on a malformed header, after which it answers nothing (not even `shutdown`) and
never exits. This loop is the same protocol with limits a hostile or broken client cannot get
past: header lines are at most 8 KiB, bodies at most :data:`MAX_BODY` bytes, a malformed or
missing ``Content-Length`` closes the connection with one line in the log and exit code 1.
A body that is not JSON is answered with ParseError; a request whose params do not fit its
method (a string, a negative position) is answered with InvalidParams, and the server goes on.

One thread reads whole messages off stdin ahead of the event loop into an :class:`Inbox`
(at most :data:`MAX_QUEUED` bytes waiting), so the loop always knows whether the client has
already said more: a completion about to ask the model waits until what is already read is
handled, because in a burst of keystrokes the next one is there and makes it stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
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
READ_CHUNK = 64 * 1024
MAX_QUEUED = 64 * 1024 * 1024  # bytes read ahead of the loop (one larger message still passes)


class FramingError(Exception):
    """The byte stream is not LSP's framing: nothing after this point can be trusted."""


class _Bytes:
    """Bytes straight from a file descriptor, for the reader thread. Not a buffered file object:
    a thread blocked in its read holds its lock, and an interpreter that exits meanwhile (the
    client sent `exit` but keeps its end of the pipe open) aborts trying to take that lock."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()

    def _fill(self) -> bool:
        chunk = os.read(self._fd, READ_CHUNK)
        self._buffer += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def readline(self, limit: int) -> bytes:
        """A line with its newline, at most ``limit`` bytes (fewer only at end of input)."""
        while (end := self._buffer.find(b"\n", 0, limit)) < 0:
            if len(self._buffer) >= limit or not self._fill():
                return self._take(limit)
        return self._take(end + 1)

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (fewer only at end of input)."""
        while len(self._buffer) < n and self._fill():
            pass
        return self._take(n)


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


def read_message(stream: _Bytes) -> bytes | None:
    """The next message's body (None at the end of input between messages); FramingError when
    the bytes are not LSP's framing or the input ends inside a message."""
    headers: list[bytes] = []
    while True:
        line = stream.readline(MAX_HEADER_LINE + 1)
        if not line:
            if headers:
                raise FramingError("the input ended inside a message header")
            return None
        if len(line) > MAX_HEADER_LINE:
            raise FramingError("a header line is longer than 8 KiB")
        if line.strip():
            headers.append(line.rstrip(b"\r\n"))
        elif headers:
            break
    length = content_length(headers)
    body = stream.read(length)
    if len(body) < length:
        raise FramingError(f"the input ended {length - len(body)} bytes into a message body")
    return body


class Inbox:
    """Messages read off ``stdin`` by a thread of their own, waiting for the event loop.

    ``backlog`` is how many are read and not yet handled; ``handled()`` returns once there are
    none (the queue's ``join``: every message taken is marked done once dispatched). The reader
    stops reading ahead while :data:`MAX_QUEUED` bytes wait, so a client that writes faster
    than the server handles keeps the rest in its pipe, not in our memory.
    """

    def __init__(self, stdin: BinaryIO) -> None:
        self._stdin = _Bytes(stdin.fileno())
        self._loop: asyncio.AbstractEventLoop | None = None
        # message bodies, then the exit code once the input ended or broke
        self._queue: asyncio.Queue[bytes | int] | None = None
        self._room = threading.Condition()
        self._queued = 0  # bytes read and not yet taken, guarded by _room

    @property
    def backlog(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        """Start reading (on the running event loop, once)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        threading.Thread(target=self._pump, name="enclave-lsp-reader", daemon=True).start()

    def _pump(self) -> None:
        try:
            while True:
                body = read_message(self._stdin)
                if body is None:
                    self._deliver(0)
                    return
                with self._room:
                    while self._queued and self._queued + len(body) > MAX_QUEUED:
                        self._room.wait()
                    self._queued += len(body)
                if not self._deliver(body):
                    return
        except FramingError as exc:
            self._deliver(_broken(str(exc)))
        except OSError as exc:  # stdin closed under us
            log.error("reading from the client failed: %s", exc)
            self._deliver(1)
        except Exception:  # a bug: the server must end, not wait for messages forever
            log.exception("reading from the client failed")
            self._deliver(1)

    def _deliver(self, item: bytes | int) -> bool:
        """Hand a message (or the exit code) to the loop; False once the loop is gone."""
        assert self._loop is not None and self._queue is not None
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the server has already stopped
            return False
        return True

    async def next(self) -> bytes | int:
        """The next message's body, or the exit code once the input ended or broke."""
        assert self._queue is not None
        item = await self._queue.get()
        if isinstance(item, int):
            self._queue.task_done()  # nothing follows it to handle
            return item
        with self._room:
            self._queued -= len(item)
            self._room.notify()
        return item

    def done_with(self) -> None:
        """The message last taken is handled (its handlers are scheduled)."""
        assert self._queue is not None
        self._queue.task_done()

    async def handled(self) -> None:
        """Return once every message read so far is handled (at once when there is none)."""
        if self._queue is not None:
            await self._queue.join()


async def serve(server: LanguageServer, inbox: Inbox, stop: threading.Event) -> int:
    """Dispatch messages until the client exits, the input ends or the framing breaks."""
    inbox.start()
    while not stop.is_set():
        body = await inbox.next()
        if isinstance(body, int):
            return body
        try:
            dispatch(server, body)
        except Exception:  # a bug in a handler's dispatch: logged, the server goes on
            log.exception("handling a message failed")
        finally:
            inbox.done_with()
    return 0


def _broken(reason: str) -> int:
    log.error("invalid LSP framing from the client: %s; closing the connection", reason)
    return 1


def run_stdio(server: LanguageServer, inbox: Inbox | None = None) -> int:
    """Serve LSP on stdin/stdout (read through ``inbox``, by default a new one on stdin); the
    exit code (1 when the client broke the framing)."""
    stop = threading.Event()
    server._stop_event = stop  # pygls' exit handler sets it
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    code = 0
    try:
        code = asyncio.run(serve(server, inbox or Inbox(sys.stdin.buffer), stop))
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
