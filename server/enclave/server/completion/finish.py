"""Turn a model's raw completion text into the text to insert at the cursor.

Drops ``<think>`` blocks and Markdown fences, the echo of the current line, text the suffix
already has, and everything past the end of the block (or past the first line for a single-line
completion). Pure functions: unit-tested without a model.
"""

from __future__ import annotations

import re

from enclave.server.completion.prompt import INSERT_AT
from enclave.server.model.prompts import CURSOR, DATA_CLOSE, DATA_OPEN
from enclave.server.model.think import strip_think

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n?", re.MULTILINE)

# The prompts' own markup, which a small model sometimes writes back: the repository-data
# delimiters (escaped or not), the cursor marker, stray thinking tags.
_TAG = "|".join(
    [
        re.escape(DATA_OPEN) + r"\b[^>\n]*>",
        re.escape(DATA_CLOSE),
        re.escape(DATA_CLOSE.replace("/", "\\/")),
        re.escape(CURSOR),
        r"</?think>",
    ]
)
_MARKUP_LINE = re.compile(rf"^[ \t]*(?:{_TAG})(?:[ \t]*(?:{_TAG}))*[ \t]*(?:\n|$)", re.MULTILINE)
_MARKUP = re.compile(_TAG)
# The FIM prompt names each file of its context in a comment, "# path/to/file.py" (before,
# "# path/to/file.py:16-18"): a small model continues with one, on a line of its own or after
# the code it wrote ("return # shapes/geometry.py:1-1"). A comment holding nothing but a file's
# path (with its extension) and maybe lines is that header; after code, only a path with a folder
# or with lines counts (`total // self.size` is a division, not a header).
_FILE = r"[\w./\\-]*\w\.[A-Za-z]\w*"  # a file name with its extension, maybe in folders
_LINES = r":\d+(?:-\d+)?"
_PIECE_HEADER = re.compile(
    rf"^[ \t]*(?:#|//|--)[ \t]*{_FILE}(?:{_LINES})?[ \t]*$"
    rf"|[ \t]+(?:#|//|--)[ \t]*(?:{_FILE}{_LINES}|[\w.\\-]*/{_FILE})[ \t]*$",
    re.MULTILINE,
)
# The chat prompt's last line ("Code to insert at <CURSOR>:") echoed at the start of the answer.
_ECHOED_INSTRUCTION = re.compile(
    rf"^[ \t]*{re.escape(INSERT_AT)}[ \t]*(?:{re.escape(CURSOR)})?[ \t]*:?[ \t]*(?:\n|$)"
)


def strip_prompt_markup(text: str) -> str:
    """Remove every piece of the prompts' markup: lines that hold only markup go whole."""
    text = _ECHOED_INSTRUCTION.sub("", text, count=1)
    text = _MARKUP_LINE.sub("", text)
    text = _PIECE_HEADER.sub("", text)
    return _MARKUP.sub("", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def unfence(text: str) -> str:
    """The body of the first fenced block if the text has one; the text otherwise.

    A single bare fence after some code closes that code (the model forgot the opening one).
    """
    fences = list(_FENCE.finditer(text))
    if not fences:
        return text
    first = fences[0]
    if len(fences) >= 2:
        return text[first.end() : fences[1].start()]
    before = text[: first.start()]
    has_info = bool(first.group(0).strip().strip("`~"))
    if before.strip() and not has_info and not before.rstrip().endswith(":"):
        return before
    return text[first.end() :]


def drop_line_echo(text: str, prefix: str) -> str:
    """Remove a repetition of the cursor line's text (chat models often restate it)."""
    line = prefix.rsplit("\n", 1)[-1]
    text = text.replace(CURSOR, "")
    stripped = line.strip()
    if stripped and text.lstrip().startswith(stripped):
        return text.lstrip()[len(stripped) :]
    if not stripped and line and text.startswith(line):
        return text[len(line) :]  # the model re-indented a blank line we already indented
    return text


def drop_suffix_overlap(text: str, suffix: str) -> str:
    """Cut where the completion starts repeating the code after the cursor."""
    first = next((ln.strip() for ln in suffix.splitlines() if ln.strip()), "")
    if first and len(first) > 2:
        lines = text.split("\n")
        for i, ln in enumerate(lines[1:], 1):
            if ln.strip() == first:
                text = "\n".join(lines[:i])
                break
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip():
        for size in range(len(rest_of_line), 0, -1):
            if text.endswith(rest_of_line[:size]):
                return text[: len(text) - size]
    return text


def cut_block(text: str, prefix: str) -> str:
    """Keep the completion inside the block the cursor is in."""
    cursor_line = prefix.rsplit("\n", 1)[-1]
    base = _indent(cursor_line)
    lines = text.split("\n")
    kept = [lines[0]]
    blank_run = 0
    for line in lines[1:]:
        if not line.strip():
            blank_run += 1
            if blank_run >= 2:
                break
            kept.append(line)
            continue
        if _indent(line) < base:
            break
        if base == 0 and blank_run and _indent(line) == 0:
            break  # a new top-level statement after a blank line
        blank_run = 0
        kept.append(line)
    return "\n".join(kept)


def extract_completion(raw: str, *, prefix: str, suffix: str, multiline: bool) -> str:
    """The text to insert, or "" if nothing usable is left."""
    thinking, text = strip_think(raw)
    if thinking:
        text = text.lstrip("\n")  # the blank lines that followed </think>
    text = strip_prompt_markup(text)
    text = unfence(text)
    text = drop_line_echo(text, prefix)
    text = drop_suffix_overlap(text, suffix)
    if multiline:
        text = cut_block(text, prefix)
    else:
        lines = text.split("\n")
        text = lines[0]
        if not text.strip() and not prefix.rsplit("\n", 1)[-1].strip():
            text = next((ln.strip() for ln in lines if ln.strip()), "")
    return text.rstrip()


# Continuations that would change the result if the completion were still open: more text on
# the same line, a deeper line (extends a block), a top-level statement, and (inside a fence) its end.
_PROBES = ("probe_tail", "\n{indent}probe_more = 1", "\nprobe_top = 2")
_FENCE_PROBE = "\n```\n"


def is_settled(raw: str, *, prefix: str, suffix: str, multiline: bool) -> bool:
    """True when no further model output can change what :func:`extract_completion` returns.

    Streaming completions stop the model as soon as this holds: on a CPU every token the model
    does not have to generate is time the user does not wait.
    """
    current = extract_completion(raw, prefix=prefix, suffix=suffix, multiline=multiline)
    if not current:
        return False
    indent = " " * (_indent(prefix.rsplit("\n", 1)[-1]) + 8)
    probes = [p.format(indent=indent) for p in _PROBES]
    if _FENCE.search(raw):
        probes.append(_FENCE_PROBE)
    return all(
        extract_completion(raw + probe, prefix=prefix, suffix=suffix, multiline=multiline)
        == current
        for probe in probes
    )
