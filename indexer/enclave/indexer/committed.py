"""The commit record: an index proven whole when its update finished, checked again in O(files).

At the end of every update the writer records in meta (:func:`record`) each table's version and
the size of every file in the tables' folders (data, deletion files, indexes) as they are then,
with the counts the update left. A later self-check (:func:`proven`) reads meta, each table's
newest version (manifests only) and the files' sizes (a ``stat`` each): when all are as recorded,
the index is the one the finished update left, and its counts are the recorded ones; no row is
read, so the check costs the same for 5,000 chunks or 500,000.

Anything else makes the caller run :meth:`enclave.indexer.store.Store.verify`, which reads the
tables and says what is wrong: another version (a later update, a restore, rows deleted by
hand), a file missing or of another size (damage), an update under way, an object store (no
cheap ``stat``), or no record (an index written before it existed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from enclave.indexer.errors import IndexProblem, is_storage_error
from enclave.indexer.store import Store, Verification
from enclave.indexer.tables import UPDATE_STARTED

COMMITTED = "committed"  # the meta key of the record
RECORDED = ("chunks", "symbols", "files", "embeddings")  # meta changes as it is written
FOLDERS = ("data", "_deletions", "_indices")


def record(store: Store) -> None:
    """Write the record of the index as it is now, at the end of a finished update."""
    if "://" in store.uri:
        return
    present = store.existing()
    names = [name for name in RECORDED if name in present]
    files = store.table("files")
    listed = int(files.count_rows())
    indexed = int(files.count_rows("state = 'indexed'"))
    counts = {
        "files": indexed,
        "files_skipped": listed - indexed,
        "chunks": int(store.table("chunks").count_rows()),
        "symbols": int(store.table("symbols").count_rows()),
    }
    versions = {name: int(store.table(name).version) for name in names}
    written = {"versions": versions, "files": _sizes(Path(store.uri), names), "counts": counts}
    store.set_meta({COMMITTED: json.dumps(written, separators=(",", ":"))})


def _sizes(root: Path, names: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name in names:
        for folder in FOLDERS:
            for path in (root / f"{name}.lance" / folder).rglob("*"):
                if path.is_file():
                    sizes[path.relative_to(root).as_posix()] = path.stat().st_size
    return sizes


def proven(store: Store) -> Verification | None:
    """What the index holds, when the record proves it is as its last update left it; None when
    it does not (then Store.verify decides)."""
    if "://" in store.uri:
        return None
    try:
        present = store.existing()
        if "meta" not in present:
            return None  # not indexed yet (or damaged): Store.verify says which
        meta = store.meta()
        written = _parse(meta.get(COMMITTED, ""))
        if written is None or meta.get(UPDATE_STARTED):
            return None
        versions: dict[str, int] = written["versions"]
        if set(versions) != present - {"meta"}:
            return None
        if any(store.version(name) != version for name, version in versions.items()):
            return None
    except IndexProblem:
        return None
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        return None  # damage: Store.verify says which
    root = Path(store.uri)
    for relative, size in written["files"].items():
        try:
            if (root / relative).stat().st_size != size:
                return None
        except OSError:
            return None
    counts = written["counts"]
    return Verification(
        meta=meta, files=counts["files"], files_skipped=counts["files_skipped"],
        chunks=counts["chunks"], symbols=counts["symbols"],
    )  # fmt: skip


def _parse(raw: str) -> dict[str, Any] | None:
    """The record, or None when there is none or it is not one this version wrote."""
    try:
        written = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(written, dict):
        return None
    versions, files, counts = (written.get(k) for k in ("versions", "files", "counts"))
    if not (isinstance(versions, dict) and isinstance(files, dict) and isinstance(counts, dict)):
        return None
    numbers = [*versions.values(), *files.values(), *counts.values()]
    keys = {"files", "files_skipped", "chunks", "symbols"}
    if not all(isinstance(n, int) for n in numbers) or set(counts) != keys:
        return None
    return written
