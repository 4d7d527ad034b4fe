"""Ranking: the fusion of full-text and vector scores, the in-memory vector matrix, symbols.

Hybrid search adds the two rankings' scores, each scaled to 0..1 over its own results (min-max),
with LEXICAL_SHARE for the full-text side (its scaled scores raised to LEXICAL_POWER). Measured with bench/quality.py on four corpora (Python
standard library, this repository, rxjs, go-cmp; docs/benchmarks.md), this beat weighted
reciprocal-rank fusion at every weight tried: rank fusion throws away how far ahead the best
results are, and lets a weak ranking's middle drag down a strong one's top.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from enclave.indexer.types import SymbolDef

LEXICAL_SHARE = 0.4
# The full-text side's scaled scores are raised to this power before they are added: a weak
# full-text match (a few common words) lands mid-list after min-max scaling and lifted chunks
# the vectors ranked lower above the vectors' best; the power keeps strong matches strong and
# makes weak ones count for little. Measured with bench/quality.py on four corpora: 1.25 to 1.75
# raised hybrid MRR@10 on every one, 1.5 the most in sum; 2 and 3 lowered it on two and three.
LEXICAL_POWER = 1.5

# A chunk's kind weighs its score: a block of top-level code (a module's docstring, imports,
# constants) reads like a description of everything in the file and outranked the definition a
# query describes. Measured with bench/quality.py on four corpora (docs/benchmarks.md): full
# text 0.6 and vectors 0.7 raised every mode on every corpus; definitions and documents keep 1.
LEXICAL_KIND_WEIGHT = {"block": 0.6}
DENSE_KIND_WEIGHT = {"block": 0.7}


def kind_weight(kind: str, *, dense: bool = False) -> float:
    """The factor a chunk of ``kind`` gets on its full-text (or, ``dense``, vector) score."""
    return (DENSE_KIND_WEIGHT if dense else LEXICAL_KIND_WEIGHT).get(kind, 1.0)


def fuse(
    lexical: Sequence[tuple[str, float]],
    dense: Sequence[tuple[str, float]],
    share: float = LEXICAL_SHARE,
) -> dict[str, float]:
    """{id: fused score} of two [(id, score) best first] rankings: each ranking's scores scaled
    to 0..1 (its best result 1, its last 0), the full-text ones then raised to LEXICAL_POWER,
    full-text weighted ``share``, vectors the rest; an id only one ranking found gets nothing
    from the other."""
    scores: dict[str, float] = {}
    for weight, power, ranking in ((share, LEXICAL_POWER, lexical), (1.0 - share, 1.0, dense)):
        if not ranking:
            continue
        values = [score for _, score in ranking]
        high, low = max(values), min(values)
        spread = high - low
        for item, score in ranking:
            scaled = (score - low) / spread if spread > 0 else 1.0
            scores[item] = scores.get(item, 0.0) + weight * scaled**power
    return scores


@dataclass(slots=True)
class VectorMatrix:
    """Chunk ids with a row each into a normalised float32 matrix (cosine = dot product)."""

    chunk_ids: list[str]
    paths: np.ndarray  # object array of paths, for prefix filters
    languages: np.ndarray
    rows: np.ndarray  # int32 index into ``matrix`` per chunk
    matrix: np.ndarray
    priors: np.ndarray | None = None  # float32 per chunk: its kind's weight (kind_weight)

    def top(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_prefix: str | None,
        language: str | None,
        exclude: Collection[str] = (),
    ) -> list[tuple[str, float]]:
        if not self.chunk_ids:
            return []
        scores = (self.matrix @ query.astype(np.float32))[self.rows]
        if self.priors is not None:
            scores = scores * self.priors
        mask = np.ones(len(self.chunk_ids), dtype=bool)
        if path_prefix:
            mask &= np.char.startswith(self.paths.astype(str), path_prefix)
        if language:
            mask &= self.languages == language
        if exclude:  # paths a local overlay shadows
            mask &= ~np.isin(self.paths, np.array(list(exclude), dtype=object))
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
