"""What every embedder is (:class:`Embedder`) and raises when no vectors can be made
(:class:`EmbeddingUnavailable`); the providers are :mod:`enclave.indexer.embed` (the configured
one, and the local one) and :mod:`enclave.indexer.embed_served` (those that ask model servers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from enclave.config import Config, EmbeddingConfig
from enclave.errors import EnclaveError

# The task prefixes embedding models were trained with, from their model cards: (before a
# document, before a query). Retrieval with these models is measurably worse without them.
TASK_PREFIXES = {
    "nomic-embed-text": ("search_document: ", "search_query: "),
    "mxbai-embed-large": ("", "Represent this sentence for searching relevant passages: "),
    "snowflake-arctic-embed": ("", "Represent this sentence for searching relevant passages: "),
}


# embedding.model's default is Ollama's model; the local provider runs its own small model then.
OLLAMA_DEFAULT_MODEL = EmbeddingConfig().model
LOCAL_DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_in_use(config: Config) -> str:
    """The model the configured provider embeds with: ``embedding.model``, except that the local
    provider runs LOCAL_DEFAULT_MODEL where it is left at Ollama's default."""
    model = config.embedding.model
    if config.embedding.provider == "local" and model == OLLAMA_DEFAULT_MODEL:
        return LOCAL_DEFAULT_MODEL
    return model


def task_prefixes(config: Config) -> tuple[str, str]:
    """(document prefix, query prefix) for the model in use (:func:`model_in_use`):
    ``embedding.documentPrefix`` / ``queryPrefix``, where ``auto`` is that model's own from
    :data:`TASK_PREFIXES`. A model trained without prefixes gets none: nomic-embed-text's, given
    to all-MiniLM-L6-v2, cost its semantic search 0.05-0.11 MRR@10 on each corpus of
    docs/benchmarks.md."""
    name = model_in_use(config).rsplit("/", 1)[-1].split(":")[0]
    known = TASK_PREFIXES.get(name, ("", ""))
    document, query = config.embedding.document_prefix, config.embedding.query_prefix
    return (known[0] if document == "auto" else document, known[1] if query == "auto" else query)


def with_prefix(texts: Sequence[str], prefixes: tuple[str, str], *, query: bool) -> list[str]:
    """``texts`` as the model is asked to embed them: each after its task prefix."""
    prefix = prefixes[1] if query else prefixes[0]
    return [prefix + text for text in texts] if prefix else list(texts)


class EmbeddingUnavailable(EnclaveError):
    """No vectors can be made: ``message`` says why, ``fix`` what to do."""

    def __str__(self) -> str:  # read as one sentence in status lines: "reason: fix"
        return f"{self.message}: {self.fix}" if self.fix else self.message


class Embedder(Protocol):
    provider: str
    model: str

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        """Unit vectors for ``texts``; ``query``: the one text a search embeds (a shorter wait)."""
        ...
