"""Tests for indexer.languages: path -> language names, and a parser for every grammar wheel."""

from __future__ import annotations

import pytest
from tree_sitter import Parser

from enclave.indexer.langspec import query_for
from enclave.indexer.languages import (
    KNOWN_LANGUAGES,
    SUPPORTED_LANGUAGES,
    language_for_path,
    parser_for,
)


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("pkg/mod.py", "python"),
        ("stubs/mod.pyi", "python"),
        ("web/app.js", "javascript"),
        ("web/app.mjs", "javascript"),
        ("web/app.cjs", "javascript"),
        ("web/App.jsx", "javascript"),
        ("web/app.ts", "typescript"),
        ("web/app.mts", "typescript"),
        ("web/app.cts", "typescript"),
        ("web/App.tsx", "tsx"),
        ("cmd/main.go", "go"),
        ("src/lib.rs", "rust"),
        ("src/Main.java", "java"),
        ("src/util.c", "c"),
        ("include/util.h", "c"),
        ("src/engine.cpp", "cpp"),
        ("src/engine.cc", "cpp"),
        ("src/engine.cxx", "cpp"),
        ("include/engine.hpp", "cpp"),
        ("include/engine.hh", "cpp"),
        ("src/Order.cs", "csharp"),
        ("lib/billing.rb", "ruby"),
        ("Gemfile", "ruby"),
        ("src/index.php", "php"),
        ("scripts/run.sh", "bash"),
        ("scripts/run.bash", "bash"),
        ("lua/plugin.lua", "lua"),
        ("src/App.kt", "kotlin"),
        ("build.gradle.kts", "kotlin"),
        ("Sources/App.swift", "swift"),
        ("README.md", "markdown"),
        ("docs/guide.MD", "markdown"),
        ("docs/index.rst", "rst"),
        ("package.json", "text"),
        ("config.yaml", "text"),
        ("pyproject.toml", "text"),
        ("Makefile", "text"),
        ("Dockerfile", "text"),
        ("LICENSE", "text"),
        (".gitignore", "text"),
        ("windows\\style\\mod.py", "python"),
    ],
)
def test_language_for_path(path: str, language: str) -> None:
    assert language_for_path(path) == language
    assert language in KNOWN_LANGUAGES


def test_supported_languages_are_the_brief() -> None:
    expected = {
        "python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "csharp",
        "ruby", "php", "bash", "lua", "kotlin", "swift", "markdown",
    }  # fmt: skip
    assert expected == SUPPORTED_LANGUAGES
    assert "rst" in KNOWN_LANGUAGES and "rst" not in SUPPORTED_LANGUAGES


@pytest.mark.parametrize("language", sorted(SUPPORTED_LANGUAGES))
def test_every_supported_language_parses_and_has_a_query(language: str) -> None:
    parser = parser_for(language)
    assert isinstance(parser, Parser)
    assert parser_for(language) is parser  # cached per process
    tree = parser.parse(b"x\n")
    assert tree.root_node.end_point.row >= 0
    assert query_for(language) is not None


def test_no_parser_for_unknown_language() -> None:
    assert parser_for("text") is None
    assert parser_for("cobol") is None
    assert parser_for("rst") is None
