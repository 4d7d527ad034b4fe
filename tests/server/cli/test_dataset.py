"""`enclave dataset` on a repository with planted secrets, duplicates and a malformed CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from enclave.server.cli import main
from tests.server import secrets
from tests.support.repos import make_repo

OPS = '''def add(a, b):
    """Add two numbers and return the sum."""
    return a + b


def scale(values, factor):
    """Multiply every value by factor."""
    return [v * factor for v in values]
'''
FILES = {
    "calc/ops.py": OPS,
    "calc/ops_copy.py": OPS,  # the same definitions again: near duplicates (another path)
    "deploy/db.py": (
        "def connect():\n"
        '    """Open the connection to the orders database."""\n'
        f'    return "postgres://admin:{secrets.DB_PASSWORD}@db.internal:5432/app"\n'
    ),
    ".enclave/glossary.md": "EBD: electronic brake-force distribution\nABS: anti-lock braking\n",
}
CSV = (
    (
        "question,answer,owner\n"  # 1: header naming the columns (extra one ignored)
        "How do I deploy?,Run make deploy from the main branch.,ops\n"  # 2
        "Where is the CI token?,"
        f"It is {secrets.GITHUB} in the vault.,sec\n"  # 3: a secret in an answer
        "How do I deploy?,Run make deploy from the main branch.,ops\n"  # 4: exact duplicate
        "how do I  deploy?,Run make deploy from the  main branch!,ops\n"  # 5: near duplicate
        "only one column\n"  # 6: malformed
        "What is EBD for?,,ops\n"  # 7: empty answer
    ).encode()
    + b"Why \xff\xfe?,Because.,x\n"
    + (  # 8: not UTF-8
        b"How are releases named?,After rivers.,ops\n"  # 9
    )
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    (tmp_path / "my-docs.csv").write_bytes(CSV)
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ENCLAVE_EMBEDDING_PROVIDER", "none")
    monkeypatch.chdir(root)
    assert main(["index", ".", "-q"]) == 0
    return root


def test_export_redacts_deduplicates_splits_and_reports_bad_rows(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    argv = ["dataset", str(out), "--csv", str(tmp_path / "my-docs.csv"), "--validation", "0.25"]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["bad_rows"] == [
        "my-docs.csv:6: expected at least 2 columns, got 1",
        "my-docs.csv:7: the question or the answer is empty",
        "my-docs.csv:8: not UTF-8 text (or a NUL byte)",
    ]
    assert "skipped my-docs.csv:6" in captured.err
    assert report["by_source"] == {"code": 3, "explanation": 3, "glossary": 2, "csv": 3}
    assert report["exact_duplicates"] == 1  # csv line 4
    assert report["near_duplicates"] == 5  # csv line 5 and ops_copy.py's four pairs
    assert report["redactions"] >= 1
    assert report["train"] + report["validation"] == report["pairs"] == 11
    assert report["validation"] == 3

    written = {Path(f).name: Path(f).read_text() for f in report["files"]}
    assert set(written) == {"train.jsonl", "valid.jsonl", "train.csv", "valid.csv"}
    everything = "".join(written.values())
    assert secrets.leaked(everything) == [] and "<redacted:" in everything
    assert everything.count("How do I deploy?") == 2  # once in JSONL, once in CSV
    assert "ops_copy.py" not in everything
    messages = [json.loads(line)["messages"] for line in written["train.jsonl"].splitlines()]
    assert all([m["role"] for m in pair] == ["user", "assistant"] for pair in messages)
    rows = list(csv.reader(io.StringIO(written["valid.csv"])))
    assert rows[0] == ["prompt", "completion"] and len(rows) == 4
    pairs = {m[0]["content"]: m[1]["content"] for m in messages}
    pairs |= {r[0]: r[1] for r in rows[1:]}
    assert pairs["What does EBD mean in this project?"] == (
        "EBD means electronic brake-force distribution."
    )
    assert (
        "return a + b"
        in pairs["Write the function `add` for calc/ops.py: Add two numbers and return the sum."]
    )

    # Seeded: the same split again; another seed, another split.
    assert main([*argv, "-q"]) == 0
    assert (out / "train.jsonl").read_text() == written["train.jsonl"]
    assert main([*argv, "-q", "--seed", "8"]) == 0
    assert (out / "train.jsonl").read_text() != written["train.jsonl"]


def test_a_missing_csv_is_a_clear_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "out", "--csv", "nope.csv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: no such CSV file: nope.csv") and "Traceback" not in err
