"""The audit log's file: whole JSON lines from several processes at once, rotation, summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from enclave.audit import (
    AuditLog,
    AuditUnavailable,
    audit_path,
    read_records,
    select,
    summarize,
)
from enclave.config import AuditConfig, Config
from enclave.policy import Policy

WRITER = """
import sys
from dataclasses import replace
from enclave.audit import AuditLog
from enclave.config import AuditConfig, Config
path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = replace(Config(), audit=AuditConfig(path=path, include_prompts=True,
                                             max_bytes=64 * 1024, keep=1000))
log = AuditLog(config)
for n in range(count):
    # long lines (bigger than a pipe buffer) so a torn write would show
    request = log.start("completion", "m:" + who, who * 9000 + str(n), [("a.py", n + 1, n + 2)])
    log.finish(request)
"""


def test_several_processes_append_whole_lines_through_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, "60"]) for who in "abcd"
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    files = sorted(path.parent.glob("audit.jsonl*"))
    assert len([f for f in files if not f.name.endswith(".lock")]) > 3  # it rotated
    records, bad = read_records(path)
    assert bad == []  # every line of every file is one whole JSON record
    assert len(records) == 240
    for who in "abcd":
        mine = sorted(int(r["prompt"][9000:]) for r in records if r["model"] == f"m:{who}")
        assert mine == list(range(60))  # none lost, none torn
    line = max(len(r["prompt"]) for r in records) + 500  # one record's line, JSON included
    for file in files:
        if not file.name.endswith(".lock"):  # past max_bytes by at most a line per writer
            assert file.stat().st_size <= 64 * 1024 + 4 * line


def test_records_carry_no_prompt_by_default_and_summaries_group_them(tmp_path: Path) -> None:
    config = replace(Config(), root=str(tmp_path))
    assert audit_path(config) == tmp_path / ".enclave" / "audit.jsonl"
    assert audit_path(replace(config, audit=AuditConfig(enabled=False))) is None
    log = AuditLog(config)
    with log.request("explain", "deepseek-r1", "SECRET PROMPT", [("x.py", 3, 9)]) as request:
        request.prompt_tokens, request.output_tokens = 120, 30
    try:
        with log.request("ask", "deepseek-r1", "another prompt"):
            raise TimeoutError
    except TimeoutError:
        pass
    text = (tmp_path / ".enclave" / "audit.jsonl").read_text()
    assert "SECRET PROMPT" not in text and "another prompt" not in text
    records, _ = read_records(tmp_path / ".enclave" / "audit.jsonl")
    assert records[0]["files"] == [{"path": "x.py", "start_line": 3, "end_line": 9}]
    assert records[0]["prompt_sha256"].startswith("sha256:") and records[1]["outcome"] == "error"
    summary = summarize(records)
    assert summary["by_model"]["deepseek-r1"] == {
        "requests": 2, "prompt_tokens": 120, "output_tokens": 30, "failed": 1
    }  # fmt: skip
    assert list(summary["by_purpose"]) == ["ask", "explain"]
    assert len(select(records, purpose="ask")) == 1
    assert len(select(records, model="deepseek-r1:latest")) == 2
    assert select(records, since=datetime(2999, 1, 1, tzinfo=UTC)) == []
    assert json.loads(text.splitlines()[0])["user"]


def _log(tmp_path: Path, path: Path, **audit: Any) -> AuditLog:
    return AuditLog(
        replace(Config(), root=str(tmp_path), audit=AuditConfig(path=str(path), **audit))
    )


def test_rotation_never_touches_a_file_enclave_did_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: `path` = someone's file, `max_bytes = 100`, `keep = 0` deleted it."""
    victim = tmp_path / "notes.txt"
    victim.write_text("precious notes, not an audit log\n" * 5)
    before = victim.read_bytes()
    log = _log(tmp_path, victim, max_bytes=100, keep=0)
    log.finish(log.start("ask", "m", "prompt"))
    assert victim.read_bytes() == before  # neither rotated away nor appended to
    assert "not an Enclave audit log" in caplog.text

    # a rotation's target that Enclave did not write stops the rotation: nothing moved
    path = tmp_path / "audit.jsonl"
    log = _log(tmp_path, path, max_bytes=600, keep=2)
    for _ in range(3):
        log.finish(log.start("ask", "m", "prompt"))
    assert path.exists() and (tmp_path / "audit.jsonl.1").exists()  # a real log rotates
    other = tmp_path / "audit.jsonl.2"
    other.write_text("someone else's file\n")
    rotated = (tmp_path / "audit.jsonl.1").read_bytes()
    for _ in range(3):
        log.finish(log.start("ask", "m", "prompt"))
    assert other.read_text() == "someone else's file\n"
    assert (tmp_path / "audit.jsonl.1").read_bytes() == rotated


def test_a_record_never_continues_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    whole = '{"time":"2026-12-06T10:00:00.000+00:00","model":"m","purpose":"ask","outcome":"ok"}'
    path.write_text(whole + "\n" + '{"time":"2026-12-06T10:00:01.000+00:00","mod')  # disk full
    log = _log(tmp_path, path)
    log.finish(log.start("ask", "m", "after"))
    lines = path.read_text().splitlines()
    assert lines[:2] == [whole, '{"time":"2026-12-06T10:00:01.000+00:00","mod']
    assert json.loads(lines[2])["purpose"] == "ask"  # the new record is whole, on its own line
    records, bad = read_records(path)
    assert len(records) == 2 and bad == ["audit.jsonl:2: not a JSON record"]


def test_an_audit_path_that_is_a_fifo_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    log = _log(tmp_path, fifo)
    started = time.monotonic()
    log.finish(log.start("ask", "m", "prompt"))  # opening a FIFO to write waits for a reader
    assert time.monotonic() - started < 2


def test_a_required_log_is_checked_before_the_request(tmp_path: Path) -> None:
    required = Policy(path="policy.toml", require_audit=True)
    unwritable = tmp_path / "audit.jsonl"
    unwritable.mkdir()  # a directory cannot be appended to, even by root
    config = replace(
        Config(), root=str(tmp_path), audit=AuditConfig(path=str(unwritable)), policy=required
    )
    sent = []
    with (
        pytest.raises(AuditUnavailable) as caught,
        AuditLog(config).request("ask", "m", "prompt"),
    ):
        sent.append("the request")  # never runs
    assert sent == [] and str(unwritable) in caught.value.message
    assert "require_audit" in caught.value.message
    # no repository to keep a relative log in
    with pytest.raises(AuditUnavailable, match="no repository"):
        AuditLog(replace(config, root="", audit=AuditConfig())).check()
    # not required: the request goes on and the failure is only logged
    with AuditLog(replace(config, policy=Policy())).request("ask", "m", "prompt"):
        sent.append("the request")
    assert sent == ["the request"]
