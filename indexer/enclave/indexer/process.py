"""Turn discovered files into rows: read -> redact -> chunk. Pure, so it runs in worker processes.

:func:`process_in_batches` is what an update calls: the changed files in batches, processed in a
pool of worker processes when there are many.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from enclave.indexer.tokens import search_text
from enclave.indexer.types import Candidate, Skipped

log = logging.getLogger(__name__)

BATCH_FILES = 256
BATCH_BYTES = 8 * 1024 * 1024
POOL_THRESHOLD = 64  # fewer changed files than this are processed in-process


@dataclass(slots=True)
class FileRows:
    path: str
    file: dict[str, Any]
    chunks: list[dict[str, Any]] = field(default_factory=list)
    symbols: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""  # a problem worth telling the user; the file may still be partly indexed
    bytes: int = 0


def _file_row(
    candidate: Candidate, state: str, detail: str, chunks: int, imports: list[str]
) -> dict[str, Any]:
    return {
        "path": candidate.path,
        "content_id": candidate.content_id,
        "size": candidate.size,
        "language": candidate.language,
        "state": state,
        "detail": detail,
        "chunks": chunks,
        "imports": imports,
    }


def process_file(root: Path, candidate: Candidate, pii: bool = False) -> FileRows:
    """Everything the store needs for ``candidate``; never raises (errors become a row state).
    ``pii``: emails and phone numbers are redacted too (``trust.redact_pii``)."""
    from enclave.indexer.chunker import analyze
    from enclave.indexer.discover import read_source
    from enclave.indexer.redact import redact_all

    try:
        source = read_source(root, candidate)
        if isinstance(source, Skipped):
            row = _file_row(candidate, f"skipped:{source.reason}", source.detail, 0, [])
            return FileRows(candidate.path, row)
        redaction = redact_all(source.text, candidate.path, pii=pii)
        analysis = analyze(candidate.path, redaction.text, candidate.language)
    except Exception as exc:  # one bad file must never stop the index
        log.warning("cannot index %s: %s", candidate.path, exc, exc_info=True)
        message = f"{type(exc).__name__}: {exc}"
        return FileRows(
            candidate.path, _file_row(candidate, "error", message, 0, []), error=message
        )

    notes = [n for n in (source.note, analysis.note) if n]
    if analysis.parse_errors:
        notes.append(f"{analysis.parse_errors} syntax error(s): chunked around them")
    if redaction.findings:
        notes.append(f"{len(redaction.findings)} secret(s) or personal data redacted")
    chunks = [
        {
            "id": f"{c.path}:{c.start_line}-{c.end_line}",
            "path": c.path,
            "language": c.language,
            "kind": c.kind,
            "symbol": c.symbol,
            "start_line": c.start_line,
            "end_line": c.end_line,
            "text": c.text,
            "search_text": search_text(c.text, c.path, c.symbol),
            "content_hash": c.content_hash,
        }
        for c in analysis.chunks
    ]
    symbols = [
        {
            "name": s.name,
            "qualified_name": s.qualified_name,
            "kind": s.kind,
            "path": s.path,
            "start_line": s.start_line,
            "end_line": s.end_line,
            "signature": s.signature,
            "doc": s.doc,
        }
        for s in analysis.symbols
    ]
    row = _file_row(candidate, "indexed", "; ".join(notes), len(chunks), list(analysis.imports))
    return FileRows(candidate.path, row, chunks, symbols, bytes=candidate.size)


def worker_init(parent_pid: int) -> None:
    """Pool worker start-up: die with the indexing process, even when it is killed with -9."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # platforms without prctl
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_count() -> int:
    return min(os.cpu_count() or 1, 4)


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers are our direct children (they die with us: see worker_init) and no
    # LanceDB thread state is forked. Scripts calling update() need the usual __main__ guard.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=worker_init,
        initargs=(os.getpid(),),
    )


_started: ProcessPoolExecutor | None = None


def start_workers() -> None:
    """Start the worker processes now, for a build of many files about to begin (`enclave
    index` on a repository without an index): the workers' start-up (an interpreter each and
    the chunker's imports, about 0.5 s for two) then overlaps with this process's own imports
    and discovery instead of holding up the first batch. The next :func:`process_in_batches`
    takes them; :func:`stop_workers` ends them when it did not."""
    global _started
    workers = _worker_count()
    if _started is not None or workers < 2:
        return
    _started = _pool(workers)
    for _ in range(workers):  # one task each: the pool starts a process per task it is given
        _started.submit(warm_up)


def stop_workers() -> None:
    """End the workers :func:`start_workers` started, if no update took them."""
    pool = _take_started()
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _take_started() -> ProcessPoolExecutor | None:
    global _started
    pool, _started = _started, None
    return pool


def warm_up() -> None:
    """A worker's first task: import what processing a file needs."""
    import enclave.indexer.chunker
    import enclave.indexer.discover
    import enclave.indexer.redact  # noqa: F401


def process_many(root: str, candidates: list[Candidate], pii: bool = False) -> list[FileRows]:
    """Worker entry point: a slice of files per task keeps inter-process traffic low."""
    base = Path(root)
    return [process_file(base, c, pii) for c in candidates]


def process_in_batches(root: Path, changed: list[Candidate], pii: bool) -> Iterator[list[FileRows]]:
    """Yield processed files in batches, in parallel when there are many."""
    batches: list[list[Candidate]] = []
    current: list[Candidate] = []
    size = 0
    for candidate in changed:
        current.append(candidate)
        size += candidate.size
        if len(current) >= BATCH_FILES or size >= BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    workers = _worker_count()
    if len(changed) < POOL_THRESHOLD or workers < 2:
        stop_workers()  # started for a build that turned out small
        for batch in batches:
            yield [process_file(root, c, pii) for c in batch]
        return
    # Small tasks keep both cores busy; results come back in batch order. The next batch is
    # queued before one is handed over: the workers go on while the caller writes it, and
    # no worker waits for another to finish a batch's last task (two batches in memory at most).
    with _take_started() or _pool(workers) as pool:

        def submit(batch: list[Candidate]) -> list[Future[list[FileRows]]]:
            step = max(1, len(batch) // (workers * 4))
            parts = [batch[i : i + step] for i in range(0, len(batch), step)]
            return [pool.submit(process_many, str(root), part, pii) for part in parts]

        queued: deque[list[Future[list[FileRows]]]] = deque()
        try:
            for batch in batches:
                queued.append(submit(batch))
                if len(queued) > 1:
                    yield [rows for future in queued.popleft() for rows in future.result()]
            while queued:
                yield [rows for future in queued.popleft() for rows in future.result()]
        finally:  # the caller stopped early (cancelled): what has not started never will
            for futures in queued:
                for future in futures:
                    future.cancel()
