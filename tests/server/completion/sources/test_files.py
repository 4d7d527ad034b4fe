"""Repository files for the context sources: redacted, and kept across completions while they
do not change, within a bound."""

from __future__ import annotations

import os
from pathlib import Path

from enclave.server.completion.sources.files import RedactedFiles
from tests.server.secrets import GITHUB


def _version(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def test_redacted_lines_are_kept_while_the_file_does_not_change(tmp_path: Path) -> None:
    cache = RedactedFiles(max_chars=10_000)
    source = tmp_path / "settings.py"
    source.write_text(f'TOKEN = "{GITHUB}"\nDEBUG = False\n')
    first = cache.lines("settings.py", _version(source))
    assert first is not None and GITHUB not in "".join(first) and first[1] == "DEBUG = False\n"
    assert cache.lines("settings.py", _version(source)) is first  # not read again
    source.write_text("DEBUG = True\n")
    os.utime(source, ns=(1, 1))  # whatever the clock: another mtime, another size
    assert cache.lines("settings.py", _version(source)) == ["DEBUG = True\n"]
    assert cache.lines("gone.py", (str(tmp_path / "gone.py"), 1, 1)) is None


def test_the_files_kept_stay_within_their_bound(tmp_path: Path) -> None:
    cache = RedactedFiles(max_chars=100)
    files = []
    for i in range(5):
        path = tmp_path / f"m{i}.py"
        path.write_text(f"value_{i} = {i}\n" * 4)  # 48 characters
        files.append(path)
        cache.lines(path.name, _version(path))
        assert cache.chars <= 100
    first = cache.lines(files[0].name, _version(files[0]))  # read again: it had been let go
    assert first == ["value_0 = 0\n"] * 4 and cache.chars <= 100
