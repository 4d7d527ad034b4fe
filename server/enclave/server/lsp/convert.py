"""Conversions between LSP shapes (URIs, 0-based ranges) and the index's (paths, 1-based lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from enclave.server.types import Citation


def uri_to_path(uri: str) -> Path | None:
    fs_path = to_fs_path(uri)
    return Path(fs_path) if fs_path else None


def path_to_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def relative_to(root: Path, path: Path) -> str | None:
    """``path`` as a repository-relative POSIX string, or None when it is outside ``root``."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def to_plain(value: Any) -> Any:
    """pygls hands custom-method params over as namedtuples: turn them back into dicts/lists."""
    if hasattr(value, "_asdict"):
        return {key: to_plain(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol.converters import get_converter

        return get_converter().unstructure(value)
    return value


def parse_range(value: Any) -> types.Range | None:
    """A Range from its JSON form; None if absent; ValueError naming the problem if malformed."""
    if value is None:
        return None
    try:
        start, end = value["start"], value["end"]
        return types.Range(
            start=types.Position(line=int(start["line"]), character=int(start["character"])),
            end=types.Position(line=int(end["line"]), character=int(end["character"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"range must be {{start: {{line, character}}, end: ...}}: {exc}") from exc


def range_json(value: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": value.start.line, "character": value.start.character},
        "end": {"line": value.end.line, "character": value.end.character},
    }


def line_range(root: Path, path: str, start_line: int, end_line: int) -> types.Range:
    """The LSP range covering 1-based inclusive lines of a file (to the end of the last line)."""
    end_character = 0
    try:
        lines = (root / path).read_text(encoding="utf-8", errors="replace").splitlines()
        if 0 < end_line <= len(lines):
            end_character = len(lines[end_line - 1].encode("utf-16-le")) // 2
    except OSError:
        pass
    return types.Range(
        start=types.Position(line=max(0, start_line - 1), character=0),
        end=types.Position(line=max(0, end_line - 1), character=end_character),
    )


def citation_json(root: Path, citation: Citation) -> dict[str, Any]:
    return {
        "uri": path_to_uri(root / citation.path),
        "path": citation.path,
        "range": range_json(
            line_range(root, citation.path, citation.start_line, citation.end_line)
        ),
        "symbol": citation.symbol,
    }
