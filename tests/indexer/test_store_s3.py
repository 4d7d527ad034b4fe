"""An index in an S3-compatible object store (what a CI job builds once for a whole team).

moto's S3 server runs on loopback: a real HTTP object store speaking S3's wire protocol.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.repos import make_repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        raise RuntimeError("moto's S3 server did not start")
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


def test_index_in_s3_then_search_it(tmp_path: Path, s3_endpoint: str) -> None:
    import boto3

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "ENCLAVE_EMBEDDING_PROVIDER": "none",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="team-index")
    root = make_repo(
        tmp_path / "repo",
        {
            "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n"
        },
    )
    uri = "s3://team-index/repo"

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
