"""Plain data types shared by every stage of the indexer (and read by the server).

Lines are 1-based and inclusive everywhere in this package. Paths are repository-relative
POSIX strings ("pkg/mod.py"), never absolute, so an index can move with its repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that discovery found and may be indexed (it has not been read yet)."""

    path: str
    size: int
    # git blob id (sha1 of "blob <size>\0" + bytes) of the working-tree content: taken from git's
    # index for clean tracked files, computed for modified, untracked and non-git files.
    content_id: str
    language: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that discovery saw and deliberately left out, with the reason (shown to users)."""

    path: str
    # "too-large" | "secret-file" | "symlink-outside" | "excluded" | "unreadable" | "binary" |
    # "minified"
    reason: str
    detail: str = ""


@dataclass(slots=True)
class Discovery:
    root: Path
    is_git: bool
    head_commit: str | None
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "not a git repository: walked the tree"


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str
    language: str
    kind: str  # "function" | "method" | "class" | ... | "block" | "section" | "window"
    symbol: str  # qualified name ("Session.request"), heading path for docs, "" for blocks
    start_line: int
    end_line: int
    text: str  # exactly lines start_line..end_line of the (redacted) file text
    content_hash: str  # sha256 hex of text


@dataclass(frozen=True, slots=True)
class SymbolDef:
    name: str
    qualified_name: str
    kind: str
    path: str
    start_line: int
    end_line: int
    signature: str  # the definition's first line, stripped
    doc: str  # first line of its docstring/comment, "" if none


@dataclass(slots=True)
class FileAnalysis:
    chunks: list[Chunk]
    symbols: list[SymbolDef]
    imports: list[str]  # imported module/package names as written ("os.path", "./util", "fmt")
    parse_errors: int = 0  # number of tree-sitter ERROR/MISSING nodes (the file is still chunked)
    note: str = ""  # e.g. "no grammar for 'cobol': line windows"


@dataclass(frozen=True, slots=True)
class SearchHit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    score: float
    text: str
    # The documentation sections about this definition that ranked with it, cited beside it
    # instead of taking a result's place of their own (search.docs_beside).
    docs: tuple[SearchHit, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchHit:
        """A hit from its JSON form (``dataclasses.asdict``), its docs included."""
        docs = tuple(cls.from_json(doc) for doc in data.get("docs") or ())
        return cls(**{**data, "docs": docs})
