"""An update's embedding pass: embed every chunk whose text has no cached vector yet.

Runs after every file's rows are written (:mod:`enclave.indexer.writer`). Requests are pipelined
(the embedding server gets the next batches while the last one's vectors are written), every
batch's vectors are stored at once with the meta saying how many are still missing, and files of
``trust.never_send`` never leave the machine: their chunks get no vectors.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from itertools import accumulate

from enclave.config import Config
from enclave.indexer.embed import (
    Embedder,
    EmbeddingUnavailable,
    embedding_form,
    embedding_input,
)
from enclave.indexer.excludes import IgnoreRules
from enclave.indexer.results import IndexSummary, ProgressFn, Reason
from enclave.indexer.search import FUNCTION_KINDS, TYPE_KINDS
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
    groups = _texts_to_embed(store, config)
    if groups is None:
        return
    parts = _batches(groups, config.embedding.batch_size)
    # Ollama gets the next batches while the last one's vectors are written: the server is
    # never idle waiting for us (in-process models use every core already: one at a time).
    depth = config.embedding.concurrency if embedder.provider == "ollama" else 1
    began = time.perf_counter()
    report(0, len(groups), f"embedding {len(groups)} chunks")
    left = len(groups)
    for part, vectors in _pipelined(embedder, parts, depth):
        if isinstance(vectors, EmbeddingUnavailable):
            summary.semantic_off(
                Reason(f"{vectors.message} ({left} chunks left without vectors)", vectors.fix)
            )
            return
        still_ours()
        hashes = [h for h, inputs in part for _ in inputs]
        numbers = [n for _, inputs in part for n in range(len(inputs))]
        store.add_vectors(embedder.dim, hashes, vectors, numbers)
        left -= len(part)
        # After every batch: semantic search works on what is embedded so far, even if this
        # process is killed now, and the index says how much is still missing.
        store.set_meta({**embedding_meta(config, embedder), VECTORS_MISSING: str(left)})
        summary.embedded += len(part)
        report(
            summary.embedded,
            len(groups),
            embedding_progress(summary.embedded, len(groups), began),
        )
        if stop():
            summary.cancelled = True
            return


# A type's chunk (a class with its methods, up to the chunk size) holds definitions a query may
# describe on their own, and an embedding model reads the first few hundred tokens of a text
# (all-MiniLM-L6-v2: 256, about 1,000 characters of code): a method further down had no vector
# that saw it. Each definition directly inside a type's chunk that starts past INNER_FROM_CHARS
# gets a vector of its own (the chunk's ``part`` 1, 2, ...), and the chunk scores as the best of
# its vectors, the inner ones ranked as definitions. Measured with bench/quality.py on the tune
# half (docs/benchmarks.md): such methods were 8-15 % of the queries, and semantic search found
# almost none of them. A vector for every inner definition (from the class's second line on)
# lost on two tune corpora: the methods the chunk's own vector reads already, embedded again,
# outranked other files' functions; from 600, 1,000 and 1,500 characters, 1,000 gained most.
# A function's chunk gets the same: its nested functions, and in TypeScript the implementation
# after its overload signatures (8 % of rxjs's queries are such a definition; the tune half has
# few nested functions that deep and no TypeScript, and did not move).
INNER_FROM_CHARS = 1000
MAX_INNER_PARTS = 64  # inner definitions embedded on their own, per chunk


def _texts_to_embed(store: Store, config: Config) -> list[tuple[str, list[str]]] | None:
    """Each chunk text without a cached vector: (content hash, its embedding inputs: the chunk,
    then each definition deep inside it when it is a type's or a function's chunk); None when
    every chunk has its vectors."""
    cached = store.cached_hashes()
    hashes = set(store.columns("chunks", ["content_hash"]).column(0).to_pylist())
    missing = sorted(hashes - cached)
    if not missing:
        return None
    wanted = ["content_hash", "path", "kind", "symbol", "start_line", "text"]
    # A few missing texts (an incremental update) are fetched by hash; many are read in one go.
    where = in_clause("content_hash", missing) if len(missing) <= 1000 else None
    subset = store.columns("chunks", wanted, where).to_pydict()  # columns: no dict per row
    todo: dict[str, list[str]] = {}
    # Files of trust.never_send are searchable by their words but never leave the machine
    # for an embedding server: their chunks get no vectors.
    never_send = IgnoreRules(config.trust.never_send, source="trust.never_send")
    holders = {
        path
        for path, kind, h, text in zip(
            subset["path"], subset["kind"], subset["content_hash"], subset["text"], strict=True
        )
        if _holds_deep_definitions(kind, text) and h not in cached
    }
    inner = _definitions(store, holders) if holders else {}
    for h, path, kind, symbol, start, text in zip(*(subset[c] for c in wanted), strict=True):
        if h in cached or h in todo or never_send.decide(path):
            continue
        inputs = [embedding_input(path, symbol, text)]
        if _holds_deep_definitions(kind, text):
            inputs += _inner_inputs(path, start, text, inner.get(path, []))
            inputs += _implementation_input(path, symbol, text)
        todo[h] = inputs[: 1 + MAX_INNER_PARTS]
    return list(todo.items())


def _holds_deep_definitions(kind: str, text: str) -> bool:
    """A chunk that may hold definitions of its own past INNER_FROM_CHARS: a type's, or a
    function's (its nested functions, TypeScript's implementation after its overloads)."""
    return (kind in TYPE_KINDS or kind in FUNCTION_KINDS) and len(text) > INNER_FROM_CHARS


# The implementation of a TypeScript function after its overload signatures (one chunk: the
# chunker's ``_absorb_overloads``): ``export function pluck<T, R>(...properties) {``.
_IMPLEMENTATION = (
    r"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?function[ \t]*\*?[ \t]*{}(?![\w$])"
)


def _implementation_input(path: str, symbol: str, text: str) -> list[str]:
    """The embedding input of an overloaded function's implementation when it starts
    INNER_FROM_CHARS or more into its chunk: an rxjs operator's overloads (each with its own
    JSDoc) run to 2-3,000 characters, and the chunk's own vector read none of its body."""
    name = symbol.rsplit(".", 1)[-1]
    if not name or "function" not in text[INNER_FROM_CHARS:]:
        return []
    found = list(re.finditer(_IMPLEMENTATION.format(re.escape(name)), text, re.MULTILINE))
    if len(found) < 2 or found[-1].start() < INNER_FROM_CHARS:
        return []  # no overloads, or the chunk's own vector reads the implementation
    return [embedding_input(path, symbol, text[found[-1].start() :])]


def _definitions(store: Store, paths: set[str]) -> dict[str, list[tuple[int, int, str]]]:
    """(start line, end line, qualified name) of the definitions of ``paths``, in line order."""
    where = in_clause("path", sorted(paths)) if len(paths) <= 1000 else None
    columns = ["path", "start_line", "end_line", "qualified_name"]
    rows = store.columns("symbols", columns, where).to_pydict()
    found: dict[str, list[tuple[int, int, str]]] = {}
    for path, start, end, name in zip(*(rows[c] for c in columns), strict=True):
        if path in paths:
            found.setdefault(path, []).append((start, end, name))
    for definitions in found.values():
        definitions.sort()
    return found


def _inner_inputs(
    path: str, first: int, text: str, definitions: list[tuple[int, int, str]]
) -> list[str]:
    """The embedding inputs of the definitions directly inside a type's chunk (lines ``first``
    on of ``path``; not nested in another one) that start INNER_FROM_CHARS or more into it, each
    its own lines under its own header."""
    lines = text.split("\n")
    last = first + len(lines) - 1
    offsets = [0, *accumulate(len(line) + 1 for line in lines)]  # of each line in the text
    inputs: list[str] = []
    reached = first  # the last line of the definition seen before: a nested one is skipped
    for start, end, name in definitions:
        if start <= reached or start > last:
            continue
        end = min(end, last)
        reached = end
        if offsets[start - first] < INNER_FROM_CHARS:
            continue  # the chunk's own vector reads it
        inputs.append(
            embedding_input(path, name, "\n".join(lines[start - first : end - first + 1]))
        )
        if len(inputs) == MAX_INNER_PARTS:
            break
    return inputs


def _batches(groups: list[tuple[str, list[str]]], size: int) -> list[list[tuple[str, list[str]]]]:
    """Groups in batches of about ``size`` inputs; a chunk's inputs are never split, so a
    batch written means its chunks have all their vectors."""
    batches: list[list[tuple[str, list[str]]]] = []
    current: list[tuple[str, list[str]]] = []
    count = 0
    for group in groups:
        if current and count + len(group[1]) > size:
            batches.append(current)
            current, count = [], 0
        current.append(group)
        count += len(group[1])
    if current:
        batches.append(current)
    return batches


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
    embedder: Embedder, parts: list[list[tuple[str, list[str]]]], depth: int
) -> Iterator[tuple[list[tuple[str, list[str]]], list[list[float]] | EmbeddingUnavailable]]:
    """Each part with its vectors (or why there are none), in order, with up to ``depth``
    requests in flight. The requests run on daemon threads: an interrupt (Ctrl-C) or a failure
    leaves the ones in flight behind instead of waiting for them, and nothing of theirs is
    written."""
    pending: deque[tuple[list[tuple[str, list[str]]], Future[list[list[float]]]]] = deque()
    upcoming = iter(parts)
    while True:
        while len(pending) < max(1, depth) and (part := next(upcoming, None)) is not None:
            pending.append(
                (part, _in_daemon(embedder.embed, [text for _, inputs in part for text in inputs]))
            )
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
