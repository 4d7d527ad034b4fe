"""The indexer's public face: what an index can do (:class:`Index`) and how to open one.

This is the only module the server and the CLI need. It knows nothing of LSP. The contract is a
``Protocol``; the implementation (:class:`enclave.indexer.engine.EngineIndex`) is imported one
way, from here, so the indexer's modules never import their own public face back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Protocol

from enclave.config import Config
from enclave.indexer.bursts import one_version_each
from enclave.indexer.errors import IndexProblem
from enclave.indexer.results import (
    IndexStatus,
    IndexSummary,
    ProgressFn,
    Reason,
    SearchResult,
)
from enclave.indexer.types import Chunk, SearchHit, Skipped, SymbolDef

__all__ = [
    "Chunk",
    "Index",
    "IndexProblem",
    "IndexStatus",
    "IndexSummary",
    "ProgressFn",
    "Reason",
    "SearchHit",
    "SearchResult",
    "Skipped",
    "SymbolDef",
    "one_version_each",
    "open_index",
]


class Index(Protocol):
    """An Enclave index of one repository, stored in LanceDB.

    Opening never builds anything; call :meth:`update`. Every method is safe to call from a worker
    thread; updates take a write lock shared with other processes (CLI and server). Storage
    failures raise :class:`IndexProblem` (with the fix); other exceptions are bugs.
    """

    root: Path
    config: Config
    db_uri: str

    def update(
        self,
        *,
        full: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        complete_only: bool = False,
    ) -> IndexSummary:
        """Bring the index up to date with the working tree (only ``paths`` if given).
        ``complete_only``: a result that would be degraded is not published (the summary's
        ``published`` is False and its notes say what was kept)."""
        ...

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        path_prefix: str | None = None,
        language: str | None = None,
    ) -> SearchResult:
        """Ranked chunks for ``query``; mode is "hybrid", "lexical" or "semantic"."""
        ...

    def status(self) -> IndexStatus: ...

    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        """Symbols matching ``query`` by prefix, qualified name or fuzzy subsequence, best first."""
        ...

    def definitions(self, names: Collection[str], *, limit: int = 20) -> list[SymbolDef]:
        """Definitions whose name or qualified name equals one of ``names``."""
        ...

    def all_symbols(self) -> list[SymbolDef]:
        """Every symbol of the index (training data export reads the documented ones)."""
        ...

    def file_imports(self, path: str) -> list[str]: ...

    def paths(self) -> frozenset[str]:
        """The repository-relative paths of the indexed files."""
        ...

    def file_symbols(self, path: str) -> list[SymbolDef]: ...

    def symbols_in(self, paths: Collection[str]) -> dict[str, list[SymbolDef]]:
        """The symbols of each of ``paths`` (one read of the table for all of them)."""
        ...

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        """The chunk of ``path`` that contains 1-based ``line`` (None if not indexed)."""
        ...

    def prefetch(self, *, wait: bool = False) -> None:
        """Start background work that makes later queries faster, once the index is ready: a
        shared index in an object store is copied into the user cache. Nothing for a local
        index. ``wait``: return when that work is done."""
        ...

    def close(self) -> None: ...


def open_index(root: Path, config: Config) -> Index:
    """Open (or prepare to create) the index for ``root``. Raises IndexProblem if unusable.

    With ``index.shared`` set (and not the index being written), a layered index: the team's
    shared index, read-only, under a local overlay of what differs in the working tree."""
    from enclave.indexer.engine import open_engine

    engine = open_engine(root, config)
    shared = config.index.shared
    if shared and shared.rstrip("/") != config.index.db.rstrip("/"):  # CI writing it: no layer
        from enclave.indexer.layered import LayeredIndex

        return LayeredIndex(engine.root, config)
    return engine
