"""The server's inbox: messages read off the pipe ahead of a busy event loop, in bounded memory,
and a completion that waits for the keystrokes already read before it asks the model.

CI saw the burst-of-edits test cost 100 model calls instead of a handful on a busy machine: the
loop read the client's messages slower than they came, so each request's debounce ran out
before the next keystroke, which would have cancelled it, had been read.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from enclave.server.lsp import transport
from enclave.server.lsp.app import create_server
from enclave.server.lsp.completion import Completer
from enclave.server.lsp.status import StatusReporter
from enclave.server.lsp.transport import Inbox
from tests.server.lsp.test_transport import frame


@pytest.fixture
def pipe() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The server's end and the client's end of a pipe."""
    read, write = os.pipe()
    reader, writer = os.fdopen(read, "rb"), os.fdopen(write, "wb", buffering=0)
    try:
        yield reader, writer
    finally:
        writer.close()  # the end of input lets the reader thread finish
        reader.close()


def body(n: int, size: int = 10) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "method": "$/note", "params": {"n": n, "pad": "x" * size}}
    ).encode()


def note(n: int, size: int = 10) -> bytes:
    return frame(body(n, size))


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def reading(reader: BinaryIO) -> tuple[Completer, Inbox]:
    """The server's completer, with an inbox reading ``reader``."""
    services = create_server()[1]
    services.inbox = inbox = Inbox(reader)
    inbox.start()
    return Completer(services, StatusReporter(services)), inbox


async def test_a_completion_waits_until_the_messages_already_read_are_handled(
    pipe: tuple[BinaryIO, BinaryIO],
) -> None:
    reader, write = pipe
    completer, inbox = reading(reader)
    write.write(b"".join(note(n) for n in range(3)))
    await until(lambda: inbox.backlog == 3)

    settled = asyncio.ensure_future(completer._settle(0.0))  # no debounce configured
    settled_at: list[float] = []
    settled.add_done_callback(lambda _: settled_at.append(time.monotonic()))
    for _ in range(3):  # a busy loop: one message every 100 ms
        await asyncio.sleep(0.1)
        assert not settled.done(), "asked the model with keystrokes still unread"
        assert isinstance(await inbox.next(), bytes)
        inbox.done_with()
        last_handled = time.monotonic()
    await asyncio.wait_for(settled, 1.0)
    assert settled_at[0] >= last_handled  # not before the last message was handled


async def test_a_client_that_never_stops_talking_holds_a_completion_back_briefly(
    pipe: tuple[BinaryIO, BinaryIO],
) -> None:
    reader, write = pipe
    completer, inbox = reading(reader)
    write.write(note(0))
    await until(lambda: inbox.backlog == 1)
    started = time.monotonic()
    await asyncio.wait_for(completer._settle(0.0), 5.0)  # nobody handles the message
    waited = time.monotonic() - started
    assert 0.5 <= waited < 2.0, waited  # WAIT_MAX_S, then the completion goes ahead


async def test_the_inbox_reads_ahead_in_bounded_memory_and_keeps_the_order(
    pipe: tuple[BinaryIO, BinaryIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, write = pipe
    size = len(body(0, 1000))
    monkeypatch.setattr(transport, "MAX_QUEUED", 2 * size + size // 2)
    inbox = Inbox(reader)
    inbox.start()
    write.write(b"".join(note(n, 1000) for n in range(5)))
    write.close()  # then the end of input
    await until(lambda: inbox.backlog == 2)
    await asyncio.sleep(0.2)
    assert inbox.backlog == 2  # the third waits in the reader, the rest in the pipe
    got = [await inbox.next() for _ in range(6)]
    assert got == [body(n, 1000) for n in range(5)] + [0]  # in order, then a clean end


async def test_broken_framing_ends_the_inbox_with_exit_code_1(
    pipe: tuple[BinaryIO, BinaryIO],
) -> None:
    reader, write = pipe
    inbox = Inbox(reader)
    inbox.start()
    write.write(note(0) + b"Content-Length: nine\r\n\r\n{}")
    assert isinstance(await inbox.next(), bytes)
    assert await asyncio.wait_for(inbox.next(), 5.0) == 1


def change(version: int, text: str, *, whole: bool = False, uri: str = "file:///a.py") -> bytes:
    at = {"line": 0, "character": 0}
    content: dict[str, object] = {"text": text}
    if not whole:
        content["range"] = {"start": at, "end": at}
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [content],
            },
        }
    ).encode()


async def test_didchange_notifications_waiting_in_a_row_are_coalesced_in_order(
    pipe: tuple[BinaryIO, BinaryIO],
) -> None:
    reader, write = pipe
    inbox = Inbox(reader)
    inbox.start()
    bodies = [change(2, "a"), change(3, "b"), change(4, "C", whole=True), change(5, "d")]
    bodies += [change(6, "e", uri="file:///other.py"), change(7, "f")]
    write.write(b"".join(frame(b) for b in bodies))
    await until(lambda: inbox.backlog == len(bodies))
    first = await inbox.next()
    assert isinstance(first, bytes)
    merged = transport.coalesce(json.loads(first), inbox)
    params = merged["params"]
    assert params["textDocument"]["version"] == 5  # the last of the run for this document
    # from the whole-document change on: what came before it cannot matter
    assert [c["text"] for c in params["contentChanges"]] == ["C", "d"]
    assert inbox.backlog == 2  # another document's edit ends the run; it and the rest wait
    assert json.loads(inbox.peek() or b"{}")["params"]["textDocument"]["uri"] == "file:///other.py"
