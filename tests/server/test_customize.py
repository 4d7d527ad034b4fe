"""`enclave customize`'s files (adapter, conventions, glossary): regular files only, never a wait
on a FIFO or an endless read (the HTTP side is tested in tests/server/cli/test_customize.py)."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from enclave.glossary import load_glossary
from enclave.server.customize import CustomizeError, adapter_files, system_prompt


def _safetensors(path: Path) -> None:
    header = json.dumps({"__metadata__": {}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def test_an_adapter_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    fifo = tmp_path / "adapter.gguf"
    os.mkfifo(fifo)  # `enclave customize --adapter FIFO` once waited for a writer forever
    with pytest.raises(CustomizeError, match="is a FIFO, not a regular file"):
        adapter_files(fifo)
    with pytest.raises(CustomizeError, match="is a device"):
        adapter_files(Path("/dev/zero"))
    folder = tmp_path / "lora"
    folder.mkdir()
    _safetensors(folder / "adapter_model.safetensors")
    with pytest.raises(CustomizeError, match=r"has no adapter_config\.json beside it"):
        adapter_files(folder)  # Ollama cannot convert a safetensors adapter without it
    os.mkfifo(folder / "adapter_config.json")  # uploaded as it is: would hang too
    with pytest.raises(CustomizeError, match=r"adapter_config\.json is a FIFO"):
        adapter_files(folder)
    (tmp_path / "other").mkdir()
    os.mkfifo(tmp_path / "other" / "adapter_model.safetensors")
    with pytest.raises(CustomizeError, match="not a valid safetensors file"):
        adapter_files(tmp_path / "other")
    assert time.monotonic() - started < 2


def test_a_conventions_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "conventions.md"
    os.mkfifo(fifo)
    with pytest.raises(CustomizeError, match="is a FIFO"):
        system_prompt(tmp_path, fifo)
    (tmp_path / ".enclave").mkdir()
    os.mkfifo(tmp_path / ".enclave" / "conventions.md")  # the repository's own
    with pytest.raises(CustomizeError, match="is a FIFO"):
        system_prompt(tmp_path)
    with pytest.raises(CustomizeError, match="is a device"):
        system_prompt(tmp_path, Path("/dev/zero"))


def test_a_glossary_that_is_a_fifo_is_not_read(tmp_path: Path) -> None:
    (tmp_path / ".enclave").mkdir()
    os.mkfifo(tmp_path / ".enclave" / "glossary.md")
    (tmp_path / ".enclave" / "glossary.csv").symlink_to("/dev/zero")  # endless
    started = time.monotonic()
    glossary = load_glossary(tmp_path)
    assert time.monotonic() - started < 2 and glossary.terms == []
    problems = " ".join(str(p) for p in glossary.problems)
    assert "is a FIFO" in problems and "is a device" in problems
