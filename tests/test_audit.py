"""The audit log's file: whole JSON lines from several processes at once, rotation, summaries."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from enclave.audit import AuditLog, audit_path, read_records, select, summarize
from enclave.config import AuditConfig, Config

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
