"""The LanceDB store: the tables opened, and the few write/read operations the engine needs.

Tables (docs/index-schema.md; names and schemas in :mod:`enclave.indexer.tables`): ``chunks``,
``symbols``, ``files`` (the catalog), ``meta`` (key/value) and ``embeddings`` (vectors keyed by
chunk content hash: the embedding cache).

Write order per batch of files: delete their old chunks/symbols, add the new ones, then replace
their catalog rows. A crash at any point leaves catalog rows that describe older content than the
working tree, so the next run re-processes those files and converges. ``meta.update_started`` is
set (one atomic meta write) before an update writes anything and cleared when it is done, so an
update that never finished is seen as such, never as a complete index.

:meth:`Store.verify` is the cheap self-check behind `enclave status` and the start of every update.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from enclave.indexer.bursts import PINNED
from enclave.indexer.errors import (
    IndexProblem,
    brief,
    is_storage_error,
    object_store_problem,
    write_problem,
)
from enclave.indexer.tables import (
    CHUNKS_SCHEMA,
    FILES_SCHEMA,
    META_SCHEMA,
    SYMBOLS_SCHEMA,
    TABLES,
    UPDATE_STARTED,
    embeddings_schema,
    in_clause,
    quote,
)

log = logging.getLogger(__name__)

META_FRAGMENTS = 16  # compact the meta table (a few rows, one fragment per write) past this
# Past this many vectors, queries use an ANN index (IVF_HNSW_SQ) on the embeddings table instead of
# loading every vector into memory (docs/team.md, "How far one index goes").
ANN_MIN_ROWS = 50_000
ANN_PARTITION_ROWS = 4096  # vectors per IVF partition
ANN_REFINE = 4  # candidates per result read back at full precision


@dataclass(slots=True)
class Verification:
    """What :meth:`Store.verify` found: ``problem`` is "" for an index that reads back whole."""

    problem: str = ""
    damaged: str = ""  # the table at fault, when it is one table
    absent: bool = False  # no table at all: not indexed yet
    meta: dict[str, str] = field(default_factory=dict)
    files: int = 0  # catalog rows of indexed files
    files_skipped: int = 0
    chunks: int = 0
    symbols: int = 0

    @property
    def interrupted(self) -> bool:
        """An update started and has not finished (it is running, or it was killed)."""
        return bool(self.meta.get(UPDATE_STARTED))


@dataclass(frozen=True, slots=True)
class CatalogRow:
    path: str
    content_id: str
    size: int
    language: str
    state: str
    detail: str
    chunks: int


class Store:
    """Open tables of one index. Not itself locked: the engine takes the write lock."""

    def __init__(
        self, uri: str, storage_options: dict[str, str] | None = None, *, create: bool = False
    ) -> None:
        """Open the index at ``uri``; a local directory is made only when ``create`` (writing):
        reading where nothing was indexed leaves no trace on disk."""
        import lancedb

        self.uri = uri
        self.storage_options = storage_options
        self.is_local = "://" not in uri
        self._tables: dict[str, Any] = {}
        self.db: Any = None
        if self.is_local:
            where = Path(uri)
            if where.exists() and not where.is_dir():
                raise IndexProblem(
                    f"the index location {uri} is not a directory",
                    "point --db at a directory (it is created when missing)",
                )
            if not where.exists() and not create:
                return  # nothing indexed here: every table is absent
            try:
                Path(uri).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise write_problem(exc, uri) or IndexProblem(
                    f"cannot create the index directory {uri} ({exc.strerror})",
                    "point --db at a writable place",
                ) from exc
            ignore = Path(uri) / ".gitignore"
            try:
                if not ignore.exists():
                    ignore.write_text("# Enclave's index: never commit it.\n*\n")
            except OSError as exc:  # a read-only index can still be read; writing it tells
                log.debug("cannot write %s: %s", ignore, exc)
        try:
            self.db = lancedb.connect(
                uri,
                storage_options=storage_options,
                read_consistency_interval=timedelta(seconds=0),
            )
        except Exception as exc:
            log.debug("opening the index at %s failed", uri, exc_info=True)  # the whole text: -v
            raise object_store_problem(exc, uri, storage_options) or IndexProblem(
                f"cannot open the index at {uri} ({brief(exc)})", "check the path or --db URI"
            ) from exc

    # ---- tables -------------------------------------------------------------------------
    def version(self, name: str) -> int:
        """The table's newest version (within ``bursts.one_version_each``: the first read)."""
        pinned = PINNED.get()
        if pinned is None:
            return int(self.table(name).version)
        key = (id(self), name)
        if key not in pinned:
            pinned[key] = int(self.table(name).version)
        return pinned[key]

    def existing(self) -> set[str]:
        if self.db is None:
            return set()
        try:
            names: set[str] = set()
            token = None
            while True:
                page = self.db.list_tables(page_token=token)
                names.update(page.tables)
                token = page.page_token
                if not token:
                    return names
        except Exception as exc:
            log.debug("listing the tables of %s failed", self.uri, exc_info=True)
            raise object_store_problem(exc, self.uri, self.storage_options) or IndexProblem(
                f"the index at {self.uri} is unreadable ({brief(exc)})",
                "run `enclave index --full` to rebuild it",
            ) from exc

    def table(self, name: str) -> Any:
        if self.db is None:
            raise IndexProblem(f"no index at {self.uri}", "run `enclave index` first")
        if name not in self._tables:
            self._tables[name] = self.db.open_table(name)
        return self._tables[name]

    def has_index(self) -> bool:
        return set(TABLES) <= self.existing()

    def verify(self) -> Verification:
        """Check that the index reads back whole, cheaply: every table opens (manifests) and its
        row count reads; a small column of every table reads in full (every data file, the
        catalog included) and holds as many rows as counted; the full-text index on chunks is
        there and answers; path lookups answer; the chunks match the catalog file by file. The
        last check is skipped while ``meta.update_started`` is set (the caller decides whether
        that update is running or was killed). Damage is returned, never raised; a bug raises.
        """
        tables, absent = self._tables_to_verify()
        if absent is not None:
            return absent
        found = Verification()
        for _attempt in range(3):
            current = ""
            try:
                before: dict[str, int] = {}
                for current in tables:  # opening reads the manifest
                    before[current] = self.table(current).version
                current = "meta"
                found = Verification(meta=self.meta())
                if not found.meta.get("schema_version"):
                    found.problem = f"the index at {self.uri} is damaged: its meta table is empty"
                    found.damaged = "meta"
                    return found
                current = "files"
                data = self.columns("files", ["path", "state", "chunks"]).to_pydict()
                self._same_count("files", len(data["path"]))
                current = "chunks"
                chunk_paths = self.columns("chunks", ["path"]).column(0).to_pylist()
                self._same_count("chunks", len(chunk_paths))
                self._probe_full_text()
                current = "symbols"
                found.symbols = self._same_count(
                    "symbols", len(self.columns("symbols", ["start_line"]))
                )
                if data["path"]:
                    for current in ("files", "chunks", "symbols"):
                        self._probe_path(current, data["path"][0])
                if "embeddings" in tables:
                    current = "embeddings"
                    self._same_count(
                        "embeddings", len(self.columns("embeddings", ["content_hash"]))
                    )
                after = {name: self.table(name).version for name in tables}
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                if len(before) == len(tables) and self._moved(before):
                    continue  # a writer committed between two reads: look again
                found.problem = (
                    f"the index at {self.uri} is damaged: its {current} table does not read"
                    f" back ({brief(exc)})"
                )
                found.damaged = current
                return found
            found.chunks = len(chunk_paths)
            found.files = sum(1 for state in data["state"] if state == "indexed")
            found.files_skipped = len(data["state"]) - found.files
            if after != before:
                continue  # a writer committed meanwhile: the columns may be of two versions
            if not found.interrupted:
                found.problem = self._mismatch(data, chunk_paths)
                found.damaged = "chunks" if found.problem else ""
            return found
        return found  # busy writers all along: nothing to compare at rest, nothing found damaged

    def _tables_to_verify(self) -> tuple[list[str], Verification | None]:
        """The tables of the index to verify, or (none and) what was found when they are not
        all there."""
        found = Verification()
        try:
            names = self.existing()
        except IndexProblem as exc:
            found.problem = exc.message
            return [], found
        missing = [name for name in TABLES if name not in names]
        if len(missing) == len(TABLES):
            found.problem, found.absent = f"no index at {self.uri}", True
            return [], found
        if missing:
            found.problem = f"the index at {self.uri} lacks its {', '.join(missing)} table(s)"
            return [], found
        return ([*TABLES, "embeddings"] if "embeddings" in names else list(TABLES)), None

    def _moved(self, versions: dict[str, int]) -> bool:
        try:
            return any(self.table(name).version != v for name, v in versions.items())
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            return False

    def _same_count(self, name: str, read: int) -> int:
        counted = int(self.table(name).count_rows())
        if counted != read:
            raise RuntimeError(f"{counted} rows counted but {read} read back")
        return counted

    def _probe_full_text(self) -> None:
        from lancedb.query import MatchQuery

        chunks = self.table("chunks")
        if not any(
            i.index_type == "FTS" and list(i.columns) == ["search_text"]
            for i in chunks.list_indices()
        ):
            raise RuntimeError("the full-text index is missing")
        match = MatchQuery("enclave", "search_text")  # type: ignore[call-arg]  # pydantic defaults
        chunks.search(match, query_type="fts").select(["id", "_score"]).limit(1).to_list()

    def _probe_path(self, name: str, path: str) -> None:
        self.table(name).search().where(f"path = {quote(path)}").select(["path"]).limit(1).to_list()

    def _mismatch(self, files: dict[str, list[Any]], chunk_paths: list[str]) -> str:
        """Where the chunks disagree with the catalog ("" when they agree file by file)."""
        have = Counter(chunk_paths)
        expected = {
            path: (int(n or 0) if state == "indexed" else 0)
            for path, state, n in zip(files["path"], files["state"], files["chunks"], strict=True)
        }
        if len(expected) != len(files["path"]):
            return f"the index at {self.uri} is inconsistent: its catalog lists a file twice"
        wrong = sorted(p for p, n in expected.items() if have.get(p, 0) != n)
        stray = sorted(p for p in have if p not in expected)
        if not wrong and not stray:
            return ""
        example = (wrong or stray)[0]
        return (
            f"the index at {self.uri} is inconsistent: {len(wrong) + len(stray)} file(s) have"
            f" chunks the catalog does not account for (e.g. {example}: catalog"
            f" {expected.get(example, 0)}, stored {have.get(example, 0)})"
        )

    def create(self, meta: dict[str, str], *, reset_cache: bool = False) -> None:
        """Drop everything and create empty tables (a full rebuild); the embedding cache too
        when ``reset_cache``. ``meta`` is written with the meta table, which comes last: until
        it exists, the index is "not indexed yet", never an empty index."""
        self._tables.clear()
        for name in [*TABLES, "embeddings_new", *(["embeddings"] if reset_cache else [])]:
            self._drop(name)
        self._tables["chunks"] = self.db.create_table("chunks", schema=CHUNKS_SCHEMA)
        self._tables["symbols"] = self.db.create_table("symbols", schema=SYMBOLS_SCHEMA)
        self._tables["files"] = self.db.create_table("files", schema=FILES_SCHEMA)
        rows = [{"key": k, "value": v} for k, v in meta.items()]
        self._tables["meta"] = self.db.create_table(
            "meta", data=pa.Table.from_pylist(rows, schema=META_SCHEMA), schema=META_SCHEMA
        )
        self.ensure_indexes()

    def _drop(self, name: str) -> None:
        """Drop a table, whatever state its files are in (damaged tables included)."""
        self._tables.pop(name, None)
        try:
            self.db.drop_table(name)
        except Exception as exc:
            log.debug("dropping table %s: %s", name, exc)
        folder = Path(self.uri) / f"{name}.lance"
        if self.is_local and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)

    def ensure_indexes(self) -> None:
        """The full-text index on chunks, and path indexes for per-file lookups."""
        from lancedb.index import FTS, BTree

        chunks = self.table("chunks")
        if not any(i.index_type == "FTS" for i in chunks.list_indices()):
            chunks.create_index("search_text", config=FTS(), replace=True)
        for name in ("chunks", "symbols", "files"):
            table = self.table(name)
            if not any(i.columns == ["path"] for i in table.list_indices()):
                table.create_index("path", config=BTree(), replace=True)

    def columns(self, name: str, columns: list[str], where: str | None = None) -> pa.Table:
        """Only ``columns`` of a table (optionally filtered): never reads the others from disk.

        ``to_arrow()`` would load every column (chunk text, full-text copies, vectors) first;
        incremental updates only need hashes and paths.
        """
        query = self.table(name).search().select(columns)
        if where:
            query = query.where(where)
        return query.limit(None).to_arrow()

    # ---- meta ---------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        rows = self.table("meta").to_arrow().to_pylist()
        return {row["key"]: row["value"] for row in rows}

    def set_meta(self, values: dict[str, str]) -> None:
        """Set keys in one commit (an upsert): a failure leaves the old values, never none."""
        if not values:
            return
        rows = pa.Table.from_pylist(
            [{"key": k, "value": v} for k, v in values.items()], schema=META_SCHEMA
        )
        (
            self.table("meta")
            .merge_insert("key")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )

    def tidy_meta(self) -> None:
        """Compact the meta table when its writes (one fragment each) have piled up."""
        table = self.table("meta")
        try:
            if int(table.stats()["fragment_stats"]["num_fragments"]) > META_FRAGMENTS:
                table.optimize(cleanup_older_than=timedelta(minutes=5))
        except Exception as exc:  # an optimisation; never fail an update on it
            log.warning("compacting table meta failed: %s", exc)

    # ---- catalog ------------------------------------------------------------------------
    def catalog(self) -> dict[str, CatalogRow]:
        columns = ["path", "content_id", "size", "language", "state", "detail", "chunks"]
        data = self.columns("files", columns).to_pydict()
        return {
            path: CatalogRow(path, cid, size, lang, state, detail, n)
            for path, cid, size, lang, state, detail, n in zip(
                *(data[c] for c in columns), strict=True
            )
        }

    def imports_of(self, path: str) -> list[str]:
        rows = (
            self.table("files")
            .search()
            .where(f"path = {quote(path)}")
            .select(["imports"])
            .limit(1)
            .to_list()
        )
        return list(rows[0]["imports"] or []) if rows else []

    # ---- writes -------------------------------------------------------------------------
    def write_batch(
        self,
        paths: Sequence[str],
        chunks: list[dict[str, Any]],
        symbols: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> None:
        """Replace everything stored for ``paths`` (catalog rows last)."""
        if paths:
            where = in_clause("path", paths)
            self.table("chunks").delete(where)
            self.table("symbols").delete(where)
        if chunks:
            self.table("chunks").add(pa.Table.from_pylist(chunks, schema=CHUNKS_SCHEMA))
        if symbols:
            self.table("symbols").add(pa.Table.from_pylist(symbols, schema=SYMBOLS_SCHEMA))
        if files:
            self.table("files").delete(in_clause("path", [f["path"] for f in files]))
            self.table("files").add(pa.Table.from_pylist(files, schema=FILES_SCHEMA))

    def delete_paths(self, paths: Sequence[str]) -> None:
        for start in range(0, len(paths), 500):
            where = in_clause("path", paths[start : start + 500])
            for name in ("chunks", "symbols", "files"):
                self.table(name).delete(where)

    def optimize(self, retain: timedelta = timedelta(minutes=5)) -> int:
        """Compact fragments, fold new rows into the indexes (cheap when nothing piled up) and
        remove table versions older than ``retain``; returns how many versions were removed."""
        names = [*TABLES, "embeddings"] if "embeddings" in self.existing() else list(TABLES)
        removed = 0
        for name in names:
            try:
                table = self.table(name)
                before = len(table.list_versions())
                table.optimize(cleanup_older_than=retain)
                removed += max(0, before - len(table.list_versions()))
            except Exception as exc:  # compaction is an optimisation; never fail an update on it
                log.warning("compacting table %s failed: %s", name, exc)
        return removed

    def versions(self) -> dict[str, int]:
        """The current version of each table of the index (what :meth:`restore` goes back to);
        the embedding cache is left out: vectors are keyed by content and never wrong."""
        return {name: int(self.table(name).version) for name in TABLES}

    def restore(self, versions: dict[str, int]) -> None:
        """Make each table's newest version equal to the one in ``versions`` again (a new
        commit, LanceDB's restore), the meta table last: until it is restored, its
        ``update_started`` says an update is at work, so nobody reads the tables half restored."""
        for name in sorted(versions, key=lambda n: n == "meta"):
            table = self.table(name)
            if int(table.version) != versions[name]:
                table.restore(versions[name])

    def unindexed_rows(self) -> int:
        """Chunks the full-text index does not hold yet: rows added since it was built or last
        folded in (optimize). Full-text queries still find them, by reading them row by row."""
        for index in self.table("chunks").list_indices():
            if index.index_type == "FTS":
                return int(index.num_unindexed_rows or 0)
        return 0

    def fragment_count(self) -> int:
        return sum(
            int(self.table(n).stats()["fragment_stats"]["num_fragments"])
            for n in ("chunks", "files")
        )

    # ---- embeddings cache ---------------------------------------------------------------
    def embeddings(self, dim: int, *, reset: bool = False) -> Any:
        if reset:
            self._drop("embeddings")
            self._tables.pop("embeddings", None)
        if "embeddings" not in self.existing():
            self._tables["embeddings"] = self.db.create_table(
                "embeddings", schema=embeddings_schema(dim)
            )
        return self.table("embeddings")

    def has_vector_index(self) -> bool:
        if "embeddings" not in self.existing():
            return False
        return any(list(i.columns) == ["vector"] for i in self.table("embeddings").list_indices())

    def ensure_vector_index(self) -> bool:
        """Create the ANN index on the vectors once the table holds ANN_MIN_ROWS of them (later
        compactions fold new rows into it). True when the index exists."""
        if "embeddings" not in self.existing():
            return False
        if self.has_vector_index():
            return True
        table = self.table("embeddings")
        rows = int(table.count_rows())
        if rows < ANN_MIN_ROWS:
            return False
        from lancedb.index import HnswSq

        partitions = max(1, rows // ANN_PARTITION_ROWS)
        table.create_index(
            "vector", config=HnswSq(distance_type="cosine", num_partitions=partitions)
        )
        return True

    def nearest_hashes(self, vector: np.ndarray, limit: int) -> list[tuple[str, int, float]]:
        """(content hash, part, similarity: 1 - cosine distance) of the ``limit`` nearest vectors
        through the ANN index."""
        table = self.table("embeddings")
        parts = "part" in table.schema.names
        rows = (
            table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .refine_factor(ANN_REFINE)  # re-rank with the exact vectors: quantization blurs ties
            .select(
                ["content_hash", "part", "_distance"] if parts else ["content_hash", "_distance"]
            )
            .limit(limit)
            .to_list()
        )
        return [
            (row["content_hash"], int(row.get("part") or 0), 1.0 - float(row["_distance"]))
            for row in rows
        ]

    def cached_hashes(self) -> set[str]:
        if "embeddings" not in self.existing():
            return set()
        return set(self.columns("embeddings", ["content_hash"]).column(0).to_pylist())

    def add_vectors(
        self,
        dim: int,
        hashes: Sequence[str],
        vectors: Sequence[Sequence[float]],
        parts: Sequence[int] | None = None,
    ) -> None:
        """Store vectors of chunk texts; ``parts``: which part of its chunk each one is (0, the
        whole chunk, when not given)."""
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(hashes), dim)
        flat = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), dim)
        table = self.embeddings(dim)
        columns = {"content_hash": pa.array(list(hashes), pa.string()), "vector": flat}
        if "part" in table.schema.names:  # a cache made before parts has none (re-embedded once)
            columns["part"] = pa.array(
                list(parts) if parts is not None else [0] * len(hashes), pa.int32()
            )
        table.add(pa.Table.from_pydict(columns).select(table.schema.names))

    def load_vectors(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every vector: their content hashes, parts (int32) and the matrix."""
        if "embeddings" not in self.existing():
            return [], np.zeros(0, dtype=np.int32), np.zeros((0, 0), dtype=np.float32)
        table = self.table("embeddings").to_arrow()
        hashes = table.column("content_hash").to_pylist()
        parts = (
            table.column("part").to_numpy(zero_copy_only=False).astype(np.int32)
            if "part" in table.schema.names
            else np.zeros(len(hashes), dtype=np.int32)
        )
        vectors = table.column("vector").combine_chunks()
        dim = vectors.type.list_size
        flat = vectors.values.to_numpy(zero_copy_only=False)
        return hashes, parts, np.asarray(flat, dtype=np.float32).reshape(len(hashes), dim)

    def prune_vectors(self, keep: set[str]) -> None:
        """Drop cached vectors no chunk uses when the cache has grown to twice what is used."""
        if "embeddings" not in self.existing():
            return
        cached = self.cached_hashes()
        stale = cached - keep
        if len(cached) > 2 * max(len(keep), 1000) and stale:
            stale_list = sorted(stale)
            for start in range(0, len(stale_list), 500):
                self.table("embeddings").delete(
                    in_clause("content_hash", stale_list[start : start + 500])
                )


def storage_options_for(endpoint: str = "", region: str = "") -> dict[str, str] | None:
    """The AWS_* variables, with the configured endpoint and region (index.s3_*) over them."""
    options = storage_options_from_env() or {}
    if endpoint:
        options["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["allow_http"] = "true"
    if region:
        options["region"] = region
    return options or None


def storage_options_from_env() -> dict[str, str] | None:
    """S3-compatible stores read credentials and endpoint from the usual AWS variables."""
    keys = {
        "AWS_ACCESS_KEY_ID": "aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
        "AWS_REGION": "region",
        "AWS_ENDPOINT_URL": "endpoint",
    }
    options = {dst: os.environ[src] for src, dst in keys.items() if os.environ.get(src)}
    if options.get("endpoint", "").startswith("http://"):
        options["allow_http"] = "true"
    return options or None
