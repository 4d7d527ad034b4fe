"""One index's store as the engine's writer, reader and status share it.

Where the index is (``db_uri``: a relative ``index.db`` means inside the repository), how its
store is opened (read-only stores fail fast when unreachable), whether it holds every table, and
whether an update that started never finished or is being written right now (the write lock on
this machine, the lease of an S3 store).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from enclave.config import Config
from enclave.files import index_location
from enclave.indexer.errors import IndexProblem
from enclave.indexer.lease import lease_holder
from enclave.indexer.lock import lock_path_for
from enclave.indexer.results import Reason
from enclave.indexer.store import Store, storage_options_for
from enclave.indexer.tables import UPDATE_STARTED

# Storage options of a read-only shared store: fail fast when it is unreachable.
READER_OPTIONS = {"connect_timeout": "2s", "timeout": "10s", "client_max_retries": "1"}


class StoreHandle:
    """The store of the index of ``root``; ``read_only``: a shared index (index.shared) that
    this process reads and never writes."""

    def __init__(self, root: Path, config: Config, *, read_only: bool = False) -> None:
        self.root = root
        self.config = config
        self.read_only = read_only
        self.db_uri = index_location(root, config.index.db)
        self._store: Store | None = None
        self._indexed: Store | None = None  # the opened store whose tables were all there
        self._meta_version = -1
        self._meta_started = ""  # meta.update_started as of _meta_version

    @property
    def store(self) -> Store:
        return self._open_store(create=False)

    def writable_store(self) -> Store:
        """The store, its directory created if this is the first write."""
        return self._open_store(create=True)

    def _open_store(self, *, create: bool) -> Store:
        # A store opened where no index existed yet is opened again: another process (the
        # server's first build runs in a child) may have created it since.
        if self._store is None or self._store.db is None:
            self._store = Store(self.db_uri, self.storage_options(), create=create)
        return self._store

    def storage_options(self) -> dict[str, str] | None:
        if "://" not in self.db_uri:
            return None
        options = self.s3_options() or {}
        if self.read_only:
            # a shared store that went away must fail a query in seconds, not minutes
            options = {**options, **READER_OPTIONS}
        return options or None

    def s3_options(self) -> dict[str, str] | None:
        return storage_options_for(self.config.index.s3_endpoint, self.config.index.s3_region)

    def reload(self) -> None:
        """Open the tables again at their newest version (cached copies stay version-keyed)."""
        self._store = None

    def has_index(self) -> bool:
        """Every table of an index is there. Checked once per opened store (a listing of the
        tables costs as much as a small query): tables dropped since make the next read fail,
        and the retry after it (``reads_index``) opens the store again and checks again."""
        store = self.store
        if self._indexed is store:
            return True
        if not store.has_index():
            return False
        self._indexed = store
        return True

    def ready_store(self) -> Store:
        """The store of an index that exists and is complete (IndexProblem otherwise)."""
        if not self.has_index():
            raise IndexProblem(
                f"no index at {self.db_uri}", f"run `enclave index {self.root}` first"
            )
        store = self.store
        self._check_complete(store)
        return store

    def _check_complete(self, store: Store) -> None:
        """Refuse to answer from an index whose last update started and never finished: it
        holds part of the repository. While a writer is at work, readers see its commits."""
        version = store.version("meta")
        if version != self._meta_version:
            self._meta_started = store.meta().get(UPDATE_STARTED, "")
            self._meta_version = version
        if self._meta_started and not self.writer_active():
            problem = self.incomplete(self._meta_started)
            raise IndexProblem(problem.message, problem.fix)

    def incomplete(self, started: str) -> Reason:
        return Reason(
            f"the index at {self.db_uri} is incomplete: the update started at"
            f" {started} did not finish, so it holds only part of the repository",
            f"run `enclave index {self.root}` to complete it",
        )

    def writer_active(self) -> bool:
        """Some process (this one included) holds the write lock of this index right now."""
        if self.db_uri.startswith("s3://") and lease_holder(self.db_uri, self.s3_options()):
            return True  # a writer on another machine holds the lease
        try:
            fd = os.open(lock_path_for(self.db_uri), os.O_RDONLY)
        except OSError:
            return False  # never locked here
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)
