"""Which language a file is written in, and the tree-sitter parser for it.

``language_for_path`` maps a path to one of the language names the indexer knows ("python",
"typescript", "markdown", ..., or "text" for everything it chunks in plain line windows).
``parser_for`` builds a parser from the language's grammar wheel the first time it is asked for
and keeps it for the life of the process (the chunker runs in worker processes, each of which
builds its own; a parser is not thread-safe, so each thread of a process gets its own too). Grammars are imported lazily so that indexing a Go repository never loads PHP.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from tree_sitter import Language, Parser

log = logging.getLogger(__name__)

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".sh": "bash",
    ".bash": "bash",
    ".lua": "lua",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
    ".rst": "rst",
}

# Files recognised by their whole name (no useful extension).
_FILE_NAMES: dict[str, str] = {
    "Gemfile": "ruby",
    "Rakefile": "ruby",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".profile": "bash",
}

# language -> (grammar module, function returning the language capsule)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "bash": ("tree_sitter_bash", "language"),
    "lua": ("tree_sitter_lua", "language"),
    "kotlin": ("tree_sitter_kotlin", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "markdown": ("tree_sitter_markdown", "language"),
}

# Languages chunked by a grammar and a query file (indexer/queries/<language>.scm).
# "rst" has no grammar wheel: the chunker finds its headings with a regular expression.
SUPPORTED_LANGUAGES: frozenset[str] = frozenset(_GRAMMARS)

# Every language name language_for_path can return.
KNOWN_LANGUAGES: frozenset[str] = frozenset({*_EXTENSIONS.values(), *_FILE_NAMES.values(), "text"})

_languages: dict[str, Language | None] = {}
_local = threading.local()  # .parsers: dict[str, Parser | None], one per thread


def language_for_path(path: str) -> str:
    """The language of ``path`` (by file name, then extension, case-insensitively); "text" if
    the indexer has no grammar for it (JSON, YAML, TOML, Makefile, Dockerfile, ...)."""
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]  # per file: no pathlib
    by_name = _FILE_NAMES.get(name)
    if by_name is not None:
        return by_name
    dot = name.rfind(".")
    if dot <= 0 and not name.startswith("."):
        return "text"
    return _EXTENSIONS.get(name[dot:].lower(), "text")


def language_object(language: str) -> Language | None:
    """The tree-sitter ``Language`` for ``language``, or None when no grammar is available
    (unknown name, or the grammar wheel is missing or incompatible: logged once)."""
    if language in _languages:
        return _languages[language]
    spec = _GRAMMARS.get(language)
    result: Language | None = None
    if spec is not None:
        module_name, func_name = spec
        try:
            module = importlib.import_module(module_name)
            factory: Callable[[], Any] = getattr(module, func_name)
            result = Language(factory())
        except Exception as exc:  # a broken or missing wheel must not stop indexing
            log.warning(
                "grammar for %s unavailable (%s: %s); its files will be chunked in line windows."
                " Fix: pip install %s",
                language,
                type(exc).__name__,
                exc,
                module_name.replace("_", "-"),
            )
    _languages[language] = result
    return result


def parser_for(language: str) -> Parser | None:
    """A tree-sitter parser for ``language`` (built once per process and thread), or None when
    there is no grammar for it."""
    parsers: dict[str, Parser | None] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if language in parsers:
        return parsers[language]
    lang = language_object(language)
    parser = Parser(lang) if lang is not None else None
    parsers[language] = parser
    return parser
