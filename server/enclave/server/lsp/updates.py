"""Index updates run where they cost the editor least.

A first build (or ``full`` rebuild) runs in a child process: building a large index takes
hundreds of megabytes the server process would otherwise keep for its whole life. The child
reports over a queue in typed events (:class:`Progress`, :class:`Done`, :class:`Refused`,
:class:`Crashed`) and cancellation goes out through an event. Small incremental updates (saves,
an already indexed repository) run in a worker thread of the server, after which freed memory is
handed back to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.config import Config
from enclave.indexer.api import Index, IndexProblem, IndexSummary, ProgressFn, open_index

log = logging.getLogger(__name__)
POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the update in the child got (what ``ProgressFn`` is called with)."""

    done: int
    total: int
    message: str


@dataclass(frozen=True, slots=True)
class Done:
    """The update finished (or was cancelled between batches): its summary."""

    summary: IndexSummary


@dataclass(frozen=True, slots=True)
class Refused:
    """The index could not be updated (an ``IndexProblem``: its message and fix)."""

    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class Crashed:
    """Any other exception in the child (a bug): its type and text."""

    detail: str


ChildEvent = Progress | Done | Refused | Crashed


def release_memory() -> None:
    """Give memory freed by an update back to the system (Arrow's pool, then glibc's heap)."""
    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except Exception:
        log.debug("arrow pool release failed", exc_info=True)
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _child(root: str, config: Config, full: bool, events: Any, stop: Any) -> None:
    """The child process: update the index of ``root``, telling ``events`` how it goes."""
    logging.basicConfig(level=logging.WARNING)
    try:
        index = open_index(Path(root), config)
        summary = index.update(
            full=full,
            progress=lambda done, total, message: events.put(Progress(done, total, message)),
            cancelled=stop.is_set,
        )
        index.close()
        events.put(Done(summary))
    except IndexProblem as exc:
        events.put(Refused(exc.message, exc.fix))
    except BaseException as exc:
        events.put(Crashed(f"{type(exc).__name__}: {exc}"))


def _received(event: ChildEvent, progress: ProgressFn) -> IndexSummary | None:
    """Act on one event of the child: the summary when it is done, None while it works."""
    match event:
        case Progress(done, total, message):
            progress(done, total, message)
            return None
        case Done(summary):
            return summary
        case Refused(message, fix):
            raise IndexProblem(message, fix)
        case Crashed(detail):
            raise RuntimeError(detail)


def update_in_child(
    root: Path,
    config: Config,
    *,
    full: bool,
    progress: ProgressFn,
    cancelled: Callable[[], bool],
) -> IndexSummary:
    """Run ``Index.update`` in a spawned process; blocking (call from a worker thread)."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    process = context.Process(
        target=_child, args=(str(root), config, full, events, stop), daemon=False
    )  # not a daemon: the indexer starts its own worker processes
    process.start()
    try:
        while True:
            if cancelled() and not stop.is_set():
                stop.set()
            try:
                event: ChildEvent = events.get(timeout=POLL_S)
            except queue.Empty:
                if not process.is_alive():
                    raise IndexProblem(
                        f"the indexing process ended unexpectedly (exit code {process.exitcode})",
                        "see the Enclave server log, then run `enclave.reindex`",
                    ) from None
                continue
            summary = _received(event, progress)
            if summary is not None:
                return summary
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


def update(
    index: Index,
    *,
    in_child: bool,
    full: bool,
    paths: list[str] | None,
    progress: ProgressFn,
    cancelled: Callable[[], bool],
) -> IndexSummary:
    """Update ``index``: in a child process for builds, here for small updates."""
    if in_child:
        return update_in_child(
            index.root, index.config, full=full, progress=progress, cancelled=cancelled
        )
    try:
        return index.update(full=full, paths=paths, progress=progress, cancelled=cancelled)
    finally:
        release_memory()
