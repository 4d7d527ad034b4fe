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


SESSION = '''class Session:
    """A connection pool with retries."""

    def send(self, request):
        """Send the request and follow redirects until a final
        response, at most max_redirects times.

        Raises TooManyRedirects when the limit is reached.
        """
        target = self._resolve(request)
        return target


    def _resolve(self, request):
        """Where the request goes after its redirects."""
        return request.url
'''
API = '''from net.session import Session


def fetch(url):
    """Fetch one URL with a new session."""
    return Session().send(url)
'''
TEST_SESSION = '''def test_send_follows_redirects():
    """Send follows redirects until a final response."""
    assert True
'''

LOGIN = '''def login(user):
    """Log in as the CI user; password=Docstring-pw-9 on staging."""
    return user.name
'''


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = {
        "net/session.py": SESSION,
        "net/api.py": API,
        "tests/test_session.py": TEST_SESSION,
        "net/login.py": LOGIN,
        "deploy.sh": secrets.DEPLOY_SH,
        ".enclave/glossary.md": secrets.GLOSSARY_MD,
    }
    root = make_repo(tmp_path / "lib", files)
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ENCLAVE_EMBEDDING_PROVIDER", "none")
    monkeypatch.chdir(root)
    assert main(["index", ".", "-q"]) == 0
    return root


def _pairs(out: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for name in ("train.jsonl", "valid.jsonl"):
        for line in (out / name).read_text().splitlines():
            user, assistant = json.loads(line)["messages"]
            pairs[user["content"]] = assistant["content"]
    return pairs


def test_pairs_have_whole_sentences_real_explanations_and_no_tests(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    capsys.readouterr()
    assert main(["dataset", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    pairs = _pairs(out)

    # "write": the first paragraph, whole sentences (not the first physical line) -> the code
    # without its docstring (the prompt carries it)
    write = pairs[
        "Write the method `Session.send` for net/session.py: Send the request and follow "
        "redirects until a final response, at most max_redirects times."
    ]
    assert write.startswith("def send(self, request):\n    target = self._resolve(request)")
    assert "follow redirects" not in write and "TooManyRedirects" not in write
    assert not any(p.endswith("until a final") for p in pairs)

    # "explain": the signature and where, the whole doc, what it calls, what calls it
    explain = next(a for p, a in pairs.items() if p.startswith("Explain") and "\n\ndef send(" in p)
    assert explain.startswith("`def send(self, request):` is a method in net/session.py (lines ")
    assert "a member of `Session`" in explain
    assert "Raises TooManyRedirects when the limit is reached." in explain
    assert "It calls `Session._resolve` (net/session.py:14)." in explain
    assert "It is called by `fetch` (net/api.py:6)." in explain
    assert len(explain) > 3 * len("Send the request and follow redirects until a final")

    # tests are left out, and the report says so, by reason, on stderr and in the JSON
    assert not any("test_send_follows_redirects" in p or "tests/" in p for p in pairs)
    assert report["dropped"]["test code (--include-tests keeps it)"] == 2
    assert "left out" in captured.err and "test code (--include-tests keeps it)" in captured.err

    # the secrets of the shell script and the glossary are in neither file
    everything = "".join(Path(f).read_text() for f in report["files"])
    assert secrets.leaked(everything) == [] and "<redacted:" in everything
    assert "Docstring-pw-9" not in everything  # prose in a docstring: no quotes needed
    assert pairs["What does STAGING mean in this project?"] == (
        "STAGING means the staging database; password=<redacted:secret-keyword> for the CI user."
    )

    assert main(["dataset", str(out), "--json", "--include-tests"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "test code (--include-tests keeps it)" not in report["dropped"]
    assert any("test_send_follows_redirects" in p for p in _pairs(out))


def test_secrets_in_csv_rows_never_reach_the_files(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "ops.csv"
    rows.write_text(
        "question,answer\n"
        f"How do I reach the staging db?,Use db_password = {secrets.ROW_PASSWORD} as the CI user\n"
        f"Which npm token does CI use?,{secrets.NPM}\n"
        f"What is the OpenAI key?,It is {secrets.OPENAI_PROJECT} in the vault\n"
    )
    out = tmp_path / "data"
    assert main(["dataset", str(out), "--csv", str(rows), "--no-index", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    everything = "".join(Path(f).read_text() for f in report["files"])
    assert everything.count("How do I reach the staging db?") == 2
    assert secrets.leaked(everything) == []
    assert "db_password = <redacted:secret-keyword>" in everything


@pytest.mark.parametrize("target", ["a-file", "/proc/enclave-data", "/proc/self/status/x"])
def test_an_output_that_cannot_be_a_directory_is_one_line(
    target: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if target == "a-file":
        (repo / "a-file").write_text("keep me\n")
    assert main(["dataset", target]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: ") and len(err.strip().splitlines()) == 1, err
    assert "pass a directory you can write to" in err and "Traceback" not in err
    if target == "a-file":
        assert "a-file is a file, not a directory" in err
        assert (repo / "a-file").read_text() == "keep me\n"
