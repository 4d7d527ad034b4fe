"""Indexing inside the server: open/build each root's index in the background, keep it fresh.

On `initialized` the lifecycle calls :meth:`Indexing.start` for every root: the index is opened and
updated on a worker thread while `$/progress` (cancellable) and `enclave/status` tell the client
how far it got; the event loop stays free. `didSave` and `workspace/didChangeWatchedFiles`
re-index just those files after a short debounce. Unsaved buffers are never written to the index.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import Future
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from enclave.indexer.api import Index, IndexProblem, IndexSummary, open_index
from enclave.server.lsp import updates
from enclave.server.lsp.convert import to_plain
from enclave.server.lsp.services import IGNORED_DIRS, Root, Services
from enclave.server.lsp.status import StatusReporter

log = logging.getLogger(__name__)
SAVE_DEBOUNCE_S = 0.3
REPORT_EVERY_S = 0.1


class _Progress:
    """A `$/progress` work-done bar for one indexing run (no-op if the client has none)."""

    def __init__(self, server: LanguageServer, services: Services) -> None:
        self.server = server
        self.services = services
        self.token: str | None = None
        self._last = 0.0

    async def begin(self, title: str) -> None:
        if not get_capability(self.server.client_capabilities, "window.work_done_progress", False):
            return
        token = f"enclave-index-{uuid.uuid4().hex[:12]}"
        # Registered before the client knows the token: its cancel can be read together with
        # its reply to `create`, before this coroutine resumes (pygls' create_async registers
        # the token only then, and would ignore that cancel).
        tokens = self.server.work_done_progress.tokens
        tokens[token] = Future()
        try:
            await self.server.protocol.send_request_async(
                types.WINDOW_WORK_DONE_PROGRESS_CREATE,
                types.WorkDoneProgressCreateParams(token=token),
            )
        except Exception as exc:
            tokens.pop(token, None)
            log.warning("the client refused a progress token: %s", exc)
            return
        self.token = token
        self.server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0),
        )

    def cancelled(self) -> bool:
        if self.token is None:
            return False
        future = self.server.work_done_progress.tokens.get(self.token)
        return bool(future is not None and future.cancelled())

    def report(self, done: int, total: int, message: str) -> None:
        """Called from the indexing thread: throttled, forwarded to the event loop."""
        if self.token is None:
            return
        now = time.monotonic()
        if now - self._last < REPORT_EVERY_S and done < total:
            return
        self._last = now
        percentage = int(done * 100 / total) if total else 0
        text = message or f"{done}/{total} files"  # the indexer's own words: files or chunks
        value = types.WorkDoneProgressReport(message=text, percentage=percentage, cancellable=True)
        token = self.token
        self.services.call_soon(self.server.work_done_progress.report, token, value)

    def end(self, message: str) -> None:
        if self.token is not None:
            self.server.work_done_progress.end(
                self.token, types.WorkDoneProgressEnd(message=message)
            )
            self.server.work_done_progress.tokens.pop(self.token, None)


class Indexing:
    """Runs index updates for the roots, one at a time per root."""

    def __init__(self, server: LanguageServer, services: Services, status: StatusReporter) -> None:
        self.server = server
        self.services = services
        self.status = status
        self._pending: dict[int, set[str]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    async def _open(self, root: Root) -> Index:
        if root.index is None:
            root.index = await asyncio.to_thread(open_index, root.path, root.config)
            root.status = await asyncio.to_thread(root.index.status)
            root.error = None
        root.opened.set()
        return root.index

    async def close(self, root: Root) -> None:
        """Close the index (the next refresh opens it again, e.g. with new settings)."""
        async with root.lock:
            root.opened.clear()
            if root.index is not None:
                index, root.index = root.index, None
                await asyncio.to_thread(index.close)

    async def refresh(
        self, root: Root, *, full: bool = False, paths: list[str] | None = None
    ) -> IndexSummary | None:
        """Open (if needed) and update ``root``'s index; publishes status before and after."""
        async with root.lock:
            progress = _Progress(self.server, self.services)
            root.indexing = paths is None
            if root.indexing:
                self.status.publish(root)
                await progress.begin(f"Enclave: indexing {root.path.name}")
            summary: IndexSummary | None = None
            try:
                index = await self._open(root)
                status = root.status
                # a first build or a rebuild of a damaged index is heavy: a child process
                exists = status is not None and status.exists and status.healthy
                summary = await asyncio.to_thread(
                    updates.update,
                    index,
                    in_child=paths is None and (full or not exists),
                    full=full,
                    paths=paths,
                    progress=progress.report,
                    cancelled=progress.cancelled,
                )
                root.last_summary = summary
                root.status = await asyncio.to_thread(index.status)
                # the self-check reads columns; hand what it read back to the system
                await asyncio.to_thread(updates.release_memory)
                root.error = None
                index.prefetch()  # e.g. copy a shared index locally, in the background
            except IndexProblem as exc:
                log.warning("index of %s unusable: %s", root.path, exc)
                root.error = exc
            except Exception as exc:
                log.exception("indexing %s failed", root.path)
                root.error = IndexProblem(
                    f"indexing failed: {exc}",
                    "see the Enclave server log, then run `enclave.reindex`",
                )
            finally:
                root.opened.set()  # opened, or it never will be: nobody waits in vain
                root.indexing = False
                if summary is not None:
                    done = "cancelled" if summary.cancelled else "done"
                    progress.end(
                        f"{done}: {summary.files_indexed} files indexed in {summary.seconds:.1f} s"
                    )
                else:
                    progress.end("failed")
                if root.error is None:
                    root.ready = True
                self.status.publish(root)
            return summary

    def start(self, root: Root, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(self.refresh(root, **kwargs))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def schedule(self, uris: list[str]) -> None:
        """Re-index these files after a short quiet period (saves and watched-file events)."""
        loop = asyncio.get_running_loop()
        for uri in uris:
            found = self.services.root_for(uri)
            if found is None:
                continue
            root, relative = found
            if relative.startswith(IGNORED_DIRS) or relative == ".enclave":
                continue
            key = id(root)
            self._pending.setdefault(key, set()).add(relative)
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_later(SAVE_DEBOUNCE_S, self._flush, root)

    def _flush(self, root: Root) -> None:
        paths = sorted(self._pending.pop(id(root), set()))
        self._timers.pop(id(root), None)
        if paths:
            self.start(root, paths=paths)


def register(server: LanguageServer, services: Services, status: StatusReporter) -> Indexing:
    """Saves, watched files and `enclave.reindex`; returns the indexer the lifecycle starts."""
    indexing = Indexing(server, services, status)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        indexing.schedule([params.text_document.uri])

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched(ls: LanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
        indexing.schedule([change.uri for change in params.changes])

    @server.command("enclave.reindex")
    async def reindex(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        options = to_plain(args[0]) if args else {}
        if not isinstance(options, dict):
            raise JsonRpcInvalidParams('enclave.reindex takes one optional object: {"full": bool}')
        return await reindex_all(services, indexing, full=bool(options.get("full", False)))

    return indexing


async def reindex_all(services: Services, indexing: Indexing, *, full: bool) -> dict[str, Any]:
    """Update every root's index now; one summary (or error) per root."""
    summaries = []
    for root in services.roots:
        summary = await indexing.refresh(root, full=full)
        if summary is not None:
            summaries.append(summary.to_json())
        else:
            error = root.error.message if root.error else "unknown"
            summaries.append({"root": str(root.path), "error": error})
    return {"roots": summaries}


async def register_file_watcher(server: LanguageServer) -> None:
    """Ask the client to send didChangeWatchedFiles for the workspace (if it can register)."""
    capable = get_capability(
        server.client_capabilities, "workspace.did_change_watched_files.dynamic_registration", False
    )
    if not capable:
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
    )
    registration = types.Registration(
        id="enclave-watch",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await server.client_register_capability_async(types.RegistrationParams([registration]))
    except Exception as exc:
        log.warning("could not register a file watcher: %s", exc)
