"""Search quality on the project's own code: docstring words find the defining chunk."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.indexer.search import LEXICAL_SHARE, fuse
from tests.support.repos import commit_all, make_repo

PROJECT = Path(__file__).resolve().parents[2]


def documented_functions(root: Path) -> list[tuple[str, int, str]]:
    """(path, def line, first docstring line) for every documented function of the corpus."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 4:
                    found.append(
                        (path.relative_to(root).as_posix(), node.lineno, doc.splitlines()[0])
                    )
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "repo"
    root.mkdir()
    shutil.copytree(
        PROJECT / "indexer" / "enclave" / "indexer",
        root / "indexer",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    make_repo(root, {})
    commit_all(root, "corpus")
    open_index(root, Config(embedding=EmbeddingConfig(provider="none"))).update()
    return root


def test_docstring_words_rank_the_defining_chunk_in_top_5(corpus: Path) -> None:
    index = open_index(corpus, Config(embedding=EmbeddingConfig(provider="none")))
    functions = documented_functions(corpus)
    assert len(functions) >= 30
    misses = []
    for path, line, doc in functions:
        hits = index.search(doc, k=5).hits
        if not any(h.path == path and h.start_line <= line <= h.end_line for h in hits):
            misses.append(f"{path}:{line} {doc!r}")
    rate = 1 - len(misses) / len(functions)
    print(f"top-5 rate {rate:.1%} over {len(functions)} functions")
    assert rate >= 0.95, f"top-5 rate {rate:.0%}; misses:\n" + "\n".join(misses)


def test_cli_json_ranks_the_defining_chunk(corpus: Path) -> None:
    path, line, doc = next(f for f in documented_functions(corpus) if f[0] == "indexer/tokens.py")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "enclave.server.cli", "search", doc, "--json", "--k", "5"],
        cwd=corpus,
        capture_output=True,
        text=True,
        env={**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert any(r["path"] == path and r["start_line"] <= line <= r["end_line"] for r in results)


def test_a_weak_full_text_match_does_not_lift_a_chunk_over_the_vectors_best() -> None:
    """Min-max scaling puts a weak full-text match (a few common words) mid-list; raised to a
    power, it counts for little, so the chunk the vectors rank first stays first, while the
    full-text best keeps its whole share."""
    lexical = [("full-text best", 10.0), ("weak match", 5.5), ("last", 1.0)]
    dense = [("vectors' best", 0.9), ("weak match", 0.66), ("far", 0.1)]
    scores = fuse(lexical, dense)
    ranked = sorted(scores, key=lambda item: -scores[item])
    assert ranked[:3] == ["vectors' best", "weak match", "full-text best"], scores
    assert scores["full-text best"] == pytest.approx(LEXICAL_SHARE)
