"""Ranking: the fusion of full-text and vector scores, the in-memory vector matrix, symbols.

Hybrid search adds the two rankings' scores, each scaled to 0..1 over its own results (min-max),
with LEXICAL_SHARE for the full-text side (its scaled scores raised to LEXICAL_POWER). Measured with bench/quality.py on four corpora (Python
standard library, this repository, rxjs, go-cmp; docs/benchmarks.md), this beat weighted
reciprocal-rank fusion at every weight tried: rank fusion throws away how far ahead the best
results are, and lets a weak ranking's middle drag down a strong one's top.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np

from enclave.indexer.file_roles import file_role
from enclave.indexer.types import SearchHit, SymbolDef

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


# What a chunk is to someone asking about code, from its path and chunk kind: the classes the
# ranking weighs by what a query asks for (query_intent) and bench/quality.py counts.
CHUNK_CLASSES = ("definition", "type", "block", "test", "example", "docs", "changelog", "other")
TYPE_KINDS = frozenset({
    "class", "struct", "type", "interface", "enum", "trait", "record", "union", "object",
    "protocol", "impl", "module", "namespace",
})  # fmt: skip
# A function's chunk: it may hold definitions of its own (nested functions; in TypeScript, the
# implementation after its overload signatures), embedded apart when deep in it (embedding_pass).
FUNCTION_KINDS = frozenset({"function", "method", "constructor"})


def chunk_class(path: str, kind: str) -> str:
    """One of CHUNK_CLASSES: a changelog, test or example by its file's role (``file_roles``), a
    document by its chunk kind (a heading's section), else by its chunk kind."""
    role = file_role(path)
    if role == "changelog":
        return "changelog"
    if kind == "section":
        return "docs"
    if role in ("test", "example"):
        return role
    if kind in ("block", "window"):  # a window: a file chunked without a grammar
        return "block" if kind == "block" else "other"
    return "type" if kind in TYPE_KINDS else "definition"  # function, method, constructor, ...


# What a definition inside a type's chunk (a method in its class's chunk) is ranked as when its
# own vector matches (``VectorMatrix.inner_rows``).
INNER_KIND = "function"


def kind_weight(kind: str, *, dense: bool = False) -> float:
    """The factor a chunk of ``kind`` gets on its full-text (or, ``dense``, vector) score."""
    return (DENSE_KIND_WEIGHT if dense else LEXICAL_KIND_WEIGHT).get(kind, 1.0)


# On the vectors, a chunk of one line (a Go accessor `func (f Field) Name() string { return
# f.name }`, a one-line method) is embedded as mostly its header (its path, its symbol and the
# symbol's words), and it matched queries about anything else in its file: of the first 25 go-cmp
# queries semantic search ranked below the dense baseline, 10 had one as their first result (a
# third of go-cmp's chunks are one line). Measured with bench/quality.py on the tune
# half: 0.9 raised go-cmp's semantic MRR@10 0.396 -> 0.440 (hybrid 0.493 -> 0.504) and moved the
# other three by 0.001 at most; 0.8 was no better.
ONE_LINE_DENSE_WEIGHT = 0.9


def dense_size_weight(start_line: int, end_line: int) -> float:
    """The factor on the vector score of a chunk of these lines (ONE_LINE_DENSE_WEIGHT)."""
    return ONE_LINE_DENSE_WEIGHT if start_line == end_line else 1.0


# What a query asks for, by its words: "tests" (it names tests), "docs" (documentation, a guide,
# an example, "how to"), "changelog" (release notes, what changed), else "code" (it reads like a
# description of behaviour: the definition that does it is the answer).
_INTENT_WORDS = {
    "tests": frozenset({
        "test", "tests", "testing", "tested", "testcase", "pytest", "unittest", "fixture",
        "fixtures", "conftest", "mock", "mocks", "mocked", "assert", "asserts", "spec", "specs",
    }),
    "docs": frozenset({
        "doc", "docs", "documentation", "documented", "tutorial", "guide", "example", "examples",
        "usage", "howto", "quickstart", "readme",
    }),
    "changelog": frozenset({"changelog", "changelogs", "release", "releases"}),
}  # fmt: skip
_INTENT_PHRASES = {"docs": ("how to", "how do i", "how can i"), "changelog": ("what changed",)}

_NOT_INTENT = re.compile(r"\bfor example\b|\be\.g\.|^\s*tests?\s+(?=if|whether|that)")


def query_intent(query: str) -> str:
    """What kind of chunk answers ``query``: "tests", "docs", "changelog" or "code"."""
    # "for example" and a leading verb "test(s) whether/if/that" describe behaviour
    text = _NOT_INTENT.sub(" ", query.lower())
    words = set(re.findall(r"[a-z]+", text.replace("_", " ")))
    for intent in ("tests", "changelog", "docs"):
        if words & _INTENT_WORDS[intent] or any(p in text for p in _INTENT_PHRASES.get(intent, ())):
            return intent
    return "code"


# The factor a chunk's class (chunk_class) gets on its full-text and vector scores, by the
# query's intent (query_intent); a class not listed keeps 1. Indexed whole, a repository's docs
# pages, tests and changelog held 45-56 % of the top-10 slots for queries describing what a
# function does, and a docs section was the rank-1 result of about half the misses (the page
# that describes the function, ahead of it). Measured with bench/quality.py on the TUNE half
# (click, urllib3, itsdangerous, go-cmp; docs/benchmarks.md) for "code" queries (the bench's
# queries are all descriptions of behaviour):
# - tests, docs, changelog and examples 0.4 (full text) and 0.6 (vectors): MRR@10 rose in every
#   mode on every tune corpus (click lexical 0.326 -> 0.466, hybrid 0.392 -> 0.497); from 0.45
#   down (full text) and 0.7 down (vectors) the figures hardly move: they are kept near, below
#   the code they describe, not removed;
# - types (a class, struct or interface chunk) 0.8 on the vectors only: a type's documentation
#   describes what its methods do, and it outranked the method a query describes (types were a
#   third of the chunks ranked above the function on go-cmp); hybrid +0.02 to +0.05 on click and
#   go-cmp. Not on the full text: a small class is one chunk, its methods inside, and 0.6-0.8
#   there lost those methods (tests/indexer/test_search.py) for a gain on one corpus.
# The other intents are not in the bench's sets: a query naming tests, docs or the changelog
# gets the mirror image (what it names at 1, the rest at the weights above or near them), so
# the test of a function ranks above the function only when the query is about tests.
CLASS_WEIGHT: dict[str, dict[str, float]] = {
    "code": {"test": 0.4, "docs": 0.4, "changelog": 0.4, "example": 0.4},
    "tests": {"definition": 0.6, "type": 0.6, "block": 0.6, "docs": 0.6, "changelog": 0.4},
    "docs": {"test": 0.6, "changelog": 0.6},
    "changelog": {"test": 0.6},
}
DENSE_CLASS_WEIGHT: dict[str, dict[str, float]] = {
    "code": {"test": 0.6, "docs": 0.6, "changelog": 0.6, "example": 0.6, "type": 0.8},
    "tests": {"definition": 0.8, "type": 0.8, "block": 0.8, "docs": 0.8, "changelog": 0.6},
    "docs": {"test": 0.8, "changelog": 0.8},
    "changelog": {"test": 0.8},
}


def chunk_prior(path: str, kind: str, intent: str, *, dense: bool = False) -> float:
    """The factor on a chunk's full-text (``dense``: vector) score for a query of ``intent``:
    its kind's weight times its class's weight for that intent."""
    table = DENSE_CLASS_WEIGHT if dense else CLASS_WEIGHT
    return kind_weight(kind, dense=dense) * table[intent].get(chunk_class(path, kind), 1.0)


def class_weights(intent: str, *, dense: bool = False) -> np.ndarray:
    """The class weights of ``intent`` as an array in CHUNK_CLASSES order (VectorMatrix.classes)."""
    table = (DENSE_CLASS_WEIGHT if dense else CLASS_WEIGHT)[intent]
    return np.array([table.get(c, 1.0) for c in CHUNK_CLASSES], dtype=np.float32)


# The names a documentation section writes as code: in a code span (```Flask.route```,
# :meth:`~flask.Flask.route`), called (``jsonify(``), or after a directive (``.. autofunction::``).
_CODE_SPAN = re.compile(r"`+([^`\n]+)`+")
_CALLED = re.compile(r"([A-Za-z_]\w*)\(")
_DIRECTIVE = re.compile(r"::[ \t]*([\w.]+)")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
RIDER_CLASSES = frozenset({"definition", "type"})  # what a documentation section rides beside


def code_names(text: str) -> frozenset[str]:
    """The identifiers ``text`` (a documentation section) writes as code."""
    found = set(_CALLED.findall(text))
    for written in (*_CODE_SPAN.findall(text), *_DIRECTIVE.findall(text)):
        found.update(_IDENTIFIER.findall(written))
    return frozenset(found)


def docs_beside(hits: Sequence[SearchHit], k: int) -> list[SearchHit]:
    """The first ``k`` of ``hits`` (ranked for a question about code), each documentation section
    that writes the name of a definition among them as code riding beside the best ranked such
    definition (``SearchHit.docs``) instead of taking a place of its own: what the code does
    first, the page that describes it cited with it. A section whose definition is not among the
    first ``k`` keeps its place."""
    classes = [chunk_class(h.path, h.kind) for h in hits]
    owners: dict[int, int] = {}  # docs hit -> the definition it rides beside
    for i, hit in enumerate(hits):
        if classes[i] != "docs":
            continue
        named = code_names(hit.text)
        owner = next(
            (
                j
                for j, other in enumerate(hits)
                if classes[j] in RIDER_CLASSES
                and (name := other.symbol.rsplit(".", 1)[-1])
                and len(name) >= 3
                and name in named
            ),
            None,
        )
        if owner is not None:
            owners[i] = owner
    while True:
        shown = [i for i in range(len(hits)) if i not in owners][:k]
        lost = [i for i, owner in owners.items() if owner not in shown]
        if not lost:
            break
        for i in lost:
            del owners[i]
    riders: dict[int, list[SearchHit]] = {}
    for i, owner in owners.items():
        riders.setdefault(owner, []).append(hits[i])
    return [
        replace(hits[i], docs=(*hits[i].docs, *riders[i])) if i in riders else hits[i]
        for i in shown
    ]


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
    """Chunk ids with a row each into a normalised float32 matrix (cosine = dot product), and
    the rows of the definitions inside a type's chunk (``inner_rows``, of chunk ``inner_owner``):
    a chunk scores as the best of its vectors."""

    chunk_ids: list[str]
    paths: np.ndarray  # object array of paths, for prefix filters
    languages: np.ndarray
    rows: np.ndarray  # int32 index into ``matrix`` per chunk
    matrix: np.ndarray
    priors: np.ndarray | None = None  # float32 per chunk: its kind's weight (kind_weight)
    classes: np.ndarray | None = None  # int8 per chunk: its class's place in CHUNK_CLASSES
    inner_rows: np.ndarray | None = None  # int32 rows of inner definitions' vectors
    inner_owner: np.ndarray | None = None  # int32: the chunk (index into chunk_ids) of each
    inner_classes: np.ndarray | None = None  # int8: the inner definition's class

    def top(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_prefix: str | None,
        language: str | None,
        exclude: Collection[str] = (),
        weights: np.ndarray | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best (id, score); ``weights``: a factor per class (class_weights)."""
        if not self.chunk_ids:
            return []
        similarity = self.matrix @ query.astype(np.float32)
        scores = similarity[self.rows]
        if self.priors is not None:
            scores = scores * self.priors
        if weights is not None and self.classes is not None:
            scores = scores * weights[self.classes]
        if self.inner_rows is not None and self.inner_owner is not None and len(self.inner_rows):
            inner = similarity[self.inner_rows]
            if weights is not None and self.inner_classes is not None:
                inner = inner * weights[self.inner_classes]
            np.maximum.at(scores, self.inner_owner, inner)
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
