"""The indexer's public face: open an index for a repository, update it, search it, read it.

This is the only module the server and the CLI need. It knows nothing of LSP.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.config import Config
from indexer.errors import EnclaveError
from indexer.types import Chunk, SearchHit, Skipped, SymbolDef

# progress(done, total, message); called from the indexing thread.
ProgressFn = Callable[[int, int, str], None]


class IndexError_(EnclaveError):
    """An index problem a user can act on: ``message`` says what is wrong, ``fix`` what to do."""


@dataclass(slots=True)
class IndexSummary:
    root: str
    db: str
    files_seen: int = 0
    files_indexed: int = 0  # added or changed files re-processed this run
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0
    chunks_written: int = 0
    chunks_total: int = 0
    embedded: int = 0  # chunks embedded this run (cache misses)
    bytes_indexed: int = 0
    seconds: float = 0.0
    semantic: bool = False
    semantic_reason: str = ""
    commit: str | None = None
    cancelled: bool = False
    full: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # per-file problems; the rest was indexed
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IndexStatus:
    root: str
    db: str
    exists: bool
    files: int = 0
    chunks: int = 0
    symbols: int = 0
    commit: str | None = None
    indexed_at: str | None = None
    schema_version: int = 0
    tool_version: str = ""
    embedding_provider: str = ""
    embedding_model: str = ""
    embedding_dim: int = 0
    semantic: bool = False
    semantic_reason: str = ""
    files_skipped: int = 0


class Index:
    """An Enclave index of one repository, stored in LanceDB.

    ``Index.open`` never builds anything; call :meth:`update`. Every method is safe to call from
    a worker thread; updates take a write lock shared with other processes (CLI and server).
    """

    root: Path
    config: Config
    # Why the last search() ran without vectors ("" when it used them): shown, never swallowed.
    semantic_note: str = ""

    @classmethod
    def open(cls, root: Path, config: Config) -> Index:
        """Open (or prepare to create) the index for ``root``. Raises IndexError_ if unusable."""
        from indexer.engine import open_index

        return open_index(root, config)

    def update(
        self,
        *,
        full: bool = False,
        paths: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> IndexSummary:
        """Bring the index up to date with the working tree (only ``paths`` if given)."""
        raise NotImplementedError

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        path_prefix: str | None = None,
        language: str | None = None,
    ) -> list[SearchHit]:
        """Ranked chunks for ``query``; mode is "hybrid", "lexical" or "semantic"."""
        raise NotImplementedError

    def status(self) -> IndexStatus:
        raise NotImplementedError

    def find_symbols(self, query: str, *, limit: int = 50) -> list[SymbolDef]:
        """Symbols matching ``query`` by prefix, qualified name or fuzzy subsequence, best first."""
        raise NotImplementedError

    def definitions(self, names: Collection[str], *, limit: int = 20) -> list[SymbolDef]:
        """Definitions whose name or qualified name equals one of ``names``."""
        raise NotImplementedError

    def file_imports(self, path: str) -> list[str]:
        raise NotImplementedError

    def file_symbols(self, path: str) -> list[SymbolDef]:
        raise NotImplementedError

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        """The chunk of ``path`` that contains 1-based ``line`` (None if not indexed)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
