"""Recently edited open buffers (their unsaved text) as context pieces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import (
    TokenEstimator,
    keep_head,
)
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class RecentEdit:
    """An open buffer edited recently (its unsaved text) and the 0-based line last edited."""

    path: str
    text: str
    line: int


RECENT_REASON = "recently edited (open buffer, unsaved text included)"


def recent_pieces(
    path: str, recent: Sequence[RecentEdit], cap: int, est: TokenEstimator
) -> list[ContextPiece]:
    pieces: list[ContextPiece] = []
    for edit in recent:
        if edit.path == path:
            continue
        lines = edit.text.splitlines(keepends=True)
        start = max(0, edit.line - TUNING.recent_window)
        end = min(len(lines), edit.line + TUNING.recent_window + 1)
        body = keep_head("".join(lines[start:end]), cap, est)
        if not body.strip():
            continue
        pieces.append(
            ContextPiece(
                path=edit.path, start_line=start + 1, end_line=start + len(body.splitlines()),
                text=body, reason=RECENT_REASON,
                score=1.0 - len(pieces) / 10,
            )
        )  # fmt: skip
        if len(pieces) >= TUNING.max_recent:
            break
    return pieces
