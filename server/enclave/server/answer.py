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
from dataclasses import dataclass, field, replace
from typing import Any

from enclave.glossary import FILES as GLOSSARY_FILES
from enclave.glossary import load_glossary
from enclave.indexer.api import Index, IndexProblem
from enclave.indexer.types import SearchHit, SymbolDef
from enclave.server.completion.sources.bindings import class_bases, receiver_types, references
from enclave.server.model import prompts
from enclave.server.model.budget import fit_pieces, keep_head, overlaps
from enclave.server.model.client import ModelClient
from enclave.server.trust import Admitted, Boundary, Material, Prompt
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


ANSWER_OVERHEAD = 400  # tokens of the system prompt, instructions and template of an answer
THINKING_STOPPED = (
    "the model's thinking reached chat.thinkTokens ({budget}) and was stopped there; it answered "
    "from its reasoning so far (raise chat.thinkTokens for a longer think)"
)


@dataclass(frozen=True)
class Cut:
    """The model stopped at ``chat.max_tokens`` (Ollama's ``done_reason: "length"``). Thinking
    has a budget of its own (``chat.think_tokens``); without one (0), or with a model that thinks
    when told not to, the limit covers thinking and answer together, so a long think can leave
    the answer short or empty."""

    max_tokens: int
    answered: bool  # some answer text came before the cut
    thought: bool  # the model thought (and so spent part of the budget on it)

    def message(self, raise_how: str, think_off: str = "chat.think = false") -> str:
        """One line: what happened and the fix; ``raise_how`` and ``think_off`` say how to
        change the settings where the line is shown (command line, editor)."""
        limit = f"chat.maxTokens ({self.max_tokens})"
        if not self.answered and self.thought:
            return (
                f"no answer: the model's thinking used all of {limit} before it answered; "
                f"raise it ({raise_how}) or turn thinking off ({think_off})"
            )
        if not self.answered:
            return f"no answer: cut at {limit}; raise it ({raise_how})"
        return f"answer cut at {limit}; raise it ({raise_how})"


@dataclass
class Answer:
    markdown: str
    thinking: str
    citations: list[Citation] = field(default_factory=list)
    model: str = ""
    # What limited the answer's context (no index, semantic search off, nothing matched, a cut
    # selection): shown to the user with the answer, never swallowed.
    notes: list[str] = field(default_factory=list)
    # Why the model stopped (Ollama's done_reason: "stop", "length"); "" if it did not say.
    done_reason: str = ""
    cut: Cut | None = None  # set when done_reason is "length": shown with its fix, never silent


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


def _admit(
    client: ModelClient, material: Material, notes: list[str]
) -> tuple[Admitted, list[tuple[str, str]]]:
    """Pass the trust boundary, once, with the project glossary's terms that occur in the
    question or the code sent (raises Refused for a file that must not be sent). The admitted
    texts are the material's, then each term and its definition."""
    boundary = client.boundary
    texts = [*material.texts, *(p.text for p in material.pieces if _sendable(boundary, p))]
    glossary = load_glossary(client.config.root, pii=client.config.trust.redact_pii)
    terms = [(t.term, t.definition) for t in glossary.relevant(texts)]
    words = tuple(text for term in terms for text in term)
    sealed = boundary.admit(replace(material, texts=material.texts + words))
    if sealed.dropped:
        _note(notes, f"{len(sealed.dropped)} context piece(s) left out: never sent to a model")
    admitted = sealed.texts[len(material.texts) :]
    return sealed, list(zip(admitted[::2], admitted[1::2], strict=True))


def _sendable(boundary: Boundary, piece: ContextPiece) -> bool:
    """A piece the boundary will admit, and not the glossary itself (when search found it)."""
    return piece.path not in GLOSSARY_FILES and boundary.why_not_sent(piece.path) is None


def _fit(client: ModelClient, pieces: Sequence[ContextPiece], budget: int) -> list[ContextPiece]:
    est = client.estimator(client.config.ollama.chat_model)
    return fit_pieces(pieces, budget, est)[0]


def _context_budget(client: ModelClient, question: str) -> int:
    """Tokens of repository context a question may send: ``chat.context_tokens``, or less when
    ``chat.num_ctx`` (held to the server's window) leaves less after the answer."""
    chat = client.config.chat
    asked = client.estimator(client.config.ollama.chat_model).count(question)
    return max(
        0, min(chat.context_tokens, chat.num_ctx - chat.max_tokens - ANSWER_OVERHEAD - asked)
    )


def _citations(markdown: str, pieces: Sequence[ContextPiece]) -> list[Citation]:
    """The pieces the answer refers to as [n]; all pieces sent if it names none."""
    referenced = {int(n) for n in _REF.findall(markdown)}
    chosen = [p for i, p in enumerate(pieces, 1) if i in referenced] or list(pieces)
    return [Citation(p.path, p.start_line, p.end_line, p.symbol) for p in chosen]


def _prompt(
    sealed: Admitted, messages: list[dict[str, str]], purpose: str, sent: Sequence[ContextPiece]
) -> Prompt:
    """The chat the model receives, rendered from ``sealed``; the audit log gets ``purpose``
    and the lines of the pieces ``sent``."""
    sources = [(p.path, p.start_line, p.end_line) for p in sent]
    return sealed.prompt(purpose=purpose, sources=sources, messages=messages)


async def _stream(
    client: ModelClient,
    prompt: Prompt,
    on_event: Callable[[AnswerEvent], None] | None,
    notes: list[str],
) -> tuple[str, str, str]:
    """(markdown, thinking, done_reason) of one streamed answer; a thinking budget reached
    goes to ``notes``."""
    markdown: list[str] = []
    thinking: list[str] = []
    done_reason = ""
    stream = client.chat(prompt)
    try:
        async for delta in stream:
            thinking.append(delta.thinking)
            markdown.append(delta.content)
            done_reason = delta.done_reason or done_reason
            if delta.thinking_stopped:
                _note(notes, THINKING_STOPPED.format(budget=delta.thinking_stopped))
            if on_event is not None and (delta.thinking or delta.content):
                on_event(AnswerEvent(delta.thinking, delta.content))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(markdown).strip(), "".join(thinking).strip(), done_reason


def _answer(
    client: ModelClient,
    streamed: tuple[str, str, str],
    citations: list[Citation],
    notes: list[str],
) -> Answer:
    markdown, thinking, done_reason = streamed
    cut = None
    if done_reason == "length":
        cut = Cut(client.config.chat.max_tokens, bool(markdown), bool(thinking))
        log.warning("the answer was cut at chat.max_tokens (%d)", cut.max_tokens)
    return Answer(
        markdown, thinking, citations, client.config.ollama.chat_model, notes, done_reason, cut
    )


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
        client.boundary.check(path)  # refused before anything is gathered
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
    # the documentation sections found beside a definition, after all the code, as room allows
    pieces += [
        ContextPiece(
            doc.path, doc.start_line, doc.end_line, doc.text,
            f"documentation of `{hit.symbol}`", doc.symbol, doc.score,
        )
        for hit in hits
        for doc in hit.docs
        if doc.path not in GLOSSARY_FILES
    ]  # fmt: skip
    used = _fit(client, pieces, _context_budget(client, question))
    sealed, terms = _admit(client, Material(path, (question,), tuple(used)), notes)
    messages = prompts.ask_messages(sealed.texts[0], sealed.pieces, terms)
    prompt = _prompt(sealed, messages, "ask", sealed.pieces)
    streamed = await _stream(client, prompt, on_event, notes)
    return _answer(client, streamed, _citations(streamed[0], sealed.pieces), notes)


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


_CLASS_KINDS = {"class", "struct", "interface", "trait", "impl", "enum", "object", "record"}
_SELF = {"self", "this", "cls"}


def _enclosing_class(symbols: Sequence[SymbolDef], start_line: int) -> SymbolDef | None:
    around = [
        s for s in symbols if s.kind in _CLASS_KINDS and s.start_line <= start_line <= s.end_line
    ]
    return min(around, key=lambda s: s.end_line - s.start_line) if around else None


def wanted_definitions(
    selection: str, family: str, owner: SymbolDef | None
) -> tuple[list[str], set[str]]:
    """The definitions an explanation of ``selection`` should see, as names to look up: the
    qualified names of the methods it calls on a receiver it knows (``self.m`` in class C ->
    ``C.m``, ``super().m`` -> ``Base.m``, ``Shape.m``, ``x.m`` where ``x = Shape(...)``), then
    the bare names it uses. A method called on a receiver it cannot name brings nothing: a
    same-named method of some other class explains nothing. Returns (names in order, the
    qualified ones)."""
    refs = references(selection)
    cls = owner.qualified_name if owner is not None else ""
    bases = class_bases(owner.signature) if owner is not None else []
    types = receiver_types(selection, family)
    qualified: list[str] = []
    for receiver, member in refs.members:
        if receiver == "super()":
            owners = bases
        elif receiver in _SELF:
            owners = [cls, *bases] if cls else bases
        elif receiver in types:
            owners = [types[receiver].rsplit(".", 1)[-1]]
        elif receiver[:1].isupper():
            owners = [receiver]
        else:
            owners = []
        qualified += [f"{o}.{member}" for o in owners if o]
    bare = [n for n in (*bases, *refs.bare) if _IDENT.fullmatch(n) and n not in _COMMON]
    names = list(dict.fromkeys([*qualified, *bare]))[:24]
    return names, set(qualified)


def _best_files(defs: Sequence[SymbolDef], path: str, imports: Sequence[str]) -> list[SymbolDef]:
    """Of same-named definitions, those of the file itself, else of the files it imports, else
    all of them."""
    same = [d for d in defs if d.path == path]
    if same:
        return same
    tails = {i.strip(".").replace(".", "/").lstrip("/") for i in imports}
    imported = [d for d in defs if any(t and (d.path.rsplit(".", 1)[0].endswith(t)) for t in tails)]
    return imported or list(defs)


async def _definition_piece(
    index: Index | None, notes: list[str], d: SymbolDef, reason: str
) -> ContextPiece | None:
    """The lines of definition ``d``, labelled with its name, from the chunks that hold them (a
    chunk may be a whole class around a method: only the method's lines are taken)."""
    lines: dict[int, str] = {}
    line = d.start_line
    for _ in range(8):  # an oversized definition is split into a few chunks
        chunk = await _index_call(index, notes, "chunk_at", d.path, line)
        if chunk is None or chunk.end_line < line:
            break
        for n, text in enumerate(chunk.text.splitlines(keepends=True), chunk.start_line):
            lines.setdefault(n, text)
        if chunk.end_line >= d.end_line:
            break
        line = chunk.end_line + 1
    end = d.start_line
    while end + 1 <= d.end_line and end + 1 in lines:
        end += 1
    if d.start_line not in lines:
        return None
    text = "".join(lines[n] for n in range(d.start_line, end + 1))
    symbol = d.qualified_name if end == d.end_line else f"{d.qualified_name} (first lines)"
    return ContextPiece(d.path, d.start_line, end, text, reason, symbol)


async def _explain_pieces(
    index: Index | None, notes: list[str], selected: ContextPiece
) -> list[ContextPiece]:
    """The definitions the selected code uses (see :func:`wanted_definitions`), their lines."""
    symbols = await _index_call(index, notes, "file_symbols", selected.path) or []
    owner = _enclosing_class(symbols, selected.start_line)
    family = _family(selected.path)
    names, qualified = wanted_definitions(selected.text, family, owner)
    if not names:
        return []
    defs = await _index_call(index, notes, "definitions", names, limit=40) or []
    imports = await _index_call(index, notes, "file_imports", selected.path) or []
    pieces: list[ContextPiece] = []
    for name in names:
        if name in qualified:
            found = [d for d in defs if d.qualified_name == name]
        else:  # a bare name: a function or class, never some class's method
            found = [d for d in defs if d.name == name and d.kind != "method"]
        for d in _best_files(found, selected.path, imports)[:2]:
            span = ContextPiece(d.path, d.start_line, d.end_line, "", "")
            if overlaps(span, selected) or any(overlaps(span, p) for p in pieces):
                continue
            piece = await _definition_piece(index, notes, d, f"definition of `{d.name}`")
            if piece is not None:
                pieces.append(piece)
        if len(pieces) >= EXPLAIN_DEFINITIONS:
            break
    return pieces


def _family(path: str) -> str:
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix == "py":
        return "python"
    if suffix == "go":
        return "go"
    if suffix in {"js", "jsx", "ts", "tsx", "mjs", "cjs", "mts", "cts"}:
        return "ecmascript"
    return ""


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
    client.boundary.check(path)  # a file that must never be sent is refused before anything
    chat = client.config.chat
    est = client.estimator(client.config.ollama.chat_model)
    room = chat.num_ctx - chat.max_tokens - ANSWER_OVERHEAD
    selection = keep_head(text, max(room - chat.context_tokens // 2, 64), est)
    notes: list[str] = []
    if selection != text:
        shown = start_line + selection.count("\n") - 1
        log.warning("selection cut to lines %d-%d to fit chat.num_ctx", start_line, shown)
        _note(notes, f"only lines {start_line}-{shown} were explained: raise chat.num_ctx for more")
        end_line = max(start_line, shown)
    selected = ContextPiece(path, start_line, end_line, selection, "the selected code")
    pieces = await _explain_pieces(index, notes, selected)
    budget = min(chat.context_tokens, room - est.count(selection))
    used = _fit(client, pieces, max(budget, 0))
    sealed, terms = _admit(client, Material(path, (selection,), tuple(used)), notes)
    messages = prompts.explain_messages(
        path, start_line, end_line, sealed.texts[0], sealed.pieces, terms
    )
    prompt = _prompt(sealed, messages, "explain", [selected, *sealed.pieces])
    streamed = await _stream(client, prompt, on_event, notes)
    citations = [Citation(path, start_line, end_line)]
    citations += _citations(streamed[0], sealed.pieces) if sealed.pieces else []
    return _answer(client, streamed, citations, notes)
