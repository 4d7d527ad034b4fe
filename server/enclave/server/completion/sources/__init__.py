"""The sources of a completion's context pieces, each labelled with its path and reason:
``definitions`` (of the names near the cursor), ``imports`` (signatures of what the file
imports), ``recent`` (recently edited buffers) and ``similar`` (code like the lines before the
cursor); ``bindings``, ``symbols``, ``files`` and ``outline`` are what they read with.
"""

from __future__ import annotations

from enclave.server.types import ContextPiece

DEFINITION_REASON = "definition of"


def is_definition(piece: ContextPiece) -> bool:
    """A piece showing a definition (whole, or summarised), not signatures or other code."""
    return piece.reason.startswith(DEFINITION_REASON)
