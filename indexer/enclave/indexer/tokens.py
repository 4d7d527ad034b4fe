"""Identifier sub-tokens for full-text search: `getUserById` also matches "get user by id".

Code search queries are written in words ("where are retries handled") while code is written in
identifiers (`max_retries`, `RetryPolicy`, `handleRetry`). The full-text index sees each chunk's text
followed by the sub-tokens of its compound identifiers, and queries get the same treatment.
"""

from __future__ import annotations

import re
from functools import lru_cache

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
# Boundaries inside an identifier: lower->Upper, ACRONYMWord, letter<->digit, underscores.
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_identifier(identifier: str) -> list[str]:
    """`getHTTPResponse_v2` -> ["get", "http", "response", "v", "2"] (lower-cased)."""
    return [part.lower() for part in _PARTS.findall(identifier)]


@lru_cache(maxsize=1 << 14)  # about 4 MB per process at most
def _compound_parts(identifier: str) -> tuple[str, ...]:
    """The sub-tokens of a compound identifier worth indexing (longer than a character); none
    for a plain word. Kept: a repository repeats its identifiers in chunk after chunk, and this
    was a fifth of the chunking workers' time (py-spy, a full build of the standard library)."""
    parts = split_identifier(identifier)
    return tuple(part for part in parts if len(part) > 1) if len(parts) > 1 else ()


def subtokens(text: str) -> str:
    """The sub-tokens of every compound identifier in ``text``, space separated, each once."""
    seen: set[str] = set()
    out: list[str] = []
    for identifier in set(_IDENT.findall(text)):
        for part in _compound_parts(identifier):
            if part not in seen:
                seen.add(part)
                out.append(part)
    return " ".join(out)


NAME_REPEAT = 2  # the chunk's own name counts this many times more than a word of its body


def search_text(text: str, path: str, symbol: str) -> str:
    """What the full-text index stores for a chunk: text, then path, symbol and sub-tokens, then
    the words of the symbol's own name again (a field weight: a query's words that name the
    function rank it above chunks that only mention them)."""
    extra = subtokens(f"{text}\n{symbol}\n{path.replace('/', ' ').replace('.', ' ')}")
    name = symbol.rpartition(".")[2]
    words = " ".join([name.lower(), *split_identifier(name)]) if name else ""
    boost = "\n".join([words] * NAME_REPEAT) if words else ""
    return f"{text}\n{path}\n{symbol}\n{extra}\n{boost}"


def query_text(query: str) -> str:
    """A user's query with its compound identifiers expanded the same way."""
    extra = subtokens(query)
    return f"{query} {extra}" if extra else query
