"""The LanceDB store: tables, their schemas, and the few write/read operations the engine needs.

Tables (docs/index-schema.md): ``chunks``, ``symbols``, ``files`` (the catalog), ``meta``
(key/value) and ``embeddings`` (vectors keyed by chunk content hash: the embedding cache).

Write order per batch of files: delete their old chunks/symbols, add the new ones, then replace
their catalog rows. A crash at any point leaves catalog rows that describe older content than the
working tree, so the next run re-processes those files and converges.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from enclave.indexer.errors import IndexProblem

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TABLES = ("chunks", "symbols", "files", "meta")

CHUNKS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("kind", pa.string()),
        ("symbol", pa.string()),
        ("start_line", pa.int32()),
        ("end_line", pa.int32()),
        ("text", pa.string()),
        ("search_text", pa.string()),
        ("content_hash", pa.string()),
    ]
)
SYMBOLS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("qualified_name", pa.string()),
        ("kind", pa.string()),
        ("path", pa.string()),
        ("start_line", pa.int32()),
        ("end_line", pa.int32()),
        ("signature", pa.string()),
        ("doc", pa.string()),
    ]
)
FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("content_id", pa.string()),
        ("size", pa.int64()),
        ("language", pa.string()),
        ("state", pa.string()),  # "indexed" | "skipped:<reason>" | "error"
        ("detail", pa.string()),
        ("chunks", pa.int32()),
        ("imports", pa.list_(pa.string())),
    ]
)
META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema([("content_hash", pa.string()), ("vector", pa.list_(pa.float32(), dim))])


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_clause(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


@dataclass(frozen=True, slots=True)
class CatalogRow:
    path: str
    content_id: str
    size: int
    language: str
    state: str
    detail: str
    chunks: int


def default_db(root: Path) -> str:
    return str(root / ".enclave")


class Store:
    """Open tables of one index. Not itself locked: the engine takes the write lock."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        import lancedb

        self.uri = uri
        self.is_local = "://" not in uri
        if self.is_local:
            Path(uri).mkdir(parents=True, exist_ok=True)
            ignore = Path(uri) / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Enclave's index: never commit it.\n*\n")
        try:
            self.db = lancedb.connect(
                uri,
                storage_options=storage_options,
                read_consistency_interval=timedelta(seconds=0),
            )
        except Exception as exc:
            raise IndexProblem(
                f"cannot open the index at {uri}: {exc}", "check the path or --db URI"
            ) from exc
        self._tables: dict[str, Any] = {}

    # ---- tables -------------------------------------------------------------------------
    def existing(self) -> set[str]:
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
            raise IndexProblem(
                f"the index at {self.uri} is unreadable ({exc})",
                "run `enclave index --full` to rebuild it",
            ) from exc

    def table(self, name: str) -> Any:
        if name not in self._tables:
            self._tables[name] = self.db.open_table(name)
        return self._tables[name]

    def has_index(self) -> bool:
        return set(TABLES) <= self.existing()

    def check_readable(self) -> None:
        """Raise IndexProblem if any table cannot be read (a damaged index)."""
        try:
            for name in TABLES:
                self.table(name).count_rows()
        except IndexProblem:
            raise
        except Exception as exc:
            raise IndexProblem(
                f"the index at {self.uri} is damaged ({type(exc).__name__}: {exc})",
                "run `enclave index --full` to rebuild it",
            ) from exc

    def create(self, meta: dict[str, str]) -> None:
        """Drop everything and create empty tables (a full rebuild)."""
        self._tables.clear()
        for name in [*TABLES, "embeddings_new"]:
            self._drop(name)
        self._tables["chunks"] = self.db.create_table("chunks", schema=CHUNKS_SCHEMA)
        self._tables["symbols"] = self.db.create_table("symbols", schema=SYMBOLS_SCHEMA)
        self._tables["files"] = self.db.create_table("files", schema=FILES_SCHEMA)
        self._tables["meta"] = self.db.create_table("meta", schema=META_SCHEMA)
        self.set_meta(meta)
        self.ensure_indexes()

    def _drop(self, name: str) -> None:
        try:
            self.db.drop_table(name)
        except Exception:
            if self.is_local:
                import shutil

                shutil.rmtree(Path(self.uri) / f"{name}.lance", ignore_errors=True)

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
        table = self.table("meta")
        if not values:
            return
        table.delete(in_clause("key", values))
        table.add([{"key": k, "value": v} for k, v in values.items()])

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

    def optimize(self) -> None:
        """Compact fragments and fold new rows into the indexes (cheap when nothing piled up)."""
        names = [*TABLES, "embeddings"] if "embeddings" in self.existing() else list(TABLES)
        for name in names:
            try:
                self.table(name).optimize(cleanup_older_than=timedelta(minutes=5))
            except Exception as exc:  # compaction is an optimisation; never fail an update on it
                log.warning("compacting table %s failed: %s", name, exc)

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

    def cached_hashes(self) -> set[str]:
        if "embeddings" not in self.existing():
            return set()
        return set(self.columns("embeddings", ["content_hash"]).column(0).to_pylist())

    def add_vectors(
        self, dim: int, hashes: Sequence[str], vectors: Sequence[Sequence[float]]
    ) -> None:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(hashes), dim)
        flat = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), dim)
        batch = pa.Table.from_arrays(
            [pa.array(list(hashes), pa.string()), flat], ["content_hash", "vector"]
        )
        self.embeddings(dim).add(batch)

    def load_vectors(self) -> tuple[list[str], np.ndarray]:
        if "embeddings" not in self.existing():
            return [], np.zeros((0, 0), dtype=np.float32)
        table = self.table("embeddings").to_arrow()
        hashes = table.column("content_hash").to_pylist()
        vectors = table.column("vector").combine_chunks()
        dim = vectors.type.list_size
        flat = vectors.values.to_numpy(zero_copy_only=False)
        return hashes, np.asarray(flat, dtype=np.float32).reshape(len(hashes), dim)

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
