"""An index in an S3-compatible object store (what a CI job builds once for a whole team).

moto's S3 server runs on loopback (tests/support/s3.py): a real HTTP object store speaking S3's
wire protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.repos import make_repo
from tests.support.s3 import MotoServer, S3Store, free_port

NO_EMBEDDINGS = json.dumps({"embedding": {"provider": "none"}})


def test_index_in_s3_then_search_it(tmp_path: Path, s3_store: S3Store) -> None:
    env = {**s3_store.env, "ENCLAVE_EMBEDDING_PROVIDER": "none"}
    root = make_repo(
        tmp_path / "repo",
        {
            "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n"
        },
    )
    uri = f"s3://{s3_store.bucket}/repo"

    def enclave(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-P", "-m", "enclave.server.cli", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = enclave("index", str(root), "--db", uri, "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files_indexed"] == 1
    assert not (root / ".enclave").exists()  # nothing written into the working tree
    # a teammate's checkout elsewhere reads the shared index
    done = enclave("search", "total with tax", "--db", uri, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["path"] == "billing/invoice.py"
    again = enclave("index", str(root), "--db", uri, "--json", cwd=root)
    assert json.loads(again.stdout)["files_indexed"] == 0  # incremental against the remote catalog
    assert list((tmp_path / "cache" / "enclave" / "locks").glob("*.lock"))
    # the write lease was released: no writer holds the index now
    assert not any(key.endswith("_enclave_write.lease") for key in s3_store.objects())


def _index_json(
    capsys: pytest.CaptureFixture[str], root: Path, uri: str
) -> tuple[int, dict[str, Any], list[str]]:
    from enclave.server.cli import main

    code = main(["index", str(root), "--db", uri, "--json", "--settings", NO_EMBEDDINGS])
    out, err = capsys.readouterr()
    return code, json.loads(out), err.strip().splitlines()


def test_a_store_that_cannot_be_used_is_one_line_and_a_json_summary(
    tmp_path: Path,
    s3_store: S3Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing bucket, an endpoint that does not answer, wrong credentials: one line naming
    the problem and the fix (no Rust debug text), and the CI artifact holds a JSON summary with
    exit_code 1."""
    root = make_repo(tmp_path / "repo", {"a.py": "def alpha():\n    return 1\n"})
    dead = f"http://127.0.0.1:{free_port()}"
    cases: list[tuple[str, dict[str, str], str]] = [
        ("s3://no-such-bucket/x", {},
         f"bucket no-such-bucket does not exist at {s3_store.endpoint}")
    ]  # fmt: skip
    cases.append(
        (f"s3://{s3_store.bucket}/x", {"AWS_ENDPOINT_URL": dead},
         f"the object store at {dead} does not answer (bucket {s3_store.bucket})")
    )  # fmt: skip
    checking = MotoServer({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # checks credentials as AWS
    checking.start()
    try:
        cases.append(
            ("s3://team/x", {"AWS_ENDPOINT_URL": checking.endpoint},
             f"{checking.endpoint} refused the credentials for bucket team (InvalidAccessKeyId)")
        )  # fmt: skip
        for uri, env, message in cases:
            with monkeypatch.context() as patch:
                for name, value in env.items():
                    patch.setenv(name, value)
                code, summary, err = _index_json(capsys, root, uri)
            assert code == 1 and summary["exit_code"] == 1, err
            assert summary["error"] == message and summary["fix"] and summary["db"] == uri
            assert err == [f"enclave: error: {message} ({summary['fix']})"]
            assert "RetryError" not in err[0] and ".rs" not in err[0] and len(err[0]) < 400
    finally:
        checking.stop()
