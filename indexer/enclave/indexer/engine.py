"""The index engine: the implementation behind :class:`enclave.indexer.api.Index` for one store.

:class:`EngineIndex` puts three parts over one :class:`~enclave.indexer.handle.StoreHandle`: the
writer (:mod:`enclave.indexer.writer`, updates), the reader (:mod:`enclave.indexer.reader`,
search, symbols and lookups with their caches) and the self-check (:mod:`enclave.indexer.status`).
Everything that makes one engine differ from another (read-only, in-memory full text) is given
to the constructor. Queries that fail in storage are retried once on the newest version of the
tables, then reported as a damaged index (:func:`reads_index`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from enclave.config import Config
from enclave.indexer.errors import IndexProblem, brief, is_storage_error
from enclave.indexer.handle import StoreHandle
from enclave.indexer.reader import IndexReader
from enclave.indexer.results import IndexStatus, IndexSummary, ProgressFn, SearchResult
from enclave.indexer.semantic import Semantic
from enclave.indexer.status import index_status
from enclave.indexer.store import Store
from enclave.indexer.types import Chunk, SymbolDef
from enclave.indexer.writer import IndexWriter

log = logging.getLogger(__name__)

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


def open_engine(root: Path, config: Config) -> EngineIndex:
    """The engine over the store of the repository at ``root`` (IndexProblem if ``root`` is not
    a directory). :func:`enclave.indexer.api.open_index` is what callers use."""
    root = Path(root).expanduser()
    if not root.exists():
        raise IndexProblem(f"no such directory: {root}", "pass the path of a repository")
    if not root.is_dir():
        raise IndexProblem(f"not a directory: {root}", "pass the path of a repository")
    return EngineIndex(root.resolve(), config)


class EngineIndex:
    """The LanceDB-backed implementation of :class:`enclave.indexer.api.Index`.

    ``read_only``: a shared index (index.shared) this process reads and never writes.
    ``memory_text_rows``: full-text queries of a table of at most this many chunks are answered
    in memory (0: never; a local overlay sets it)."""

    def __init__(
        self, root: Path, config: Config, *, read_only: bool = False, memory_text_rows: int = 0
    ) -> None:
        self.root = root
        self.config = config
        self.handle = StoreHandle(root, config, read_only=read_only)
        self.db_uri = self.handle.db_uri
        semantic = Semantic(root, config)
        self.reader = IndexReader(self.handle, semantic, memory_text_rows=memory_text_rows)
        self.writer = IndexWriter(self.handle, semantic, self.reader.forget)
        self._semantic = semantic

    @property
    def store(self) -> Store:
        return self.handle.store

    def reload(self) -> None:
        """Open the tables again at their newest version (cached copies stay version-keyed)."""
        self.handle.reload()

    def prefetch(self, *, wait: bool = False) -> None:
        """Nothing to fetch: this index is read where it is."""

    def close(self) -> None:
        self.handle.reload()
        self.reader.forget()

    def has_index(self) -> bool:
        return self.handle.has_index()

    def writer_active(self) -> bool:
        """Some process (this one included) holds the write lock of this index right now."""
        return self.handle.writer_active()

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
        """:meth:`enclave.indexer.writer.IndexWriter.update`."""
        return self.writer.update(
            full=full,
            paths=paths,
            progress=progress,
            cancelled=cancelled,
            complete_only=complete_only,
            scope=scope,
        )

    @reads_index
    def status(self) -> IndexStatus:
        return index_status(self.handle, self._semantic)

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
        return self.reader.search(
            query, k=k, mode=mode, path_prefix=path_prefix, language=language, exclude=exclude
        )

    @reads_index
    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        return self.reader.find_symbols(query, limit=limit)

    @reads_index
    def definitions(self, names: Collection[str], *, limit: int = 20) -> list[SymbolDef]:
        return self.reader.definitions(names, limit=limit)

    @reads_index
    def all_symbols(self) -> list[SymbolDef]:
        return self.reader.all_symbols()

    @reads_index
    def file_symbols(self, path: str) -> list[SymbolDef]:
        return self.reader.file_symbols(path)

    @reads_index
    def symbols_in(self, paths: Collection[str]) -> dict[str, list[SymbolDef]]:
        return self.reader.symbols_in(paths)

    @reads_index
    def paths(self) -> frozenset[str]:
        return self.reader.paths()

    @reads_index
    def file_imports(self, path: str) -> list[str]:
        return self.reader.file_imports(path)

    @reads_index
    def chunk_at(self, path: str, line: int) -> Chunk | None:
        return self.reader.chunk_at(path, line)
