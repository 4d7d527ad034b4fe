"""How a working tree differs from a shared index (:class:`Difference`), found by content.

The shared catalog keeps every file's git blob id and discovery computes the same id for the
working tree (modified and untracked files included), so a shared index of any commit, fetched
or not, compares exactly. :class:`enclave.indexer.layered.LayeredIndex` indexes the difference
into its local overlay and hides the shared rows of those files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from enclave.config import IndexConfig
from enclave.indexer.errors import IndexProblem
from enclave.indexer.mirror import versions_at_rest
from enclave.indexer.store import Store


@dataclass(frozen=True, slots=True)
class Difference:
    """How the working tree differs from the shared index."""

    local: frozenset[str]  # files to index locally: changed here, or absent from the shared index
    deleted: frozenset[str]  # files of the shared index that the working tree does not have
    shared_commit: str
    # the shared tables' versions compared with (None: a writer was at work, or not read)
    versions: dict[str, int] | None = None
    # the working tree's content id of each ``local`` file (what the overlay must hold)
    local_ids: dict[str, str] = dataclasses.field(default_factory=dict)
    shadowed: frozenset[str] = frozenset()  # ``local`` files the shared index has too
    hidden_chunks: int = 0  # the shared index's chunks of the hidden files

    @property
    def hidden(self) -> frozenset[str]:
        """Paths whose shared rows must never be answered here."""
        return self.local | self.deleted

    @property
    def hidden_shared(self) -> frozenset[str]:
        """The shared index's own files that are not answered here (shadowed or deleted);
        untracked files are in ``local`` but were never the shared index's."""
        return self.shadowed | self.deleted


def compare(
    store: Store, db_uri: str, root: Path, config: IndexConfig, *, with_versions: bool
) -> Difference:
    """Compare the working tree at ``root`` with the catalog of the shared ``store`` (raises if
    the store fails); ``with_versions``: record the versions of its tables compared with (what
    a local copy must hold to answer for them)."""
    from enclave.indexer.discover import DiscoveryError, discover

    if not store.has_index():
        raise IndexProblem(
            f"no index at {db_uri} (index.shared)",
            "check index.shared, or wait for the CI job that builds it",
        )
    # the versions first: the catalog read next is of these, or of a newer files version
    versions = versions_at_rest(store) if with_versions else None
    catalog = store.catalog()
    if versions is not None and store.table("files").version != versions.get("files"):
        versions = None  # a writer committed meanwhile: no copy this time
    commit = store.meta().get("last_commit", "")
    try:
        found = discover(root, config)
    except DiscoveryError as exc:
        raise IndexProblem(exc.message, exc.fix) from exc
    here = {c.path: c.content_id for c in found.candidates}
    local = frozenset(
        path
        for path, content in here.items()
        if (row := catalog.get(path)) is None or row.content_id != content
    )
    deleted = frozenset(path for path in catalog if path not in here)
    shadowed = frozenset(path for path in local if path in catalog)
    hidden_chunks = sum(
        int(catalog[path].chunks or 0)
        for path in shadowed | deleted
        if catalog[path].state == "indexed"
    )
    return Difference(
        local,
        deleted,
        commit,
        versions,
        local_ids={path: here[path] for path in local},
        shadowed=shadowed,
        hidden_chunks=hidden_chunks,
    )
