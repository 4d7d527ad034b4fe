"""An update's embedding pass: embed every chunk whose text has no cached vector yet.

Runs after every file's rows are written (:mod:`enclave.indexer.writer`). Requests are pipelined
(the embedding server gets the next batches while the last one's vectors are written), every
batch's vectors are stored at once with the meta saying how many are still missing, and files of
``trust.never_send`` never leave the machine: their chunks get no vectors.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future

from enclave.config import Config
from enclave.indexer.embed import (
    Embedder,
    EmbeddingUnavailable,
    embedding_form,
    embedding_input,
)
from enclave.indexer.excludes import IgnoreRules
from enclave.indexer.results import IndexSummary, ProgressFn, Reason
from enclave.indexer.store import Store
from enclave.indexer.tables import EMBEDDING_INPUT, VECTORS_MISSING, in_clause


def embed_missing(
    store: Store,
    embedder: Embedder,
    config: Config,
    summary: IndexSummary,
    report: ProgressFn,
    stop: Callable[[], bool],
    still_ours: Callable[[], None] = lambda: None,
) -> None:
    """Embed every chunk whose text has no cached vector (new, changed, or left by a crash).
    ``still_ours`` raises when the write lease was lost: no batch is written after that."""
    items = _texts_to_embed(store, config)
    if items is None:
        return
    size = config.embedding.batch_size
    parts = [items[start : start + size] for start in range(0, len(items), size)]
    # Ollama gets the next batches while the last one's vectors are written: the server is
    # never idle waiting for us (in-process models use every core already: one at a time).
    depth = config.embedding.concurrency if embedder.provider == "ollama" else 1
    began = time.perf_counter()
    report(0, len(items), f"embedding {len(items)} chunks")
    left = len(items)
    for part, vectors in _pipelined(embedder, parts, depth):
        if isinstance(vectors, EmbeddingUnavailable):
            summary.semantic_off(
                Reason(f"{vectors.message} ({left} chunks left without vectors)", vectors.fix)
            )
            return
        still_ours()
        store.add_vectors(embedder.dim, [h for h, _ in part], vectors)
        left -= len(part)
        # After every batch: semantic search works on what is embedded so far, even if this
        # process is killed now, and the index says how much is still missing.
        store.set_meta({**embedding_meta(config, embedder), VECTORS_MISSING: str(left)})
        summary.embedded += len(part)
        report(
            summary.embedded,
            len(items),
            embedding_progress(summary.embedded, len(items), began),
        )
        if stop():
            summary.cancelled = True
            return


def _texts_to_embed(store: Store, config: Config) -> list[tuple[str, str]] | None:
    """(content hash, embedding input) of each chunk text without a cached vector; None when
    every chunk has one."""
    cached = store.cached_hashes()
    hashes = set(store.columns("chunks", ["content_hash"]).column(0).to_pylist())
    missing = sorted(hashes - cached)
    if not missing:
        return None
    wanted = ["content_hash", "path", "symbol", "text"]
    # A few missing texts (an incremental update) are fetched by hash; many are read in one go.
    where = in_clause("content_hash", missing) if len(missing) <= 1000 else None
    subset = store.columns("chunks", wanted, where).to_pydict()
    todo: dict[str, str] = {}
    # Files of trust.never_send are searchable by their words but never leave the machine
    # for an embedding server: their chunks get no vectors.
    never_send = IgnoreRules(config.trust.never_send, source="trust.never_send")
    for h, path, symbol, text in zip(
        subset["content_hash"], subset["path"], subset["symbol"], subset["text"], strict=True
    ):
        if h not in cached and not never_send.decide(path):
            todo.setdefault(h, embedding_input(path, symbol, text))
    return list(todo.items())


def embedding_meta(config: Config, embedder: Embedder | None) -> dict[str, str]:
    """Which provider (and model, and vector size) the stored vectors come from."""
    meta = {"embedding_provider": config.embedding.provider}
    if embedder is not None:
        meta["embedding_model"] = embedder.model_id
        meta["embedding_dim"] = str(embedder.dim)
        meta[EMBEDDING_INPUT] = embedding_form(config)
    return meta


def embedding_progress(done: int, total: int, began: float) -> str:
    """ "embedded 224/1,630 chunks (25.1/s, about 56 s left)": embedding is the slow step on a CPU."""
    elapsed = max(time.perf_counter() - began, 1e-6)
    rate = done / elapsed
    left = (total - done) / rate if rate > 0 else 0.0
    eta = f"about {left:.0f} s left" if left < 120 else f"about {left / 60:.0f} min left"
    return f"embedded {done:,}/{total:,} chunks ({rate:.1f}/s, {eta if done < total else 'done'})"


def _pipelined(
    embedder: Embedder, parts: list[list[tuple[str, str]]], depth: int
) -> Iterator[tuple[list[tuple[str, str]], list[list[float]] | EmbeddingUnavailable]]:
    """Each part with its vectors (or why there are none), in order, with up to ``depth``
    requests in flight. The requests run on daemon threads: an interrupt (Ctrl-C) or a failure
    leaves the ones in flight behind instead of waiting for them, and nothing of theirs is
    written."""
    pending: deque[tuple[list[tuple[str, str]], Future[list[list[float]]]]] = deque()
    upcoming = iter(parts)
    while True:
        while len(pending) < max(1, depth) and (part := next(upcoming, None)) is not None:
            pending.append((part, _in_daemon(embedder.embed, [text for _, text in part])))
        if not pending:
            return
        part, future = pending.popleft()
        try:
            vectors = future.result()
        except EmbeddingUnavailable as exc:
            yield part, exc
            return
        yield part, vectors


def _in_daemon(
    function: Callable[[list[str]], list[list[float]]], texts: list[str]
) -> Future[list[list[float]]]:
    future: Future[list[list[float]]] = Future()

    def run() -> None:
        try:
            future.set_result(function(texts))
        except BaseException as exc:  # handed to the waiting thread, which raises it there
            future.set_exception(exc)

    threading.Thread(target=run, name="enclave-embed", daemon=True).start()
    return future
