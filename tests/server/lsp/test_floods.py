"""Floods of notifications, sent as raw bytes to the real server over stdio: a request behind
them is answered within a bounded time, and every edit among them still counts.

400,000 small notifications (28 MB) left the server unresponsive for 54 s: each went through
pygls (structured, dispatched, and, for a method the server does not have, a warning on stderr).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

from tests.server.lsp.conftest import Session, options_for
from tests.server.lsp.test_transport import Server, frame
from tests.support.ollama_server import OllamaTestServer

FLOOD_S = 10.0  # the longest a request may wait behind the flood once the flood is sent


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The real server over stdio (``enclave lsp``), fed raw bytes."""
    started = Server(tmp_path)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def notification(method: str, params: object) -> bytes:
    return frame({"jsonrpc": "2.0", "method": method, "params": params})


def did_change(uri: str, version: int, start: int, end: int, text: str) -> bytes:
    """A one-change didChange on line 0 (from ``start`` to ``end``)."""
    span = {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": end}}
    return notification(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": span, "text": text}],
        },
    )


def test_a_request_behind_450000_notifications_is_answered_in_bounded_time(
    server: Server,
) -> None:
    server.initialize()
    threading.Thread(target=server.stderr, daemon=True).start()  # a full pipe would block it
    uri = "file:///tmp/flooded.py"
    server.send(
        notification(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "\n"}},
        )
    )
    unknown = notification("custom/ping", {}) * 1000 + notification("$/ping", {}) * 1000
    version = 1
    started = time.monotonic()
    for _ in range(150):  # 300,000 unknown notifications and 150,000 edits, 47 MB
        edits = []
        for _ in range(500):  # type an x, delete it
            edits.append(did_change(uri, version + 1, 0, 0, "x"))
            edits.append(did_change(uri, version + 2, 0, 1, ""))
            version += 2
        server.send(unknown + b"".join(edits))
    sent = time.monotonic()
    server.request(1, "workspace/symbol", {"query": "x"})
    assert server.response(1, timeout=60).get("result") == []
    answered = time.monotonic()
    assert answered - sent < FLOOD_S, (sent - started, answered - sent)


async def test_edits_coalesced_in_a_flood_leave_the_document_as_the_client_has_it(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """didChange notifications that wait one after the other are handled as one: all their
    changes, in order, from the last whole-document change on."""
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open("app/flood.py", "def f():\n    return \n")
    typed = ""
    version = 1
    for n in range(3000):
        version += 1
        if n == 1500:  # a whole-document change in the middle
            typed = ""
            change: object = types.TextDocumentContentChangeWholeDocument(
                text="def f():\n    return \n"
            )
        else:
            at = types.Position(1, 11 + len(typed))
            change = types.TextDocumentContentChangePartial(
                range=types.Range(at, at), text=str(n % 10)
            )
            typed += str(n % 10)
        lsp.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[change],  # type: ignore[list-item]
            )
        )
    report = await lsp.request(
        "enclave/context",
        {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 11 + len(typed)}},
    )
    assert report["prefix"].endswith("    return " + typed), report["prefix"][-80:]
    assert report["suffix"] == "\n"
