"""Ranking by what kind of chunk answers a query: the function for a description of behaviour,
its test for a query about tests, on a real index of a small repository with a docs page."""

from __future__ import annotations

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
    query_intent,
)
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
