"""One rule says which files are tests, examples, docs or the changelog, and every part that asks
(the ranking, the completion context, the fine-tuning dataset) gets the same answer from it."""

from __future__ import annotations

import pytest

from enclave.indexer.file_roles import file_role, is_test_path, outside_the_code
from enclave.indexer.search import chunk_class
from enclave.indexer.types import SymbolDef
from enclave.server.dataset import is_test

ROLES = {
    "src/pkg/models.py": "source",
    "pkg/latest.py": "source",
    "tests/test_models.py": "test",
    "pkg/tests/helpers.py": "test",
    "Tests/Helpers.py": "test",
    "src/__tests__/button.tsx": "test",
    "src/button.test.tsx": "test",
    "src/button.spec.js": "test",
    "cmp/compare_test.go": "test",
    "src/lib_tests.rs": "test",
    "conftest.py": "test",
    "app/src/main/java/FooTest.java": "test",
    "app/FooTests.cs": "test",
    "testdata/input.txt": "test",
    "examples/basic.py": "example",
    "docs_src/tutorial/first.py": "example",
    "docs/conf.py": "docs",
    "doc/guide.rst": "docs",
    "CHANGES.rst": "changelog",
    "HISTORY": "changelog",
    "pkg/history.py": "source",
    "src/release.ts": "source",
    "docs/changelog.md": "changelog",
}


@pytest.mark.parametrize(("path", "role"), ROLES.items())
def test_each_file_has_one_role(path: str, role: str) -> None:
    assert file_role(path) == role


@pytest.mark.parametrize("path", ROLES)
def test_the_ranking_the_context_and_the_dataset_agree(path: str) -> None:
    symbol = SymbolDef("run", "run", "function", path, 1, 2, "def run():", "")
    tested = is_test_path(path)
    assert (chunk_class(path, "function") == "test") is tested
    assert is_test(symbol) is tested
    # the completion context never resolves source code's imports to these files
    assert outside_the_code(path) is (file_role(path) in ("test", "example", "docs"))
