"""Whether semantic search can work for one index, and the embedders it uses.

Decided when asked, from the configuration now, the facts the index holds (which model made its
vectors, which chunks have one) and a live check of the embedding provider; nothing an earlier
process concluded is read back. One embedder is kept for the index's updates and queries, so an
in-process model is loaded once.
"""

from __future__ import annotations

import time
from pathlib import Path

from enclave.config import Config
from enclave.indexer.embed import (
    Embedder,
    EmbeddingUnavailable,
    check_embedding,
    configured_model_id,
    embedding_form,
    make_embedder,
)
from enclave.indexer.excludes import IgnoreRules
from enclave.indexer.results import IndexSummary, Reason
from enclave.indexer.store import Store
from enclave.indexer.tables import EMBEDDING_INPUT

EMBEDDING_CHECK_TTL = 10.0  # seconds a live check of the embedding provider is trusted


class Semantic:
    """The embedding side of the index of ``root``."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self._embedder: Embedder | None = None
        self._check: tuple[float, Reason | None] | None = None

    def for_update(self, summary: IndexSummary) -> Embedder | None:
        """The embedder an update uses, or None (and semantic search off in ``summary``)."""
        try:
            # A loaded in-process model is reused; Ollama is asked again each time (it may be back).
            embedder = self._embedder
            if embedder is None or embedder.provider != "local":
                embedder = make_embedder(self.config)
            self._embedder = embedder
        except EmbeddingUnavailable as exc:
            summary.semantic_off(Reason(exc.message, exc.fix))
            return None
        summary.semantic = True
        return embedder

    def for_queries(self, model_id: str) -> Embedder:
        """The embedder of queries against vectors made by ``model_id``."""
        if self._embedder is None or self._embedder.model_id != model_id:
            embedder = make_embedder(self.config, query=True)
            if embedder.model_id != model_id:
                raise EmbeddingUnavailable(
                    f"the index was embedded with {model_id} but {embedder.model_id} is configured",
                    "run `enclave index` to re-embed with the configured model",
                )
            self._embedder = embedder
        return self._embedder

    def off(self, meta: dict[str, str], *, live: bool = True) -> Reason | None:
        """Why semantic search cannot work now (None: it can), derived from the configuration
        now, the facts the index holds (which model made its vectors) and, with ``live``, a
        check of the embedding provider (trusted for EMBEDDING_CHECK_TTL seconds). Nothing an
        earlier process concluded is read back."""
        stored = meta.get("embedding_model", "")
        if self.config.embedding.provider != "none" and stored:
            wanted = configured_model_id(self.config)
            if stored != wanted:
                return Reason(
                    f"the index was embedded with {stored} but {wanted} is configured",
                    f"run `enclave index {self.root}` to re-embed with the configured model",
                )
        if live or self.config.embedding.provider == "none":
            problem = self._check_embedding()
            if problem is not None:
                return problem
        return None if stored else self.no_vectors()

    def vector_counts(self, store: Store) -> tuple[int, int]:
        """(chunk texts that should have a vector, those without one), read from the tables:
        files of trust.never_send never get vectors and are not counted."""
        data = store.columns("chunks", ["path", "content_hash"]).to_pydict()
        never_send = IgnoreRules(self.config.trust.never_send, source="trust.never_send")
        sent: dict[str, bool] = {}
        wanted = set()
        for path, content_hash in zip(data["path"], data["content_hash"], strict=True):
            if path not in sent:
                sent[path] = not never_send.decide(path)
            if sent[path]:
                wanted.add(content_hash)
        return len(wanted), len(wanted - store.cached_hashes())

    def stored(self, store: Store, meta: dict[str, str]) -> tuple[Reason | None, int]:
        """Whether the stored vectors can serve semantic search (None) or why not, and how many
        chunks lack a vector: from what the tables hold and the configuration, never from a
        counter an earlier process left (an embedding run whose batches all failed leaves a
        model recorded and no vectors)."""
        off = self.off(meta, live=False)
        if not meta.get("embedding_model"):
            return off or self.no_vectors(), 0
        wanted, missing = self.vector_counts(store)
        if wanted and missing == wanted:
            return off or self.no_vectors(), missing
        return off, missing

    def outdated(self, meta: dict[str, str]) -> bool:
        """Whether the stored vectors were made from another form of the embedding input than
        the configuration makes now (``embedding_form``; the next update embeds them again)."""
        if self.config.embedding.provider == "none" or not meta.get("embedding_model"):
            return False
        return meta.get(EMBEDDING_INPUT, "1") != embedding_form(self.config)

    def no_vectors(self) -> Reason:
        return Reason("the index has no vectors yet", f"run `enclave index {self.root}`")

    def _check_embedding(self) -> Reason | None:
        now = time.monotonic()
        if self._check and now - self._check[0] < EMBEDDING_CHECK_TTL:
            return self._check[1]
        try:
            check_embedding(self.config)
            problem = None
        except EmbeddingUnavailable as exc:
            problem = Reason(exc.message, exc.fix)
        self._check = (time.monotonic(), problem)
        return problem
