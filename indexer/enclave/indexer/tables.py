"""The index's tables as data: their names and Arrow schemas, the keys of the ``meta`` table, and
the two helpers that quote values into LanceDB filters.

:mod:`enclave.indexer.store` opens and writes these tables; docs/index-schema.md describes them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

SCHEMA_VERSION = 1
TABLES = ("chunks", "symbols", "files", "meta")

# Keys of the meta table (key/value rows).
# When the update now writing (or the last one, killed) started; "" when done.
UPDATE_STARTED = "update_started"
VECTORS_MISSING = "vectors_missing"  # chunks still to embed (set while embedding)
FOLDED_AT = "folded_at"  # when an update last folded (ISO time)
DISCOVERY_SKIPPED = "discovery_skipped"  # files left out before reading (see status)
EMBEDDING_INPUT = "embedding_input"  # the form chunks were embedded as (enclave.indexer.embed)
VECTOR_FACTS = ("embedding_model", "embedding_dim", EMBEDDING_INPUT)  # what made the vectors
CHUNKER = "chunker_version"  # the chunker that made the rows (another one re-indexes)
REDACT_PII = "redact_pii"  # "true" when personal data was redacted (a change re-indexes)

CHUNKS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("kind", pa.string()),
        ("symbol", pa.string()),
        ("start_line", pa.int32()),
        ("end_line", pa.int32()),
        ("text", pa.string()),
        ("search_text", pa.string()),
        ("content_hash", pa.string()),
    ]
)
SYMBOLS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("qualified_name", pa.string()),
        ("kind", pa.string()),
        ("path", pa.string()),
        ("start_line", pa.int32()),
        ("end_line", pa.int32()),
        ("signature", pa.string()),
        ("doc", pa.string()),
    ]
)
FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("content_id", pa.string()),
        ("size", pa.int64()),
        ("language", pa.string()),
        ("state", pa.string()),  # "indexed" | "skipped:<reason>" | "error"
        ("detail", pa.string()),
        ("chunks", pa.int32()),
        ("imports", pa.list_(pa.string())),
    ]
)
META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def embeddings_schema(dim: int) -> pa.Schema:
    """A vector per chunk text (``part`` 0) and one per definition inside a type's chunk (1, 2,
    ...: ``enclave.indexer.embedding_pass``)."""
    return pa.schema(
        [
            ("content_hash", pa.string()),
            ("part", pa.int32()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_clause(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(quote(v) for v in values)})"
