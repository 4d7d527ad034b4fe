"""An inter-process write lock, so the CLI and a running server never write one index at once."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def lock_path_for(db_uri: str) -> Path:
    """A local lock file: inside the index directory, or in the user cache for remote URIs."""
    if "://" not in db_uri:
        return Path(db_uri) / ".write.lock"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "enclave" / "locks"
    return cache / (hashlib.sha1(db_uri.encode()).hexdigest() + ".lock")


class WriteLock:
    """``with WriteLock(path, wait=600):`` blocks until no other process is writing the index."""

    def __init__(self, path: Path, *, wait: float = 600.0) -> None:
        self.path = path
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise TimeoutError(
                        f"another process has been writing the index for over {self.wait:.0f} s "
                        f"(lock {self.path})"
                    ) from None
                if not told:
                    log.info("waiting for another process to finish writing the index")
                    told = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
