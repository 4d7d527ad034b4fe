"""What the indexer returns: update summaries, index status and search results, as plain data.

A result travels with its notes (why semantic search was off, what to do about it) as fields of
one value; nothing is left on a shared object for the caller to read afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from enclave.indexer.types import SearchHit, Skipped

if TYPE_CHECKING:
    from enclave.config import Config

# progress(done, total, message); called from the indexing thread.
ProgressFn = Callable[[int, int, str], None]

# The settings that ask for vectors: set by any layer (user config, `.enclave.toml`, environment,
# --settings), an index without them is degraded; left at their defaults, semantic search is a
# bonus a laptop without an embedding model has not lost.
EMBEDDING_KEYS = ("embedding.provider", "embedding.model", "embedding.url")


def vectors_expected(config: Config) -> bool:
    """Whether this configuration asked for embeddings (not only inherited the defaults)."""
    if config.embedding.provider == "none":
        return False
    return any(config.origin(key) != "default" for key in EMBEDDING_KEYS)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something is limited or off: ``message`` says what happened, ``fix`` what to do."""

    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


@dataclass(slots=True)
class IndexSummary:
    root: str
    db: str
    files_seen: int = 0
    files_indexed: int = 0  # added or changed files re-processed this run
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0  # files left out of the index now (as `status` counts them)
    chunks_written: int = 0
    chunks_total: int = 0
    embedded: int = 0  # chunks embedded this run (cache misses)
    bytes_indexed: int = 0
    seconds: float = 0.0
    semantic: bool = False
    semantic_reason: str = ""  # why semantic search is off ("" when on)
    semantic_fix: str = ""  # what to do about it
    commit: str | None = None
    cancelled: bool = False
    full: bool = False
    versions_removed: int = 0  # old table versions cleaned up after compaction
    # The index already held a newer commit that contains this checkout's: nothing was done
    # (the fields above describe the index as it is).
    superseded: bool = False
    # False: this run's writes were taken back (or never made) because the result would have
    # been degraded and the caller asked for a complete index only (--fail-on-degraded).
    published: bool = True
    skipped: list[Skipped] = field(default_factory=list)  # those this run looked at
    errors: list[str] = field(default_factory=list)  # per-file problems; the rest was indexed
    notes: list[str] = field(default_factory=list)

    def semantic_off(self, reason: Reason) -> None:
        self.semantic = False
        self.semantic_reason, self.semantic_fix = reason.message, reason.fix

    def to_json(self) -> dict[str, Any]:
        """The `enclave index --json` document (and the `enclave.reindex` command's result)."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class IndexStatus:
    """What the index holds, and whether it can be trusted.

    ``healthy`` is False when there is no index, when its verification found damage, or when an
    update started and did not finish (the index holds only part of the repository): ``problem``
    says which, ``fix`` what to do. ``updating`` is True while another writer is at work.
    """

    root: str
    db: str
    exists: bool
    healthy: bool = True
    problem: str = ""  # what is wrong ("" when healthy)
    fix: str = ""  # what to do about it
    updating: bool = False  # an update is running right now (this or another process)
    # The last update was cancelled: what it wrote is consistent and served, but files it did
    # not reach are missing or stale until the next update finishes.
    partial: bool = False
    # Chunks without a vector yet: an update embedding them was interrupted (or is running).
    vectors_missing: int = 0
    # The vectors were made from another form of each chunk's embedding input than this version
    # of Enclave makes (meta embedding_input): semantic search works on them, ranking less well,
    # until the next update embeds every chunk again.
    vectors_outdated: bool = False
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
    semantic_fix: str = ""
    files_skipped: int = 0
    # A team's shared index under a local overlay (index.shared); "" when there is none.
    shared: str = ""
    shared_problem: str = ""  # why the shared index is not used now ("" when it is)
    shared_fix: str = ""
    overlay_files: int = 0  # files indexed locally over the shared index (they differ here)
    hidden_files: int = 0  # files of the shared index shadowed or deleted in this working tree
    # The local copy of the shared index that queries read (index.sharedCopy); "" while they
    # read the store itself.
    shared_copy: str = ""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked hits, and why vectors were not used when they were asked for (None if they were)."""

    hits: list[SearchHit]
    semantic_off: Reason | None = None
