"""The self-check of one index: what it holds and whether it can be trusted (`enclave status`).

:func:`index_status` verifies the store: in O(files) when the record of its last update proves
it unchanged since (:func:`enclave.indexer.committed.proven`), else by reading its tables
(:meth:`enclave.indexer.store.Store.verify`). Damage, an unfinished update and a stale schema
make the index unhealthy, each with the problem and the fix; an update being written right now
is said as such, not as damage.
"""

from __future__ import annotations

from enclave.indexer.committed import proven
from enclave.indexer.errors import IndexProblem
from enclave.indexer.handle import StoreHandle
from enclave.indexer.results import IndexStatus
from enclave.indexer.semantic import Semantic
from enclave.indexer.store import Verification
from enclave.indexer.tables import DISCOVERY_SKIPPED, SCHEMA_VERSION, UPDATE_STARTED


def index_status(handle: StoreHandle, semantic: Semantic) -> IndexStatus:
    """What the index behind ``handle`` holds, after a verification (Store.verify)."""
    status = IndexStatus(root=str(handle.root), db=handle.db_uri, exists=True)
    try:
        store = handle.store
    except IndexProblem as exc:  # e.g. no index directory, and none can be made
        status.exists = status.healthy = False
        status.problem, status.fix = exc.message, exc.fix
        return status
    found = proven(store) or store.verify()
    meta = found.meta
    writing = bool((found.problem or found.interrupted) and handle.writer_active())
    if found.absent:
        status.exists = status.healthy = False
        status.updating = writing
        status.problem = found.problem
        status.fix = f"run `enclave index {handle.root}`"
        status.semantic_reason = "not indexed yet"
        return status
    status.files = found.files
    status.files_skipped = found.files_skipped + int(meta.get(DISCOVERY_SKIPPED) or 0)
    status.chunks = found.chunks
    status.symbols = found.symbols
    status.commit = meta.get("last_commit") or None
    status.indexed_at = meta.get("indexed_at")
    status.schema_version = int(meta.get("schema_version", "0") or 0)
    status.tool_version = meta.get("tool_version", "")
    status.embedding_provider = meta.get("embedding_provider", "")
    status.embedding_model = meta.get("embedding_model", "")
    status.embedding_dim = int(meta.get("embedding_dim", "0") or 0)
    off = semantic.off(meta)
    stored_off, status.vectors_missing = semantic.stored(store, meta)
    status.vectors_outdated = semantic.outdated(meta)
    off = off or stored_off
    status.semantic = off is None
    status.semantic_reason, status.semantic_fix = (off.message, off.fix) if off else ("", "")
    status.partial = meta.get("partial") == "true"
    _judge(status, found, writing, handle)
    return status


def _judge(status: IndexStatus, found: Verification, writing: bool, handle: StoreHandle) -> None:
    """Mark ``status`` unhealthy (with the problem and the fix) or updating, from what the
    verification ``found`` and whether a writer holds the index now."""
    if found.problem and writing:  # e.g. a rebuild between dropping and creating tables
        status.healthy, status.updating = False, True
        status.problem = (
            f"the index at {handle.db_uri} is being written by another update and cannot be"
            f" checked now ({found.problem})"
        )
        status.fix = "wait for that update to finish"
    elif found.problem:
        status.healthy = False
        status.problem = found.problem
        status.fix = f"run `enclave index {handle.root}` to rebuild it"
    elif found.interrupted:
        if writing:
            status.updating = True
        else:
            incomplete = handle.incomplete(found.meta[UPDATE_STARTED])
            status.healthy = False
            status.problem, status.fix = incomplete.message, incomplete.fix
    elif status.schema_version != SCHEMA_VERSION:
        status.healthy = False
        status.problem = (
            f"the index at {handle.db_uri} has schema {status.schema_version},"
            f" this version of Enclave reads {SCHEMA_VERSION}"
        )
        status.fix = f"run `enclave index {handle.root}` to rebuild it"
