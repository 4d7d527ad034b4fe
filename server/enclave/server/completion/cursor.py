"""The cursor: where it is in the document, what the syntax around it asks for, the names near it.

Positions are LSP's: 0-based ``line`` and a 0-based ``character`` counted in UTF-16 code units.
Pure functions of the text (tree-sitter parses the prefix/suffix window only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enclave.indexer.languages import language_for_path, parser_for
from enclave.server.completion.tuning import TUNING

if TYPE_CHECKING:
    from enclave.indexer.api import Index

INDENT_LANGUAGES = {"python"}
_KEYWORD_TEXT = """
and as assert async await break case catch class const continue def default del do elif else
enum except export extends false final finally fn for from func function go if impl import
in interface is lambda let match mod new nil none not null or package pass pub raise return
self static struct super switch this throw true try type use var void while with yield print
len str int float bool dict list set tuple range object string number boolean any int64
int32 err
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())
WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BLOCK_OPENERS = (":", "{", "=>", "do", "then")
_LIST_OPENERS = ("(", "[")

BARE = re.compile(r"(?<![\w.$])([A-Za-z_$][\w$]*)")


def relative_path(index: Index | None, path: str | Path) -> str:
    """A repository-relative POSIX path; absolute paths are made relative to the index root."""
    candidate = Path(path)
    if candidate.is_absolute() and index is not None:
        try:
            return candidate.resolve().relative_to(Path(index.root).resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{path} is not inside the repository {index.root}") from None
    return candidate.as_posix() if isinstance(path, Path) else path


def language_of(path: str) -> str:
    return language_for_path(path)


def utf16_to_index(line_text: str, character: int) -> int:
    """Convert a UTF-16 column to an index into ``line_text`` (clamped to the line)."""
    units = 0
    for index, char in enumerate(line_text):
        if units >= character:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line_text)


def split_at(text: str, line: int, character: int) -> tuple[str, str]:
    """The document text before and after an LSP position (clamped to the document)."""
    lines = text.splitlines(keepends=True)
    if line >= len(lines):
        return text, ""
    offset = sum(len(part) for part in lines[:line])
    body = lines[line].rstrip("\r\n")
    offset += utf16_to_index(body, character)
    return text[:offset], text[offset:]


def _syntax_at_cursor(prefix: str, suffix: str, language: str) -> tuple[str, str]:
    """What tree-sitter says of the cursor: ("string" or "comment" when it is inside one, else
    ""; the innermost bracket still open before it, "(", "[" or "{", else "").

    Parses only the prefix/suffix window (a few KB: about a millisecond), not the whole file.
    Unfinished code parses into error nodes, but its brackets are still tokens of their own
    (never the text of a string or a comment), so their balance tells what is open.
    """
    parser = parser_for(language)
    if parser is None:
        return "", ""
    head = prefix.encode("utf-8")
    tree = parser.parse(head + suffix.encode("utf-8"))
    cursor = len(head)
    literal = ""
    node = tree.root_node.descendant_for_byte_range(max(cursor - 1, 0), cursor)
    while node is not None:
        kind = node.type
        if "comment" in kind and node.start_byte < cursor <= node.end_byte:
            literal = "comment"
            break
        if "string" in kind and node.start_byte < cursor < node.end_byte:
            literal = "string"
            break
        node = node.parent
    return literal, "" if literal else _open_bracket(tree.root_node, cursor)


_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _open_bracket(root: Any, cursor: int) -> str:
    """The innermost bracket token before byte ``cursor`` that no token closes before it."""
    stack: list[str] = []
    pending = [root]
    while pending:
        node = pending.pop()
        if node.start_byte >= cursor:
            continue
        if node.child_count:
            if node.end_byte <= cursor and not node.has_error:
                continue  # complete code before the cursor: its brackets close what they open
            pending.extend(reversed(node.children))  # (in order: the last pushed comes first)
            continue
        kind = node.type
        if kind in ("(", "[", "{") and node.end_byte <= cursor:
            stack.append(kind)
        elif kind in _CLOSERS and node.end_byte <= cursor and stack[-1:] == [_CLOSERS[kind]]:
            stack.pop()
    return stack[-1] if stack else ""


def decide_multiline(prefix: str, suffix: str, language: str) -> tuple[bool, str]:
    """Single- or multi-line completion, from the syntax around the cursor (with the reason)."""
    literal, bracket = _syntax_at_cursor(prefix, suffix, language)
    if literal:
        return False, f"the cursor is inside a {literal}"
    if bracket in _LIST_OPENERS:
        return False, "inside an open argument list or list: its next item, on one line"
    line_before = prefix.rsplit("\n", 1)[-1]
    line_after = suffix.split("\n", 1)[0]
    if line_after.strip() and line_after.strip() not in (")", "]", "}", ");", "})", "];", "),"):
        return False, "text follows the cursor on this line"
    if line_before.strip():
        stripped = line_before.rstrip()
        if stripped.endswith(_LIST_OPENERS):
            return False, "an argument list or a list opens here: the rest of it, on this line"
        if stripped.endswith(_BLOCK_OPENERS):
            return True, "the line opens a block"
        return False, "completing the rest of a line"
    # An empty line: multi-line when it opens a block body or starts a new top-level statement.
    previous = [part for part in prefix.split("\n")[:-1] if part.strip()]
    last = previous[-1].rstrip() if previous else ""
    if last.endswith((*_BLOCK_OPENERS, *_LIST_OPENERS)) or (
        language in INDENT_LANGUAGES and last.endswith(":")
    ):
        return True, "empty line after a block opener"
    following = [part for part in suffix.split("\n")[1:] if part.strip()]
    indent = len(line_before)
    next_indent = len(following[0]) - len(following[0].lstrip()) if following else 0
    if not following or next_indent < indent or (indent == 0 and next_indent == 0):
        return True, "empty line at the end of a block"
    return False, "empty line inside a block"


# A name that labels a value rather than refers to a definition: a keyword argument or an
# assignment's target (`width=2`, `x = f()`), and elsewhere than Python a key of a composite
# or object literal or a parameter's name (`Diff: mode`, `{ name: value }`, `(x: T)`).
_ASSIGNED = re.compile(r"\s*=(?![=>])")
_KEYED = re.compile(r"\s*:(?![:=])")
_KEY_OPENERS = ("{", ",", "(")


def _labels_only(line: str, match: re.Match[str], language: str) -> bool:
    """Whether the name ``match`` found on ``line`` is a label (see _ASSIGNED, _KEYED)."""
    if _ASSIGNED.match(line, match.end()):
        return True
    if language in INDENT_LANGUAGES or not _KEYED.match(line, match.end()):
        return False
    before = line[: match.start()].rstrip()
    return not before or before.endswith(_KEY_OPENERS)


def names_near(lines: Sequence[str], line: int, language: str = "") -> list[str]:
    """Identifiers near the cursor, closest first; dotted names also give their parts. Names
    that only label a value (keyword arguments, literal keys) are no use of a definition."""
    order: dict[str, int] = {}
    start, end = max(0, line - TUNING.near_before), min(len(lines), line + TUNING.near_after + 1)
    for number in range(start, end):
        distance = abs(line - number) * 2 + (1 if number > line else 0)
        code = lines[number].split("#", 1)[0]
        for match in _IDENT.finditer(code):
            if _labels_only(code, match, language):
                continue
            dotted = match.group(0)
            parts = dotted.split(".")
            candidates = [*parts, *(".".join(parts[i : i + 2]) for i in range(len(parts) - 1))]
            if len(parts) > 2:  # `email.utils.quote` of `import email.utils`
                candidates.append(".".join(parts[:3]))
            for name in candidates:
                if len(name) < 2 or name.lower() in KEYWORDS:
                    continue
                if name not in order or distance < order[name]:
                    order[name] = distance
    return sorted(order, key=lambda n: order[n])
