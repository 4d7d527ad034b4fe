"""The project glossary: company terms and abbreviations the model should know.

Kept in ``.enclave/glossary.md`` (lines ``EBD: electronic brake-force distribution``, optionally as
a Markdown list item or with the term in bold; headings, blank lines and HTML comments are
skipped), ``.enclave/glossary.csv`` (``term,definition``; a header row is optional) or
``.enclave/glossary.toml`` (``EBD = "..."`` at the top level or under ``[terms]``). All files
that exist are read, in that order; a term defined twice keeps its first definition and
`enclave glossary check` reports the duplicate with both line numbers.

The indexer indexes these files as documents; explain and ask add the definitions of the terms
that occur in the question or in the code sent (:meth:`Glossary.relevant`), and nothing else.
Definitions are read redacted (secrets always, personal data when asked), with the indexer's
own redaction: a password in a definition never reaches a prompt, a Modelfile or training data.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from enclave.errors import EnclaveError
from enclave.files import SETTINGS_LIMIT, FileProblem, read_regular

FILES = (".enclave/glossary.md", ".enclave/glossary.csv", ".enclave/glossary.toml")
MAX_TERM = 80
_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*(?P<bold>[^*]+?)\*\*|`(?P<code>[^`]+?)`|(?P<plain>[^:]+?))\s*:"
    r"\s*(?P<definition>\S.*?)\s*$"
)


class GlossaryError(EnclaveError):
    """A term that cannot be added (empty, malformed or already defined)."""


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    definition: str
    source: str  # repository-relative file
    line: int  # 1-based

    def render(self) -> str:
        return f"{self.term}: {self.definition}"


@dataclass(frozen=True, slots=True)
class GlossaryIssue:
    """One glossary line that was skipped (a record, shown to the user; never raised)."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class Glossary:
    terms: list[Term] = field(default_factory=list)
    problems: list[GlossaryIssue] = field(default_factory=list)

    def find(self, term: str) -> Term | None:
        key = term.strip().casefold()
        return next((t for t in self.terms if t.term.casefold() == key), None)

    def relevant(self, texts: Iterable[str]) -> list[Term]:
        """The terms that occur in ``texts`` (as whole words; acronyms and terms with capitals
        or digits are matched with their case, plain words without)."""
        joined = "\n".join(texts)
        return [t for t in self.terms if _pattern(t.term).search(joined)]


def _pattern(term: str) -> re.Pattern[str]:
    exact = term != term.lower()
    flags = 0 if exact else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", flags)


def _not_text(text: str) -> str | None:
    """Why ``text`` cannot be written to a UTF-8 glossary line (None if it can)."""
    if any("\ud800" <= c <= "\udfff" for c in text):  # undecodable bytes of an argument
        return "not valid UTF-8 text"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") and c != "\t" for c in text):
        return "a line break or a control character"
    return None


def _check_term(term: str) -> str | None:
    if not term:
        return "the term is empty"
    if len(term) > MAX_TERM:
        return f"the term is longer than {MAX_TERM} characters"
    why = _not_text(term)
    if why is not None:
        return f"the term holds {why}" if why[0] == "a" else f"the term is {why}"
    if ":" in term:
        return "a term cannot hold ':' or a line break"
    return None


def _check_definition(definition: str) -> str | None:
    if not definition:
        return "the definition is empty"
    why = _not_text(definition)
    if why is not None:
        return f"the definition holds {why}" if why[0] == "a" else f"the definition is {why}"
    return None


def parse_markdown(text: str, source: str) -> tuple[list[Term], list[GlossaryIssue]]:
    terms: list[Term] = []
    problems: list[GlossaryIssue] = []
    in_comment = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if in_comment or stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        term = (match["bold"] or match["code"] or match["plain"] or "").strip() if match else ""
        why = _check_term(term) if match else "expected `TERM: definition`"
        if why is not None:
            problems.append(GlossaryIssue(source, number, why))
            continue
        assert match is not None
        terms.append(Term(term, match["definition"], source, number))
    return terms, problems


def parse_csv(text: str, source: str) -> tuple[list[Term], list[GlossaryIssue]]:
    terms: list[Term] = []
    problems: list[GlossaryIssue] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if number == 1 and [c.strip().lower() for c in row] == ["term", "definition"]:
                continue
            if len(row) != 2:
                problems.append(
                    GlossaryIssue(source, number, f"expected 2 columns, got {len(row)}")
                )
                continue
            term, definition = row[0].strip(), row[1].strip()
            why = _check_term(term) or (None if definition else "the definition is empty")
            if why is not None:
                problems.append(GlossaryIssue(source, number, why))
                continue
            terms.append(Term(term, definition, source, number))
    except csv.Error as exc:
        problems.append(GlossaryIssue(source, reader.line_num, f"not valid CSV: {exc}"))
    return terms, problems


def parse_toml(text: str, source: str) -> tuple[list[Term], list[GlossaryIssue]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [], [GlossaryIssue(source, getattr(exc, "lineno", 0) or 0, f"not TOML: {exc}")]
    table = data.get("terms", data) if isinstance(data.get("terms"), dict) else data
    lines = {  # TOML keeps no line numbers: find each key's line for the messages
        m[1].strip('"'): n
        for n, line in enumerate(text.splitlines(), 1)
        if (m := re.match(r'\s*("[^"]+"|[^=\s]+)\s*=', line))
    }
    terms: list[Term] = []
    problems: list[GlossaryIssue] = []
    for term, definition in table.items():
        number = lines.get(term, 0)
        why = _check_term(term.strip())
        if why is None and (not isinstance(definition, str) or not definition.strip()):
            why = f"the definition of {term!r} must be a non-empty string"
        if why is not None:
            problems.append(GlossaryIssue(source, number, why))
            continue
        assert isinstance(definition, str)
        terms.append(Term(term.strip(), definition.strip(), source, number))
    return terms, problems


_PARSERS = {".md": parse_markdown, ".csv": parse_csv, ".toml": parse_toml}


def _redacted(term: Term, pii: bool) -> Term:
    from enclave.indexer.redact import redact_all  # the one redaction of the index and prompts

    definition = redact_all(term.definition, term.source, pii=pii).text
    if definition == term.definition:
        return term
    return Term(term.term, definition, term.source, term.line)


def load_glossary(root: Path | str | None, *, pii: bool = False) -> Glossary:
    """Every glossary file of the repository at ``root`` (an empty glossary when none), with
    secrets (and, when ``pii``, personal data) redacted from the definitions."""
    glossary = Glossary()
    if not root:
        return glossary
    for name in FILES:
        path = Path(root) / name
        try:  # a regular file, bounded: a repository's FIFO or /dev/zero link must not hang
            text = read_regular(path, SETTINGS_LIMIT, "glossary").decode("utf-8")
        except FileNotFoundError:
            continue
        except FileProblem as exc:
            glossary.problems.append(GlossaryIssue(name, 0, exc.message))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            glossary.problems.append(GlossaryIssue(name, 0, f"cannot read it ({exc})"))
            continue
        terms, problems = _PARSERS[Path(name).suffix](text, name)
        glossary.problems += problems
        for term in terms:
            first = glossary.find(term.term)
            if first is not None:
                glossary.problems.append(
                    GlossaryIssue(
                        name, term.line, f"{term.term!r} is already defined at {first.source}:"
                        f"{first.line}; this definition is ignored",
                    )
                )  # fmt: skip
                continue
            glossary.terms.append(_redacted(term, pii))
    return glossary


def add_term(root: Path, term: str, definition: str) -> Term:
    """Append ``TERM: definition`` to ``.enclave/glossary.md`` (made when missing)."""
    term, definition = term.strip(), " ".join(definition.split())
    why = _check_term(term) or _check_definition(definition)
    if why is not None:
        raise GlossaryError(
            f"cannot add {term!r}: {why}",
            "pass a short term and a definition as UTF-8 text on one line",
        )
    path = root / FILES[0]
    text = _read_for_adding(path)
    existing = load_glossary(root).find(term)
    if existing is not None:
        raise GlossaryError(
            f"{term!r} is already defined at {existing.source}:{existing.line}",
            "edit that line instead",
        )
    before = (
        "# Project glossary\n\n" if text is None else "\n" if text[-1:] not in ("", "\n") else ""
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:  # append: the rest is never rewritten
            handle.write(f"{before}{term}: {definition}\n")
    except OSError as exc:
        raise GlossaryError(
            f"cannot write {FILES[0]}: {exc.strerror or exc}",
            "check that .enclave/ is a writable folder",
        ) from None
    return Term(term, definition, FILES[0], (text or "").count("\n") + before.count("\n") + 1)


def _read_for_adding(path: Path) -> str | None:
    """The glossary file's text before a term is appended (None when it does not exist yet)."""
    try:  # a regular file, bounded (FileProblem says why not)
        data = read_regular(path, SETTINGS_LIMIT, "glossary")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GlossaryError(
            f"cannot read {FILES[0]}: {exc.strerror or exc}",
            "make it a readable file (or move it away to start a new glossary)",
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise GlossaryError(
            f"{FILES[0]} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "nothing was added",
            "save the file as UTF-8 or remove that byte, then add the term again",
        ) from None
