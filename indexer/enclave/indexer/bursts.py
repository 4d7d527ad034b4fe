"""Bursts of reads that see one version of each table (:func:`one_version_each`).

Asking a table for its newest version lists its versions on disk; a completion's context
sources query the index several times in a few milliseconds, and each query would ask again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The versions read so far by the stores of this context (see one_version_each), or None.
PINNED: ContextVar[dict[tuple[int, str], int] | None] = ContextVar("pinned", default=None)


@contextmanager
def one_version_each() -> Iterator[None]:
    """Reads inside see one version of each table: the first read of its version
    (``Store.version``) is the one for the rest, so a burst of queries (one completion's) checks
    each table once instead of at every query; a writer's commit meanwhile shows at the next
    burst."""
    token = PINNED.set({})
    try:
        yield
    finally:
        PINNED.reset(token)
