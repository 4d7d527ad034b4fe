"""What a prepared completion sends and why, as JSON (``enclave context --json``, ``enclave/context``):
1-based inclusive lines like every CLI output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enclave.server.completion.pipeline import PreparedCompletion
from enclave.server.model.budget import (
    added_tokens,
    context_tokens,
)
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    pass


def _piece_json(piece: ContextPiece, tokens: int) -> dict[str, Any]:
    return {
        "path": piece.path,
        "start_line": piece.start_line,
        "end_line": piece.end_line,
        "symbol": piece.symbol,
        "reason": piece.reason,
        "score": piece.score,
        "tokens": tokens,
        "text": piece.text,
    }


def report_of(prepared: PreparedCompletion) -> dict[str, Any]:
    """JSON-ready description of a prepared completion (1-based lines); a piece's tokens are
    what it adds to the prompt (the first of its file pays the file's block)."""
    est = prepared.estimator
    costs = context_tokens(prepared.pieces, est)
    return {
        "path": prepared.path,
        "line": prepared.line + 1,
        "character": prepared.character,
        "language": prepared.language,
        "multiline": prepared.multiline,
        "multiline_reason": prepared.multiline_reason,
        "prefix_tokens": est.count(prepared.prefix),
        "suffix_tokens": est.count(prepared.suffix),
        "prefix": prepared.prefix,
        "suffix": prepared.suffix,
        "budget_tokens": prepared.budget_tokens,
        "used_tokens": sum(costs),
        "pieces": [_piece_json(p, cost) for p, cost in zip(prepared.pieces, costs, strict=True)],
        # (a piece left out is costed alone, as the first of its file)
        "dropped": [
            {**_piece_json(d.piece, added_tokens(d.piece, est, ())), "why_dropped": d.why}
            for d in prepared.dropped
        ],
        "notes": prepared.notes,
    }
