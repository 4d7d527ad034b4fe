"""Code like the lines before the cursor, found by full-text search, as context pieces (and the
names it uses, which order the signatures of imported modules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from enclave.indexer.types import SearchHit
from enclave.server.completion.cursor import KEYWORDS, WORDS
from enclave.server.completion.sources.bindings import member_uses
from enclave.server.completion.tuning import TUNING
from enclave.server.model.budget import (
    TokenEstimator,
    keep_head,
)
from enclave.server.types import ContextPiece

if TYPE_CHECKING:
    from enclave.indexer.api import Index


def similar_hits(index: Index, path: str, prefix: str, window: tuple[int, int]) -> list[SearchHit]:
    """Code like the lines before the cursor (the cursor's own neighbourhood left out), by
    full-text search of their identifiers: code is like code through the names it uses. (A
    hybrid search found less of what the next line calls, in bench/quality.py, and embedding
    the query cost each completion an embedding request.)"""
    tail = " ".join(prefix.splitlines()[-6:])
    words = [w for w in WORDS.findall(tail) if w.lower() not in KEYWORDS]
    query = " ".join(words[-40:])  # identifiers only: quotes would make a phrase query
    if not query:
        return []
    found = index.search(query, k=TUNING.similar_hits, mode="lexical")
    return [
        hit
        for hit in found.hits
        if not (hit.path == path and hit.start_line <= window[1] and window[0] <= hit.end_line)
    ]


def names_elsewhere(hits: Sequence[SearchHit], path: str) -> Counter[str]:
    """In how many of ``hits`` from other files each identifier occurs, and each member used
    through a name (``utils.quote``: a dotted key)."""
    names: Counter[str] = Counter()
    for hit in hits:
        if hit.path != path:
            names.update(set(WORDS.findall(hit.text)))
            names.update({f"{q}.{m}" for q, ms in member_uses(hit.text).items() for m in ms})
    return names


def similar_pieces(hits: Sequence[SearchHit], cap: int, est: TokenEstimator) -> list[ContextPiece]:
    pieces: list[ContextPiece] = []
    for hit in hits:
        body = keep_head(hit.text, cap, est)
        label = f" `{hit.symbol}`" if hit.symbol else ""
        pieces.append(
            ContextPiece(
                path=hit.path, start_line=hit.start_line,
                end_line=hit.start_line + max(0, body.rstrip("\n").count("\n")),
                text=body, reason=f"similar code{label} to the lines before the cursor "
                "(full-text search)",
                symbol=hit.symbol, score=round(hit.score, 4),
            )
        )  # fmt: skip
        if len(pieces) >= TUNING.max_similar:
            break
    return pieces
