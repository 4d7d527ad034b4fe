"""A team's shared index with a local overlay: what :func:`enclave.indexer.api.open_index` returns
when ``index.shared`` is set.

The shared index (built by CI, often in an object store) is opened read-only: nothing here ever
writes to it. What differs between it and the working tree — files changed on another branch or
by uncommitted edits, untracked files — is indexed into the usual local store (``index.db``,
``.enclave/`` by default), which holds only those files. Files the shared index has and the
working tree does not are hidden. Answers merge both: an overlay file shadows the shared rows of
the same path, so the server code sees one :class:`~enclave.indexer.api.Index`.

Differences are found by content, not by commit (:mod:`enclave.indexer.difference`): a shared
index of any commit, fetched or not, compares exactly.

If the shared index cannot be reached, an update builds a full local index instead (the overlay
takes every file) and the status says so; a query that fails on the shared store mid-session
answers from the local store and marks the shared index unavailable until the next update.

A shared index in an object store is copied into the user cache in the background once the
server is ready (:meth:`LayeredIndex.prefetch`, :mod:`enclave.indexer.mirror`; ``index.sharedCopy``
turns it off): queries read the copy when it holds the versions the overlay was compared with,
and the store until then, or whenever the copy fails.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TypeVar

from enclave.config import Config
from enclave.indexer.difference import Difference, compare
from enclave.indexer.embed import configured_model_id
from enclave.indexer.engine import EngineIndex
from enclave.indexer.errors import IndexProblem, brief, is_storage_error
from enclave.indexer.mirror import CopyStopped, Mirror, MirrorError, mirror_folder
from enclave.indexer.results import (
    IndexStatus,
    IndexSummary,
    ProgressFn,
    Reason,
    SearchResult,
)
from enclave.indexer.search import symbol_score
from enclave.indexer.store import storage_options_for
from enclave.indexer.tables import in_clause
from enclave.indexer.types import Chunk, SymbolDef

log = logging.getLogger(__name__)

T = TypeVar("T")
# An overlay of at most this many chunks answers full-text queries from memory (a few MB).
OVERLAY_MEMORY_ROWS = 2_000
NO_PATHS: frozenset[str] = frozenset()


class LayeredIndex:
    """:class:`~enclave.indexer.api.Index` over a read-only shared index and a local overlay."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        # Its full-text queries run in memory while it is small (the usual few edited files):
        # a second LanceDB query per search would cost about what the shared one does.
        self.overlay = EngineIndex(root, config, memory_text_rows=OVERLAY_MEMORY_ROWS)
        self.db_uri = self.overlay.db_uri
        shared_index = dataclasses.replace(config.index, db=config.index.shared)
        self.shared = EngineIndex(
            root, dataclasses.replace(config, index=shared_index), read_only=True
        )
        self.shared_uri = self.shared.db_uri
        self._difference: Difference | None = None
        self._unavailable: Reason | None = None  # why the shared index is not used now
        self._guard = threading.Lock()
        # The local copy of a shared index in an object store (index.shared_copy), and whether
        # queries read it: only when it holds the versions the difference was computed with.
        self.mirror: Mirror | None = None
        self._copy_index: EngineIndex | None = None
        self._copy_current = False
        self._copying: threading.Thread | None = None
        if config.index.shared_copy and "://" in self.shared_uri:
            folder = mirror_folder(self.shared_uri)
            options = storage_options_for(config.index.s3_endpoint, config.index.s3_region)
            self.mirror = Mirror(self.shared_uri, options, folder)
            copy_index = dataclasses.replace(config.index, db=str(folder))
            self._copy_index = EngineIndex(
                root, dataclasses.replace(config, index=copy_index), read_only=True
            )

    # ---- the shared side ----------------------------------------------------------------
    def _lost(self, exc: BaseException) -> Reason:
        detail = exc.message if isinstance(exc, IndexProblem) else brief(exc)
        reason = Reason(
            f"the shared index at {self.shared_uri} is unavailable ({detail}): answers come"
            f" from the local index at {self.db_uri} only",
            "check the network and the store's credentials; the next update (`enclave index`,"
            " or saving a file in the editor) builds a full local index until it is back",
        )
        if self._unavailable is None:
            log.warning("%s", reason)
        self._unavailable = reason
        return reason

    def _on_shared(self, read: Callable[[EngineIndex], T]) -> T:
        """``read(side)`` on the local copy of the shared index when it is current, else on the
        store; a copy that fails is dropped and the store answers instead."""
        copy = self._copy_index
        if self._copy_current and copy is not None:
            try:
                return read(copy)
            except IndexProblem as exc:
                if exc.message.startswith("semantic search is off"):
                    raise  # the index's answer, not a failure of the copy
                self._drop_copy(exc)
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                self._drop_copy(exc)
        return read(self.shared)

    def _drop_copy(self, exc: BaseException) -> None:
        self._copy_current = False
        detail = exc.message if isinstance(exc, IndexProblem) else brief(exc)
        assert self.mirror is not None
        log.warning(
            "the local copy of the shared index at %s failed (%s): reading %s itself; the copy"
            " is removed and made again after the next update",
            self.mirror.folder,
            detail,
            self.shared_uri,
        )
        self.mirror.remove()

    def _from_shared(self, read: Callable[[EngineIndex], T], default: T) -> T:
        """``read(side)`` on the shared index, or ``default`` (and the shared index marked
        unavailable) when its store fails: a broken network is not a crash."""
        if self._unavailable is not None:
            return default
        try:
            return self._on_shared(read)
        except IndexProblem as exc:
            self._lost(exc)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self._lost(exc)
        return default

    def difference(self) -> Difference:
        """Compare the working tree with the shared catalog (raises if the shared store fails)."""
        return compare(
            self.shared.store,
            self.shared_uri,
            self.root,
            self.config.index,
            with_versions=self.mirror is not None,
        )

    def _adopt(self, difference: Difference | None) -> None:
        """Answer from now on for ``difference``: the local copy serves queries if it holds the
        shared versions compared with."""
        self._difference = difference
        current = False
        if self.mirror is not None and difference is not None and difference.versions:
            current = self.mirror.versions() == difference.versions
        self._copy_current = current

    # ---- the local copy -------------------------------------------------------------------
    def prefetch(self, *, wait: bool = False) -> None:
        """Copy the shared index into the user cache in the background, if it is in an object
        store and the copy does not hold the versions compared with yet; queries switch to the
        copy when it is complete and verified. ``wait``: return when that copy is done."""
        difference = self._difference
        if (
            self.mirror is None
            or self._copy_current
            or self._unavailable is not None
            or difference is None
            or not difference.versions
        ):
            return
        with self._guard:
            thread = self._copying
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._copy, args=(difference,), name="enclave-copy", daemon=True
                )
                self._copying = thread
                thread.start()
        if wait:
            thread.join()

    def _copy(self, difference: Difference) -> None:
        assert self.mirror is not None and difference.versions
        started = time.perf_counter()
        try:
            done = self.mirror.copy(difference.versions)
        except CopyStopped:
            log.debug(
                "copying the shared index %s stopped: the process is exiting", self.shared_uri
            )
            return
        except MirrorError as exc:
            log.warning(
                "copying the shared index %s to %s failed: %s; queries read the store meanwhile",
                self.shared_uri,
                self.mirror.folder,
                exc,
            )
            return
        except Exception as exc:
            if not (is_storage_error(exc) or isinstance(exc, IndexProblem)):
                log.exception("copying the shared index %s failed", self.shared_uri)
                return
            detail = exc.message if isinstance(exc, IndexProblem) else brief(exc)
            log.warning(
                "copying the shared index %s to %s failed: %s; queries read the store meanwhile",
                self.shared_uri,
                self.mirror.folder,
                detail,
            )
            return
        if done and self._difference is difference:
            self._copy_current = True
            log.info(
                "the shared index %s is read from its local copy %s (made in %.1f s)",
                self.shared_uri,
                self.mirror.folder,
                time.perf_counter() - started,
            )

    def _hidden(self) -> frozenset[str]:
        if self._difference is None and self._unavailable is None:
            with self._guard:
                if self._difference is None:
                    try:
                        self._adopt(self.difference())
                    except IndexProblem as exc:
                        self._lost(exc)
                    except Exception as exc:
                        if not is_storage_error(exc):
                            raise
                        self._lost(exc)
        return self._difference.hidden if self._difference else frozenset()

    def _use_shared(self) -> bool:
        self._hidden()
        return self._unavailable is None

    def _overlay_ready(self) -> bool:
        try:
            return self.overlay.has_index()
        except IndexProblem:
            return False

    def not_indexed_here(self) -> frozenset[str]:
        """Files of the working tree that differ from the shared index and that the overlay
        does not hold as they are now: their shared rows are hidden and the overlay lacks them,
        so no query finds them until an update (the language server runs one at start)."""
        self._hidden()
        difference = self._difference
        if difference is None or not difference.local:
            return frozenset()
        if not self._overlay_ready():
            return difference.local
        catalog = self.overlay.store.catalog()
        return frozenset(
            path
            for path in difference.local
            if (row := catalog.get(path)) is None or row.content_id != difference.local_ids[path]
        )

    def catch_up(self, limit: int) -> str:
        """Index the files :meth:`not_indexed_here` into the overlay when they are at most
        ``limit`` and no other process is writing it (a command-line search before the first
        `enclave index`); returns a note saying what was done, or what the user should do
        ("" when the overlay was up to date)."""
        pending = self.not_indexed_here()
        if not pending:
            return ""
        count = len(pending)
        if count > limit or self.overlay.writer_active():
            return (
                f"{count} file(s) differ from the shared index and are not indexed here yet,"
                f" so search does not find them: run `enclave index {self.root}`"
            )
        summary = self.update()
        return (
            f"indexed {summary.files_indexed} file(s) that differ from the shared index into"
            f" {self.db_uri} first"
        )

    # ---- update ---------------------------------------------------------------------------
    def update(
        self,
        *,
        full: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        complete_only: bool = False,
    ) -> IndexSummary:
        """Index what differs from the shared index into the local store (every file when the
        shared index cannot be reached). ``paths`` is a hint only: the difference is computed
        again, since an edit can make a file equal to the shared one."""
        self._unavailable = None
        try:
            difference: Difference | None = self.difference()
        except IndexProblem as exc:
            self._lost(exc)
            difference = None
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self._lost(exc)
            difference = None
        self._adopt(difference)
        summary = self.overlay.update(
            full=full,
            progress=progress,
            cancelled=cancelled,
            complete_only=complete_only,
            scope=difference.local if difference is not None else None,
        )
        if difference is None:
            assert self._unavailable is not None
            summary.notes.append(f"{self._unavailable.message}: indexed every file locally")
        else:
            summary.notes.append(
                f"shared index {self.shared_uri} at commit {difference.shared_commit[:12] or '-'}:"
                f" {len(difference.local)} file(s) indexed locally over it,"
                f" {len(difference.deleted)} of its file(s) hidden (not in this working tree)"
            )
        return summary

    # ---- queries --------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        path_prefix: str | None = None,
        language: str | None = None,
    ) -> SearchResult:
        hidden = self._hidden()
        results: list[SearchResult] = []
        off: Reason | None = None
        if self._overlay_ready():
            try:
                results.append(
                    self.overlay.search(
                        query, k=k, mode=mode, path_prefix=path_prefix, language=language
                    )
                )
            except IndexProblem as exc:
                if mode != "semantic":
                    raise
                off = Reason(exc.message, exc.fix)
        if self._use_shared():
            try:
                found = self._on_shared(
                    lambda side: side.search(
                        query, k=k, mode=mode, path_prefix=path_prefix, language=language,
                        exclude=hidden,
                    )
                )  # fmt: skip
                results.append(dataclasses.replace(found, semantic_off=self._told(found)))
            except IndexProblem as exc:
                if exc.message.startswith("semantic search is off"):  # semantic mode only
                    off = off or self._told(SearchResult([], Reason(exc.message, exc.fix)))
                else:
                    self._lost(exc)
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                self._lost(exc)
        hits = sorted((h for r in results for h in r.hits), key=lambda h: -h.score)[:k]
        if mode == "semantic" and not results and off is not None:
            raise IndexProblem(off.message, off.fix)
        off = next((r.semantic_off for r in results if r.semantic_off), off)
        return SearchResult(hits, off)

    def _told(self, result: SearchResult) -> Reason | None:
        """The shared side's reason semantic search was off, with a fix that fits a shared
        index (it is rebuilt by CI, never here)."""
        off = result.semantic_off
        if off is None or "embedded with" not in off.message:
            return off
        return Reason(
            f"{off.message} (the shared index {self.shared_uri}): semantic results come from"
            " the locally indexed files only",
            "use the team's embedding model (embedding.model), or have the CI job rebuild the"
            " shared index with yours",
        )

    def _overlay_paths(self) -> frozenset[str]:
        return self.overlay.paths() if self._overlay_ready() else frozenset()

    def _shared_symbols(self, read: Callable[[EngineIndex], list[SymbolDef]]) -> list[SymbolDef]:
        if not self._use_shared():
            return []
        hidden = self._hidden()
        none: list[SymbolDef] = []
        return [s for s in self._from_shared(read, none) if s.path not in hidden]

    def _overlay_symbols(self, read: Callable[[], list[SymbolDef]]) -> list[SymbolDef]:
        return read() if self._overlay_ready() else []

    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        extra = len(self._hidden())
        found = self._overlay_symbols(lambda: self.overlay.find_symbols(query, limit=limit))
        found += self._shared_symbols(lambda side: side.find_symbols(query, limit=limit + extra))
        found.sort(key=lambda s: (-symbol_score(s, query), len(s.qualified_name), s.path))
        return found[:limit]

    def definitions(self, names: Collection[str], *, limit: int = 20) -> list[SymbolDef]:
        extra = len(self._hidden())
        found = self._overlay_symbols(lambda: self.overlay.definitions(names, limit=limit))
        found += self._shared_symbols(lambda side: side.definitions(names, limit=limit + extra))
        return found[:limit]

    def all_symbols(self) -> list[SymbolDef]:
        return self._overlay_symbols(self.overlay.all_symbols) + self._shared_symbols(
            lambda side: side.all_symbols()
        )

    def paths(self) -> frozenset[str]:
        mine = self._overlay_paths()
        if not self._use_shared():
            return mine
        hidden = self._hidden()
        theirs = self._from_shared(lambda side: side.paths(), NO_PATHS)
        return mine | frozenset(p for p in theirs if p not in hidden)

    def _side(self, path: str) -> EngineIndex | None:
        """Which index answers for ``path`` (None: neither has it)."""
        if path in self._overlay_paths():
            return self.overlay
        if self._use_shared() and path not in self._hidden():
            return self.shared
        return None

    def file_imports(self, path: str) -> list[str]:
        side = self._side(path)
        if side is self.shared:
            return self._from_shared(lambda side: side.file_imports(path), [])
        return side.file_imports(path) if side is not None else []

    def file_symbols(self, path: str) -> list[SymbolDef]:
        side = self._side(path)
        if side is self.shared:
            return self._from_shared(lambda side: side.file_symbols(path), [])
        return side.file_symbols(path) if side is not None else []

    def symbols_in(self, paths: Collection[str]) -> dict[str, list[SymbolDef]]:
        mine = self._overlay_paths()
        local = [p for p in paths if p in mine]
        found = self.overlay.symbols_in(local) if local else {}
        rest = [p for p in paths if p not in mine]
        if rest and self._use_shared():
            hidden = self._hidden()
            wanted = [p for p in rest if p not in hidden]
            none: dict[str, list[SymbolDef]] = {}
            found.update(self._from_shared(lambda side: side.symbols_in(wanted), none))
        return {p: found.get(p, []) for p in paths}

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        side = self._side(path)
        if side is self.shared:
            return self._from_shared(lambda side: side.chunk_at(path, line), None)
        return side.chunk_at(path, line) if side is not None else None

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        """The shared index's status with the overlay's counts; the shared index being
        unavailable, or built with another embedding model, is said (with the fix)."""
        local = self.overlay.status()
        shared: IndexStatus | None = None
        if self._use_shared():
            shared = self._from_shared(lambda side: side.status(), None)
        if shared is None or not shared.exists:
            status = dataclasses.replace(local, shared=self.shared_uri)
            reason = self._unavailable or Reason(
                f"no index at {self.shared_uri} (index.shared)",
                "check index.shared, or wait for the CI job that builds it",
            )
            status.shared_problem, status.shared_fix = reason.message, reason.fix
            return status
        difference = self._difference or Difference(frozenset(), frozenset(), "")
        status = dataclasses.replace(
            shared,
            root=str(self.root),
            db=self.db_uri,
            shared=self.shared_uri,
            overlay_files=local.files if local.exists else 0,
            hidden_files=len(difference.hidden_shared),
            shared_copy=str(self.mirror.folder) if self.mirror and self._copy_current else "",
        )
        shared_files = self._from_shared(lambda side: side.paths(), NO_PATHS)
        status.files = len(shared_files - difference.hidden) + status.overlay_files
        # the chunks answered here: the shared ones of files not hidden, and the overlay's
        status.chunks = (
            shared.chunks - difference.hidden_chunks + (local.chunks if local.exists else 0)
        )
        hidden = sorted(difference.hidden_shared)
        hidden_symbols = self._from_shared(
            lambda side: side.store.columns("symbols", ["path"], in_clause("path", hidden)).num_rows,
            0,
        ) if hidden else 0  # fmt: skip
        status.symbols = shared.symbols - hidden_symbols + (local.symbols if local.exists else 0)
        if local.exists and not local.healthy:
            status.healthy, status.problem, status.fix = False, local.problem, local.fix
        status.updating = shared.updating or local.updating
        self._embedding_mismatch(status)
        return status

    def _embedding_mismatch(self, status: IndexStatus) -> None:
        if self.config.embedding.provider == "none" or not status.embedding_model:
            return
        wanted = configured_model_id(self.config)
        if status.embedding_model == wanted:
            return
        status.semantic = False
        status.semantic_reason = (
            f"the shared index {self.shared_uri} was embedded with {status.embedding_model}"
            f" but {wanted} is configured: semantic search covers only the"
            f" {status.overlay_files} file(s) indexed locally"
        )
        status.semantic_fix = (
            f"use the team's model (embedding.model, so that it is {status.embedding_model}),"
            f" or have the CI job rebuild the shared index with {wanted}"
        )

    def close(self) -> None:
        self.overlay.close()
        self.shared.close()
        if self._copy_index is not None:
            self._copy_index.close()
