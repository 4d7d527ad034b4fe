"""LSP over stdio with bounded reads: framing errors close the connection, bad messages get answers.

pygls' own stdio loop reads a header line and a body of whatever size the client announces, and
loses the framing on a malformed header, after which it answers nothing (not even `shutdown`) and
never exits. This loop is the same protocol with limits a hostile or broken client cannot get
past: header lines are at most 8 KiB and a header block at most :data:`MAX_HEADER_LINES` lines,
bodies at most :data:`MAX_BODY` bytes; a malformed or missing ``Content-Length`` or an endless
header block closes the connection with one line in the log and exit code 1. A body that is not
JSON (or nests past the parser's limit) is answered with ParseError; one that is not a JSON-RPC
2.0 message LSP takes (a batch, ``"jsonrpc"`` other than "2.0", a method that is not a string,
an id that is neither a string nor an integer, nesting deeper than :data:`MAX_DEPTH`) with
InvalidRequest; a request whose params do not fit its method (a string, a negative position)
with InvalidParams; and the server goes on.

One thread reads whole messages off stdin ahead of the event loop into an :class:`Inbox`
(at most :data:`MAX_QUEUED` bytes waiting), so the loop always knows whether the client has
already said more: a completion about to ask the model waits until what is already read is
handled, because in a burst of keystrokes the next one is there and makes it stale. Floods of
notifications cost little each: those for methods the server does not have are dropped before
pygls sees them (:class:`Ignored`), and didChange notifications for one document that wait one
after the other are handled as one (:func:`coalesce`), so a request behind them is answered
once the reader has read it, not after a pass through pygls per notification.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO

from lsprotocol import types
from lsprotocol.types import CANCEL_REQUEST, EXIT, ResponseErrorMessage
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
# Framing errors go to stderr only (a logger outside the "enclave" tree, whose records the
# server also sends to the client): the channel to the client is what just broke.
stderr_log = logging.getLogger("enclave-lsp")

MAX_HEADER_LINE = 8 * 1024
MAX_HEADER_LINES = 32  # LSP defines two headers; a block longer than this never ends well
MAX_DEPTH = 64  # nesting of arrays and objects in a message (LSP's deepest is far below)
MAX_BODY = 64 * 1024 * 1024  # a message larger than any document Enclave would read
READ_CHUNK = 64 * 1024
MAX_QUEUED = 64 * 1024 * 1024  # bytes read ahead of the loop (one larger message still passes)
MAX_COALESCED = 1000  # didChange notifications merged into one
YIELD_EVERY = 64  # messages handled in a row before the loop lets other tasks take a step
IGNORED_LOG_S = 10.0
DID_CHANGE = types.TEXT_DOCUMENT_DID_CHANGE
DID_CHANGE_BYTES = DID_CHANGE.encode()


class FramingError(Exception):
    """The byte stream is not LSP's framing: nothing after this point can be trusted."""


class _Bytes:
    """Bytes straight from a file descriptor, for the reader thread. Not a buffered file object:
    a thread blocked in its read holds its lock, and an interpreter that exits meanwhile (the
    client sent `exit` but keeps its end of the pipe open) aborts trying to take that lock."""

    def __init__(self, fd: int, before_read: Callable[[], None] = lambda: None) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._before_read = before_read  # called before each read that may block

    def _fill(self) -> bool:
        self._before_read()
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


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (no recursion)."""
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                level.append((child, depth + 1))
    return False


def _may_nest_deep(body: bytes) -> bool:
    """Whether ``body`` has enough brackets to nest past :data:`MAX_DEPTH` (a cheap check that
    spares the walk for almost every message)."""
    return body.count(b"[") + body.count(b"{") > MAX_DEPTH


def invalid_request(raw: Any, *, deep: bool = True) -> tuple[Any, str] | None:
    """Why ``raw`` (a parsed body) is not a JSON-RPC 2.0 message LSP takes, and the id to answer
    with (None when it has no valid one); None for a valid message. ``deep=False``: the body
    cannot nest past :data:`MAX_DEPTH` (:func:`_may_nest_deep`), the walk is spared."""
    if isinstance(raw, list):
        return None, "a batch (a JSON array) of messages: LSP takes one message per body"
    if not isinstance(raw, dict):
        return None, "the body is not a JSON-RPC 2.0 object"
    msg_id = raw.get("id")
    if "id" in raw and not _valid_id(msg_id) and (msg_id is not None or "method" in raw):
        return None, f"the id must be a string or an integer, not {type(msg_id).__name__}"
    answer = msg_id if _valid_id(msg_id) else None
    if raw.get("jsonrpc") != "2.0":
        return answer, f'"jsonrpc" is {str(raw.get("jsonrpc"))[:20]!r}, not "2.0"'
    if "method" in raw and not isinstance(raw["method"], str):
        return answer, f'"method" must be a string, not {type(raw["method"]).__name__}'
    if "method" not in raw and "id" not in raw:
        return None, 'a message with neither "method" nor "id"'
    if deep and _deeper_than(raw, MAX_DEPTH):
        return answer, f"the message nests arrays and objects deeper than {MAX_DEPTH} levels"
    return None


def decode(server: LanguageServer, body: bytes) -> dict[str, Any] | None:
    """The message in ``body``, or None once it is answered as not JSON (ParseError) or not a
    JSON-RPC 2.0 message LSP takes (InvalidRequest), at once and without a traceback."""
    try:
        raw = json.loads(body)
    except ValueError as exc:  # not JSON at all
        log.warning("the client sent a body that is not JSON: %s", exc)
        _reply_error(server, None, JsonRpcParseError(message=f"the body is not JSON: {exc}"))
        return None
    except RecursionError:  # nested past the parser's own limit
        reason = f"the body nests arrays and objects deeper than {MAX_DEPTH} levels"
        log.warning("the client sent a message that is not valid: %s", reason)
        _reply_error(server, None, JsonRpcParseError(message=reason))
        return None
    if (invalid := invalid_request(raw, deep=_may_nest_deep(body))) is not None:
        msg_id, reason = invalid
        log.warning("the client sent a message that is not valid: %s", reason)
        if not isinstance(raw, dict) or "method" in raw or "id" not in raw:  # not a response
            _reply_error(server, msg_id, JsonRpcInvalidRequest(message=reason))
        return None
    return raw


class Ignored:
    """Notifications for methods the server does not have: dropped before pygls structures
    them, counted, and logged at most every :data:`IGNORED_LOG_S` seconds (a flood of them costs
    a dictionary lookup each, not a log line each). LSP lets a server ignore `$/` ones
    silently."""

    def __init__(self) -> None:
        self.count = 0
        self.logged_at = -IGNORED_LOG_S

    def note(self, method: str) -> None:
        if method.startswith("$/"):
            return
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= IGNORED_LOG_S:
            log.warning(
                "ignored %d notification(s) for methods the server does not have (the last: %r)",
                self.count,
                method[:80],
            )
            self.count, self.logged_at = 0, now


def handle(server: LanguageServer, raw: dict[str, Any], ignored: Ignored) -> None:
    """Hand a valid message to pygls, answering InvalidParams when its params do not fit."""
    protocol = server.protocol
    method = raw.get("method")
    if (
        method is not None
        and "id" not in raw
        and method not in protocol.fm.features
        and method not in protocol.fm.builtin_features
        and method not in (CANCEL_REQUEST, EXIT)
    ):
        ignored.note(method)
        return
    try:
        message = protocol.structure_message(raw)
    except JsonRpcException as exc:  # pygls could not structure it for its method
        if "id" in raw and method is not None:
            cause = exc.__cause__ or exc
            reason = f"invalid params for {method}: {cause}".splitlines()[0][:500]
            _reply_error(server, raw["id"], JsonRpcInvalidParams(message=reason))
        else:
            log.warning("ignored a message that does not fit its method: %s", exc)
        return
    protocol.handle_message(message)


def _changes_of(raw: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """The document and content changes of a well-formed didChange notification (else None)."""
    if not isinstance(raw, dict) or raw.get("method") != DID_CHANGE or "id" in raw:
        return None
    params = raw.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("textDocument"), dict):
        return None
    uri, changes = params["textDocument"].get("uri"), params.get("contentChanges")
    if not isinstance(uri, str) or not isinstance(changes, list):
        return None
    for change in changes:
        if not isinstance(change, dict) or not isinstance(change.get("text"), str):
            return None
        if "range" in change and not isinstance(change["range"], dict):
            return None
    return uri, changes


def coalesce(raw: dict[str, Any], inbox: Inbox) -> dict[str, Any]:
    """``raw``, merged with the didChange notifications for the same document that follow it
    in the inbox (already read): one notification with all their changes in order, from the
    last whole-document change on (what came before it cannot matter), at most
    :data:`MAX_COALESCED` messages. A flood of edits costs one pass through pygls per batch."""
    first = _changes_of(raw)
    if first is None:
        return raw
    uri, changes = first[0], list(first[1])
    params = raw["params"]
    merged = 0
    while merged < MAX_COALESCED and (body := inbox.peek()) is not None:
        if DID_CHANGE_BYTES not in body:
            break
        try:
            following = json.loads(body)
        except (ValueError, RecursionError):
            break
        found = _changes_of(following)
        if found is None or found[0] != uri:
            break
        if invalid_request(following, deep=_may_nest_deep(body)) is not None:
            break
        inbox.take()
        inbox.done_with()
        changes.extend(found[1])
        params = following["params"]
        merged += 1
    if not merged:
        return raw
    whole = [i for i, change in enumerate(changes) if "range" not in change]
    if whole:
        changes = changes[whole[-1] :]
    return {**raw, "params": {**params, "contentChanges": changes}}


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
            if len(headers) >= MAX_HEADER_LINES:
                raise FramingError(f"a message header of more than {MAX_HEADER_LINES} lines")
            headers.append(line.rstrip(b"\r\n"))
        elif headers:
            break
    length = content_length(headers)
    body = stream.read(length)
    if len(body) < length:
        raise FramingError(f"the input ended {length - len(body)} bytes into a message body")
    return body


class _Gone(Exception):
    """The event loop has stopped: the reader thread ends."""


class Inbox:
    """Messages read off ``stdin`` by a thread of their own, waiting for the event loop.

    The thread hands the loop what it has read in batches (every whole message read before it
    would wait for more input), so a flood of small messages costs the loop one wake-up per
    read, not one per message. ``backlog`` is how many are read and not yet taken; ``handled()``
    returns once every message read so far is handled (taken and marked done with
    ``done_with``). The reader stops reading ahead while :data:`MAX_QUEUED` bytes wait, so a
    client that writes faster than the server handles keeps the rest in its pipe, not in our
    memory.
    """

    def __init__(self, stdin: BinaryIO) -> None:
        self._stdin = _Bytes(stdin.fileno(), self._flush)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: list[bytes | int] = []  # the reader thread's, not yet handed over
        # the loop's: message bodies, then the exit code once the input ended or broke
        self._pending: deque[bytes | int] = deque()
        self._unfinished = 0  # handed over and not yet done with
        self._arrived: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._room = threading.Condition()
        self._queued = 0  # bytes read and not yet taken, guarded by _room

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start reading (on the running event loop, once)."""
        self._loop = asyncio.get_running_loop()
        self._arrived, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        threading.Thread(target=self._pump, name="enclave-lsp-reader", daemon=True).start()

    def _pump(self) -> None:
        try:
            try:
                while True:
                    body = read_message(self._stdin)
                    if body is None:
                        self._deliver(0)
                        return
                    self._make_room(len(body))
                    self._batch.append(body)
            except FramingError as exc:
                self._deliver(_broken(str(exc)))
            except OSError as exc:  # stdin closed under us
                log.error("reading from the client failed: %s", exc)
                self._deliver(1)
            except _Gone:
                raise
            except Exception:  # a bug: the server must end, not wait for messages forever
                log.exception("reading from the client failed")
                self._deliver(1)
        except _Gone:
            return

    def _make_room(self, size: int) -> None:
        with self._room:
            if not self._queued or self._queued + size <= MAX_QUEUED:
                self._queued += size
                return
        self._flush()  # what waits in the batch must reach the loop to make room
        with self._room:
            while self._queued and self._queued + size > MAX_QUEUED:
                self._room.wait()
            self._queued += size

    def _flush(self) -> None:
        """Hand the batch to the loop (the reader thread's); _Gone once the loop is gone."""
        if not self._batch:
            return
        assert self._loop is not None
        batch, self._batch = self._batch, []
        try:
            self._loop.call_soon_threadsafe(self._receive, batch)
        except RuntimeError:  # the server has already stopped
            raise _Gone from None

    def _deliver(self, code: int) -> None:
        self._batch.append(code)
        self._flush()

    def _receive(self, batch: list[bytes | int]) -> None:
        assert self._arrived is not None and self._idle is not None
        self._pending.extend(batch)
        self._unfinished += len(batch)
        self._idle.clear()
        self._arrived.set()

    async def next(self) -> bytes | int:
        """The next message's body, or the exit code once the input ended or broke."""
        assert self._arrived is not None
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        return self.take()

    def peek(self) -> bytes | None:
        """The body of the next message already read (None when there is none)."""
        item = self._pending[0] if self._pending else None
        return item if isinstance(item, bytes) else None

    def take(self) -> bytes | int:
        """The next message already read (after ``peek``); mark it done with ``done_with``."""
        item = self._pending.popleft()
        if isinstance(item, int):
            self.done_with()  # nothing follows it to handle
            return item
        with self._room:
            self._queued -= len(item)
            self._room.notify()
        return item

    def done_with(self) -> None:
        """The message last taken is handled (its handlers are scheduled)."""
        assert self._idle is not None
        self._unfinished -= 1
        if not self._unfinished:
            self._idle.set()

    async def handled(self) -> None:
        """Return once every message read so far is handled (at once when there is none)."""
        if self._idle is not None:
            await self._idle.wait()


async def serve(server: LanguageServer, inbox: Inbox, stop: threading.Event) -> int:
    """Dispatch messages until the client exits, the input ends or the framing breaks."""
    inbox.start()
    ignored = Ignored()
    taken = 0
    while not stop.is_set():
        body = await inbox.next()
        if isinstance(body, int):
            return body
        try:
            raw = decode(server, body)
            if raw is not None:
                handle(server, coalesce(raw, inbox), ignored)
        except Exception:  # a bug in a handler's dispatch: logged, the server goes on
            log.exception("handling a message failed")
        finally:
            inbox.done_with()
        taken += 1
        if not taken % YIELD_EVERY:  # a long backlog: the handlers it started take steps too
            await asyncio.sleep(0)
    return 0


def _broken(reason: str) -> int:
    stderr_log.error("invalid LSP framing from the client: %s; closing the connection", reason)
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
