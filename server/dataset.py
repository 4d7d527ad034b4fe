"""`enclave dataset`: instruction pairs for LoRA fine-tuning, from the index and the team's own
question/answer CSV.

Sources: every documented definition of the index gives two pairs (its doc line -> its code,
its code -> the doc line as the explanation); every glossary term a question and its definition;
every row of a user CSV (``question,answer``; a header row is optional, extra columns are
ignored when it names them). Every text is redacted (secrets always, personal data with
``trust.redact_pii``) with the indexer's own redaction. Pairs are deduplicated exactly (after
normalizing case and whitespace) and nearly (Jaccard similarity of word 3-shingles at or above
``NEAR_DUPLICATE``), then split into train and validation sets with a seeded shuffle and written
as JSONL (chat messages) and CSV (prompt, completion). A bad CSV row is reported with its line
number and skipped; it never stops the export.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from enclave.config import Config
from enclave.glossary import load_glossary
from enclave.indexer.api import Index
from enclave.indexer.redact import redact_all

NEAR_DUPLICATE = 0.8
SHINGLE = 3
MAX_CODE_CHARS = 6000  # longer definitions make poor training pairs (and blow a trainer's window)


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


# -- sources -------------------------------------------------------------------------------------


def from_index(index: Index) -> Iterator[Pair]:
    for symbol in index.all_symbols():
        if not symbol.doc.strip():
            continue
        chunk = index.chunk_at(symbol.path, symbol.start_line)
        if chunk is None or len(chunk.text) > MAX_CODE_CHARS:
            continue
        origin = f"{chunk.path}:{chunk.start_line}-{chunk.end_line}"
        code = chunk.text.rstrip("\n")
        what = symbol.kind if symbol.kind in ("function", "method", "class") else "definition"
        yield Pair(
            f"Write the {what} `{symbol.qualified_name}` for {symbol.path}: {symbol.doc}",
            code,
            "code",
            origin,
        )
        yield Pair(
            f"Explain what this code from {symbol.path} does:\n\n{code}",
            symbol.doc,
            "explanation",
            origin,
        )


def from_glossary(root: Path) -> Iterator[Pair]:
    for term in load_glossary(root).terms:
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
    for pair in pairs:
        prompt = redact_all(pair.prompt, pii=pii)
        completion = redact_all(pair.completion, pii=pii)
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
            continue
        seen.add(normal)
        mine = _shingles(normal)
        shared: dict[int, int] = defaultdict(int)
        for shingle in mine:
            for other in postings.get(shingle, ()):
                shared[other] += 1
        if any(n / len(mine | sets[i]) >= NEAR_DUPLICATE for i, n in shared.items()):
            export.near_duplicates += 1
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


def write(export: Export, out: Path, formats: Iterable[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, pairs in (("train", export.train), ("valid", export.validation)):
        for form in formats:
            path = out / f"{name}.{form}"
            path.write_text(_jsonl(pairs) if form == "jsonl" else _csv(pairs), encoding="utf-8")
            export.files.append(str(path))


def build(
    config: Config,
    root: Path,
    index: Index | None,
    csv_files: Iterable[Path],
    *,
    validation: float,
    seed: int,
) -> Export:
    """Gather, redact, deduplicate and split (nothing is written)."""
    export = Export()
    sources: list[Iterable[Pair]] = []
    if index is not None:
        sources.append(from_index(index))
    sources.append(from_glossary(root))
    sources += [from_csv(path, export.bad_rows) for path in csv_files]
    raw = (pair for source in sources for pair in source)
    export.pairs = deduplicate(_redacted(raw, config.trust.redact_pii, export), export)
    for pair in export.pairs:
        export.by_source[pair.source] = export.by_source.get(pair.source, 0) + 1
    export.train, export.validation = split(export.pairs, validation, seed)
    return export
