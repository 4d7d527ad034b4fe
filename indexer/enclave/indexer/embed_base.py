"""What every embedder is (:class:`Embedder`) and raises when no vectors can be made
(:class:`EmbeddingUnavailable`); the providers are :mod:`enclave.indexer.embed` (the configured
one, and the local one) and :mod:`enclave.indexer.embed_served` (those that ask model servers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from enclave.errors import EnclaveError


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
