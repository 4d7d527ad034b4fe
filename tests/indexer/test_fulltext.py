"""In-memory full-text search (enclave.indexer.fulltext) against LanceDB's own index on the same
rows: the same hits in the same order with the same scores, filters included."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pytest
from lancedb.index import FTS
from lancedb.query import MatchQuery

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.engine import EngineIndex
from enclave.indexer.fulltext import TextIndex, terms
from enclave.indexer.tokens import query_text, search_text
from tests.support.repos import commit_all, make_repo

PROJECT = Path(__file__).resolve().parents[2]

# Words the tokenizer must treat as LanceDB's does: stop words before and after stemming,
# a 39- and a 40-byte token, letters outside ASCII, underscores and digits.
ODD_ROWS = [
    "doing others once yourselves why the naïve résumés",
    "a" * 39 + " " + "b" * 40 + " ab12cd x_y",
    "Straße ÉCOLE café running runs runner",
    "the of and to in",  # nothing but stop words: a row with no terms
]
QUERIES = [
    "The secret values found on one line, each with its kind.",
    "Ranked chunks for a query; mode is hybrid, lexical or semantic.",
    "run the index update in a child process",
    "getLogger getLogger logger",  # repeated terms count each time
    "naïve résumé école cafe strasse",
    "a" * 39 + " " + "b" * 40,
    "doing others once why",
    "the of and",  # stop words only: no hits
    "ab12cd x_y y",
    "symbols table import graph",
]


def project_rows() -> list[dict[str, Any]]:
    """Rows like the chunks table's: 40-line pieces of this project's indexer, and the odd rows."""
    rows: list[dict[str, Any]] = []
    for path in sorted((PROJECT / "indexer" / "enclave" / "indexer").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        relative = f"indexer/{path.name}"
        for start in range(0, len(lines), 40):
            text = "\n".join(lines[start : start + 40])
            rows.append({"id": f"{relative}:{start + 1}", "path": relative, "language": "python",
                         "search_text": search_text(text, relative, "")})  # fmt: skip
    for number, text in enumerate(ODD_ROWS):
        odd = f"odd/{number}.txt"
        rows.append({"id": odd, "path": odd, "language": "text", "search_text": text})
    return rows


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, TextIndex]:
    rows = project_rows()
    db = lancedb.connect(str(tmp_path_factory.mktemp("fts")))
    table = db.create_table("chunks", pa.Table.from_pylist(rows))
    table.create_index("search_text", config=FTS(), replace=True)  # the index the store makes
    return table, TextIndex(rows)


def lancedb_hits(table: Any, query: str, limit: int, where: str | None = None) -> list[Any]:
    match = MatchQuery(query, "search_text")  # type: ignore[call-arg]  # pydantic defaults
    builder = table.search(match, query_type="fts")
    if where:
        builder = builder.where(where, prefilter=True)
    return [(row["id"], row["_score"]) for row in builder.select(["id", "_score"]).limit(limit).to_list()]  # fmt: skip


def assert_same_ranking(expected: list[Any], got: list[Any], limit: int) -> None:
    """The first ``limit`` hits agree in score; a hit may differ only where scores tie."""
    assert len(got) == min(limit, len(expected)), (expected[:limit], got)
    wide = dict(expected)
    for (_, want), (cid, score) in zip(expected, got, strict=False):
        assert math.isclose(score, want, rel_tol=1e-4), (expected[:limit], got)
        assert math.isclose(wide[cid], score, rel_tol=1e-4), (cid, expected[:limit], got)


@pytest.mark.parametrize("query", QUERIES)
def test_ranks_and_scores_as_lancedb_does(both: tuple[Any, TextIndex], query: str) -> None:
    table, in_memory = both
    text = query_text(query)
    expected = lancedb_hits(table, text, 40)  # wider than 10: ties at the cut may differ
    got = [(row["id"], score) for row, score in in_memory.search(text, 10)]
    assert_same_ranking(expected, got, 10)
    if query.startswith("the of"):
        assert got == [] and expected == []


def test_filters_choose_rows_but_statistics_stay_the_whole_tables(
    both: tuple[Any, TextIndex],
) -> None:
    table, in_memory = both
    text = query_text("write lease conditional writes to the object store")
    expected = lancedb_hits(table, text, 40, "path LIKE 'indexer/l%'")
    found = in_memory.search(text, 10, lambda row: row["path"].startswith("indexer/l"))
    assert found and all(row["path"].startswith("indexer/l") for row, _ in found)
    assert_same_ranking(expected, [(row["id"], score) for row, score in found], 10)


def test_terms_are_lancedb_tokens() -> None:
    assert terms("doing others once yourselves why") == ["onc", "yourselv", "whi"]
    assert terms("naïve résumés Straße x_y ab12cd") == ["naiv", "resume", "strasse", "x", "ab12cd"]
    assert terms("a" * 39 + " " + "b" * 40) == ["a" * 39]


def test_an_index_searched_in_memory_sees_each_update(tmp_path: Path) -> None:
    files = {"shapes.py": "def area(width, height):\n    return width * height\n"}
    repo = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    on_disk = EngineIndex(repo, config)
    on_disk.update()
    in_memory = EngineIndex(repo, config, memory_text_rows=100)

    def hits(index: EngineIndex, query: str) -> list[tuple[str, int, float]]:
        found = index.search(query, k=5, mode="lexical").hits
        return [(h.path, h.start_line, round(h.score, 3)) for h in found]

    assert hits(in_memory, "area width") == hits(on_disk, "area width") != []
    (repo / "shapes.py").write_text(files["shapes.py"] + "\n\ndef perimeter(width, height):\n"
                                    "    return 2 * (width + height)\n")  # fmt: skip
    commit_all(repo, "perimeter")
    on_disk.update()
    # the new chunk is found, first (LanceDB scores it apart until its rows are folded into the
    # index; in memory every row is scored alike)
    assert hits(in_memory, "perimeter width")[0][:2] == hits(on_disk, "perimeter width")[0][:2]
    assert hits(in_memory, "perimeter")[0][:2] == ("shapes.py", 5)
    # a table past the limit is asked as before
    in_memory = EngineIndex(repo, config, memory_text_rows=1)
    assert hits(in_memory, "perimeter width") == hits(on_disk, "perimeter width")
    assert in_memory.reader._text is not None and in_memory.reader._text[1] is None
