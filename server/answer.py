"""Ask and explain: retrieve repository context, stream the model's answer, cite what was used.

Used by both the CLI (`enclave ask`, `enclave explain`) and the language server. Knows nothing of
LSP or terminals: progress goes to ``on_event`` callbacks, the result is an :class:`Answer`.
The index may be missing or broken; then the answer is built from what the user gave alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from enclave.glossary import FILES as GLOSSARY_FILES
from enclave.glossary import load_glossary
from enclave.indexer.api import Index, IndexProblem
from enclave.indexer.types import SearchHit
from enclave.server.model import prompts
from enclave.server.model.budget import fit_pieces, keep_head, overlaps
from enclave.server.model.client import ModelClient
from enclave.server.trust import Admitted, Material
from enclave.server.types import Citation, ContextPiece

log = logging.getLogger(__name__)

ASK_HITS = 8
ASK_CANDIDATES = 24  # searched for, so that a cap per file and demoted history still leave ASK_HITS
PER_FILE = 2  # sources from one file at most: one long file must not be the whole answer
# Changelogs, release notes and "what's new" pages answer questions about history; for any other
# question they only echo the words of the code they describe.
_HISTORY_FILE = re.compile(
    r"(^|/)(change[s_-]?log|changes|history|news|release[s_-]?notes?|whats[_-]?new)[^/]*$"
    r"|(^|/)(changelog|changes|releases?|whatsnew|release-notes)/",
    re.IGNORECASE,
)
_HISTORY_QUESTION = re.compile(
    r"\b(change ?log|changed|changes|history|histor(y|ical)|release[sd]?|version|since|"
    r"deprecat\w*|added|removed|new in|what'?s new|when did|migrat\w*|upgrade\w*)\b",
    re.IGNORECASE,
)
EXPLAIN_DEFINITIONS = 5
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_REF = re.compile(r"\[(\d{1,2})\]")
_COMMON = {
    "self", "cls", "None", "True", "False", "return", "def", "class", "import", "from", "for",
    "while", "with", "not", "and", "else", "elif", "try", "except", "finally", "raise", "lambda",
    "yield", "async", "await", "pass", "const", "let", "var", "function", "this", "new", "int",
    "str", "bool", "float", "string", "void", "public", "private", "static", "func", "type",
    "print", "len", "list", "dict", "set", "tuple", "range", "err", "nil", "null", "true", "false",
}  # fmt: skip


@dataclass(frozen=True)
class AnswerEvent:
    thinking: str = ""
    markdown: str = ""


@dataclass
class Answer:
    markdown: str
    thinking: str
    citations: list[Citation] = field(default_factory=list)
    model: str = ""
    # What limited the answer's context (no index, semantic search off, nothing matched, a cut
    # selection): shown to the user with the answer, never swallowed.
    notes: list[str] = field(default_factory=list)


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


async def _index_call(
    index: Index | None, notes: list[str], method: str, *args: Any, **kwargs: Any
) -> Any:
    """Call a (blocking) index method off the event loop; None (and a note) if it cannot answer."""
    if index is None:
        _note(notes, "no index for this repository: answered without repository context")
        return None
    try:
        return await asyncio.to_thread(getattr(index, method), *args, **kwargs)
    except IndexProblem as exc:  # the answer still works without repository context
        log.warning("index %s failed, answering without that context: %s", method, exc)
        _note(notes, f"the index could not be read ({exc}): answered without that context")
        return None


def _admit(client: ModelClient, material: Material, notes: list[str]) -> Admitted:
    """Pass the trust boundary (raises Refused for a file that must not be sent)."""
    sealed = client.admit(material)
    if sealed.dropped:
        _note(notes, f"{len(sealed.dropped)} context piece(s) left out: never sent to a model")
    return sealed


def _glossary(client: ModelClient, sealed: Admitted) -> list[tuple[str, str]]:
    """The project glossary's terms that occur in the question or the code sent (the glossary
    files themselves, when search found them, do not count)."""
    texts = [*sealed.texts, *(p.text for p in sealed.pieces if p.path not in GLOSSARY_FILES)]
    glossary = load_glossary(client.config.root, pii=client.config.trust.redact_pii)
    return [(t.term, t.definition) for t in glossary.relevant(texts)]


def _fit(client: ModelClient, pieces: Sequence[ContextPiece], budget: int) -> list[ContextPiece]:
    est = client.estimator(client.config.ollama.chat_model)
    return fit_pieces(pieces, budget, est)[0]


def _citations(markdown: str, pieces: Sequence[ContextPiece]) -> list[Citation]:
    """The pieces the answer refers to as [n]; all pieces sent if it names none."""
    referenced = {int(n) for n in _REF.findall(markdown)}
    chosen = [p for i, p in enumerate(pieces, 1) if i in referenced] or list(pieces)
    return [Citation(p.path, p.start_line, p.end_line, p.symbol) for p in chosen]


async def _stream(
    client: ModelClient,
    messages: list[dict[str, str]],
    on_event: Callable[[AnswerEvent], None] | None,
    purpose: str,
    sent: Sequence[ContextPiece],
) -> tuple[str, str]:
    markdown: list[str] = []
    thinking: list[str] = []
    sources = [(p.path, p.start_line, p.end_line) for p in sent]  # for the audit log
    stream = client.chat(messages, purpose=purpose, sources=sources)
    try:
        async for delta in stream:
            thinking.append(delta.thinking)
            markdown.append(delta.content)
            if on_event is not None:
                on_event(AnswerEvent(delta.thinking, delta.content))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(markdown).strip(), "".join(thinking).strip()


async def ask(
    index: Index | None,
    client: ModelClient,
    question: str,
    *,
    path: str | None = None,
    start_line: int | None = None,
    end_line: int | None = None,
    on_event: Callable[[AnswerEvent], None] | None = None,
) -> Answer:
    """Answer ``question`` about the repository (optionally about a file region)."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty: write what you want to know")
    if path:
        client.admit(Material(path, ()))  # refused before anything is gathered
    pieces: list[ContextPiece] = []
    notes: list[str] = []
    if path and start_line:
        chunk = await _index_call(index, notes, "chunk_at", path, start_line)
        if chunk is not None:
            pieces.append(
                ContextPiece(
                    chunk.path, chunk.start_line, chunk.end_line, chunk.text,
                    "the code the question is about", chunk.symbol,
                )
            )  # fmt: skip
    found = await _index_call(index, notes, "search", question, k=ASK_CANDIDATES, mode="hybrid")
    hits = answer_sources(found.hits if found is not None else [], question)
    if found is not None:
        if found.semantic_off is not None:
            _note(notes, f"{found.semantic_off.message} (context from lexical matches only)")
        if not hits:
            _note(notes, "nothing in the index matched the question: no repository context")
    for hit in hits:
        if hit.path in GLOSSARY_FILES:  # the glossary reaches prompts only as relevant terms
            continue
        pieces.append(
            ContextPiece(
                hit.path, hit.start_line, hit.end_line, hit.text,
                "matches the question", hit.symbol, hit.score,
            )
        )  # fmt: skip
    used = _fit(client, pieces, client.config.chat.context_tokens)
    sealed = _admit(client, Material(path, (question,), tuple(used)), notes)
    terms = _glossary(client, sealed)
    messages = prompts.ask_messages(sealed.texts[0], sealed.pieces, terms)
    markdown, thinking = await _stream(client, messages, on_event, "ask", sealed.pieces)
    citations = _citations(markdown, sealed.pieces)
    return Answer(markdown, thinking, citations, client.config.ollama.chat_model, notes)


def answer_sources(hits: Sequence[SearchHit], question: str, k: int = ASK_HITS) -> list[SearchHit]:
    """The ``k`` search hits an answer uses: at most PER_FILE from one file, and changelogs or
    release notes after the code and reference docs unless the question is about history."""
    about_history = _HISTORY_QUESTION.search(question) is not None
    per_file: Counter[str] = Counter()
    kept: list[SearchHit] = []
    for hit in hits:
        if per_file[hit.path] < PER_FILE:
            per_file[hit.path] += 1
            kept.append(hit)
    if not about_history:
        kept.sort(key=lambda hit: _HISTORY_FILE.search(hit.path) is not None)  # stable
    return kept[:k]


def _names(text: str) -> list[str]:
    counts = Counter(n for n in _IDENT.findall(text) if n not in _COMMON)
    return [name for name, _ in counts.most_common(20)]


async def explain(
    index: Index | None,
    client: ModelClient,
    *,
    path: str,
    text: str,
    start_line: int,
    end_line: int,
    on_event: Callable[[AnswerEvent], None] | None = None,
) -> Answer:
    """Explain lines ``start_line``-``end_line`` of ``path`` (their ``text`` as the user sees it)."""
    if not text.strip():
        raise ValueError(f"{path}:{start_line}-{end_line} is empty: select some code to explain")
    client.admit(Material(path, ()))  # a file that must never be sent is refused before anything
    chat = client.config.chat
    est = client.estimator(client.config.ollama.chat_model)
    room = chat.num_ctx - chat.max_tokens - 400  # system prompt, instructions, template
    selection = keep_head(text, max(room - chat.context_tokens // 2, 64), est)
    notes: list[str] = []
    if selection != text:
        shown = start_line + selection.count("\n") - 1
        log.warning("selection cut to lines %d-%d to fit chat.num_ctx", start_line, shown)
        _note(notes, f"only lines {start_line}-{shown} were explained: raise chat.num_ctx for more")
        end_line = max(start_line, shown)
    selected = ContextPiece(path, start_line, end_line, selection, "the selected code")
    defs = await _index_call(index, notes, "definitions", _names(selection), limit=20) or []
    pieces: list[ContextPiece] = []
    for d in defs:
        piece = ContextPiece(
            d.path, d.start_line, d.end_line, "", f"definition of `{d.name}`", d.qualified_name
        )
        if overlaps(piece, selected) or any(overlaps(piece, p) for p in pieces):
            continue
        chunk = await _index_call(index, notes, "chunk_at", d.path, d.start_line)
        if chunk is not None:
            pieces.append(
                ContextPiece(
                    chunk.path, chunk.start_line, chunk.end_line, chunk.text,
                    piece.reason, d.qualified_name,
                )
            )  # fmt: skip
        if len(pieces) >= EXPLAIN_DEFINITIONS:
            break
    budget = min(chat.context_tokens, room - est.count(selection))
    used = _fit(client, pieces, max(budget, 0))
    sealed = _admit(client, Material(path, (selection,), tuple(used)), notes)
    terms = _glossary(client, sealed)
    messages = prompts.explain_messages(
        path, start_line, end_line, sealed.texts[0], sealed.pieces, terms
    )
    sent = [selected, *sealed.pieces]
    markdown, thinking = await _stream(client, messages, on_event, "explain", sent)
    citations = [Citation(path, start_line, end_line)]
    citations += _citations(markdown, sealed.pieces) if sealed.pieces else []
    return Answer(markdown, thinking, citations, client.config.ollama.chat_model, notes)
