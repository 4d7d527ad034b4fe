"""The server's state, created once and handed to every feature module's ``setup``.

Holds the workspace roots (each with its configuration and open index), the model client, the
recently edited buffers and thread-safe helpers to talk to the client. No module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from enclave.config import Config
from enclave.indexer.api import Index, IndexProblem, IndexStatus, IndexSummary
from enclave.server.completion.sources.recent import RecentEdit
from enclave.server.lsp.convert import relative_to, uri_to_path
from enclave.server.trust import Boundary, Refused

if TYPE_CHECKING:
    from enclave.server.lsp.transport import Inbox
    from enclave.server.model.client import ModelClient
    from enclave.server.model.errors import ModelError

log = logging.getLogger(__name__)

# Directories whose files never trigger a re-index (the index itself lives in .enclave/).
IGNORED_DIRS = (".enclave/", ".git/")
# How long a request waits for an index that is still being opened (about a second at start).
OPEN_WAIT_S = 5.0


@dataclass(eq=False)
class Root:
    """One workspace folder: its configuration, its index and what we know of its state."""

    path: Path
    config: Config
    index: Index | None = None
    error: IndexProblem | None = None  # the index cannot be opened or updated
    indexing: bool = False
    ready: bool = False  # the first update finished (the index is usable before that)
    status: IndexStatus | None = None
    last_summary: IndexSummary | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set once the index has been opened (or could not be): requests that arrive right after
    # `initialized` wait for it instead of answering from no index.
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def relative(self, path: Path) -> str | None:
        return relative_to(self.path, path)


@dataclass(frozen=True, slots=True)
class Document:
    """A document of a workspace root as a prompt may use it."""

    root: Root
    path: str  # repository-relative
    text: str


class RecentEdits:
    """Most recently edited documents (uri -> 0-based line of the last change), newest last."""

    def __init__(self, size: int = 8) -> None:
        self._edits: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._size = size

    def touch(self, uri: str, line: int) -> None:
        self._edits.pop(uri, None)
        self._edits[uri] = (line, time.monotonic())
        while len(self._edits) > self._size:
            self._edits.popitem(last=False)

    def forget(self, uri: str) -> None:
        self._edits.pop(uri, None)

    def newest_first(self) -> list[tuple[str, int]]:
        return [(uri, line) for uri, (line, _) in reversed(self._edits.items())]


class Services:
    """Everything the feature modules share (passed explicitly, never imported as a global)."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.init_options: dict[str, Any] = {}
        # From workspace/configuration or didChangeConfiguration. None until the client sent a
        # section `enclave`; from then on it replaces initializationOptions (a setting the user
        # removed must fall back to its default, not to the value the server started with).
        self.client_settings: dict[str, Any] | None = None
        self.roots: list[Root] = []
        self.config = Config()  # the first root's configuration (model settings)
        # Held while settings are read and applied (at `initialized`, on each change, for new
        # workspace folders): a change the client sends while the first read is under way is
        # measured against the configured settings, not against the defaults.
        self.settings_lock = asyncio.Lock()
        self.model: ModelClient | None = None
        self.model_problem: ModelError | None = None
        self.recent = RecentEdits()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inbox: Inbox | None = None  # the client's messages read and not yet handled (stdio)

    # -- client communication (safe from any thread) -------------------------------------------
    def call_soon(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` on the server's event loop (at once when already on it)."""
        loop = self.loop
        if loop is None:
            function(*args)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            function(*args)
        else:
            loop.call_soon_threadsafe(function, *args)

    def notify(self, method: str, params: Any) -> None:
        self.call_soon(self.server.protocol.notify, method, params)

    def show_message(
        self, message: str, kind: types.MessageType = types.MessageType.Warning
    ) -> None:
        params = types.ShowMessageParams(type=kind, message=message)
        self.call_soon(self.server.window_show_message, params)
        self.log_message(message, kind)

    def log_message(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        params = types.LogMessageParams(type=kind, message=message)
        self.call_soon(self.server.window_log_message, params)

    # -- lookups -------------------------------------------------------------------------------
    async def wait_opened(self, root: Root, timeout: float = OPEN_WAIT_S) -> None:
        """Wait (at most ``timeout``) until ``root``'s index has been opened."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(root.opened.wait(), timeout)

    def root_for(self, uri: str) -> tuple[Root, str] | None:
        """The root holding the document at ``uri`` and its repository-relative path."""
        path = uri_to_path(uri)
        if path is None:
            return None
        best: tuple[Root, str] | None = None
        for root in self.roots:
            relative = root.relative(path)
            if relative is not None and (
                best is None or len(str(root.path)) > len(str(best[0].path))
            ):
                best = (root, relative)
        return best

    def document(self, uri: str) -> Document:
        """The document at ``uri`` as a prompt may use it, or :class:`Refused` saying why not.

        It must be inside a workspace folder. An open document is its buffer (unsaved text
        included); one the client has not opened is read through the trust boundary (a regular
        file of the workspace, under the size cap), never by pygls from anywhere on disk.
        """
        found = self.root_for(uri)
        if found is None:
            raise Refused(
                f"{uri} is not inside a workspace folder Enclave indexes",
                "open the file from a workspace folder",
            )
        root, path = found
        opened = self.server.workspace.text_documents.get(uri)
        if opened is not None:
            return Document(root, path, opened.source)
        file = Boundary(root.config, [root.path]).read_file(root.path / path)
        return Document(root, file.path, file.text)

    def recent_edits(self, limit: int = 4) -> list[RecentEdit]:
        """Open buffers edited recently, newest first, with their current (unsaved) text."""
        edits: list[RecentEdit] = []
        for uri, line in self.recent.newest_first():
            found = self.root_for(uri)
            if found is None:
                continue
            document = self.server.workspace.text_documents.get(uri)
            if document is None:  # closed since: its unsaved text is gone
                continue
            text = document.source
            edits.append(RecentEdit(path=found[1], text=text, line=line))
            if len(edits) >= limit:
                break
        return edits

    def completion_model(self) -> str:
        return self.config.ollama.effective_completion_model
