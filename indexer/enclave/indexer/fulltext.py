"""Full-text search of a small table in memory, ranked as LanceDB's full-text index ranks it.

A local overlay holds the few files that differ from a shared index. Asking LanceDB for them
costs a fixed 2–3 ms a query however few rows there are (its round trips and the query's setup),
about what the shared index's own query costs, so every search with an overlay took nearly twice
as long as a search of one index. Here the same query is answered from the overlay's rows in
memory, with the tokens and the BM25 of LanceDB's default full-text index (``lancedb.index.FTS()``):

- tokens are runs of letters and digits (the "simple" tokenizer: ``_`` splits too); a token of
  40 bytes or more is dropped; tokens are lower-cased, then stemmed with the English Snowball
  stemmer; a stem that is an English stop word is dropped; then letters are folded to ASCII;
- a query matches a row holding any of its tokens; each token of the query (repeats included)
  adds ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``, k1 = 1.2, b = 0.75,
  ``idf = ln(1 + (n - df + 0.5) / (df + 0.5))`` over the ``n`` rows of the table that have
  a term at all;
- filters (path prefix, language, excluded paths) choose among the rows; the statistics are the
  whole table's, as with LanceDB's prefilter.

``tests/indexer/test_fulltext.py`` holds this to LanceDB's own ranking and scores on the same rows,
so a LanceDB upgrade that changes its tokenizer fails there, not in a user's results.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import snowballstemmer

K1 = 1.2
B = 0.75
MAX_TOKEN_BYTES = 40  # LanceDB's max_token_length: longer tokens are dropped, not cut

# The stop words of LanceDB's English filter, compared with the stem (so "doing" goes, as "do",
# and "once" stays, as "onc").
_STOP_LIST = """
    a about above after again against ain all am an and any are aren as at be because been before
    being below between both but by can couldn d did didn do does doesn doing don down during each
    few for from further had hadn has hasn have haven having he her here hers herself him himself
    his how i if in into is isn it its itself just ll m ma me mightn more most mustn my myself
    needn no nor not now o of off on once only or other our ours ourselves out over own re s same
    shan she should shouldn so some such t than that the their theirs them themselves then there
    these they this those through to too under until up ve very was wasn we were weren what when
    where which while who whom why will with won wouldn y you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_LIST.split())

_WORD = re.compile(r"[^\W_]+")
_STEMMER = snowballstemmer.stemmer("english")
# Letters that do not decompose into an ASCII letter and a mark.
_FOLD = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "þ": "th", "ð": "d", "ı": "i"}
)


def _ascii(term: str) -> str:
    decomposed = unicodedata.normalize("NFKD", term.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def _term(word: str) -> str | None:
    """The indexed term of one lower-cased word, or None when it is not indexed."""
    if len(word.encode()) >= MAX_TOKEN_BYTES:
        return None
    stem: str = _STEMMER.stemWord(word)
    if stem in STOP_WORDS:
        return None
    return stem if stem.isascii() else _ascii(stem)


def terms(text: str) -> list[str]:
    """The terms LanceDB's default full-text index makes of ``text``, in order."""
    found = []
    for word in _WORD.findall(text):
        term = _term(word.lower())
        if term is not None:
            found.append(term)
    return found


class TextIndex:
    """BM25 over rows held in memory; ``rows`` are mappings with the ``field`` to search."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], field: str = "search_text") -> None:
        self.rows = list(rows)
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._lengths: list[int] = []
        for number, row in enumerate(self.rows):
            counts = Counter(terms(str(row.get(field) or "")))
            self._lengths.append(sum(counts.values()))
            for term, count in counts.items():
                self._postings.setdefault(term, []).append((number, count))
        # A row without terms is not a document of LanceDB's index: it counts in neither n nor
        # the average length.
        self._documents = sum(1 for length in self._lengths if length)
        self._average = sum(self._lengths) / self._documents if self._documents else 0.0

    def __len__(self) -> int:
        return len(self.rows)

    def search(
        self,
        query: str,
        limit: int,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> list[tuple[Mapping[str, Any], float]]:
        """The ``limit`` best rows for ``query`` (those ``keep`` accepts), best first."""
        count = self._documents
        scores: dict[int, float] = {}
        for term in terms(query):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for number, tf in postings:
                norm = K1 * (1 - B + B * self._lengths[number] / self._average)
                scores[number] = scores.get(number, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        found: list[tuple[Mapping[str, Any], float]] = []
        for number, score in ranked:
            row = self.rows[number]
            if keep is None or keep(row):
                found.append((row, score))
                if len(found) == limit:
                    break
        return found
