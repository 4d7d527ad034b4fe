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
    # A piece of signatures: each one's text, lines and name, with how likely the next line
    # is to call it (0 the likeliest), in the text's order; its shorter form keeps the likeliest.
    signatures: tuple[Signature, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of a piece of signatures (see ContextPiece.signatures)."""

    rank: int
    name: str
    start_line: int  # 1-based inclusive
    end_line: int
    text: str


@dataclass(frozen=True, slots=True)
class Citation:
    path: str
    start_line: int  # 1-based inclusive
    end_line: int
    symbol: str = ""

    def label(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"
