"""Repository files as the index stores them (secrets redacted), read once per completion."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from enclave.indexer.redact import redact
from enclave.server.completion.cursor import BARE
from enclave.server.completion.tuning import TUNING

if TYPE_CHECKING:
    from enclave.indexer.api import Index


class RepoFiles:
    """Repository files as the index stores them (secrets redacted), read once per completion.

    Reading and redacting a file costs up to a few milliseconds, a chunk query several: the
    definitions' text comes from here, and from the index only when the file cannot be read.
    The redacted lines are kept across completions while the file does not change on disk
    (:data:`REDACTED`): typing on, the same definitions are asked for at every keystroke.
    """

    def __init__(self, index: Index) -> None:
        self.root = Path(index.root)
        self._lines: dict[str, list[str] | None] = {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            version = self.version(path)
            self._lines[path] = None if version is None else REDACTED.lines(path, version)
        return self._lines[path]

    def text(self, path: str) -> str | None:
        lines = self.lines(path)
        return None if lines is None else "".join(lines)

    def version(self, path: str) -> tuple[str, int, int] | None:
        """The file as it is on disk (its path, mtime and size), the key of what is learnt
        from it and kept while it does not change; None when it cannot be read."""
        try:
            stat = (self.root / path).stat()
        except OSError:
            return None
        return str(self.root / path), stat.st_mtime_ns, stat.st_size

    def names(self, path: str) -> frozenset[str]:
        """The identifiers ``path`` uses (none when it cannot be read)."""
        version = self.version(path)
        return names_of(*version) if version else frozenset()


class RedactedFiles:
    """Files' redacted lines by (file, mtime, size), least recently used first out once they
    hold more than ``max_chars`` characters together: memory stays bounded whatever the files."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._kept: OrderedDict[tuple[str, int, int], list[str] | None] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    @property
    def chars(self) -> int:
        """Characters held now."""
        return self._chars

    def lines(self, path: str, version: tuple[str, int, int]) -> list[str] | None:
        """The redacted lines of the repository file ``path`` (``version``: its absolute path,
        mtime and size); None when it cannot be read."""
        with self._lock:
            if version in self._kept:
                self._kept.move_to_end(version)
                return self._kept[version]
        try:
            text = Path(version[0]).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        lines = redact(text, path).text.splitlines(keepends=True)
        with self._lock:
            if version not in self._kept:
                self._kept[version] = lines
                self._chars += sum(map(len, lines))
            while self._chars > self.max_chars and len(self._kept) > 1:
                _, dropped = self._kept.popitem(last=False)
                self._chars -= sum(map(len, dropped or ()))
        return lines


REDACTED = RedactedFiles(TUNING.redacted_cache_chars)


def head_of(path: str) -> str | None:
    """The first TUNING.max_names_bytes of a file, as what names and imports are learnt from."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(TUNING.max_names_bytes)
    except OSError:
        return None


@lru_cache(maxsize=512)
def names_of(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """The identifiers of one file as it is on disk (kept while it does not change)."""
    return frozenset(BARE.findall(head_of(path) or ""))
