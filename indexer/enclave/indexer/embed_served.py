"""The embedders that ask model servers: Ollama's ``/api/embed`` (:class:`OllamaEmbedder`) and an
OpenAI-compatible ``/v1/embeddings`` (:class:`OpenAIEmbedder`: a team's inference service, e.g.
vLLM), thin adapters over the one path to the model servers (:mod:`enclave.modelservers`).

They send ``ollama.headers`` with every request and share the model client's host health (one
record per host URL for the whole process: a host down for completions is skipped by the
embeddings too, and the reverse) for the servers of ``ollama.hosts``: one that refuses the
connection, breaks it, stays silent past its wait, answers 5xx, or answers something that is not
its API's JSON passes the batch to the next and is left alone for a back-off (counted from when it
failed); once the back-off is over it is probed (its model list, with
``embedding.query_timeout``'s wait) before it gets chunk text again. A 404 (the model is not on
that server) or a 503 (busy) asks the next server without marking it down. A redirect is never
followed (one line naming both hosts: the batch is not sent to the target).

Answers are bounded and checked: a batch while indexing may take ``embedding.timeout`` seconds,
the one query embedding of a search ``embedding.query_timeout`` (short, so a hung server turns
semantic search off for that query instead of holding it up); a server that is silent longer,
answers something that is not its API's JSON, or the wrong number or shape of vectors, raises
:class:`enclave.indexer.embed_base.EmbeddingUnavailable` with the reason and the fix.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from enclave.config import Config
from enclave.errors import one_line
from enclave.hosts import (
    RedirectRefused,
    display_url,
    model_urls,
    no_redirects,
    urls_setting,
    v1_base,
)
from enclave.indexer.embed_base import EmbeddingUnavailable, task_prefixes, with_prefix
from enclave.modelservers import (
    Fault,
    Fleet,
    Host,
    MissingHeader,
    failover,
    fault_of,
    ollama_client,
    server_headers,
)

log = logging.getLogger(__name__)


_R = TypeVar("_R")


class _BadVectors(ValueError):
    """A server answered vectors of the wrong number, size or value (a garbage host)."""


def _checked(embeddings: Sequence[Sequence[Any]], count: int) -> list[list[float]]:
    """``count`` finite vectors of one size, normalised; else :class:`_BadVectors`."""
    embeddings = [_pooled(v) for v in embeddings]
    sizes = {len(v) for v in embeddings}
    if len(embeddings) != count or len(sizes) != 1 or 0 in sizes:
        raise _BadVectors(f"{len(embeddings)} vectors of sizes {sorted(sizes)} for {count} texts")
    if not all(math.isfinite(x) for v in embeddings for x in v):
        raise _BadVectors("vectors with NaN or infinite numbers")
    return [_normalise(v) for v in embeddings]


def _headers(config: Config) -> dict[str, str]:
    try:
        return server_headers(config)
    except MissingHeader as exc:
        raise EmbeddingUnavailable(exc.message, exc.fix) from None


def _pooled(vector: Sequence[Any]) -> Sequence[float]:
    """One vector for a text. A server that answers one vector per token (llama-cpp-python's
    server, for a model whose GGUF names no pooling) gets them averaged, as llama.cpp's
    ``--pooling mean`` does."""
    if not vector or not all(isinstance(token, list | tuple) for token in vector):
        return vector
    width = len(vector[0])
    if width == 0 or any(len(token) != width for token in vector):
        raise _BadVectors(f"token vectors of sizes {sorted({len(t) for t in vector})}")
    return [sum(column) / len(vector) for column in zip(*vector, strict=True)]


def _numbers(vector: Sequence[Any]) -> list[float]:
    return [float(x) for x in vector]


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class _ServedEmbedder:
    """What the embedders that ask model servers share: the servers, a client per server for
    each kind of wait (a batch while indexing, or a search's query), the servers that failed
    lately, the audit log and the vectors' size."""

    provider = ""
    request = ""  # what one request is called in messages

    def __init__(
        self, config: Config, client: Callable[[str, Any, dict[str, str], dict[str, Any]], Any]
    ) -> None:
        """``client(host, timeout, headers, settings)`` makes one server's client (``headers``:
        ``ollama.headers``; ``settings``: more httpx client settings, the refusal of
        redirects)."""
        import httpx

        self.model = config.embedding.model
        self._prefixes = task_prefixes(config)
        self.hosts = list(model_urls(config, embedding=True))
        headers = _headers(config)
        self.host = ", ".join(display_url(h) for h in self.hosts)
        # (seconds, setting) per kind of request: a batch while indexing, or a search's query.
        self._waits = {
            False: (config.embedding.timeout, "embedding.timeout"),
            True: (config.embedding.query_timeout, "embedding.query_timeout"),
        }
        refuse = no_redirects(
            RedirectRefused,
            config.trust.allowed_hosts,
            asynchronous=False,
            setting=urls_setting(config, embedding=True),
            what="the embedding server",
        )
        # httpx has no overall deadline: the read timeout bounds how long a server may stay
        # silent, which for an embedding request (one JSON body once the vectors are made) is
        # the whole answer. One client per kind of wait, per server.
        self.fleet = Fleet([Host(url, display_url(url)) for url in self.hosts])
        for host in self.fleet.hosts:
            host.backend = {
                query: client(
                    host.url,
                    httpx.Timeout(wait, connect=min(wait, config.ollama.connect_timeout)),
                    headers,
                    refuse,
                )
                for query, (wait, _) in self._waits.items()
            }
        self._lock = threading.Lock()
        self._dim = 0
        from enclave.audit import AuditLog

        self._audit = AuditLog(config)  # every request's record (purpose "embedding")

    @property
    def model_id(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def dim(self) -> int:
        if not self._dim:
            self.probe()
        return self._dim

    def probe(self, *, query: bool = False) -> int:
        """Embed a probe text (with the wait of a query, or of a batch); the vectors' size."""
        self._dim = len(self.embed(["dimension probe"], query=query)[0])
        return self._dim

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        """Unit vectors for ``texts`` from the first server that answers (see module doc)."""
        if not texts:
            return []
        purpose = "query-embedding" if query else "embedding"
        asked = with_prefix(texts, self._prefixes, query=query)
        with self._audit.request(purpose, self.model, "\n".join(asked)) as audited:
            audited.prompt_tokens, vectors = self._ask(
                lambda client: self._embed_on(client, asked), query=query, batch=len(texts)
            )
        self._dim = len(vectors[0])
        return vectors

    def _ask(self, call: Callable[[Any], _R], *, query: bool, batch: int = 0) -> _R:
        """``call`` on the first server that answers; its failure as EmbeddingUnavailable."""
        try:
            return self._first_answer(call, query=query)
        except Exception as exc:
            raise self._unavailable(exc, query=query, batch=batch) from None

    def _embed_on(self, client: Any, texts: list[str]) -> tuple[int, list[list[float]]]:
        """One server's vectors for ``texts`` (checked), and the prompt tokens it counted."""
        raise NotImplementedError

    def _health(self, client: Any) -> None:
        """A cheap request (the server's model list) that a healthy server answers at once."""
        raise NotImplementedError

    def _unavailable(self, exc: Exception, *, query: bool, batch: int) -> EmbeddingUnavailable:
        """What a failed request means for semantic search, with the fix: the fault as
        :func:`enclave.modelservers.fault_of` tells it apart, in this API's words."""
        if isinstance(exc, EmbeddingUnavailable):
            return exc
        if isinstance(exc, RedirectRefused):  # a redirect that was not followed
            return EmbeddingUnavailable(exc.message, exc.fix)
        if isinstance(exc, _BadVectors):
            return self._malformed(str(exc))
        fault = fault_of(exc)
        if fault.kind == "unreachable":
            return self._unreachable()
        if fault.kind == "timeout":
            return self._silent(query, batch)
        if fault.kind == "status":
            return self._status(fault)
        if fault.kind == "malformed":
            return self._malformed(f"{type(exc).__name__}: {one_line(exc, 100)}")
        return self._failed(exc)

    # this API's words for each fault
    def _unreachable(self) -> EmbeddingUnavailable:
        raise NotImplementedError

    def _silent(self, query: bool, batch: int) -> EmbeddingUnavailable:
        raise NotImplementedError

    def _status(self, fault: Fault) -> EmbeddingUnavailable:
        raise NotImplementedError

    def _malformed(self, detail: str) -> EmbeddingUnavailable:
        raise NotImplementedError

    def _failed(self, exc: Exception) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"{self.request} failed: {type(exc).__name__}: {one_line(exc)}",
            "check `enclave doctor`",
        )

    def _probe(self, host: Host) -> Exception | None:
        """Ask ``host`` a cheap question before it gets chunk text again; what it failed with."""
        try:
            self._health(host.backend[True])
        except Exception as exc:
            with self._lock:
                self.fleet.failed(host, f"{type(exc).__name__}: {one_line(exc, 100)}")
            return exc
        with self._lock:
            self.fleet.answered(host)
        return None

    def _first_answer(self, call: Callable[[Any], _R], *, query: bool) -> _R:
        """``call`` with the servers' clients (a query's or a batch's) in the fleet's order until
        one answers (see module doc); the last failure is raised when none does."""
        fleet = len(self.fleet.hosts) > 1
        error: Exception | None = None
        with self._lock:  # batches are embedded from several threads at once
            pending = self.fleet.order()
        deferred: set[int] = set()
        while pending:
            host = pending.pop(0)
            with self._lock:
                state = self.fleet.state(host)
                # failed meanwhile (another batch found it down): the others first
                if (
                    state == "down"
                    and id(host) not in deferred
                    and any(self.fleet.state(h) != "down" for h in pending)
                ):
                    deferred.add(id(host))
                    pending.append(host)
                    continue
            if fleet and state == "due":  # its back-off is over: a cheap probe first
                failed = self._probe(host)
                if failed is not None:
                    error = error or failed
                    continue
            with self._lock:
                host.in_flight += 1  # the least busy server gets the next batch
            try:
                result = call(host.backend[query])
            except Exception as exc:
                reason = failover(exc)
                if reason == "down":
                    with self._lock:
                        self.fleet.failed(host, f"{type(exc).__name__}: {one_line(exc, 100)}")
                if not reason or not fleet:
                    raise
                log.warning(
                    "embedding server %s did not take the request (%s: %s); trying the next",
                    host.name,
                    type(exc).__name__,
                    one_line(exc, 100),
                )
                # a refusal by one server says less than an answer by another (404)
                if error is None or reason != "down" or failover(error) == "down":
                    error = exc
                continue
            finally:
                with self._lock:
                    host.in_flight -= 1
            with self._lock:
                self.fleet.answered(host)
            return result
        assert error is not None
        raise error


class OllamaEmbedder(_ServedEmbedder):
    """``POST /api/embed`` of Ollama."""

    provider = "ollama"
    request = "Ollama embedding request"

    def __init__(self, config: Config) -> None:
        import ollama

        super().__init__(
            config,
            lambda host, timeout, headers, http: ollama_client(
                ollama.Client, host, headers, timeout=timeout, **http
            ),
        )
        self._keep_alive = config.ollama.keep_alive

    def _health(self, client: Any) -> None:
        client.list()

    def _embed_on(self, client: Any, texts: list[str]) -> tuple[int, list[list[float]]]:
        response = client.embed(
            model=self.model, input=texts, keep_alive=self._keep_alive, truncate=True
        )
        return response.prompt_eval_count or 0, _checked(response.embeddings, len(texts))

    def check(self) -> None:
        """Can this model embed, now? Asks `/api/show` (with a query's wait): nothing is loaded."""
        info = self._ask(lambda c: c.show(self.model), query=True)
        capabilities = list(getattr(info, "capabilities", None) or [])
        if capabilities and "embedding" not in capabilities:  # older servers list none
            raise EmbeddingUnavailable(
                f"model '{self.model}' cannot make embeddings (it can: {', '.join(capabilities)})",
                "set embedding.model to an embedding model such as nomic-embed-text",
            )

    def _unreachable(self) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"Ollama is not reachable at {self.host}",
            "start it with `ollama serve` (or set OLLAMA_HOST), then run `enclave index` again",
        )

    def _silent(self, query: bool, batch: int) -> EmbeddingUnavailable:
        wait, setting = self._waits[query]
        if query:
            what = "embed the query" if batch else "answer a check of the embedding model"
            return EmbeddingUnavailable(
                f"Ollama at {self.host} did not {what} within {wait:g} s ({setting})",
                "check that Ollama is healthy (`enclave doctor`); if it is only slow (the "
                "first query after the embedding model was unloaded loads it), raise "
                f"{setting}",
            )
        return EmbeddingUnavailable(
            f"Ollama at {self.host} did not embed a batch of {batch} chunks within "
            f"{wait:g} s ({setting})",
            "check that Ollama is healthy (`enclave doctor`); if it is only slow, raise "
            f"{setting} or lower embedding.batch_size, then run `enclave index` again",
        )

    def _status(self, fault: Fault) -> EmbeddingUnavailable:
        if fault.status == 404:
            return EmbeddingUnavailable(
                f"embedding model '{self.model}' is not pulled",
                f"run `ollama pull {self.model}`, then `enclave index` again",
            )
        if fault.runner_failed:
            return EmbeddingUnavailable(
                f"Ollama's runner for '{self.model}' failed while embedding: "
                f"{one_line(fault.error)} (HTTP {fault.status})",
                "check the Ollama server log (a crash or out of memory); `enclave index` goes on "
                "from where it stopped. With several servers in ollama.hosts the batch is "
                "tried on the next",
            )
        if fault.status == 400 and "embed" in fault.error.lower():
            return EmbeddingUnavailable(
                f"model '{self.model}' cannot make embeddings ({fault.error})",
                "set embedding.model to an embedding model such as nomic-embed-text",
            )
        return EmbeddingUnavailable(
            f"Ollama failed to embed with '{self.model}': {one_line(fault.error)} "
            f"(HTTP {fault.status})",
            "check `enclave doctor`",
        )

    def _malformed(self, detail: str) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"Ollama at {self.host} answered the embedding request with something that is not "
            f"Ollama's embedding JSON ({detail})",
            "check that ollama.host (or OLLAMA_HOST) points at an Ollama server and not at a "
            "proxy or another service (`enclave doctor`), then run `enclave index` again",
        )


class OpenAIEmbedder(_ServedEmbedder):
    """``POST /v1/embeddings`` of an OpenAI-compatible server (vLLM, llama.cpp, Ollama's /v1)."""

    provider = "openai"
    request = "embedding request"

    def __init__(self, config: Config) -> None:
        import httpx

        super().__init__(
            config,
            lambda host, timeout, headers, http: httpx.Client(
                base_url=v1_base(host),
                headers={"Accept": "application/json", **headers},
                timeout=timeout,
                **http,
            ),
        )

    def _health(self, client: Any) -> None:
        _get_json(client, "models")

    def _post(self, client: Any, texts: list[str]) -> Any:
        response = client.post("embeddings", json={"model": self.model, "input": texts})
        response.raise_for_status()
        return response.json()

    def _embed_on(self, client: Any, texts: list[str]) -> tuple[int, list[list[float]]]:
        body = self._post(client, texts)
        try:
            rows = sorted(body["data"], key=lambda row: int(row.get("index", 0)))
            embeddings = [_numbers(_pooled(row["embedding"])) for row in rows]
            tokens = int((body.get("usage") or {}).get("prompt_tokens") or 0)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _BadVectors(f"{type(exc).__name__}: {one_line(exc, 100)}") from None
        return tokens, _checked(embeddings, len(texts))

    def check(self) -> None:
        """Is the model served? Asks ``GET /v1/models`` (with a query's wait)."""
        listed = self._ask(lambda c: _get_json(c, "models"), query=True)
        try:
            ids = {str(m["id"]) for m in listed["data"]}
        except (KeyError, TypeError) as exc:
            raise self._malformed(f"{type(exc).__name__}: {one_line(exc, 100)}") from None
        if ids and self.model not in ids and f"{self.model}:latest" not in ids:
            raise EmbeddingUnavailable(
                f"embedding model '{self.model}' is not served at {self.host}",
                f"set embedding.model to one the server lists ({', '.join(sorted(ids)[:5])})",
            )

    def _unreachable(self) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"the embedding server is not reachable at {self.host}",
            "check that it runs (embedding.url, or ollama.hosts), then run `enclave index` again",
        )

    def _silent(self, query: bool, batch: int) -> EmbeddingUnavailable:
        wait, setting = self._waits[query]
        what = f"embed a batch of {batch} texts" if batch else "answer"
        return EmbeddingUnavailable(
            f"the embedding server at {self.host} did not {what} within {wait:g} s ({setting})",
            f"check that it is healthy; if it is only slow, raise {setting}",
        )

    def _status(self, fault: Fault) -> EmbeddingUnavailable:
        status, detail = fault.status, fault.error
        if status in (401, 403):
            return EmbeddingUnavailable(
                f"the embedding server at {self.host} refused the request (HTTP {status})",
                "check the credentials in ollama.headers (and the variables they name)",
            )
        if status == 404:
            return EmbeddingUnavailable(
                f"embedding model '{self.model}' is not served at {self.host} ({detail})",
                "set embedding.model to a model the server serves",
            )
        return EmbeddingUnavailable(
            f"the embedding server failed to embed with '{self.model}': {detail} (HTTP {status})",
            "check `enclave doctor` and the server's log",
        )

    def _malformed(self, detail: str) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"the embedding server at {self.host} answered with something that is not the "
            f"OpenAI embeddings JSON ({detail})",
            "check that embedding.url (or ollama.hosts) points at an OpenAI-compatible server "
            "and not at another service, then run `enclave index` again",
        )


def _get_json(client: Any, path: str) -> Any:
    response = client.get(path)
    response.raise_for_status()
    return response.json()
