"""Past ANN_MIN_ROWS vectors, the index gets an ANN index (IVF_HNSW_SQ) and semantic search goes
through it instead of loading every vector (the in-process MiniLM provider, a low threshold)."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig
from enclave.indexer import store as store_module
from enclave.indexer.api import open_index
from enclave.indexer.reader import IndexReader
from tests.support.meaning import MEANING as FILES
from tests.support.repos import make_repo


def test_past_the_threshold_search_uses_an_ann_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "ANN_MIN_ROWS", 1)
    root = make_repo(tmp_path / "repo", FILES)
    index = open_index(root, Config(embedding=EmbeddingConfig(provider="local")))
    summary = index.update()
    assert summary.semantic, summary.semantic_reason
    assert any("ANN index (IVF_HNSW_SQ)" in note for note in summary.notes)
    assert index.store.has_vector_index()  # type: ignore[attr-defined]

    query = "make a title url safe"
    with monkeypatch.context() as exact:  # the exact answer: every vector in memory
        exact.setattr(store_module.Store, "has_vector_index", lambda self: False)
        expected = index.search(query, k=3, mode="semantic").hits

    def every_vector(self: IndexReader, store: object) -> None:
        raise AssertionError("the whole vector table was loaded")

    monkeypatch.setattr(IndexReader, "_vector_matrix", every_vector)
    hits = index.search(query, k=3, mode="semantic").hits
    assert hits[0].path == "text/slug.py"
    assert [(h.path, h.start_line) for h in hits] == [(h.path, h.start_line) for h in expected]
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected], abs=1e-3)
    only = index.search(query, k=3, mode="semantic", path_prefix="db/").hits
    assert only and all(h.path.startswith("db/") for h in only)
