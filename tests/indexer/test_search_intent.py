"""Ranking by what kind of chunk answers a query: the function for a description of behaviour,
its test for a query about tests, on a real index of a small repository with a docs page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.indexer.search import (
    CHUNK_CLASSES,
    VectorMatrix,
    chunk_class,
    class_weights,
    code_names,
    docs_beside,
    query_intent,
)
from enclave.indexer.types import SearchHit
from enclave.server.cli import main
from tests.support.repos import make_repo

SOURCE = '''\
UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text):
    """The number of seconds in a duration such as 1h30m."""
    seconds = 0
    number = ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            seconds += int(number) * UNITS[char]
            number = ""
    return seconds
'''

TESTS = """\
from pkg.durations import parse_duration


def test_parse_duration_hours_and_minutes():
    assert parse_duration("1h30m") == 5400


def test_parse_duration_seconds():
    assert parse_duration("45s") == 45
"""

DOCS = """\
# Durations

Timeouts are durations such as `1h30m` or `45s`: a number of hours, minutes
or seconds, each followed by its unit, read by `parse_duration`.

# Configuration

Timeouts in the configuration file are durations.
"""

BEHAVIOUR = "the number of seconds in a duration such as 1h30m or 45s"
ABOUT_TESTS = "the tests of parse_duration with hours and minutes"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intent") / "repo"
    files = {
        "pkg/__init__.py": "",
        "pkg/durations.py": SOURCE,
        "tests/test_durations.py": TESTS,
        "docs/durations.md": DOCS,
    }
    make_repo(root, files)
    open_index(root, Config(embedding=EmbeddingConfig(provider="none"))).update()
    return root


def _first(root: Path, query: str) -> tuple[str, str]:
    index = open_index(root, Config(embedding=EmbeddingConfig(provider="none")))
    try:
        hit = index.search(query, k=5, mode="lexical").hits[0]
    finally:
        index.close()
    return hit.path, hit.symbol


def test_a_description_of_behaviour_finds_the_function_before_its_docs_and_tests(
    repo: Path,
) -> None:
    assert _first(repo, BEHAVIOUR) == ("pkg/durations.py", "parse_duration")


def test_a_query_about_tests_finds_the_test_before_the_function(repo: Path) -> None:
    path, symbol = _first(repo, ABOUT_TESTS)
    assert (path, symbol) == ("tests/test_durations.py", "test_parse_duration_hours_and_minutes")


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        (BEHAVIOUR, "code"),
        (ABOUT_TESTS, "tests"),
        ("Test whether the value is a valid duration", "code"),
        ("Return the first item, for example of a list", "code"),
        ("how to configure timeouts", "docs"),
        ("an example of a custom loader", "docs"),
        ("changelog of the release", "changelog"),
    ],
)
def test_query_intent(query: str, intent: str) -> None:
    assert query_intent(query) == intent


@pytest.mark.parametrize(
    ("path", "kind", "cls"),
    [
        ("src/pkg/core.py", "function", "definition"),
        ("src/pkg/core.py", "class", "type"),
        ("pkg/options.go", "struct", "type"),
        ("src/pkg/core.py", "block", "block"),
        ("tests/test_core.py", "function", "test"),
        ("pkg/core_test.go", "function", "test"),
        ("src/operators/map.spec.ts", "function", "test"),
        ("examples/app.py", "function", "example"),
        ("docs/guide.rst", "section", "docs"),
        ("CHANGES.rst", "section", "changelog"),
        ("notes.txt", "window", "other"),
    ],
)
def test_chunk_class(path: str, kind: str, cls: str) -> None:
    assert chunk_class(path, kind) == cls


def test_vector_scores_take_the_class_weights_of_the_query_intent() -> None:
    vectors = np.eye(2, dtype=np.float32)
    classes = [CHUNK_CLASSES.index("definition"), CHUNK_CLASSES.index("test")]
    matrix = VectorMatrix(
        ["def", "test"],
        np.array(["pkg/a.py", "tests/test_a.py"], dtype=object),
        np.array(["python", "python"], dtype=object),
        np.array([0, 1], dtype=np.int32),
        vectors,
        np.ones(2, dtype=np.float32),
        np.array(classes, dtype=np.int8),
    )
    query = np.array([0.7, 0.72], dtype=np.float32)  # the test is a little nearer
    top = matrix.top(query, 2, path_prefix=None, language=None)
    assert top[0][0] == "test"
    code = matrix.top(
        query, 2, path_prefix=None, language=None, weights=class_weights("code", dense=True)
    )
    assert code[0][0] == "def"
    tests = matrix.top(
        query, 2, path_prefix=None, language=None, weights=class_weights("tests", dense=True)
    )
    assert tests[0][0] == "test"


def test_the_docs_section_about_a_function_rides_beside_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """For a description of behaviour, the docs section that writes the function's name as code
    (`parse_duration`) is cited beside the function instead of taking a result of its own; a
    section that names no result keeps its place, and a question about the docs gets the
    sections as results."""
    index = open_index(repo, Config(embedding=EmbeddingConfig(provider="none")))
    try:
        hits = index.search(BEHAVIOUR, k=5, mode="lexical").hits
        docs_query = index.search("how to configure timeouts", k=5, mode="lexical").hits
    finally:
        index.close()
    first = hits[0]
    assert (first.path, first.symbol) == ("pkg/durations.py", "parse_duration")
    assert [(d.path, d.symbol, d.start_line) for d in first.docs] == [
        ("docs/durations.md", "Durations", 1)
    ]
    assert "read by `parse_duration`" in first.docs[0].text
    assert not any(h.path == "docs/durations.md" and h.symbol == "Durations" for h in hits)
    assert all(not h.docs for h in hits[1:])
    assert {h.symbol for h in docs_query if h.path == "docs/durations.md"} >= {"Configuration"}
    assert all(not h.docs for h in docs_query)
    # the command line: the section beside its function, its text only with --text
    main(["search", "--root", str(repo), "--mode", "lexical", "--json", "--no-server",
          "--settings", '{"embedding": {"provider": "none"}}', BEHAVIOUR])  # fmt: skip
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert [(d["path"], d["symbol"]) for d in result["docs"]] == [
        ("docs/durations.md", "Durations")
    ]
    assert "text" not in result and "text" not in result["docs"][0]
    main(["search", "--root", str(repo), "--mode", "lexical", "--no-server",
          "--settings", '{"embedding": {"provider": "none"}}', BEHAVIOUR])  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert "pkg/durations.py" in printed[0]
    assert printed[1].split() == ["docs:", "docs/durations.md:1-4", "Durations"], printed


def _hit(path: str, kind: str, symbol: str, text: str = "") -> SearchHit:
    return SearchHit(path, 1, 2, symbol, kind, "python", 1.0, text)


def test_a_docs_section_rides_beside_the_best_ranked_function_it_names_among_the_results() -> None:
    """Riders take no result's place; a section whose function is not among the first k, or
    that names none, keeps its own; a test is never what a section rides beside."""
    hits = [
        _hit("docs/api.md", "section", "API > load", "Call `load(path)` or `save`."),
        _hit("tests/test_io.py", "function", "test_load"),
        _hit("pkg/io.py", "function", "io.save"),
        _hit("docs/other.md", "section", "Other", "Nothing in code here."),
        _hit("pkg/io.py", "function", "io.load"),
        _hit("docs/late.md", "section", "Late", "See `far_away()`."),
        _hit("pkg/far.py", "function", "far_away"),
    ]
    shown = docs_beside(hits, 4)
    assert [(h.path, h.symbol) for h in shown] == [
        ("tests/test_io.py", "test_load"),
        ("pkg/io.py", "io.save"),
        ("docs/other.md", "Other"),
        ("pkg/io.py", "io.load"),
    ]
    assert [d.symbol for d in shown[1].docs] == ["API > load"]  # the best ranked it names
    assert all(not h.docs for h in (shown[0], shown[2], shown[3]))
    # where `far_away` is out of reach even with its section aside, the section keeps its place
    assert [h.symbol for h in docs_beside([hits[5], hits[3], hits[6]], 1)] == ["Late"]
    assert [(h.symbol, len(h.docs)) for h in docs_beside([hits[5], hits[6]], 1)] == [
        ("far_away", 1)
    ]
    assert code_names("Use :meth:`~pkg.Store.get` then `put(x)`; .. autofunction:: pkg.drop") >= {
        "get",
        "Store",
        "put",
        "drop",
    }
