"""Signatures: a definition's signature lines (TypeScript overloads included), and a piece made of
the signatures of one file (an outline), with its shorter form that keeps the likeliest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from enclave.indexer.types import SymbolDef
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import (
    TokenEstimator,
)
from enclave.server.types import ContextPiece, Signature

if TYPE_CHECKING:
    pass

OUTLINE_REASON = "signatures of"  # a piece of a file's signature lines only, bodies left out
# The start of a TypeScript function or method signature, to its name: overloads repeat it.
_OVERLOAD = re.compile(
    r"\s*(?:(?:export|default|declare|async|public|private|protected|static)\s+)*(?:function\s*\*?\s*)?[\w$]+\s*(?=[(<])"
)


def signature_lines(lines: Sequence[str], definition: SymbolDef) -> tuple[list[str], int]:
    """The lines of a definition up to the end of its signature (see ``signature``), and the
    file line of the last of them."""
    last = min(definition.end_line, definition.start_line + TUNING.overload_scan - 1, len(lines))
    own = lines[definition.start_line - 1 : last]
    shown = signature(own)
    return shown, definition.start_line + reach(own, shown) - 1


def reach(lines: Sequence[str], shown: Sequence[str]) -> int:
    """How many of ``lines`` it takes to find ``shown`` in them, in order (``shown`` was taken
    from them, some lines left out)."""
    at = 0
    for wanted in shown:
        while at < len(lines) and lines[at].rstrip("\n") != wanted.rstrip("\n"):
            at += 1
        at += 1
    return min(at, len(lines))


def signature(lines: Sequence[str]) -> list[str]:
    """The first of ``lines`` (a definition's), up to the end of its signature (at most
    TUNING.signature_lines); TypeScript overloads (``f(a: A): R;`` declarations before the
    implementation's) run on to the implementation's signature, the comments between them left
    out (at most TUNING.overload_lines)."""
    overload = _OVERLOAD.match(lines[0]) if lines else None
    if overload is not None:
        return _overloads(lines, overload.group(0))
    out: list[str] = []
    for text in lines[: TUNING.signature_lines]:
        out.append(text if text.endswith("\n") else text + "\n")
        stripped = text.split("#", 1)[0].strip()
        if not stripped.startswith("@") and stripped.endswith((":", "{", ";", "=>")):
            break
    return out


def _overloads(lines: Sequence[str], start: str) -> list[str]:
    """A TypeScript signature, and while a declaration ends with ``;`` and the next one starts
    as this one did (``start``), that one too: the overloads, then the implementation's."""
    out: list[str] = []
    comment = ended = False
    for text in lines:
        stripped = text.strip()
        if comment or stripped.startswith("/*"):
            comment = "*/" not in (stripped[2:] if not comment else stripped)
            continue
        if not stripped or stripped.startswith("//"):
            continue
        if ended and not text.startswith(start):
            break  # the declaration after the last overload is not this function's
        out.append(text if text.endswith("\n") else text + "\n")
        ended = stripped.endswith(";")
        if len(out) >= TUNING.overload_lines or stripped.endswith(("{", "=>")):
            break
    return out


def outline(file: str, run: Sequence[tuple[SymbolDef, str, list[str], int, int]]) -> ContextPiece:
    """One piece of ``run``'s signatures (symbol, module, lines, last line, rank), in file order."""
    modules = sorted({module for _, module, _, _, _ in run})
    whence = (
        " (this package)"
        if modules == ["this package"]
        else f" (imported by this file from {', '.join(modules)})"
    )
    signatures = tuple(
        Signature(rank, symbol.name, symbol.start_line, end, "".join(lines))
        for symbol, _, lines, end, rank in run
    )
    return ContextPiece(
        path=file, start_line=signatures[0].start_line, end_line=signatures[-1].end_line,
        text="".join(s.text for s in signatures), reason=outline_reason(signatures, whence),
        symbol="", score=3.5, signatures=signatures,
    )  # fmt: skip


def outline_reason(signatures: Sequence[Signature], whence: str) -> str:
    names = ", ".join(f"`{s.name}`" for s in signatures[:6])
    return f"{OUTLINE_REASON} {names}{', ...' if len(signatures) > 6 else ''}{whence}"


def likeliest(piece: ContextPiece, room: int, est: TokenEstimator) -> ContextPiece | None:
    """The shorter form of a piece of signatures: those the next line is likeliest to call that
    fit ``room`` tokens, in file order (None when none or all of them fit)."""
    kept: list[int] = []
    used = 0
    for at in sorted(range(len(piece.signatures)), key=lambda i: piece.signatures[i].rank):
        cost = est.count(piece.signatures[at].text)
        if used + cost <= room:
            kept.append(at)
            used += cost
    if not kept or len(kept) == len(piece.signatures):
        return None
    signatures = tuple(piece.signatures[i] for i in sorted(kept))
    whence = piece.reason[piece.reason.rindex(" (") :]  # (names never hold " (")
    return replace(
        piece, text="".join(s.text for s in signatures), start_line=signatures[0].start_line,
        end_line=signatures[-1].end_line, reason=outline_reason(signatures, whence),
        signatures=signatures,
    )  # fmt: skip
