"""Per-language facts the chunker needs besides the grammar, and the compiled query per language.

A query file ``indexer/queries/<language>.scm`` captures:

- ``@definition.<kind>``: a definition node (kind is "function", "class", "struct", ...);
- ``@name``: its name (a "Foo::bar" or "M.foo" name qualifies itself);
- ``@scope``: an explicit owner when the syntax has one outside the body (Go method receivers);
- ``@import``: a module/package name as written (quotes and angle brackets are stripped);
- ``@heading.<level>`` with ``@name`` (Markdown only);
- captures starting with ``_`` only serve predicates.

Queries are compiled once per process, on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from tree_sitter import Query, QueryError

from enclave.indexer.languages import language_object

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    # Line prefixes (after indentation) of comment lines that document the definition below them.
    comment_prefixes: tuple[str, ...] = ("//", "/*", "*")
    # Line prefixes of decorators/attributes/annotations written above a definition.
    attribute_prefixes: tuple[str, ...] = ()
    # Node types that wrap a definition and belong to its chunk (decorators, `export`, templates).
    wrappers: frozenset[str] = frozenset()
    # Kinds whose "function" children are methods.
    method_containers: frozenset[str] = frozenset(
        {"class", "struct", "interface", "impl", "trait", "enum", "object", "protocol",
         "extension", "record", "union"}
    )  # fmt: skip
    # Python: the doc is the docstring (else the comment above).
    docstrings: bool = False


_C_LIKE = ("//", "/*", "*")
_HASH = ("#",)

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        comment_prefixes=_HASH,
        attribute_prefixes=("@",),
        wrappers=frozenset({"decorated_definition"}),
        docstrings=True,
    ),
    "javascript": LanguageSpec(attribute_prefixes=("@",), wrappers=frozenset({"export_statement"})),
    "typescript": LanguageSpec(
        attribute_prefixes=("@",), wrappers=frozenset({"export_statement", "ambient_declaration"})
    ),
    "tsx": LanguageSpec(
        attribute_prefixes=("@",), wrappers=frozenset({"export_statement", "ambient_declaration"})
    ),
    "go": LanguageSpec(),
    "rust": LanguageSpec(attribute_prefixes=("#[", "#![")),
    "java": LanguageSpec(attribute_prefixes=("@",)),
    "c": LanguageSpec(),
    "cpp": LanguageSpec(wrappers=frozenset({"template_declaration"})),
    "csharp": LanguageSpec(attribute_prefixes=("[",)),
    "ruby": LanguageSpec(
        comment_prefixes=_HASH,
        method_containers=frozenset({"class", "module"}),
    ),
    "php": LanguageSpec(comment_prefixes=(*_C_LIKE, "#"), attribute_prefixes=("#[",)),
    "bash": LanguageSpec(comment_prefixes=_HASH),
    "lua": LanguageSpec(comment_prefixes=("--",)),
    "kotlin": LanguageSpec(attribute_prefixes=("@",)),
    "swift": LanguageSpec(attribute_prefixes=("@",)),
    "markdown": LanguageSpec(comment_prefixes=()),
}

_queries: dict[str, Query | None] = {}
_error_queries: dict[str, Query | None] = {}


def spec_for(language: str) -> LanguageSpec:
    return SPECS.get(language) or LanguageSpec()


def query_source(language: str) -> str:
    """The text of ``queries/<language>.scm`` (package data), after the files it inherits.

    A first line ``; inherits: a, b`` puts ``a.scm`` and ``b.scm`` (recursively) before the file's
    own patterns, so languages that share a grammar family share one set of patterns.
    """
    text = (resources.files("enclave.indexer") / "queries" / f"{language}.scm").read_text("utf-8")
    first = text.split("\n", 1)[0]
    if not first.startswith("; inherits:"):
        return text
    parents = [name.strip() for name in first.split(":", 1)[1].split(",") if name.strip()]
    return "\n".join([*(query_source(parent) for parent in parents), text])


def query_for(language: str) -> Query | None:
    """The compiled definitions/imports query for ``language``, or None (logged) when the grammar
    or the query file is missing or the query does not compile against the installed grammar."""
    if language in _queries:
        return _queries[language]
    query: Query | None = None
    lang = language_object(language)
    if lang is not None:
        try:
            query = Query(lang, query_source(language))
        except (OSError, QueryError) as exc:
            log.warning(
                "query for %s unusable (%s); its files will be chunked in line windows",
                language,
                exc,
            )
    _queries[language] = query
    return query


def error_query_for(language: str) -> Query | None:
    """A query capturing the ERROR and MISSING nodes of a syntax tree."""
    if language not in _error_queries:
        lang = language_object(language)
        _error_queries[language] = Query(lang, "(ERROR) @e (MISSING) @m") if lang else None
    return _error_queries[language]
