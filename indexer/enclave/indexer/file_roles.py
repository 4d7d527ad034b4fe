"""What a file is to a repository, from its path alone: a test, an example, documentation, the
changelog, or source. One rule for every part that asks: the ranking's chunk classes
(``search.chunk_class``), the completion context that never resolves an import of source code to a
test or example module (``completion.sources.bindings``), and the fine-tuning dataset that leaves
test code out (``enclave.server.dataset``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

Role = Literal["test", "example", "docs", "changelog", "source"]

_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "testdata"})
_EXAMPLE_DIRS = frozenset({"example", "examples", "docs_src", "samples", "demo", "demos"})
_DOCS_DIRS = frozenset({"doc", "docs"})
_CHANGELOG_NAMES = frozenset({"changes", "changelog", "history", "news", "releases", "release"})
_CHANGELOG_SUFFIXES = frozenset({"", "md", "rst", "txt", "adoc", "markdown", "html"})  # not .py
# test_x.py, conftest.py, x_test.go, x_tests.rs, x.test.ts, x.spec.js, FooTest.java, FooTests.cs
_TEST_FILE = re.compile(
    r"^(?:test_.*|conftest\..*|[^.]*_tests?\..*|.*\.(?:test|spec)\.\w+)$"
    r"|Tests?\.(?:java|kt|cs|swift|scala)$"
)


@lru_cache(maxsize=65536)
def file_role(path: str) -> Role:
    """The role of the file at the repository-relative ``path`` ("/"-separated): a changelog by
    its name (a text file: ``history.py`` is code), then a test by its folder or name, then an
    example or a document by its folder; everything else is source."""
    parts = path.split("/")
    name = parts[-1]
    folders = {part.lower() for part in parts[:-1]}
    lower = name.lower()
    suffix = lower.rpartition(".")[2] if "." in lower else ""
    if lower.split(".", 1)[0] in _CHANGELOG_NAMES and suffix in _CHANGELOG_SUFFIXES:
        return "changelog"
    if folders & _TEST_DIRS or _TEST_FILE.search(lower) or _TEST_FILE.search(name):
        return "test"
    if folders & _EXAMPLE_DIRS:
        return "example"
    if folders & _DOCS_DIRS:
        return "docs"
    return "source"


def is_test_path(path: str) -> bool:
    """A test file: in a test folder, or named as a test."""
    return file_role(path) == "test"


def outside_the_code(path: str) -> bool:
    """A test, example or documentation file: code the rest of the repository never imports."""
    return file_role(path) in ("test", "example", "docs")
