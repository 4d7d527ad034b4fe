"""The index engine: the implementation behind :class:`enclave.indexer.api.Index`.

Update = discover -> (read, redact, chunk in worker processes) -> store per batch -> embed what has
no vector yet -> meta. Queries read LanceDB (full text) and in-memory copies of the vectors and
symbols, refreshed when another writer changed the tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from lancedb.query import MatchQuery

from enclave.config import Config
from enclave.indexer.chunker import CHUNKER_VERSION
from enclave.indexer.embed import (
    EMBEDDING_INPUT_VERSION,
    Embedder,
    EmbeddingUnavailable,
    check_embedding,
    configured_model_id,
    embedding_input,
    make_embedder,
)
from enclave.indexer.errors import (
    IndexProblem,
    brief,
    is_storage_error,
    object_store_problem,
    write_problem,
)
from enclave.indexer.excludes import IgnoreRules
from enclave.indexer.fulltext import TextIndex
from enclave.indexer.lease import S3Lease, lease_holder
from enclave.indexer.lock import WriteLock, lock_path_for
from enclave.indexer.process import FileRows, process_file, process_many, worker_init
from enclave.indexer.results import (
    IndexStatus,
    IndexSummary,
    ProgressFn,
    Reason,
    SearchResult,
    vectors_expected,
)
from enclave.indexer.search import (
    VectorMatrix,
    fuse,
    kind_weight,
    symbol_score,
)
from enclave.indexer.store import (
    SCHEMA_VERSION,
    UPDATE_STARTED,
    Store,
    default_db,
    in_clause,
    quote,
    storage_options_for,
)
from enclave.indexer.tokens import query_text
from enclave.indexer.types import Candidate, Chunk, Discovery, SearchHit, Skipped, SymbolDef

log = logging.getLogger(__name__)

TOOL_VERSION = "0.1.0"
BATCH_FILES = 256
BATCH_BYTES = 8 * 1024 * 1024
VECTORS_MISSING = "vectors_missing"  # meta: chunks still to embed (set while embedding)
POOL_THRESHOLD = 64  # fewer changed files than this are processed in-process
COMPACT_FRAGMENTS = 64
# An update folds its new rows into the indexes (LanceDB's optimize: compaction, index update,
# removal of versions older than index.retain_minutes) only when one of these is reached. Folding
# rewrites the whole full-text index (about 6 MB for 50k chunks), which would be most of what a
# CI job writes for a one-commit change; until then full-text queries read the new rows one by
# one (about 30 us a row per query on 2 cores), so the bound keeps that under ~6 ms.
FOLD_ROWS = 200
FOLD_EVERY = timedelta(days=1)  # and at least this often, so old versions are removed
FOLDED_AT = "folded_at"  # meta: when an update last folded (ISO time)
DISCOVERY_SKIPPED = "discovery_skipped"  # meta: files left out before reading (see status)
EMBEDDING_INPUT = "embedding_input"  # meta: the form chunks were embedded as (embed.py)
VECTOR_FACTS = ("embedding_model", "embedding_dim", EMBEDDING_INPUT)  # what made the vectors
CHUNKER = "chunker_version"  # meta: the chunker that made the rows (another one re-indexes)
REDACT_PII = "redact_pii"  # meta: "true" when personal data was redacted (a change re-indexes)
EMBEDDING_CHECK_TTL = 10.0  # seconds a live check of the embedding provider is trusted
# Storage options of a read-only shared store: fail fast when it is unreachable.
READER_OPTIONS = {"connect_timeout": "2s", "timeout": "10s", "client_max_retries": "1"}
CHUNK_COLUMNS = ["id", "path", "language", "kind", "symbol", "start_line", "end_line", "text"]


def _row_filter(
    path_prefix: str | None, language: str | None, exclude: Collection[str]
) -> Callable[[Mapping[str, Any]], bool] | None:
    """The rows a search's filters keep, as a predicate (None: every row)."""
    if not (path_prefix or language or exclude):
        return None
    return lambda row: (
        (not path_prefix or row["path"].startswith(path_prefix))
        and (not language or row["language"] == language)
        and row["path"] not in exclude
    )


F = TypeVar("F", bound=Callable[..., Any])


def reads_index(method: F) -> F:
    """Turn a storage failure inside a query into IndexProblem saying the index is damaged.

    Only storage errors (``is_storage_error``: STORAGE_ERRORS, and the ValueError LanceDB raises
    for a table whose manifests are gone) mean that; any other exception, our own ValueErrors
    included, is a bug or a bad argument and propagates unchanged, so it is not disguised as
    damage a rebuild would fix.
    """

    @functools.wraps(method)
    def wrapper(self: EngineIndex, *args: Any, **kwargs: Any) -> Any:
        for attempt in (1, 2):
            try:
                return method(self, *args, **kwargs)
            except IndexProblem:
                raise
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                if attempt == 1:
                    # A writer compacted the tables and removed the version this reader had
                    # open (or committed between two reads): open them again at the newest.
                    log.info(
                        "reading the index at %s failed (%s): reloading it", self.db_uri, brief(exc)
                    )
                    self.reload()
                    continue
                # one line; the traceback only with -v (a damaged index is not a bug to debug)
                log.warning("reading the index at %s failed: %s", self.db_uri, brief(exc))
                log.debug("reading the index at %s failed", self.db_uri, exc_info=True)
                raise IndexProblem(
                    f"the index at {self.db_uri} is damaged or unreadable ({type(exc).__name__})",
                    f"run `enclave index --full {self.root}` to rebuild it",
                ) from exc
        raise AssertionError("unreachable")  # (the second attempt returns or raises)

    return wrapper  # type: ignore[return-value]


def embedding_progress(done: int, total: int, began: float) -> str:
    """ "embedded 224/1,630 chunks (25.1/s, about 56 s left)": embedding is the slow step on a CPU."""
    elapsed = max(time.perf_counter() - began, 1e-6)
    rate = done / elapsed
    left = (total - done) / rate if rate > 0 else 0.0
    eta = f"about {left:.0f} s left" if left < 120 else f"about {left / 60:.0f} min left"
    return f"embedded {done:,}/{total:,} chunks ({rate:.1f}/s, {eta if done < total else 'done'})"


def open_index(root: Path, config: Config) -> EngineIndex:
    root = Path(root).expanduser()
    if not root.exists():
        raise IndexProblem(f"no such directory: {root}", "pass the path of a repository")
    if not root.is_dir():
        raise IndexProblem(f"not a directory: {root}", "pass the path of a repository")
    return EngineIndex(root.resolve(), config)


class EngineIndex:
    """The LanceDB-backed implementation of :class:`enclave.indexer.api.Index`."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        db = config.index.db
        if db and "://" not in db and not Path(db).expanduser().is_absolute():
            db = str(root / db)  # a relative path in .enclave.toml means inside the repository
        self.db_uri = (
            str(Path(db).expanduser()) if db and "://" not in db else (db or default_db(root))
        )
        self._store: Store | None = None
        self._indexed: Store | None = None  # the opened store whose tables were all there
        self._lock = threading.RLock()
        self._vectors: VectorMatrix | None = None
        self._vectors_key: tuple[int, int] | None = None
        self._symbols: list[SymbolDef] | None = None
        self._symbols_by_name: dict[str, list[SymbolDef]] = {}
        self._symbols_by_path: dict[str, list[SymbolDef]] = {}
        self._paths: tuple[int, frozenset[str]] | None = None
        self._symbols_version: tuple[int, frozenset[str]] = (-1, frozenset())
        # indexed paths the rules in force now leave out, per version of the files table
        self._excluded: tuple[tuple[int, tuple[str, ...]], frozenset[str]] | None = None
        self._embedder_cache: Embedder | None = None
        self._embedding_check: tuple[float, Reason | None] | None = None
        self._processed = 0
        self._completing = False  # this update completes one that did not finish
        self._before_rebuild: frozenset[str] = frozenset()  # files held before a rebuild
        self._meta_version = -1
        self._meta_started = ""  # meta.update_started as of _meta_version
        # Read-only: a shared index (index.shared) that this process must never write.
        self.read_only = False
        # The only paths this index holds when set (a local overlay of a shared index).
        self.scope: frozenset[str] | None = None
        # Full-text queries of a table of at most this many chunks are answered in memory
        # (fulltext.TextIndex): 0 never. A local overlay sets it; the rows are kept per version.
        self.memory_text_rows = 0
        self._text: tuple[int, TextIndex | None] | None = None

    # ---- plumbing -----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        return self._open_store(create=False)

    def _writable_store(self) -> Store:
        """The store, its directory created if this is the first write."""
        return self._open_store(create=True)

    def _open_store(self, *, create: bool) -> Store:
        # A store opened where no index existed yet is opened again: another process (the
        # server's first build runs in a child) may have created it since.
        if self._store is None or self._store.db is None:
            self._store = Store(self.db_uri, self._storage_options(), create=create)
        return self._store

    def _storage_options(self) -> dict[str, str] | None:
        if "://" not in self.db_uri:
            return None
        options = self._s3_options() or {}
        if self.read_only:
            # a shared store that went away must fail a query in seconds, not minutes
            options = {**options, **READER_OPTIONS}
        return options or None

    def _s3_options(self) -> dict[str, str] | None:
        return storage_options_for(self.config.index.s3_endpoint, self.config.index.s3_region)

    def reload(self) -> None:
        """Open the tables again at their newest version (cached copies stay version-keyed)."""
        self._store = None

    def prefetch(self, *, wait: bool = False) -> None:
        """Nothing to fetch: this index is read where it is."""

    def close(self) -> None:
        self._store = None
        self._vectors = None
        self._symbols = None

    def has_index(self) -> bool:
        """Every table of an index is there. Checked once per opened store (a listing of the
        tables costs as much as a small query): tables dropped since make the next read fail,
        and the retry after it (``reads_index``) opens the store again and checks again."""
        store = self.store
        if self._indexed is store:
            return True
        if not store.has_index():
            return False
        self._indexed = store
        return True

    def _ready_store(self) -> Store:
        if not self.has_index():
            raise IndexProblem(
                f"no index at {self.db_uri}", f"run `enclave index {self.root}` first"
            )
        store = self.store
        self._check_complete(store)
        return store

    def _check_complete(self, store: Store) -> None:
        """Refuse to answer from an index whose last update started and never finished: it
        holds part of the repository. While a writer is at work, readers see its commits."""
        meta = store.table("meta")
        version = meta.version
        if version != self._meta_version:
            self._meta_started = store.meta().get(UPDATE_STARTED, "")
            self._meta_version = version
        if self._meta_started and not self._writer_active():
            problem = self._incomplete(self._meta_started)
            raise IndexProblem(problem.message, problem.fix)

    def _incomplete(self, started: str) -> Reason:
        return Reason(
            f"the index at {self.db_uri} is incomplete: the update started at"
            f" {started} did not finish, so it holds only part of the repository",
            f"run `enclave index {self.root}` to complete it",
        )

    def _writer_active(self) -> bool:
        """Some process (this one included) holds the write lock of this index right now."""
        if self.db_uri.startswith("s3://") and lease_holder(self.db_uri, self._s3_options()):
            return True  # a writer on another machine holds the lease
        try:
            fd = os.open(lock_path_for(self.db_uri), os.O_RDONLY)
        except OSError:
            return False  # never locked here
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    # ---- update -------------------------------------------------------------------------
    def update(
        self,
        *,
        full: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        complete_only: bool = False,
    ) -> IndexSummary:
        """Verify the index (rebuilding it when damaged), then bring it up to date. A full disk,
        read-only storage or another storage failure ends in one IndexProblem; an update that
        does not finish leaves the index marked incomplete until the next one completes it.

        ``complete_only``: a result that would be degraded (:meth:`_degraded`) is not published:
        nothing is written when the embedding provider does not answer at the start, and an
        incremental update that degrades later is taken back (its tables restored to the
        versions they had before it); ``summary.published`` is False then."""
        if self.read_only:
            raise IndexProblem(
                f"the index at {self.db_uri} is shared: this process reads it and never writes it",
                "the CI job that builds it updates it",
            )
        try:
            return self._update(
                full=full,
                paths=paths,
                progress=progress,
                cancelled=cancelled,
                complete_only=complete_only,
            )
        except IndexProblem:
            raise
        except TimeoutError as exc:  # the write lock: another writer for 10 minutes
            raise IndexProblem(
                str(exc), "wait for the other `enclave index` (or the editor's server) to finish"
            ) from exc
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            log.debug("updating the index at %s failed", self.db_uri, exc_info=True)  # -v
            options = self._storage_options()
            raise (
                write_problem(exc, self.db_uri)
                or object_store_problem(exc, self.db_uri, options)
                or IndexProblem(
                    f"updating the index at {self.db_uri} failed ({brief(exc)})",
                    f"run `enclave index {self.root}` again: it checks the index and repairs it",
                )
            ) from exc

    def _update(
        self,
        *,
        full: bool,
        paths: Sequence[str] | None,
        progress: ProgressFn | None,
        cancelled: Callable[[], bool] | None,
        complete_only: bool = False,
    ) -> IndexSummary:
        from enclave.indexer.discover import DiscoveryError, discover

        started = time.perf_counter()
        summary = IndexSummary(root=str(self.root), db=self.db_uri, full=full)
        report = progress or (lambda done, total, message: None)
        stop = cancelled or (lambda: False)
        broken = self.config.policy.broken()
        if broken is not None:  # fail closed: its never_index rules are unknown
            raise IndexProblem(broken, "ask your administrator to fix the policy file")
        self._writable_store()  # the location is checked (and made) before the lock file in it
        with self._lock, self._write_guard() as still_ours:
            store = self._writable_store()
            try:
                discovery = discover(self.root, self.config.index)
            except DiscoveryError as exc:
                raise IndexProblem(exc.message, exc.fix) from exc
            summary.commit = discovery.head_commit
            summary.notes.extend(discovery.notes)
            summary.skipped = list(discovery.skipped)
            newer = self._newer_commit(store, discovery.head_commit, full)
            if newer is not None:
                summary.commit = newer
                summary.superseded = True
                summary.notes.append(
                    f"the index is at commit {newer[:12]}, which already contains HEAD"
                    f" {(discovery.head_commit or '')[:12]}: nothing to do (--full rebuilds it"
                    " from this checkout)"
                )
                # the summary describes the index as it is (the newer job made it)
                off, _missing = self._stored_semantic(store, store.meta())
                if off is None:
                    summary.semantic = True
                else:
                    summary.semantic_off(off)
                summary.chunks_total = store.table("chunks").count_rows()
                summary.seconds = time.perf_counter() - started
                return summary

            embedder = self._embedder(summary)
            if complete_only and embedder is None and vectors_expected(self.config):
                # checked before anything is written: the index stays as it was
                summary.published = False
                summary.notes.append(
                    "nothing was written: the index would have no vectors for this update's"
                    " chunks, and a complete index was asked for (--fail-on-degraded)"
                )
                summary.seconds = time.perf_counter() - started
                return summary
            before = store.versions() if complete_only and store.has_index() else None
            meta = self._meta_or_rebuild(store, full, summary)
            if summary.full:
                before = None  # a rebuild dropped the tables: there is no version to go back to
            if embedder is not None and meta.get("embedding_model") not in (
                "",
                None,
                embedder.model_id,
            ):
                summary.notes.append(
                    f"embedding model changed ({meta.get('embedding_model')} -> {embedder.model_id}):"
                    " re-embedding every chunk"
                )
                store.embeddings(embedder.dim, reset=True)
            elif embedder is not None and meta.get("embedding_dim") not in (
                None,
                "",
                "0",
                str(embedder.dim),
            ):
                store.embeddings(embedder.dim, reset=True)
            elif (
                embedder is not None
                and meta.get("embedding_model")
                and meta.get(EMBEDDING_INPUT, "1") != str(EMBEDDING_INPUT_VERSION)
            ):
                summary.notes.append(
                    "what each chunk is embedded as changed (its symbol's words were added):"
                    " re-embedding every chunk"
                )
                store.embeddings(embedder.dim, reset=True)

            if paths is not None and (summary.full or self._completing):
                summary.notes.append("every file is indexed, not only the paths asked for")
                paths = None
            catalog = store.catalog()
            current = {c.path: c for c in discovery.candidates}
            if self.scope is not None:  # an overlay holds only the files it is given
                current = {p: c for p, c in current.items() if p in self.scope}
            if paths is not None:
                wanted = {self._relative(p) for p in paths}
                current = {p: c for p, c in current.items() if p in wanted}
                gone = [p for p in wanted if p in catalog and p not in current]
            else:
                gone = [p for p in catalog if p not in current]
            changed = [
                c
                for c in current.values()
                if (row := catalog.get(c.path)) is None or row.content_id != c.content_id
            ]
            summary.files_seen = len(current)
            summary.files_unchanged = len(current) - len(changed)
            total = len(changed)
            report(0, total, f"indexing {total} changed file(s)")

            if gone:
                store.delete_paths(gone)
                summary.files_deleted = len(gone)
            elif summary.full and paths is None:
                # a rebuild starts from empty tables: the files it no longer holds (deleted, or
                # excluded since, e.g. by a policy's never_index with redact_pii) are removed too
                summary.files_deleted = len(self._before_rebuild - current.keys())
            self._processed = 0
            for batch in self._process(changed):
                still_ours()  # a writer that lost its lease writes nothing more
                self._write(store, batch, summary)
                report(self._processed, total, f"{self._processed}/{total} files")
                if stop():
                    summary.cancelled = True
                    break

            interrupted = False
            if embedder is not None and not summary.cancelled:
                store.set_meta({UPDATE_STARTED: ""})  # every file's rows are in; vectors next
                try:
                    self._embed_missing(store, embedder, summary, report, stop, still_ours)
                except KeyboardInterrupt:  # Ctrl-C while embedding: keep every finished batch
                    summary.cancelled = interrupted = True
                    summary.notes.append(
                        f"interrupted while embedding after {summary.embedded} chunks: they are "
                        "kept, and `enclave index` embeds the rest"
                    )
            still_ours()
            if before is not None and self._degraded(summary):
                store.restore(before)  # the meta table last: readers never see half of it
                summary.published = False
                summary.notes.append(
                    "this update was taken back: the index is as it was before it (a complete"
                    " index was asked for, --fail-on-degraded)"
                )
                summary.chunks_total = store.table("chunks").count_rows()
                summary.seconds = time.perf_counter() - started
                return summary
            if complete_only and before is None and self._degraded(summary):
                summary.notes.append(
                    "this rebuild is published although degraded: it started from empty tables,"
                    " so there is no earlier version of the index to keep"
                )
            self._finish(store, discovery, embedder, meta, summary)
            if interrupted:
                raise KeyboardInterrupt
            summary.chunks_total = store.table("chunks").count_rows()
            # every file left out of the index now, as `status` counts them
            states = store.columns("files", ["state"]).column(0).to_pylist()
            summary.files_skipped = len(discovery.skipped) + sum(
                1 for state in states if state.startswith("skipped:")
            )
        summary.seconds = time.perf_counter() - started
        report(total, total, "done")
        return summary

    def _degraded(self, summary: IndexSummary) -> bool:
        """The update's result is not the index it should be: files could not be indexed, it
        was cancelled, or the vectors this configuration asks for (vectors_expected) are off."""
        return bool(
            summary.errors
            or summary.cancelled
            or (not summary.semantic and vectors_expected(self.config))
        )

    @contextlib.contextmanager
    def _write_guard(self) -> Iterator[Callable[[], None]]:
        """Hold the write lock: a lock file on this machine, and in an S3 store the lease that
        keeps writers on other machines out. Yields a check that raises if the lease was lost."""
        with WriteLock(lock_path_for(self.db_uri)):
            if self.db_uri.startswith("s3://") and self.config.index.lease:
                options = self._s3_options()
                try:
                    lease = S3Lease(self.db_uri, options).__enter__()
                except (IndexProblem, TimeoutError):
                    raise
                except Exception as exc:  # boto3: no bucket, credentials, region, endpoint
                    problem = object_store_problem(exc, self.db_uri, options)
                    if problem is None:
                        raise
                    raise problem from exc
                try:
                    yield lease.check
                finally:
                    lease.__exit__(None, None, None)
            else:
                yield lambda: None

    def _newer_commit(self, store: Store, head: str | None, full: bool) -> str | None:
        """The commit a shared (remote) index is at when it already contains ``head``: a CI job
        for an older commit that finishes after a newer one must not take the index back."""
        if full or head is None or "://" not in self.db_uri or not store.has_index():
            return None
        recorded = store.meta().get("last_commit", "")
        if not recorded or recorded == head:
            return None
        import subprocess

        done = subprocess.run(
            ["git", "-C", str(self.root), "merge-base", "--is-ancestor", head, recorded],
            capture_output=True,
        )
        return recorded if done.returncode == 0 else None

    def _relative(self, path: str) -> str:
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                return candidate.resolve().relative_to(self.root).as_posix()
            except ValueError:
                return candidate.as_posix()
        return candidate.as_posix()

    def _meta_or_rebuild(self, store: Store, full: bool, summary: IndexSummary) -> dict[str, str]:
        """Verify the index, rebuild it when it is damaged (or asked to), and mark the update
        as started (meta.update_started) before anything else is written."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        found = store.verify()
        meta: dict[str, str] = {}
        rebuild = full
        self._completing = False
        if found.problem:
            rebuild = True
            if not found.absent:
                summary.notes.append(f"{found.problem}: rebuilding it from scratch")
        else:
            meta = found.meta
            if meta.get("schema_version") != str(SCHEMA_VERSION):
                summary.notes.append(
                    f"index schema {meta.get('schema_version')} is not {SCHEMA_VERSION}: rebuilding"
                )
                rebuild = True
            elif found.interrupted and not full:
                summary.notes.append(
                    f"the update started at {meta[UPDATE_STARTED]} did not finish: completing it"
                )
                self._completing = True
            elif meta.get("partial") == "true" and not full:
                summary.notes.append("the last update was cancelled: finishing it")
                self._completing = True
            chunker = meta.get(CHUNKER, "1")  # (indexes made before the key existed: 1)
            if chunker != str(CHUNKER_VERSION) and not rebuild:
                summary.notes.append(
                    f"files were chunked by another version of Enclave (chunker {chunker}, now "
                    f"{CHUNKER_VERSION}): re-indexing every file"
                )
                rebuild = True
            if meta.get(REDACT_PII, "") != self._pii_meta() and not rebuild:
                summary.notes.append(
                    "redaction of personal data (trust.redact_pii) changed: re-indexing every file"
                )
                rebuild = True
        self._before_rebuild = frozenset()
        if rebuild:
            summary.full = True
            if not found.problem:  # the files it held, to count those the rebuild leaves out
                paths = store.columns("files", ["path"]).column(0).to_pylist()
                self._before_rebuild = frozenset(paths)
            reset_cache = found.damaged == "embeddings"
            # The cached vectors outlive a rebuild, and so do the facts of what made them: a
            # vector of another model or form is then re-made, never mixed in.
            kept = {} if reset_cache else {k: v for k, v in meta.items() if k in VECTOR_FACTS}
            meta = {
                "schema_version": str(SCHEMA_VERSION),
                "tool_version": TOOL_VERSION,
                UPDATE_STARTED: started,
                **kept,
            }
            store.create(meta, reset_cache=reset_cache)
        else:
            store.set_meta({UPDATE_STARTED: started})
            meta = {**meta, UPDATE_STARTED: started}
        self._vectors = None
        self._symbols = None
        return meta

    def _embedder(self, summary: IndexSummary) -> Embedder | None:
        try:
            # A loaded in-process model is reused; Ollama is asked again each time (it may be back).
            embedder = self._embedder_cache
            if embedder is None or embedder.provider != "local":
                embedder = make_embedder(self.config)
            self._embedder_cache = embedder
        except EmbeddingUnavailable as exc:
            summary.semantic_off(Reason(exc.message, exc.fix))
            return None
        summary.semantic = True
        return embedder

    def _process(self, changed: list[Candidate]) -> Iterator[list[FileRows]]:
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
        workers = min(os.cpu_count() or 1, 4)
        pii = self.config.trust.redact_pii
        if len(changed) < POOL_THRESHOLD or workers < 2:
            for batch in batches:
                yield [process_file(self.root, c, pii) for c in batch]
            return
        # Small tasks keep both cores busy; results come back in batch order.
        # spawn: workers are our direct children (they die with us: see worker_init) and no
        # LanceDB thread state is forked. Scripts calling update() need the usual __main__ guard.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=worker_init,
            initargs=(os.getpid(),),
        ) as pool:
            for batch in batches:
                step = max(1, len(batch) // (workers * 4))
                parts = [batch[i : i + step] for i in range(0, len(batch), step)]
                futures = [pool.submit(process_many, str(self.root), part, pii) for part in parts]
                yield [rows for future in futures for rows in future.result()]

    def _write(self, store: Store, batch: list[FileRows], summary: IndexSummary) -> None:
        chunks = [c for rows in batch for c in rows.chunks]
        symbols = [s for rows in batch for s in rows.symbols]
        store.write_batch([r.path for r in batch], chunks, symbols, [r.file for r in batch])
        summary.chunks_written += len(chunks)
        summary.bytes_indexed += sum(r.bytes for r in batch)
        for rows in batch:
            if rows.error:
                summary.errors.append(f"{rows.path}: {rows.error}")
            elif rows.file["state"].startswith("skipped:"):
                summary.skipped.append(
                    Skipped(rows.path, rows.file["state"][8:], rows.file["detail"])
                )
            else:
                summary.files_indexed += 1
        self._processed += len(batch)

    def _embed_missing(
        self,
        store: Store,
        embedder: Embedder,
        summary: IndexSummary,
        report: ProgressFn,
        stop: Callable[[], bool],
        still_ours: Callable[[], None] = lambda: None,
    ) -> None:
        """Embed every chunk whose text has no cached vector (new, changed, or left by a crash).
        ``still_ours`` raises when the write lease was lost: no batch is written after that."""
        cached = store.cached_hashes()
        hashes = set(store.columns("chunks", ["content_hash"]).column(0).to_pylist())
        missing = sorted(hashes - cached)
        if not missing:
            return
        wanted = ["content_hash", "path", "symbol", "text"]
        # A few missing texts (an incremental update) are fetched by hash; many are read in one go.
        where = in_clause("content_hash", missing) if len(missing) <= 1000 else None
        subset = store.columns("chunks", wanted, where).to_pydict()
        todo: dict[str, str] = {}
        # Files of trust.never_send are searchable by their words but never leave the machine
        # for an embedding server: their chunks get no vectors.
        never_send = IgnoreRules(self.config.trust.never_send, source="trust.never_send")
        for h, path, symbol, text in zip(
            subset["content_hash"], subset["path"], subset["symbol"], subset["text"], strict=True
        ):
            if h not in cached and not never_send.decide(path):
                todo.setdefault(h, embedding_input(path, symbol, text))
        items = list(todo.items())
        size = self.config.embedding.batch_size
        parts = [items[start : start + size] for start in range(0, len(items), size)]
        # Ollama gets the next batches while the last one's vectors are written: the server is
        # never idle waiting for us (in-process models use every core already: one at a time).
        depth = self.config.embedding.concurrency if embedder.provider == "ollama" else 1
        began = time.perf_counter()
        report(0, len(items), f"embedding {len(items)} chunks")
        left = len(items)
        for part, vectors in _pipelined(embedder, parts, depth):
            if isinstance(vectors, EmbeddingUnavailable):
                summary.semantic_off(
                    Reason(f"{vectors.message} ({left} chunks left without vectors)", vectors.fix)
                )
                return
            still_ours()
            store.add_vectors(embedder.dim, [h for h, _ in part], vectors)
            left -= len(part)
            # After every batch: semantic search works on what is embedded so far, even if this
            # process is killed now, and the index says how much is still missing.
            store.set_meta({**self._embedding_meta(embedder), VECTORS_MISSING: str(left)})
            summary.embedded += len(part)
            report(
                summary.embedded,
                len(items),
                embedding_progress(summary.embedded, len(items), began),
            )
            if stop():
                summary.cancelled = True
                return

    def _pii_meta(self) -> str:
        return "true" if self.config.trust.redact_pii else ""

    def _embedding_meta(self, embedder: Embedder | None) -> dict[str, str]:
        """Which provider (and model, and vector size) the stored vectors come from."""
        meta = {"embedding_provider": self.config.embedding.provider}
        if embedder is not None:
            meta["embedding_model"] = embedder.model_id
            meta["embedding_dim"] = str(embedder.dim)
            meta[EMBEDDING_INPUT] = str(EMBEDDING_INPUT_VERSION)
        return meta

    def _finish(
        self,
        store: Store,
        discovery: Discovery,
        embedder: Embedder | None,
        meta_before: dict[str, str],
        summary: IndexSummary,
    ) -> None:
        # Facts only (what was indexed, which model made the vectors): whether semantic search
        # works is decided when asked (_semantic_off), from the configuration then.
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "tool_version": TOOL_VERSION,
            "last_commit": discovery.head_commit or "",
            "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            DISCOVERY_SKIPPED: str(len(discovery.skipped)),
            REDACT_PII: self._pii_meta(),
            CHUNKER: str(CHUNKER_VERSION),
            **self._embedding_meta(embedder),
        }
        if embedder is not None or meta_before.get("embedding_model"):
            # What is stored decides: an embedding run that failed (or a run without an
            # embedder over vectors of an earlier one) leaves this many chunks without a vector.
            meta[VECTORS_MISSING] = str(self._vector_counts(store)[1])
        # Cancelling stops between batches, so what was written is consistent: the index is
        # served, and marked partial until an update finishes (files not reached are new then).
        meta[UPDATE_STARTED] = ""
        meta["partial"] = "true" if summary.cancelled else ""
        fold = self._fold_due(store, meta_before, summary)
        if fold:
            meta[FOLDED_AT] = datetime.now(UTC).isoformat(timespec="seconds")
        store.set_meta(meta)
        store.tidy_meta()
        if fold:
            summary.versions_removed = store.optimize(
                timedelta(minutes=self.config.index.retain_minutes)
            )
            keep = set(store.columns("chunks", ["content_hash"]).column(0).to_pylist())
            store.prune_vectors(keep)
        if embedder is not None and store.ensure_vector_index():
            summary.notes.append("vector search uses the ANN index (IVF_HNSW_SQ) of the vectors")

    def _fold_due(self, store: Store, meta: dict[str, str], summary: IndexSummary) -> bool:
        """Whether this update folds new rows into the indexes and cleans up old versions: after
        a rebuild or a completed update, when old versions are to go at once (retain_minutes 0),
        when fragments or rows the full-text index lacks have piled up, or a day after the last
        fold. A small change is left unfolded: a CI job then writes little more than its rows."""
        if summary.full or self._completing or self.config.index.retain_minutes == 0:
            return True
        if store.fragment_count() > COMPACT_FRAGMENTS or store.unindexed_rows() >= FOLD_ROWS:
            return True
        try:
            folded = datetime.fromisoformat(meta.get(FOLDED_AT, ""))
        except ValueError:
            return True  # never folded since the key exists: fold once now
        return datetime.now(UTC) - folded >= FOLD_EVERY

    # ---- queries ------------------------------------------------------------------------
    @reads_index
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        path_prefix: str | None = None,
        language: str | None = None,
        exclude: Collection[str] = (),
    ) -> SearchResult:
        """Ranked chunks; ``exclude`` leaves out these paths (those a local overlay shadows)."""
        if mode not in ("hybrid", "lexical", "semantic"):
            raise ValueError(f"unknown search mode {mode!r}: use hybrid, lexical or semantic")
        store = self._ready_store()
        exclude = frozenset(exclude) | self._excluded_now(store)
        pool = max(k * 4, 40)
        lexical: list[tuple[str, float]] = []
        rows: dict[str, dict[str, Any]] = {}  # the lexical hits' rows, read with them
        dense: list[tuple[str, float]] = []
        off: Reason | None = None
        if mode in ("hybrid", "lexical"):
            lexical, rows = self._lexical(store, query, pool, path_prefix, language, exclude)
        if mode in ("hybrid", "semantic"):
            dense, off = self._dense(store, query, pool, path_prefix, language, exclude)
            if mode == "semantic" and off is not None:
                raise IndexProblem(off.message, off.fix or "use --mode lexical")
        if not dense:
            ranked = [cid for cid, _ in lexical][:k]
            scores = {cid: score for cid, score in lexical}
        elif not lexical:
            ranked = [cid for cid, _ in dense][:k]
            scores = {cid: score for cid, score in dense}
        else:
            scores = fuse(lexical, dense)
            ranked = sorted(scores, key=lambda c: -scores[c])[:k]
        return SearchResult(self._hits(store, ranked, scores, rows), off)

    def _excluded_now(self, store: Store) -> frozenset[str]:
        """Indexed files that the exclusion rules in force now leave out (a never_index rule
        or an exclude added since they were indexed): never answered, and removed by the next
        update."""
        from enclave.indexer.discover import excluded_now, exclusion_rules

        rules = exclusion_rules(self.root, self.config.index)
        if not rules:  # nothing to check: no read of the catalog
            return frozenset()
        patterns = tuple(str(getattr(p, "pattern", p)) for r in rules for p in r.spec.patterns)
        key = (store.table("files").version, patterns)
        if self._excluded is None or self._excluded[0] != key:
            paths = store.columns("files", ["path"]).column(0).to_pylist()
            self._excluded = (key, excluded_now(rules, paths))
        return self._excluded[1]

    def _where(
        self, path_prefix: str | None, language: str | None, exclude: Collection[str] = ()
    ) -> str | None:
        clauses = []
        if exclude:
            clauses.append(f"NOT ({in_clause('path', sorted(exclude))})")
        if path_prefix:
            escaped = path_prefix.replace("'", "''").replace("%", "\\%").replace("_", "\\_")
            clauses.append(f"path LIKE '{escaped}%'")
        if language:
            clauses.append(f"language = {quote(language)}")
        return " AND ".join(clauses) or None

    def _lexical(
        self,
        store: Store,
        query: str,
        limit: int,
        path_prefix: str | None,
        language: str | None,
        exclude: Collection[str] = (),
    ) -> tuple[list[tuple[str, float]], dict[str, dict[str, Any]]]:
        """Full-text hits (id, weighted score), best first, and their rows: the query reads the
        columns a hit shows, so the hits need no second lookup by id (a scan of the table)."""
        text = query_text(query).strip()
        if not text:
            return [], {}
        in_memory = self._memory_text(store) if self.memory_text_rows else None
        if in_memory is not None:
            keep = _row_filter(path_prefix, language, exclude)
            found = in_memory.search(text, limit, keep)
            scored = [(row["id"], score * kind_weight(row["kind"])) for row, score in found]
            return sorted(scored, key=lambda item: -item[1]), {r["id"]: dict(r) for r, _ in found}
        # A MatchQuery is never parsed: quotes, colons and operators in a query are plain text.
        match = MatchQuery(text, "search_text")  # type: ignore[call-arg]  # pydantic defaults
        builder = store.table("chunks").search(match, query_type="fts")
        where = self._where(path_prefix, language, exclude)
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select([*CHUNK_COLUMNS, "_score"]).limit(limit).to_list()
        scored = [(row["id"], float(row["_score"]) * kind_weight(row["kind"])) for row in rows]
        return sorted(scored, key=lambda item: -item[1]), {row["id"]: row for row in rows}

    def _memory_text(self, store: Store) -> TextIndex | None:
        """The chunks table in memory for full-text queries, while it has at most
        ``memory_text_rows`` rows (read again when its version changes)."""
        table = store.table("chunks")
        version = table.version
        cached = self._text
        if cached is not None and cached[0] == version:
            return cached[1]
        text_index = None
        rows = table.count_rows()
        if rows <= self.memory_text_rows:
            columns = [*CHUNK_COLUMNS, "search_text"]
            text_index = TextIndex(table.search().select(columns).limit(rows + 1).to_list())
        self._text = (version, text_index)
        return text_index

    def _dense(
        self,
        store: Store,
        query: str,
        limit: int,
        path_prefix: str | None,
        language: str | None,
        exclude: Collection[str] = (),
    ) -> tuple[list[tuple[str, float]], Reason | None]:
        """Dense hits, or none and the reason they could not be had."""
        meta = store.meta()
        # The query's embedding is the live check here: only what no request can tell is asked.
        off = self._semantic_off(meta, live=not meta.get("embedding_model"))
        if off is None and store.has_vector_index():  # a large index: never load every vector
            return self._dense_ann(store, meta, query, limit, path_prefix, language, exclude)
        matrix = None if off else self._vector_matrix(store)
        if matrix is None or not matrix.chunk_ids:
            off = off or self._no_vectors()
            return [], Reason(f"semantic search is off: {off.message}", off.fix)
        try:
            embedder = self._embedder_for_queries(meta["embedding_model"])
            vector = np.asarray(embedder.embed([query], query=True)[0], dtype=np.float32)
        except EmbeddingUnavailable as exc:
            return [], Reason(f"semantic search is off for this query: {exc.message}", exc.fix)
        found = matrix.top(
            vector, limit, path_prefix=path_prefix, language=language, exclude=exclude
        )
        return found, None

    def _dense_ann(
        self,
        store: Store,
        meta: dict[str, str],
        query: str,
        limit: int,
        path_prefix: str | None,
        language: str | None,
        exclude: Collection[str],
    ) -> tuple[list[tuple[str, float]], Reason | None]:
        """Dense hits through the ANN index: nearest vectors, then the chunks that have them
        (filters applied to those; a wider pool makes up for what they remove)."""
        try:
            embedder = self._embedder_for_queries(meta["embedding_model"])
            vector = np.asarray(embedder.embed([query], query=True)[0], dtype=np.float32)
        except EmbeddingUnavailable as exc:
            return [], Reason(f"semantic search is off for this query: {exc.message}", exc.fix)
        filtered = bool(path_prefix or language or exclude)
        near = store.nearest_hashes(vector, limit * (4 if filtered else 1))
        if not near:
            return [], None
        similarity = dict(near)
        rows = store.columns(
            "chunks",
            ["id", "path", "language", "kind", "content_hash"],
            in_clause("content_hash", list(similarity)),
        ).to_pylist()
        keep = _row_filter(path_prefix, language, exclude)
        hits = [
            (row["id"], similarity[row["content_hash"]] * kind_weight(row["kind"], dense=True))
            for row in rows
            if keep is None or keep(row)
        ]
        hits.sort(key=lambda hit: -hit[1])
        return hits[:limit], None

    def _semantic_off(self, meta: dict[str, str], *, live: bool = True) -> Reason | None:
        """Why semantic search cannot work now (None: it can), derived from the configuration
        now, the facts the index holds (which model made its vectors) and, with ``live``, a
        check of the embedding provider (trusted for EMBEDDING_CHECK_TTL seconds). Nothing an
        earlier process concluded is read back."""
        stored = meta.get("embedding_model", "")
        if self.config.embedding.provider != "none" and stored:
            wanted = configured_model_id(self.config)
            if stored != wanted:
                return Reason(
                    f"the index was embedded with {stored} but {wanted} is configured",
                    f"run `enclave index {self.root}` to re-embed with the configured model",
                )
        if live or self.config.embedding.provider == "none":
            problem = self._check_embedding()
            if problem is not None:
                return problem
        return None if stored else self._no_vectors()

    def _vector_counts(self, store: Store) -> tuple[int, int]:
        """(chunk texts that should have a vector, those without one), read from the tables:
        files of trust.never_send never get vectors and are not counted."""
        data = store.columns("chunks", ["path", "content_hash"]).to_pydict()
        never_send = IgnoreRules(self.config.trust.never_send, source="trust.never_send")
        sent: dict[str, bool] = {}
        wanted = set()
        for path, content_hash in zip(data["path"], data["content_hash"], strict=True):
            if path not in sent:
                sent[path] = not never_send.decide(path)
            if sent[path]:
                wanted.add(content_hash)
        return len(wanted), len(wanted - store.cached_hashes())

    def _stored_semantic(self, store: Store, meta: dict[str, str]) -> tuple[Reason | None, int]:
        """Whether the stored vectors can serve semantic search (None) or why not, and how many
        chunks lack a vector: from what the tables hold and the configuration, never from a
        counter an earlier process left (an embedding run whose batches all failed leaves a
        model recorded and no vectors)."""
        off = self._semantic_off(meta, live=False)
        if not meta.get("embedding_model"):
            return off or self._no_vectors(), 0
        wanted, missing = self._vector_counts(store)
        if wanted and missing == wanted:
            return off or self._no_vectors(), missing
        return off, missing

    def _no_vectors(self) -> Reason:
        return Reason("the index has no vectors yet", f"run `enclave index {self.root}`")

    def _check_embedding(self) -> Reason | None:
        now = time.monotonic()
        if self._embedding_check and now - self._embedding_check[0] < EMBEDDING_CHECK_TTL:
            return self._embedding_check[1]
        try:
            check_embedding(self.config)
            problem = None
        except EmbeddingUnavailable as exc:
            problem = Reason(exc.message, exc.fix)
        self._embedding_check = (time.monotonic(), problem)
        return problem

    def _embedder_for_queries(self, model_id: str) -> Embedder:
        if self._embedder_cache is None or self._embedder_cache.model_id != model_id:
            embedder = make_embedder(self.config, query=True)
            if embedder.model_id != model_id:
                raise EmbeddingUnavailable(
                    f"the index was embedded with {model_id} but {embedder.model_id} is configured",
                    "run `enclave index` to re-embed with the configured model",
                )
            self._embedder_cache = embedder
        return self._embedder_cache

    def _vector_matrix(self, store: Store) -> VectorMatrix:
        chunks = store.table("chunks")
        emb_version = store.table("embeddings").version if "embeddings" in store.existing() else -1
        key = (chunks.version, emb_version)
        if self._vectors is not None and self._vectors_key == key:
            return self._vectors
        hashes, matrix = store.load_vectors()
        position = {h: i for i, h in enumerate(hashes)}
        columns = ["id", "path", "language", "kind", "content_hash"]
        meta = store.columns("chunks", columns).to_pydict()
        ids, paths, languages, rows, priors = [], [], [], [], []
        for cid, path, language, kind, h in zip(*(meta[c] for c in columns), strict=True):
            row = position.get(h)
            if row is not None:
                ids.append(cid)
                paths.append(path)
                languages.append(language)
                rows.append(row)
                priors.append(kind_weight(kind, dense=True))
        self._vectors = VectorMatrix(
            ids,
            np.array(paths, dtype=object),
            np.array(languages, dtype=object),
            np.array(rows, dtype=np.int32),
            matrix,
            np.array(priors, dtype=np.float32),
        )
        self._vectors_key = key
        return self._vectors

    def _hits(
        self,
        store: Store,
        ranked: list[str],
        scores: dict[str, float],
        known: dict[str, dict[str, Any]],
    ) -> list[SearchHit]:
        """The ranked chunks as hits; rows not ``known`` already (dense-only hits) are read by
        id in one query."""
        by_id = {cid: known[cid] for cid in ranked if cid in known}
        missing = [cid for cid in ranked if cid not in by_id]
        if missing:
            rows = (
                store.table("chunks")
                .search()
                .where(in_clause("id", missing))
                .select(CHUNK_COLUMNS)
                .limit(len(missing) * 2)
                .to_list()
            )
            by_id.update((row["id"], row) for row in rows)
        return [
            SearchHit(
                path=row["path"],
                start_line=int(row["start_line"]),
                end_line=int(row["end_line"]),
                symbol=row["symbol"],
                kind=row["kind"],
                language=row["language"],
                score=round(scores[cid], 6),
                text=row["text"],
            )
            for cid in ranked
            if (row := by_id.get(cid)) is not None
        ]

    @reads_index
    def status(self) -> IndexStatus:
        """What the index holds, after a verification (Store.verify): damage, an unfinished
        update and a stale schema make it unhealthy, with the problem and the fix."""
        status = IndexStatus(root=str(self.root), db=self.db_uri, exists=True)
        try:
            store = self.store
        except IndexProblem as exc:  # e.g. no index directory, and none can be made
            status.exists = status.healthy = False
            status.problem, status.fix = exc.message, exc.fix
            return status
        found = store.verify()
        meta = found.meta
        writing = (found.problem or found.interrupted) and self._writer_active()
        if found.absent:
            status.exists = status.healthy = False
            status.updating = bool(writing)
            status.problem = found.problem
            status.fix = f"run `enclave index {self.root}`"
            status.semantic_reason = "not indexed yet"
            return status
        status.files = found.files
        status.files_skipped = found.files_skipped + int(meta.get(DISCOVERY_SKIPPED) or 0)
        status.chunks = found.chunks
        status.symbols = found.symbols
        status.commit = meta.get("last_commit") or None
        status.indexed_at = meta.get("indexed_at")
        status.schema_version = int(meta.get("schema_version", "0") or 0)
        status.tool_version = meta.get("tool_version", "")
        status.embedding_provider = meta.get("embedding_provider", "")
        status.embedding_model = meta.get("embedding_model", "")
        status.embedding_dim = int(meta.get("embedding_dim", "0") or 0)
        off = self._semantic_off(meta)
        stored_off, status.vectors_missing = self._stored_semantic(store, meta)
        off = off or stored_off
        status.semantic = off is None
        status.semantic_reason, status.semantic_fix = (off.message, off.fix) if off else ("", "")
        status.partial = meta.get("partial") == "true"
        if found.problem and writing:  # e.g. a rebuild between dropping and creating tables
            status.healthy, status.updating = False, True
            status.problem = (
                f"the index at {self.db_uri} is being written by another update and cannot be"
                f" checked now ({found.problem})"
            )
            status.fix = "wait for that update to finish"
        elif found.problem:
            status.healthy = False
            status.problem = found.problem
            status.fix = f"run `enclave index {self.root}` to rebuild it"
        elif found.interrupted:
            if writing:
                status.updating = True
            else:
                incomplete = self._incomplete(meta[UPDATE_STARTED])
                status.healthy = False
                status.problem, status.fix = incomplete.message, incomplete.fix
        elif status.schema_version != SCHEMA_VERSION:
            status.healthy = False
            status.problem = (
                f"the index at {self.db_uri} has schema {status.schema_version},"
                f" this version of Enclave reads {SCHEMA_VERSION}"
            )
            status.fix = f"run `enclave index {self.root}` to rebuild it"
        return status

    # ---- symbols ------------------------------------------------------------------------
    def _load_symbols(self) -> list[SymbolDef]:
        store = self._ready_store()
        table = store.table("symbols")
        excluded = self._excluded_now(store)  # no read at all while no rule excludes a file
        key = (table.version, excluded)
        if self._symbols is None or self._symbols_version != key:
            data = table.to_arrow().to_pylist()
            symbols = [SymbolDef(**row) for row in data if row["path"] not in excluded]
            by_name: dict[str, list[SymbolDef]] = {}
            by_path: dict[str, list[SymbolDef]] = {}
            for symbol in symbols:
                by_path.setdefault(symbol.path, []).append(symbol)
                by_name.setdefault(symbol.name, []).append(symbol)
                if symbol.qualified_name != symbol.name:
                    by_name.setdefault(symbol.qualified_name, []).append(symbol)
            self._symbols, self._symbols_by_name = symbols, by_name
            self._symbols_by_path = by_path
            self._symbols_version = key
        return self._symbols

    @reads_index
    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        symbols = self._load_symbols()
        scored = [(s, score) for s in symbols if (score := symbol_score(s, query)) > 0]
        scored.sort(key=lambda item: (-item[1], len(item[0].qualified_name), item[0].path))
        return [s for s, _ in scored[:limit]]

    @reads_index
    def definitions(self, names: Collection[str], *, limit: int = 20) -> list[SymbolDef]:
        self._load_symbols()
        found: list[SymbolDef] = []
        seen: set[tuple[str, int]] = set()
        for name in names:
            for symbol in self._symbols_by_name.get(name, []):
                key = (symbol.path, symbol.start_line)
                if key not in seen:
                    seen.add(key)
                    found.append(symbol)
                    if len(found) >= limit:
                        return found
        return found

    @reads_index
    def all_symbols(self) -> list[SymbolDef]:
        return list(self._load_symbols())

    @reads_index
    def file_symbols(self, path: str) -> list[SymbolDef]:
        self._load_symbols()
        return list(self._symbols_by_path.get(path, ()))

    @reads_index
    def symbols_in(self, paths: Collection[str]) -> dict[str, list[SymbolDef]]:
        self._load_symbols()
        return {path: list(self._symbols_by_path.get(path, ())) for path in paths}

    @reads_index
    def paths(self) -> frozenset[str]:
        store = self._ready_store()
        version = store.table("files").version
        if self._paths is None or self._paths[0] != version:
            data = store.columns("files", ["path", "state"]).to_pydict()
            excluded = self._excluded_now(store)
            indexed = (
                p
                for p, s in zip(data["path"], data["state"], strict=True)
                if s == "indexed" and p not in excluded
            )
            self._paths = (version, frozenset(indexed))
        return self._paths[1]

    @reads_index
    def file_imports(self, path: str) -> list[str]:
        return self._ready_store().imports_of(path)

    @reads_index
    def chunk_at(self, path: str, line: int) -> Chunk | None:
        store = self._ready_store()
        if path in self._excluded_now(store):
            return None
        rows = (
            store.table("chunks")
            .search()
            .where(
                f"path = {quote(path)} AND start_line <= {int(line)} AND end_line >= {int(line)}"
            )
            .select([*CHUNK_COLUMNS, "content_hash"])
            .limit(1)
            .to_list()
        )
        if not rows:
            return None
        row = rows[0]
        return Chunk(
            path=row["path"],
            language=row["language"],
            kind=row["kind"],
            symbol=row["symbol"],
            start_line=int(row["start_line"]),
            end_line=int(row["end_line"]),
            text=row["text"],
            content_hash=row["content_hash"],
        )


def _pipelined(
    embedder: Embedder, parts: list[list[tuple[str, str]]], depth: int
) -> Iterator[tuple[list[tuple[str, str]], list[list[float]] | EmbeddingUnavailable]]:
    """Each part with its vectors (or why there are none), in order, with up to ``depth``
    requests in flight. The requests run on daemon threads: an interrupt (Ctrl-C) or a failure
    leaves the ones in flight behind instead of waiting for them, and nothing of theirs is
    written."""
    pending: deque[tuple[list[tuple[str, str]], Future[list[list[float]]]]] = deque()
    upcoming = iter(parts)
    while True:
        while len(pending) < max(1, depth) and (part := next(upcoming, None)) is not None:
            pending.append((part, _in_daemon(embedder.embed, [text for _, text in part])))
        if not pending:
            return
        part, future = pending.popleft()
        try:
            vectors = future.result()
        except EmbeddingUnavailable as exc:
            yield part, exc
            return
        yield part, vectors


def _in_daemon(
    function: Callable[[list[str]], list[list[float]]], texts: list[str]
) -> Future[list[list[float]]]:
    future: Future[list[list[float]]] = Future()

    def run() -> None:
        try:
            future.set_result(function(texts))
        except BaseException as exc:  # handed to the waiting thread, which raises it there
            future.set_exception(exc)

    threading.Thread(target=run, name="enclave-embed", daemon=True).start()
    return future
