"""Headings of prose documents: Markdown (through its tree-sitter grammar) and reStructuredText
(no grammar wheel exists, so by the underline/overline rules with a regular expression).

Both return ``Heading`` records; the chunker turns them into one "section" chunk per heading,
named by the heading path ("Install > From source").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Query, QueryCursor


@dataclass(frozen=True, slots=True)
class Heading:
    row: int  # 0-based first line of the heading (the overline for RST headings that have one)
    title_row: int  # 0-based line holding the title text
    level: int  # 1 = top
    title: str


_ATX_CLOSE = re.compile(r"\s+#+\s*$")


def markdown_headings(root: Node, query: Query, lines: list[str]) -> list[Heading]:
    """ATX and setext headings in source order (code blocks are not mistaken for headings)."""
    found: list[Heading] = []
    for _, captures in QueryCursor(query).matches(root):
        for capture, nodes in captures.items():
            if not capture.startswith("heading."):
                continue
            level = int(capture.rpartition(".")[2])
            for node in nodes:
                row = node.start_point.row
                if node.type == "atx_heading":
                    title = lines[row].strip().lstrip("#")
                    title = _ATX_CLOSE.sub("", " " + title).strip()
                else:  # setext: the title is every line above the underline
                    last = node.end_point.row
                    if node.end_point.column == 0:
                        last -= 1
                    title = " ".join(s.strip() for s in lines[row:last]).strip()
                found.append(Heading(row=row, title_row=row, level=level, title=title))
    found.sort(key=lambda h: h.row)
    return found


# Characters RST allows for section adornments.
_ADORNMENT = re.compile(r"""^([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1{2,}\s*$""")


def rst_headings(lines: list[str]) -> list[Heading]:
    """Section titles: a title line underlined (and optionally overlined) by a run of one
    punctuation character at least as long as the title. Levels follow the order in which
    adornment styles first appear, as docutils does."""
    styles: list[tuple[str, bool]] = []
    found: list[Heading] = []
    n = len(lines)
    row = 0
    while row < n - 1:
        line = lines[row]
        over = _ADORNMENT.match(line)
        if over and row + 2 < n:
            title = lines[row + 1].strip()
            under = _ADORNMENT.match(lines[row + 2])
            if (
                title
                and under
                and under.group(1) == over.group(1)
                and not _ADORNMENT.match(lines[row + 1])
            ):
                style = (over.group(1), True)
                if style not in styles:
                    styles.append(style)
                found.append(Heading(row, row + 1, styles.index(style) + 1, title))
                row += 3
                continue
        under = _ADORNMENT.match(lines[row + 1])
        title = line.strip()
        if (
            under
            and title
            and not over
            and not line[:1].isspace()
            and len(lines[row + 1].rstrip()) >= len(line.rstrip())
            and (row == 0 or not lines[row - 1].strip())
        ):
            style = (under.group(1), False)
            if style not in styles:
                styles.append(style)
            found.append(Heading(row, row, styles.index(style) + 1, title))
            row += 2
            continue
        row += 1
    return found
