"""`enclave dataset`: instruction pairs for LoRA fine-tuning, from the index and the team's own
question/answer CSV.

Sources: every documented definition of the index gives two pairs. "Write" pairs: the first
paragraph of its doc (whole sentences, never a line cut mid-sentence) -> its code without the doc
(the prompt carries it). "Explain" pairs: its code -> an explanation made from the index: the
signature and where it is, the doc, the definitions it calls and the code that calls it (only
names with one definition in the index: a name shared by several classes proves nothing). Test
code is left out unless asked (``include_tests``). Every glossary term gives a question and its
definition; every row of a user CSV (``question,answer``; a header row is optional, extra
columns are ignored when it names them) a pair. Every text is redacted (secrets always,
personal data with ``trust.redact_pii``) with the indexer's own redaction, the one the index
and prompts get. Pairs are deduplicated exactly (after normalizing case and whitespace) and
nearly (Jaccard similarity of word 3-shingles at or above ``NEAR_DUPLICATE``), then split into
train and validation sets with a seeded shuffle and written as JSONL (chat messages) and CSV
(prompt, completion). What is left out is counted by reason (:attr:`Export.dropped`); a bad CSV
row is reported with its line number and skipped; nothing stops the export.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from enclave.config import Config
from enclave.errors import EnclaveError
from enclave.glossary import load_glossary
from enclave.indexer.api import Chunk, Index, SymbolDef
from enclave.indexer.file_roles import is_test_path
from enclave.indexer.redact import redact_all

NEAR_DUPLICATE = 0.8
SHINGLE = 3
MAX_CODE_CHARS = 6000  # longer definitions make poor training pairs (and blow a trainer's window)
MAX_SUMMARY = 600  # a first paragraph longer than this is cut to its first sentence
MAX_DOC = 1500  # the doc in an explanation
MAX_LINKS = 6  # calls / callers named in an explanation
CALLER_HITS = 20  # lexical hits searched for the callers of a name

# Why a pair was left out (the keys of Export.dropped, shown to the user).
DROP_TESTS = "test code (--include-tests keeps it)"
DROP_LONG = f"definition over {MAX_CODE_CHARS} characters"
DROP_NO_CHUNK = "definition not found in the index's chunks"
DROP_NO_CODE = "no code beyond its doc"
DROP_NO_DOC = "no doc but a section banner"
DROP_EXACT = "exact duplicate"
DROP_NEAR = "near duplicate"
DROP_BAD_ROW = "bad CSV row"


@dataclass(frozen=True)
class Pair:
    prompt: str
    completion: str
    source: str  # "code", "explanation", "glossary", "csv"
    origin: str  # path:lines, glossary line, or csv line


@dataclass
class Export:
    pairs: list[Pair] = field(default_factory=list)
    train: list[Pair] = field(default_factory=list)
    validation: list[Pair] = field(default_factory=list)
    by_source: dict[str, int] = field(default_factory=dict)
    exact_duplicates: int = 0
    near_duplicates: int = 0
    redactions: int = 0
    bad_rows: list[str] = field(default_factory=list)  # "file:line: why"
    files: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> pairs left out

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


# -- sources -------------------------------------------------------------------------------------

_TEST_NAME = re.compile(r"test_|Test[A-Z_]|test[A-Z]")
_COMMENT = re.compile(
    r"^\s*(?:///?!?|/\*\*?|\*/|\*|#+(?![\[!]|include|define|if|pragma)|--+|;+|%+)\s?"
)
# "---- plumbing ----": a section heading above a definition, not its doc
_BANNER = re.compile(r"[-=~*#_+/]{2,}[^-=~*#_+]*[-=~*#_+/]{3,}|[-=~*#_+/ ]*")
_TAG = re.compile(r"@\w|:(?:param|returns?|raises?)\b|(?:Args|Arguments|Returns|Raises|Yields):$")
_QUOTES = re.compile(r"^\s*[rRbBuU]{0,2}(\"\"\"|'''|\"|')")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])")
# A call: its receiver (``self.`` in ``self.send(``, "" for a bare ``send(``) and its name.
_CALL = re.compile(
    r"(?<![\w$])(?<!def )(?<!fn )(?<!func )(?<!function )((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)\s*\("
)
_OWN = ("self.", "cls.", "this.")


def is_test(symbol: SymbolDef) -> bool:
    """Test code: a file in a test folder or named as a test, or a test function or class."""
    return bool(is_test_path(symbol.path) or _TEST_NAME.match(symbol.name))


@dataclass(frozen=True)
class _Doc:
    summary: str  # the first paragraph (or its first sentence when long), on one line
    text: str  # every paragraph, each on one line, for an explanation
    lines: tuple[int, int] | None  # 0-based first and last line of the doc inside the chunk


def _find_doc(code: str, first_line: str) -> _Doc:
    """The doc of a definition whose chunk text is ``code``, found from its first line (the one
    the index keeps): a docstring or the comment block it starts."""
    lines = code.split("\n")
    # the index keeps the line without tags (<summary>, <details>): look for the text before one
    probe = re.split(r"[<`]", first_line.strip(), maxsplit=1)[0][:60].strip() or first_line[:20]
    start = next((i for i, line in enumerate(lines) if probe and probe in line), None)
    if start is None:
        return _Doc(first_line.strip(), first_line.strip(), None)
    body: list[str] = []
    if _COMMENT.match(lines[start]) and not _QUOTES.match(lines[start]):
        first = last = start
        while first > 0 and _COMMENT.match(lines[first - 1]) and lines[first - 1].strip():
            first -= 1
        while last + 1 < len(lines) and _COMMENT.match(lines[last + 1]):
            last += 1
        for line in lines[start : last + 1]:
            text = _COMMENT.sub("", line).rstrip().removesuffix("*/").strip()
            body.append(re.sub(r"</?\w+[^>]*>", "", text).strip())  # C# <summary> tags
    else:  # a docstring: from its opening quotes to its closing ones
        first = start if _QUOTES.match(lines[start]) or start == 0 else start - 1
        opening = _QUOTES.match(lines[first])
        if opening is None:
            return _Doc(first_line.strip(), first_line.strip(), None)
        quote = opening[1]
        last = first
        head = lines[first][opening.end() :]
        if quote in head:  # one line
            body.append(head.split(quote, 1)[0].strip())
        else:
            body.append(head.strip())
            while last + 1 < len(lines):
                last += 1
                if quote in lines[last]:
                    body.append(lines[last].split(quote, 1)[0].strip())
                    break
                body.append(lines[last].strip())
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*body, ""]:
        if line and current and _TAG.match(line):  # @param, :returns:, Args: start a paragraph
            paragraphs.append(" ".join(current))
            current = []
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    paragraphs = [p for p in paragraphs if not _BANNER.fullmatch(p)]
    if not paragraphs:
        return _Doc("", "", (first, last))
    summary = paragraphs[0]
    if len(summary) > MAX_SUMMARY:
        summary = _SENTENCE_END.split(summary, 1)[0]
    return _Doc(summary, "\n\n".join(paragraphs), (first, last))


def _without_doc(code: str, doc: _Doc) -> str:
    """``code`` without its doc's lines (the doc is in the prompt)."""
    if doc.lines is None:
        return code
    lines = code.split("\n")
    first, last = doc.lines
    return "\n".join(lines[:first] + lines[last + 1 :])


def _has_code(code: str, signature: str) -> bool:
    """Anything but the signature, decorators and placeholders (``...``, ``pass``)?"""
    head = signature.strip()
    for line in code.split("\n"):
        text = line.strip()
        if (
            text
            and text not in ("...", "pass", "{", "}", "};")
            and not text.startswith("@")
            and not head.startswith(text)
        ):
            return True
    return False


def _own_code(chunk: Chunk, symbol: SymbolDef) -> tuple[str, int, int]:
    """The lines of ``symbol`` in ``chunk`` (a small class is one chunk with its methods), with
    the comment and decorator lines right above it, dedented; and its first and last line."""
    lines = chunk.text.split("\n")
    low = min(max(0, symbol.start_line - chunk.start_line), len(lines))
    high = min(len(lines), max(low + 1, symbol.end_line - chunk.start_line + 1))
    while (
        low > 0
        and lines[low - 1].strip()
        and (_COMMENT.match(lines[low - 1]) or lines[low - 1].lstrip().startswith(("@", "#[")))
    ):
        low -= 1
    code = textwrap.dedent("\n".join(lines[low:high])).rstrip("\n")
    return code, chunk.start_line + low, chunk.start_line + high - 1


def _where(symbol: SymbolDef) -> str:
    return f"{symbol.path}:{symbol.start_line}"


def _parent(symbol: SymbolDef) -> str:
    return symbol.qualified_name.rpartition(".")[0]


def _calls(symbol: SymbolDef, body: str, unique: dict[str, SymbolDef]) -> list[SymbolDef]:
    """The definitions ``body`` calls, by names with one definition in the index: a bare call
    names a function or a class; ``self.name(`` a method of the same class. Any other
    receiver (``path.replace(``) is an object whose type is unknown here: not linked."""
    found: list[SymbolDef] = []
    for receiver, name in dict.fromkeys(_CALL.findall(body)):
        target = unique.get(name)
        if target is None or target is symbol or name.startswith("__"):
            continue
        if receiver in _OWN:
            linked = target.kind == "method" and _parent(target) == _parent(symbol)
        else:
            linked = not receiver and target.kind != "method" and "." not in _parent(target)
            linked = linked and (not _parent(target) or target.kind == "class")
        if linked:
            found.append(target)
    return found[:MAX_LINKS]


def _callers(index: Index, symbol: SymbolDef, include_tests: bool) -> list[str]:
    """Where the code of the index calls ``symbol`` (a lexical search for its name), each named
    by the innermost definition around the call."""
    call = re.compile(rf"(?<![\w$]){re.escape(symbol.name)}\s*\(")
    found: dict[str, None] = {}
    for hit in index.search(symbol.name, k=CALLER_HITS, mode="lexical").hits:
        if not include_tests and is_test_path(hit.path):
            continue
        for offset, line in enumerate(hit.text.split("\n")):
            number = hit.start_line + offset
            if hit.path == symbol.path and symbol.start_line <= number <= symbol.end_line:
                continue  # its own definition
            if not call.search(line) or line.lstrip().startswith(("def ", "func ", "fn ")):
                continue
            around = [
                s
                for s in index.file_symbols(hit.path)
                if s.start_line <= number <= s.end_line and s.kind != "module"
            ]
            inner = min(around, key=lambda s: s.end_line - s.start_line, default=None)
            label = f"`{inner.qualified_name}` " if inner is not None else ""
            found.setdefault(f"{label}({hit.path}:{number})")
            break
        if len(found) >= MAX_LINKS:
            break
    return list(found)


def _explanation(symbol: SymbolDef, doc: _Doc, calls: list[SymbolDef], callers: list[str]) -> str:
    what = symbol.kind if symbol.kind in ("function", "method", "class") else "definition"
    parent = symbol.qualified_name.rpartition(".")[0]
    member = f", a member of `{parent}`" if parent and symbol.kind == "method" else ""
    parts = [
        f"`{symbol.signature}` is a {what} in {symbol.path} (lines {symbol.start_line}-"
        f"{symbol.end_line}){member}.",
        doc.text if len(doc.text) <= MAX_DOC else doc.summary,
    ]
    if calls:
        parts.append(
            "It calls " + ", ".join(f"`{c.qualified_name}` ({_where(c)})" for c in calls) + "."
        )
    if callers:
        parts.append("It is called by " + ", ".join(callers) + ".")
    elif symbol.name.startswith("_") and not symbol.name.startswith("__"):
        parts.append("It is private to its module: no other code of the repository calls it.")
    return "\n\n".join(parts)


def _prose(doc: _Doc, code: str, pii: bool, export: Export) -> tuple[_Doc, str]:
    """The doc redacted as prose (a value after ``password=`` needs no quotes there), whatever
    the language of the code around it: in the doc, and in its lines inside ``code``."""
    summary, text = redact_all(doc.summary, pii=pii), redact_all(doc.text, pii=pii)
    export.redactions += len(text.findings)
    if doc.lines is not None:
        lines = code.split("\n")
        first, last = doc.lines
        lines[first : last + 1] = redact_all(
            "\n".join(lines[first : last + 1]), pii=pii
        ).text.split("\n")
        code = "\n".join(lines)
    return _Doc(summary.text, text.text, doc.lines), code


def from_index(
    index: Index, export: Export, *, include_tests: bool = False, pii: bool = False
) -> Iterator[Pair]:
    symbols = index.all_symbols()
    by_name: dict[str, list[SymbolDef]] = defaultdict(list)
    for symbol in symbols:
        by_name[symbol.name].append(symbol)
    unique = {name: defs[0] for name, defs in by_name.items() if len(defs) == 1}
    for symbol in symbols:
        if not symbol.doc.strip():
            continue
        if not include_tests and is_test(symbol):
            export.drop(DROP_TESTS, 2)
            continue
        chunk = index.chunk_at(symbol.path, symbol.start_line)
        if chunk is None:
            export.drop(DROP_NO_CHUNK, 2)
            continue
        code, first, last = _own_code(chunk, symbol)
        if len(code) > MAX_CODE_CHARS:
            export.drop(DROP_LONG, 2)
            continue
        origin = f"{chunk.path}:{first}-{last}"
        doc = _find_doc(code, symbol.doc)
        if not doc.summary:
            export.drop(DROP_NO_DOC, 2)
            continue
        body = _without_doc(code, doc).rstrip("\n")
        doc, code = _prose(doc, code, pii, export)
        what = symbol.kind if symbol.kind in ("function", "method", "class") else "definition"
        if _has_code(body, symbol.signature):
            yield Pair(
                f"Write the {what} `{symbol.qualified_name}` for {symbol.path}: {doc.summary}",
                body,
                "code",
                origin,
            )
        else:
            export.drop(DROP_NO_CODE)
        callers = (
            _callers(index, symbol, include_tests) if unique.get(symbol.name) is symbol else []
        )
        yield Pair(
            f"Explain what this code from {symbol.path} does:\n\n{code}",
            _explanation(symbol, doc, _calls(symbol, body, unique), callers),
            "explanation",
            origin,
        )


def from_glossary(root: Path, pii: bool = False) -> Iterator[Pair]:
    for term in load_glossary(root, pii=pii).terms:
        yield Pair(
            f"What does {term.term} mean in this project?",
            f"{term.term} means {term.definition}.",
            "glossary",
            f"{term.source}:{term.line}",
        )


def _columns(header: list[str]) -> tuple[int, int] | None:
    names = [cell.strip().lower() for cell in header]
    for question, answer in (("question", "answer"), ("prompt", "completion")):
        if question in names and answer in names:
            return names.index(question), names.index(answer)
    return None


def from_csv(path: Path, bad: list[str]) -> Iterator[Pair]:
    """Rows of a question/answer CSV; each bad row goes to ``bad`` with its line number."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text.replace("\0", "\ufffd"), newline=""))
    columns: tuple[int, int] | None = None
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad.append(f"{path.name}:{reader.line_num}: not valid CSV ({exc})")
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if first:
            first = False
            columns = _columns(row)
            if columns is not None:
                continue
        q, a = columns or (0, 1)
        width = max(q, a) + 1 if columns else 2
        why = None
        if (columns is None and len(row) != 2) or len(row) < width:
            why = f"expected {'2' if columns is None else f'at least {width}'} columns, got {len(row)}"
        elif "\ufffd" in row[q] + row[a]:
            why = "not UTF-8 text (or a NUL byte)"
        elif not row[q].strip() or not row[a].strip():
            why = "the question or the answer is empty"
        if why is not None:
            bad.append(f"{path.name}:{line}: {why}")
            continue
        yield Pair(row[q].strip(), row[a].strip(), "csv", f"{path.name}:{line}")


# -- cleaning ------------------------------------------------------------------------------------


def _redacted(pairs: Iterable[Pair], pii: bool, export: Export) -> Iterator[Pair]:
    """Each pair through the index's redaction, with the rules of the file it comes from (code,
    the glossary, a CSV of prose: there a keyword's value needs no quotes)."""
    for pair in pairs:
        path = pair.origin.rpartition(":")[0]
        prompt = redact_all(pair.prompt, path, pii=pii)
        completion = redact_all(pair.completion, path, pii=pii)
        export.redactions += len(prompt.findings) + len(completion.findings)
        yield Pair(prompt.text, completion.text, pair.source, pair.origin)


def _normal(pair: Pair) -> str:
    return " ".join(f"{pair.prompt}\n{pair.completion}".lower().split())


def _shingles(text: str) -> frozenset[str]:
    words = re.findall(r"\w+|[^\w\s]", text)
    if len(words) < SHINGLE:
        return frozenset({" ".join(words)})
    return frozenset(" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))


def deduplicate(pairs: Iterable[Pair], export: Export) -> list[Pair]:
    """Drop exact duplicates, then pairs whose shingles are NEAR_DUPLICATE-similar to a kept one
    (an inverted index of shingles finds the candidates; first seen is kept)."""
    kept: list[Pair] = []
    seen: set[str] = set()
    sets: list[frozenset[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for pair in pairs:
        normal = _normal(pair)
        if normal in seen:
            export.exact_duplicates += 1
            export.drop(DROP_EXACT)
            continue
        seen.add(normal)
        mine = _shingles(normal)
        shared: dict[int, int] = defaultdict(int)
        for shingle in mine:
            for other in postings.get(shingle, ()):
                shared[other] += 1
        if any(n / len(mine | sets[i]) >= NEAR_DUPLICATE for i, n in shared.items()):
            export.near_duplicates += 1
            export.drop(DROP_NEAR)
            continue
        for shingle in mine:
            postings[shingle].append(len(sets))
        sets.append(mine)
        kept.append(pair)
    return kept


def split(pairs: list[Pair], validation: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    count = round(len(shuffled) * validation)
    if validation > 0 and count == 0 and len(shuffled) >= 2:
        count = 1
    return shuffled[count:], shuffled[:count]


# -- writing -------------------------------------------------------------------------------------


def _jsonl(pairs: list[Pair]) -> str:
    return "".join(
        json.dumps(
            {"messages": [{"role": "user", "content": p.prompt},
                          {"role": "assistant", "content": p.completion}]},
            ensure_ascii=False,
        ) + "\n"
        for p in pairs
    )  # fmt: skip


def _csv(pairs: list[Pair]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prompt", "completion"])
    writer.writerows([p.prompt, p.completion] for p in pairs)
    return out.getvalue()


class OutputError(EnclaveError):
    """The output directory cannot be made or written."""


def prepare_output(out: Path) -> None:
    """Make the output directory (before any work), or raise :class:`OutputError` saying why
    it cannot be one."""
    fix = "pass a directory you can write to; it is made if missing"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a directory", fix)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the directory {out}: {exc.strerror or exc}", fix) from None


def write(export: Export, out: Path, formats: Iterable[str]) -> None:
    prepare_output(out)
    for name, pairs in (("train", export.train), ("valid", export.validation)):
        for form in formats:
            path = out / f"{name}.{form}"
            text = _jsonl(pairs) if form == "jsonl" else _csv(pairs)
            try:
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise OutputError(
                    f"cannot write {path}: {exc.strerror or exc}",
                    "pass a directory you can write to, with space for the files",
                ) from None
            export.files.append(str(path))


def build(
    config: Config,
    root: Path,
    index: Index | None,
    csv_files: Iterable[Path],
    *,
    validation: float,
    seed: int,
    include_tests: bool = False,
) -> Export:
    """Gather, redact, deduplicate and split (nothing is written)."""
    export = Export()
    pii = config.trust.redact_pii
    sources: list[Iterable[Pair]] = []
    if index is not None:
        sources.append(from_index(index, export, include_tests=include_tests, pii=pii))
    sources.append(from_glossary(root, pii))
    sources += [from_csv(path, export.bad_rows) for path in csv_files]
    raw = (pair for source in sources for pair in source)
    export.pairs = deduplicate(_redacted(raw, pii, export), export)
    if export.bad_rows:
        export.drop(DROP_BAD_ROW, len(export.bad_rows))
    for pair in export.pairs:
        export.by_source[pair.source] = export.by_source.get(pair.source, 0) + 1
    export.train, export.validation = split(export.pairs, validation, seed)
    return export
