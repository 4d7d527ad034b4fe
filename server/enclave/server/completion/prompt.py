"""A completion's prompt: FIM (the model fills between ``prompt`` and Ollama's ``suffix``) when the
model has the ``insert`` capability, else a chat-style prompt (the file around a cursor marker)
with its system prompt. Rendered from admitted material only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from enclave.server.model.prompts import (
    CURSOR,
    DATA_RULE,
    GAP,
    RELATED,
    by_file,
    comment_prefix,
    data_block,
    part_block,
    render_files,
)
from enclave.server.trust import Admitted, Prompt
from enclave.server.types import ContextPiece


def fim_prompt(prefix: str, path: str, language: str, context: Sequence[ContextPiece]) -> str:
    """The FIM ``prompt`` (the suffix travels in Ollama's ``suffix`` field).

    Context goes first as comments, one block per file, so the model sees it as file text.
    """
    lead = comment_prefix(language)
    blocks = []
    for file, group in by_file(context):
        lines = [f"{lead}{file}"]
        for at, piece in enumerate(group):
            lines += [f"{lead}{GAP}"] if at else []
            lines += [f"{lead}{line}" for line in piece.text.rstrip("\n").splitlines()]
        blocks.append("\n".join(lines))
    header = "\n".join(blocks)
    file_line = f"{lead}{path}\n" if path else ""
    return (f"{header}\n\n" if header else "") + file_line + prefix


INSERT_AT = "Code to insert at"  # the chat-fill prompt's last line, before the cursor marker
AFTER_CURSOR = "The file after the cursor"
BEFORE_CURSOR = "The file up to the cursor"

COMPLETION_SYSTEM = (
    "You are a code completion engine. You are shown a file with the marker <CURSOR> where the "
    "user's cursor is. Reply with only the code to insert at <CURSOR>: no explanation, no "
    "markdown fences, no repetition of the code around the cursor. " + DATA_RULE
)


def chat_fill_prompt(
    prefix: str,
    suffix: str,
    path: str,
    language: str,
    context: Sequence[ContextPiece],
    *,
    multiline: bool,
    cache_friendly: bool = True,
) -> str:
    """The user prompt for models without FIM: context, then the file around the cursor.

    ``cache_friendly``: what changes least comes first and what changes with every keystroke
    last, so consecutive prompts share the longest beginning and the model reads only what is
    new: the context pieces, the text after the cursor (the same while the user types at one
    place), the text before the cursor (it grows at its end), then whether one line or more is
    wanted. Off, the file is one block after the request's shape (the layout before: the text
    after the cursor is read again at every keystroke).
    """
    parts = []
    if context:
        parts.append(RELATED + render_files(context))
    shape = "one or more lines" if multiline else "the rest of the current line only"
    name = path or "(unsaved)"
    where = f"Complete the {language or 'code'} file {name} at {CURSOR}"
    if not cache_friendly:
        file = data_block(name, 1, 1, prefix + CURSOR + suffix)
        parts.append(f"{where} with {shape}.\n{file}")
        parts.append(f"{INSERT_AT} {CURSOR}:")
        return "\n\n".join(parts)
    if suffix.strip():
        parts.append(f"{where}. {AFTER_CURSOR}:\n{part_block('after', CURSOR + suffix)}")
        parts.append(f"{BEFORE_CURSOR}:\n{part_block('before', prefix + CURSOR)}")
    else:
        parts.append(f"{where}. {BEFORE_CURSOR}:\n{part_block('before', prefix + CURSOR)}")
    parts.append(f"Write {shape}.\n{INSERT_AT} {CURSOR}:")
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class CompletionPrompt:
    """A completion's request, rendered for the model's kind: ``fim`` (the model fills between
    the prompt and Ollama's ``suffix``) or chat-style (a system prompt and the file around a
    cursor marker)."""

    prompt: Prompt
    fim: bool


def render(
    admitted: Admitted, capabilities: frozenset[str], language: str, *, multiline: bool,
    cache_friendly: bool,
) -> CompletionPrompt:  # fmt: skip
    """The prompt of a completion from its admitted prefix, suffix and pieces: FIM when the
    model has the ``insert`` capability, else chat-style. The audit log gets the cursor's line
    and each piece's lines."""
    head, tail = admitted.texts
    path = admitted.path or ""
    pieces = list(admitted.pieces)
    line = head.count("\n") + 1
    sources = [(path, line, line), *((p.path, p.start_line, p.end_line) for p in pieces)]
    if "insert" in capabilities:
        # An empty suffix makes Ollama's template fall back to chat (ollama/ollama#6932):
        # at the end of a file the suffix is the newline a file ends with.
        text = fim_prompt(head, path, language, pieces)
        fim = admitted.prompt(
            purpose="completion", sources=sources, prompt=text, suffix=tail or "\n"
        )
        return CompletionPrompt(fim, fim=True)
    text = chat_fill_prompt(
        head, tail, path, language, pieces, multiline=multiline, cache_friendly=cache_friendly
    )
    chat = admitted.prompt(
        purpose="completion", sources=sources, prompt=text, system=COMPLETION_SYSTEM
    )
    return CompletionPrompt(chat, fim=False)
