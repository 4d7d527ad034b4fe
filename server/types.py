"""Data types shared by the server's feature modules and the model layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContextPiece:
    """One piece of repository context put into a prompt, with the reason it was chosen."""

    path: str  # repository-relative POSIX path
    start_line: int  # 1-based inclusive
    end_line: int
    text: str
    reason: str  # e.g. "definition of `Session` (imported by this file)", "similar code", "recently edited"
    symbol: str = ""
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class Citation:
    path: str
    start_line: int  # 1-based inclusive
    end_line: int
    symbol: str = ""

    def label(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"
