"""The indexer's errors: one a user can act on, and the failures that mean the storage is at fault.

Only storage failures (I/O, LanceDB/Lance, Arrow) are turned into "the index is damaged or
unreadable"; anything else (a ``TypeError``, an ``AttributeError``) is a bug and propagates as one.
"""

from __future__ import annotations

import pyarrow as pa

from enclave.errors import EnclaveError


class IndexProblem(EnclaveError):
    """An index problem a user can act on: ``message`` says what is wrong, ``fix`` what to do."""


# What LanceDB and Arrow raise when the files under an index are missing, truncated or
# unreadable: the Rust core surfaces I/O and format errors as OSError or RuntimeError, Arrow as
# ArrowException (its ArrowInvalid is also a ValueError, which is why ValueError is not listed:
# our own code raises it for bad arguments).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, pa.ArrowException)
