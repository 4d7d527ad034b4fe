"""Repository files as the index stores them (secrets redacted), read once per completion."""

from __future__ import annotations

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

    Reading and redacting a file costs well under a millisecond, a chunk query several: the
    definitions' text comes from here, and from the index only when the file cannot be read.
    """

    def __init__(self, index: Index) -> None:
        self.root = Path(index.root)
        self._lines: dict[str, list[str] | None] = {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            try:
                text = (self.root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._lines[path] = None
            else:
                self._lines[path] = redact(text, path).text.splitlines(keepends=True)
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
