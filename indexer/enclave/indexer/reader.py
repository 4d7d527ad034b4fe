"""Queries of one index: ranked chunks (full text, vectors, fused), symbols and lookups.

Full-text queries read LanceDB (or, for a small table, an in-memory copy: ``memory_text_rows``);
vector queries read an in-memory matrix of the vectors, or the ANN index of a large table;
symbols are read once per version of their table. Every cache is keyed by the versions of the
tables it was read from, so another writer's commit is seen at the next query.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
from lancedb.query import MatchQuery

from enclave.indexer.embed import EmbeddingUnavailable
from enclave.indexer.errors import IndexProblem
from enclave.indexer.fulltext import TextIndex
from enclave.indexer.handle import StoreHandle
from enclave.indexer.results import Reason, SearchResult
from enclave.indexer.search import (
    CHUNK_CLASSES,
    INNER_KIND,
    VectorMatrix,
    chunk_class,
    chunk_prior,
    class_weights,
    dense_size_weight,
    docs_beside,
    fuse,
    kind_weight,
    query_intent,
    symbol_score,
)
from enclave.indexer.semantic import Semantic
from enclave.indexer.store import Store
from enclave.indexer.tables import in_clause, quote
from enclave.indexer.tokens import query_text
from enclave.indexer.types import Chunk, SearchHit, SymbolDef

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


class IndexReader:
    """The queries of the index behind ``handle``. ``memory_text_rows``: full-text queries of a
    table of at most this many chunks are answered in memory
    (:class:`enclave.indexer.fulltext.TextIndex`); 0 never (a local overlay sets it: its rows are
    kept per version)."""

    def __init__(self, handle: StoreHandle, semantic: Semantic, *, memory_text_rows: int = 0):
        self.handle = handle
        self.semantic = semantic
        self.memory_text_rows = memory_text_rows
        self._text: tuple[int, TextIndex | None] | None = None
        self._vectors: VectorMatrix | None = None
        self._vectors_key: tuple[int, int] | None = None
        self._symbols: list[SymbolDef] | None = None
        self._symbols_by_name: dict[str, list[SymbolDef]] = {}
        self._symbols_by_path: dict[str, list[SymbolDef]] = {}
        self._paths: tuple[int, frozenset[str]] | None = None
        self._symbols_version: tuple[int, frozenset[str]] = (-1, frozenset())
        # indexed paths the rules in force now leave out, per version of the files table
        self._excluded: tuple[tuple[int, tuple[str, ...]], frozenset[str]] | None = None

    def forget(self) -> None:
        """Drop the vectors and symbols read (a rebuild made new tables, or the index closed)."""
        self._vectors = None
        self._symbols = None

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
        """Ranked chunks; ``exclude`` leaves out these paths (those a local overlay shadows).
        Each chunk's scores are weighed by what kind of chunk the query asks for (query_intent:
        code, tests, docs, changelog) and its class (chunk_class)."""
        if mode not in ("hybrid", "lexical", "semantic"):
            raise ValueError(f"unknown search mode {mode!r}: use hybrid, lexical or semantic")
        store = self.handle.ready_store()
        exclude = frozenset(exclude) | self._excluded_now(store)
        pool = max(k * 4, 40)
        intent = query_intent(query)
        lexical: list[tuple[str, float]] = []
        rows: dict[str, dict[str, Any]] = {}  # the lexical hits' rows, read with them
        dense: list[tuple[str, float]] = []
        off: Reason | None = None
        if mode in ("hybrid", "lexical"):
            lexical, rows = self._lexical(
                store, query, pool, path_prefix, language, exclude, intent
            )
        if mode in ("hybrid", "semantic"):
            dense, off = self._dense(store, query, pool, path_prefix, language, exclude, intent)
            if mode == "semantic" and off is not None:
                raise IndexProblem(off.message, off.fix or "use --mode lexical")
        if not dense:
            ranked = [cid for cid, _ in lexical]
            scores = {cid: score for cid, score in lexical}
        elif not lexical:
            ranked = [cid for cid, _ in dense]
            scores = {cid: score for cid, score in dense}
        else:
            scores = fuse(lexical, dense)
            ranked = sorted(scores, key=lambda c: -scores[c])
        hits = self._hits(store, ranked[:k], scores, rows)
        if intent == "code" and any(chunk_class(h.path, h.kind) == "docs" for h in hits):
            # a section about a definition found rides beside it: the next results fill in
            hits = docs_beside(hits + self._hits(store, ranked[k : 2 * k], scores, rows), k)
        return SearchResult(hits, off)

    def _excluded_now(self, store: Store) -> frozenset[str]:
        """Indexed files that the exclusion rules in force now leave out (a never_index rule
        or an exclude added since they were indexed): never answered, and removed by the next
        update."""
        from enclave.indexer.discover import excluded_now, exclusion_rules

        rules = exclusion_rules(self.handle.root, self.handle.config.index)
        if not rules:  # nothing to check: no read of the catalog
            return frozenset()
        patterns = tuple(str(getattr(p, "pattern", p)) for r in rules for p in r.spec.patterns)
        key = (store.version("files"), patterns)
        if self._excluded is None or self._excluded[0] != key:
            paths = store.columns("files", ["path"]).column(0).to_pylist()
            self._excluded = (key, excluded_now(rules, paths))
        return self._excluded[1]

    @staticmethod
    def _where(
        path_prefix: str | None, language: str | None, exclude: Collection[str] = ()
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
        intent: str = "code",
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
            scored = [
                (row["id"], score * chunk_prior(row["path"], row["kind"], intent))
                for row, score in found
            ]
            return sorted(scored, key=lambda item: -item[1]), {r["id"]: dict(r) for r, _ in found}
        # A MatchQuery is never parsed: quotes, colons and operators in a query are plain text.
        match = MatchQuery(text, "search_text")  # type: ignore[call-arg]  # pydantic defaults
        builder = store.table("chunks").search(match, query_type="fts")
        where = self._where(path_prefix, language, exclude)
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select([*CHUNK_COLUMNS, "_score"]).limit(limit).to_list()
        scored = [
            (row["id"], float(row["_score"]) * chunk_prior(row["path"], row["kind"], intent))
            for row in rows
        ]
        return sorted(scored, key=lambda item: -item[1]), {row["id"]: row for row in rows}

    def _memory_text(self, store: Store) -> TextIndex | None:
        """The chunks table in memory for full-text queries, while it has at most
        ``memory_text_rows`` rows (read again when its version changes)."""
        table = store.table("chunks")
        version = store.version("chunks")
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
        intent: str = "code",
    ) -> tuple[list[tuple[str, float]], Reason | None]:
        """Dense hits, or none and the reason they could not be had."""
        meta = store.meta()
        # The query's embedding is the live check here: only what no request can tell is asked.
        off = self.semantic.off(meta, live=not meta.get("embedding_model"))
        if off is None and store.has_vector_index():  # a large index: never load every vector
            return self._dense_ann(
                store, meta, query, limit, path_prefix, language, exclude, intent
            )
        matrix = None if off else self._vector_matrix(store)
        if matrix is None or not matrix.chunk_ids:
            off = off or self.semantic.no_vectors()
            return [], Reason(f"semantic search is off: {off.message}", off.fix)
        try:
            embedder = self.semantic.for_queries(meta["embedding_model"])
            vector = np.asarray(embedder.embed([query], query=True)[0], dtype=np.float32)
        except EmbeddingUnavailable as exc:
            return [], Reason(f"semantic search is off for this query: {exc.message}", exc.fix)
        found = matrix.top(
            vector,
            limit,
            path_prefix=path_prefix,
            language=language,
            exclude=exclude,
            weights=class_weights(intent, dense=True),
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
        intent: str = "code",
    ) -> tuple[list[tuple[str, float]], Reason | None]:
        """Dense hits through the ANN index: nearest vectors, then the chunks that have them
        (filters applied to those; a wider pool makes up for what they remove)."""
        try:
            embedder = self.semantic.for_queries(meta["embedding_model"])
            vector = np.asarray(embedder.embed([query], query=True)[0], dtype=np.float32)
        except EmbeddingUnavailable as exc:
            return [], Reason(f"semantic search is off for this query: {exc.message}", exc.fix)
        filtered = bool(path_prefix or language or exclude)
        # a type's chunk may come back once per inner definition: a wider pool keeps ``limit`` chunks
        near = store.nearest_hashes(vector, limit * (4 if filtered else 2))
        if not near:
            return [], None
        best: dict[str, dict[int, float]] = {}  # hash -> part -> similarity
        for content_hash, part, similarity in near:
            parts = best.setdefault(content_hash, {})
            parts[part] = max(similarity, parts.get(part, -1.0))
        rows = store.columns(
            "chunks",
            ["id", "path", "language", "kind", "start_line", "end_line", "content_hash"],
            in_clause("content_hash", list(best)),
        ).to_pylist()
        keep = _row_filter(path_prefix, language, exclude)
        hits = [
            (
                row["id"],
                max(
                    similarity
                    * chunk_prior(
                        row["path"], row["kind"] if part == 0 else INNER_KIND, intent, dense=True
                    )
                    for part, similarity in best[row["content_hash"]].items()
                )
                * dense_size_weight(row["start_line"], row["end_line"]),
            )
            for row in rows
            if keep is None or keep(row)
        ]
        hits.sort(key=lambda hit: -hit[1])
        return hits[:limit], None

    def _vector_matrix(self, store: Store) -> VectorMatrix:
        emb_version = store.version("embeddings") if "embeddings" in store.existing() else -1
        key = (store.version("chunks"), emb_version)
        if self._vectors is not None and self._vectors_key == key:
            return self._vectors
        hashes, parts, matrix = store.load_vectors()
        position: dict[str, int] = {}  # the chunk's own vector
        inner: dict[str, list[int]] = {}  # its inner definitions' vectors
        for i, (h, part) in enumerate(zip(hashes, parts.tolist(), strict=True)):
            if part == 0:
                position[h] = i
            else:
                inner.setdefault(h, []).append(i)
        columns = ["id", "path", "language", "kind", "start_line", "end_line", "content_hash"]
        meta = store.columns("chunks", columns).to_pydict()
        ids: list[str] = []
        paths: list[str] = []
        languages: list[str] = []
        rows: list[int] = []
        priors: list[float] = []
        classes: list[int] = []
        inner_rows: list[int] = []
        inner_owner: list[int] = []
        inner_classes: list[int] = []
        for cid, path, language, kind, start, end, h in zip(
            *(meta[c] for c in columns), strict=True
        ):
            row = position.get(h)
            if row is not None:
                owner = len(ids)
                ids.append(cid)
                paths.append(path)
                languages.append(language)
                rows.append(row)
                priors.append(kind_weight(kind, dense=True) * dense_size_weight(start, end))
                classes.append(CHUNK_CLASSES.index(chunk_class(path, kind)))
                for extra in inner.get(h, ()):
                    inner_rows.append(extra)
                    inner_owner.append(owner)
                    inner_classes.append(CHUNK_CLASSES.index(chunk_class(path, INNER_KIND)))
        self._vectors = VectorMatrix(
            ids,
            np.array(paths, dtype=object),
            np.array(languages, dtype=object),
            np.array(rows, dtype=np.int32),
            matrix,
            np.array(priors, dtype=np.float32),
            np.array(classes, dtype=np.int8),
            np.array(inner_rows, dtype=np.int32),
            np.array(inner_owner, dtype=np.int32),
            np.array(inner_classes, dtype=np.int8),
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

    # ---- symbols ------------------------------------------------------------------------
    def _load_symbols(self) -> list[SymbolDef]:
        store = self.handle.ready_store()
        table = store.table("symbols")
        excluded = self._excluded_now(store)  # no read at all while no rule excludes a file
        key = (store.version("symbols"), excluded)
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

    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        symbols = self._load_symbols()
        scored = [(s, score) for s in symbols if (score := symbol_score(s, query)) > 0]
        scored.sort(key=lambda item: (-item[1], len(item[0].qualified_name), item[0].path))
        return [s for s, _ in scored[:limit]]

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

    def all_symbols(self) -> list[SymbolDef]:
        return list(self._load_symbols())

    def file_symbols(self, path: str) -> list[SymbolDef]:
        self._load_symbols()
        return list(self._symbols_by_path.get(path, ()))

    def symbols_in(self, paths: Collection[str]) -> dict[str, list[SymbolDef]]:
        self._load_symbols()
        return {path: list(self._symbols_by_path.get(path, ())) for path in paths}

    def paths(self) -> frozenset[str]:
        store = self.handle.ready_store()
        version = store.version("files")
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

    def file_imports(self, path: str) -> list[str]:
        return self.handle.ready_store().imports_of(path)

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        store = self.handle.ready_store()
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
