"""Ranking: weighted reciprocal-rank fusion, the in-memory vector matrix, symbol matching.

Plain RRF lets a weak lexical ranking drag down a good dense one (FIELD-NOTES, and
docs/benchmarks.md), so each ranking carries a weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from enclave.indexer.types import SymbolDef

RRF_K = 60
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 0.6


def fuse(rankings: Sequence[tuple[float, Sequence[str]]], k: int = RRF_K) -> dict[str, float]:
    """Weighted RRF: ``rankings`` = [(weight, [id best first]), ...] -> {id: fused score}."""
    scores: dict[str, float] = {}
    for weight, ids in rankings:
        for rank, item in enumerate(ids):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank + 1)
    return scores


@dataclass(slots=True)
class VectorMatrix:
    """Chunk ids with a row each into a normalised float32 matrix (cosine = dot product)."""

    chunk_ids: list[str]
    paths: np.ndarray  # object array of paths, for prefix filters
    languages: np.ndarray
    rows: np.ndarray  # int32 index into ``matrix`` per chunk
    matrix: np.ndarray

    def top(
        self, query: np.ndarray, k: int, *, path_prefix: str | None, language: str | None
    ) -> list[tuple[str, float]]:
        if not self.chunk_ids:
            return []
        scores = (self.matrix @ query.astype(np.float32))[self.rows]
        mask = np.ones(len(self.chunk_ids), dtype=bool)
        if path_prefix:
            mask &= np.char.startswith(self.paths.astype(str), path_prefix)
        if language:
            mask &= self.languages == language
        scores = np.where(mask, scores, -np.inf)
        k = min(k, int(mask.sum()))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        return [(self.chunk_ids[i], float(scores[i])) for i in best]


def symbol_score(symbol: SymbolDef, query: str) -> float:
    """How well a symbol matches a workspace-symbol query (0 = no match)."""
    q = query.lower()
    name = symbol.name.lower()
    qualified = symbol.qualified_name.lower()
    if not q:
        return 0.1
    if name == q or qualified == q:
        return 10.0 - (0.5 if name != q else 0.0)
    if name.startswith(q):
        return 8.0 - min(len(name) - len(q), 30) * 0.05
    if qualified.startswith(q) or qualified.endswith("." + q):
        return 7.0
    if "." in q and q in qualified:
        return 6.5
    if q in name:
        return 5.0 - name.index(q) * 0.05
    if _subsequence(q, name):
        return 3.0 - (len(name) - len(q)) * 0.02
    if _subsequence(q, qualified):
        return 2.0 - (len(qualified) - len(q)) * 0.02
    return 0.0


def _subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)
