"""Updates of one index: bring the store up to date with the working tree.

Update = verify (rebuild when damaged or asked) -> discover -> (read, redact, chunk in worker
processes: :mod:`enclave.indexer.process`) -> store per batch -> embed what has no vector yet
(:mod:`enclave.indexer.embedding_pass`) -> meta, fold. Every update holds the write lock (and an
S3 store's lease); what one update needs between its steps lives in an :class:`_Update` made for
it, never in fields of the writer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from enclave.indexer import committed
from enclave.indexer.chunker import CHUNKER_VERSION
from enclave.indexer.embed import Embedder
from enclave.indexer.embedding_pass import embed_missing, embedding_meta
from enclave.indexer.errors import (
    IndexProblem,
    brief,
    is_storage_error,
    object_store_problem,
    write_problem,
)
from enclave.indexer.handle import StoreHandle
from enclave.indexer.lease import S3Lease
from enclave.indexer.lock import WriteLock, lock_path_for
from enclave.indexer.process import FileRows, process_in_batches
from enclave.indexer.results import IndexSummary, ProgressFn, vectors_expected
from enclave.indexer.semantic import Semantic
from enclave.indexer.store import Store, Verification
from enclave.indexer.tables import (
    CHUNKER,
    DISCOVERY_SKIPPED,
    FOLDED_AT,
    REDACT_PII,
    SCHEMA_VERSION,
    UPDATE_STARTED,
    VECTOR_FACTS,
    VECTORS_MISSING,
)
from enclave.indexer.types import Discovery, Skipped

log = logging.getLogger(__name__)

TOOL_VERSION = "0.1.0"
COMPACT_FRAGMENTS = 64
# An update folds its new rows into the indexes (LanceDB's optimize: compaction, index update,
# removal of versions older than index.retain_minutes) only when one of these is reached. Folding
# rewrites the whole full-text index (about 6 MB for 50k chunks), which would be most of what a
# CI job writes for a one-commit change; until then full-text queries read the new rows one by
# one (about 30 us a row per query on 2 cores), so the bound keeps that under ~6 ms.
FOLD_ROWS = 200
FOLD_EVERY = timedelta(days=1)  # and at least this often, so old versions are removed


@dataclass(slots=True)
class _Update:
    """One update's state, from its start to its summary."""

    store: Store
    summary: IndexSummary
    report: ProgressFn
    stop: Callable[[], bool]
    still_ours: Callable[[], None]  # raises when the write lease was lost
    completing: bool = False  # this update completes one that did not finish
    before_rebuild: frozenset[str] = frozenset()  # files held before a rebuild
    processed: int = 0


def _content_ids(store: Store) -> dict[str, str]:
    """Each catalogued file's content id: the two columns an update compares (the whole catalog,
    one object per file, cost a quarter of a one-file update at 18,896 files)."""
    table = store.columns("files", ["path", "content_id"])
    return dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


class IndexWriter:
    """The updates of the index behind ``handle``; ``forget`` drops what readers cached (a
    rebuild makes new tables)."""

    def __init__(self, handle: StoreHandle, semantic: Semantic, forget: Callable[[], None]):
        self.handle = handle
        self.semantic = semantic
        self.config = handle.config
        self.root = handle.root
        self._forget = forget
        self._lock = threading.RLock()
        # the last discovery's decisions for clean tracked files: later updates of this process
        # (an editor's saves) decide only what git reports changed (discover.DiscoveryMemo)
        from enclave.indexer.discover import DiscoveryMemo

        self._discovery_memo = DiscoveryMemo()

    def update(
        self,
        *,
        full: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        complete_only: bool = False,
        scope: frozenset[str] | None = None,
    ) -> IndexSummary:
        """Verify the index (rebuilding it when damaged), then bring it up to date. A full disk,
        read-only storage or another storage failure ends in one IndexProblem; an update that
        does not finish leaves the index marked incomplete until the next one completes it.

        ``complete_only``: a result that would be degraded (:meth:`_degraded`) is not published:
        nothing is written when the embedding provider does not answer at the start, and an
        incremental update that degrades later is taken back (its tables restored to the
        versions they had before it); ``summary.published`` is False then. ``scope``: the only
        files this index holds (a local overlay of a shared index)."""
        db_uri = self.handle.db_uri
        if self.handle.read_only:
            raise IndexProblem(
                f"the index at {db_uri} is shared: this process reads it and never writes it",
                "the CI job that builds it updates it",
            )
        try:
            return self._update(
                full=full,
                paths=paths,
                progress=progress or (lambda done, total, message: None),
                cancelled=cancelled or (lambda: False),
                complete_only=complete_only,
                scope=scope,
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
            log.debug("updating the index at %s failed", db_uri, exc_info=True)  # -v
            options = self.handle.storage_options()
            raise (
                write_problem(exc, db_uri)
                or object_store_problem(exc, db_uri, options)
                or IndexProblem(
                    f"updating the index at {db_uri} failed ({brief(exc)})",
                    f"run `enclave index {self.root}` again: it checks the index and repairs it",
                )
            ) from exc

    def _update(
        self,
        *,
        full: bool,
        paths: Sequence[str] | None,
        progress: ProgressFn,
        cancelled: Callable[[], bool],
        complete_only: bool,
        scope: frozenset[str] | None,
    ) -> IndexSummary:
        started = time.perf_counter()
        summary = IndexSummary(root=str(self.root), db=self.handle.db_uri, full=full)
        broken = self.config.policy.broken()
        if broken is not None:  # fail closed: its never_index rules are unknown
            raise IndexProblem(broken, "ask your administrator to fix the policy file")
        self.handle.writable_store()  # the location is checked (and made) before the lock file
        with self._lock, self._write_guard() as still_ours:
            store = self.handle.writable_store()
            run = _Update(store, summary, progress, cancelled, still_ours)
            total = self._run(run, full=full, paths=paths, complete_only=complete_only, scope=scope)
        summary.seconds = time.perf_counter() - started
        if total is not None:
            progress(total, total, "done")
        return summary

    def _run(
        self,
        run: _Update,
        *,
        full: bool,
        paths: Sequence[str] | None,
        complete_only: bool,
        scope: frozenset[str] | None,
    ) -> int | None:
        """The update's steps, under the write lock: the number of changed files, or None
        when it ended early (nothing to do, nothing written, or taken back)."""
        summary, store = run.summary, run.store
        discovery = self._discover(summary)
        newer = self._newer_commit(store, discovery.head_commit, full)
        if newer is not None:
            self._superseded(run, discovery, newer)
            return None
        embedder = self.semantic.for_update(summary)
        if complete_only and embedder is None and vectors_expected(self.config):
            # checked before anything is written: the index stays as it was
            summary.published = False
            summary.notes.append(
                "nothing was written: the index would have no vectors for this update's"
                " chunks, and a complete index was asked for (--fail-on-degraded)"
            )
            return None
        before = store.versions() if complete_only and store.has_index() else None
        meta = self._meta_or_rebuild(run, full)
        if summary.full:
            before = None  # a rebuild dropped the tables: there is no version to go back to
        self._reset_vectors(store, embedder, meta, summary)
        total = self._write_files(run, discovery, paths, scope)
        interrupted = self._embed(run, embedder)
        run.still_ours()
        if before is not None and self._degraded(summary):
            store.restore(before)  # the meta table last: readers never see half of it
            summary.published = False
            summary.notes.append(
                "this update was taken back: the index is as it was before it (a complete"
                " index was asked for, --fail-on-degraded)"
            )
            summary.chunks_total = store.table("chunks").count_rows()
            return None
        if complete_only and before is None and self._degraded(summary):
            summary.notes.append(
                "this rebuild is published although degraded: it started from empty tables,"
                " so there is no earlier version of the index to keep"
            )
        self._finish(run, discovery, embedder, meta)
        if interrupted:
            raise KeyboardInterrupt
        summary.chunks_total = store.table("chunks").count_rows()
        # every file left out of the index now, as `status` counts them
        states = store.columns("files", ["state"]).column(0).to_pylist()
        summary.files_skipped = len(discovery.skipped) + sum(
            1 for state in states if state.startswith("skipped:")
        )
        return total

    def _discover(self, summary: IndexSummary) -> Discovery:
        """The working tree's files now (and the notes and skipped files of discovery)."""
        from enclave.indexer.discover import DiscoveryError, discover

        try:
            discovery = discover(self.root, self.config.index, self._discovery_memo)
        except DiscoveryError as exc:
            raise IndexProblem(exc.message, exc.fix) from exc
        summary.commit = discovery.head_commit
        summary.notes.extend(discovery.notes)
        summary.skipped = list(discovery.skipped)
        return discovery

    def _superseded(self, run: _Update, discovery: Discovery, newer: str) -> None:
        """Nothing to do: the index is at ``newer``, which contains this checkout's HEAD. The
        summary describes the index as it is (the newer job made it)."""
        summary, store = run.summary, run.store
        summary.commit = newer
        summary.superseded = True
        summary.notes.append(
            f"the index is at commit {newer[:12]}, which already contains HEAD"
            f" {(discovery.head_commit or '')[:12]}: nothing to do (--full rebuilds it"
            " from this checkout)"
        )
        off, _missing = self.semantic.stored(store, store.meta())
        if off is None:
            summary.semantic = True
        else:
            summary.semantic_off(off)
        summary.chunks_total = store.table("chunks").count_rows()

    def _reset_vectors(
        self, store: Store, embedder: Embedder | None, meta: dict[str, str], summary: IndexSummary
    ) -> None:
        """Empty the embedding cache when its vectors were made another way (model, size or
        embedding input): every chunk is embedded again."""
        if embedder is None:
            return
        if meta.get("embedding_model") not in ("", None, embedder.model_id):
            summary.notes.append(
                f"embedding model changed ({meta.get('embedding_model')} -> {embedder.model_id}):"
                " re-embedding every chunk"
            )
            store.embeddings(embedder.dim, reset=True)
        elif meta.get("embedding_dim") not in (None, "", "0", str(embedder.dim)):
            store.embeddings(embedder.dim, reset=True)
        elif self.semantic.outdated(meta):
            summary.notes.append(
                "what each chunk is embedded as changed (its symbol's words, or the model's "
                "document prefix, embedding.documentPrefix): re-embedding every chunk"
            )
            store.embeddings(embedder.dim, reset=True)

    def _write_files(
        self,
        run: _Update,
        discovery: Discovery,
        paths: Sequence[str] | None,
        scope: frozenset[str] | None,
    ) -> int:
        """Delete the rows of files gone, write those of changed files batch by batch (until
        cancelled); returns how many files changed."""
        summary, store = run.summary, run.store
        if paths is not None and (summary.full or run.completing):
            summary.notes.append("every file is indexed, not only the paths asked for")
            paths = None
        indexed = _content_ids(store)
        current = {c.path: c for c in discovery.candidates}
        if scope is not None:  # an overlay holds only the files it is given
            current = {p: c for p, c in current.items() if p in scope}
        if paths is not None:
            wanted = {self._relative(p) for p in paths}
            current = {p: c for p, c in current.items() if p in wanted}
            gone = [p for p in wanted if p in indexed and p not in current]
        else:
            gone = [p for p in indexed if p not in current]
        changed = [c for c in current.values() if indexed.get(c.path) != c.content_id]
        summary.files_seen = len(current)
        summary.files_unchanged = len(current) - len(changed)
        total = len(changed)
        run.report(0, total, f"indexing {total} changed file(s)")
        if gone:
            store.delete_paths(gone)
            summary.files_deleted = len(gone)
        elif summary.full and paths is None:
            # a rebuild starts from empty tables: the files it no longer holds (deleted, or
            # excluded since, e.g. by a policy's never_index with redact_pii) are removed too
            summary.files_deleted = len(run.before_rebuild - current.keys())
        pii = self.config.trust.redact_pii
        for batch in process_in_batches(self.root, changed, pii):
            run.still_ours()  # a writer that lost its lease writes nothing more
            self._write(run, batch)
            run.report(run.processed, total, f"{run.processed}/{total} files")
            if run.stop():
                summary.cancelled = True
                break
        return total

    def _embed(self, run: _Update, embedder: Embedder | None) -> bool:
        """Embed what has no vector yet; True when interrupted (Ctrl-C) while embedding."""
        summary = run.summary
        if embedder is None or summary.cancelled:
            return False
        run.store.set_meta({UPDATE_STARTED: ""})  # every file's rows are in; vectors next
        try:
            embed_missing(
                run.store, embedder, self.config, summary, run.report, run.stop, run.still_ours
            )
        except KeyboardInterrupt:  # Ctrl-C while embedding: keep every finished batch
            summary.cancelled = True
            summary.notes.append(
                f"interrupted while embedding after {summary.embedded} chunks: they are "
                "kept, and `enclave index` embeds the rest"
            )
            return True
        return False

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
        db_uri = self.handle.db_uri
        with WriteLock(lock_path_for(db_uri)):
            if db_uri.startswith("s3://") and self.config.index.lease:
                options = self.handle.s3_options()
                try:
                    lease = S3Lease(db_uri, options).__enter__()
                except (IndexProblem, TimeoutError):
                    raise
                except Exception as exc:  # boto3: no bucket, credentials, region, endpoint
                    problem = object_store_problem(exc, db_uri, options)
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
        if full or head is None or "://" not in self.handle.db_uri or not store.has_index():
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

    def _meta_or_rebuild(self, run: _Update, full: bool) -> dict[str, str]:
        """Verify the index, rebuild it when it is damaged (or asked to), and mark the update
        as started (meta.update_started) before anything else is written."""
        store, summary = run.store, run.summary
        started = datetime.now(UTC).isoformat(timespec="seconds")
        found = committed.proven(store) or store.verify()
        meta = {} if found.problem else found.meta
        rebuild = self._rebuild_needed(run, found, full)
        if rebuild:
            summary.full = True
            if not found.problem:  # the files it held, to count those the rebuild leaves out
                paths = store.columns("files", ["path"]).column(0).to_pylist()
                run.before_rebuild = frozenset(paths)
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
        self._forget()
        return meta

    def _rebuild_needed(self, run: _Update, found: Verification, full: bool) -> bool:
        """Whether the verified index is rebuilt from scratch (the notes say why); sets
        ``run.completing`` when this update completes one that did not finish."""
        summary = run.summary
        if found.problem:
            if not found.absent:
                summary.notes.append(f"{found.problem}: rebuilding it from scratch")
            return True
        meta = found.meta
        rebuild = full
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            summary.notes.append(
                f"index schema {meta.get('schema_version')} is not {SCHEMA_VERSION}: rebuilding"
            )
            rebuild = True
        elif found.interrupted and not full:
            summary.notes.append(
                f"the update started at {meta[UPDATE_STARTED]} did not finish: completing it"
            )
            run.completing = True
        elif meta.get("partial") == "true" and not full:
            summary.notes.append("the last update was cancelled: finishing it")
            run.completing = True
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
        return rebuild

    def _write(self, run: _Update, batch: list[FileRows]) -> None:
        summary = run.summary
        chunks = [c for rows in batch for c in rows.chunks]
        symbols = [s for rows in batch for s in rows.symbols]
        run.store.write_batch([r.path for r in batch], chunks, symbols, [r.file for r in batch])
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
        run.processed += len(batch)

    def _pii_meta(self) -> str:
        return "true" if self.config.trust.redact_pii else ""

    def _finish(
        self, run: _Update, discovery: Discovery, embedder: Embedder | None, before: dict[str, str]
    ) -> None:
        """Write the facts of the finished update into meta (the update marked done), fold
        when due, and make the vector index of a large table."""
        store, summary = run.store, run.summary
        # Facts only (what was indexed, which model made the vectors): whether semantic search
        # works is decided when asked (Semantic.off), from the configuration then.
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "tool_version": TOOL_VERSION,
            "last_commit": discovery.head_commit or "",
            "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            DISCOVERY_SKIPPED: str(len(discovery.skipped)),
            REDACT_PII: self._pii_meta(),
            CHUNKER: str(CHUNKER_VERSION),
            **embedding_meta(self.config, embedder),
        }
        if embedder is not None or before.get("embedding_model"):
            # What is stored decides: an embedding run that failed (or a run without an
            # embedder over vectors of an earlier one) leaves this many chunks without a vector.
            meta[VECTORS_MISSING] = str(self.semantic.vector_counts(store)[1])
        # Cancelling stops between batches, so what was written is consistent: the index is
        # served, and marked partial until an update finishes (files not reached are new then).
        meta[UPDATE_STARTED] = ""
        meta["partial"] = "true" if summary.cancelled else ""
        fold = self._fold_due(run, before)
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
        try:  # last: what the next self-check proves the index against (enclave.indexer.committed)
            committed.record(store)
        except Exception as exc:  # without it the next check reads the tables: slower, as sure
            if not is_storage_error(exc):
                raise
            log.warning("recording the finished update failed: %s", brief(exc))

    def _fold_due(self, run: _Update, meta: dict[str, str]) -> bool:
        """Whether this update folds new rows into the indexes and cleans up old versions: after
        a rebuild or a completed update, when old versions are to go at once (retain_minutes 0),
        when fragments or rows the full-text index lacks have piled up, or a day after the last
        fold. A small change is left unfolded: a CI job then writes little more than its rows."""
        store = run.store
        if run.summary.full or run.completing or self.config.index.retain_minutes == 0:
            return True
        if store.fragment_count() > COMPACT_FRAGMENTS or store.unindexed_rows() >= FOLD_ROWS:
            return True
        try:
            folded = datetime.fromisoformat(meta.get(FOLDED_AT, ""))
        except ValueError:
            return True  # never folded since the key exists: fold once now
        return datetime.now(UTC) - folded >= FOLD_EVERY
