"""An index in an S3-compatible object store (what a CI job builds once for a whole team).

moto's S3 server runs on loopback (tests/support/s3.py): a real HTTP object store speaking S3's
wire protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.repos import make_repo
from tests.support.s3 import S3Store


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
