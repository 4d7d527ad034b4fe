"""An S3-compatible object store for tests: moto's S3 server on loopback, one per test session.

A real HTTP server speaking S3's wire protocol (conditional writes included), so LanceDB, boto3
and the `enclave` CLI in subprocesses all reach it as they would reach AWS. Each test gets a
bucket of its own (``s3_store``) and the AWS_* variables that point at it.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_buckets = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's S3 server in a child process; ``stop()`` and ``start()`` simulate an outage."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # e.g. {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}: moto then checks credentials as AWS does
        self.env = env or {}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's S3 server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@dataclass
class S3Store:
    """A fresh bucket on the session's server, and the environment that reaches it."""

    endpoint: str
    bucket: str
    env: dict[str, str]

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def objects(self) -> dict[str, str]:
        """Every object of the bucket and its ETag (what a read-only client must not change)."""
        found: dict[str, str] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["ETag"]
        return found


@pytest.fixture
def s3_store(s3_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A new bucket; the AWS_* variables are set in this process too (in-process indexes)."""
    bucket = f"team-index-{os.getpid()}-{next(_buckets)}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = S3Store(s3_server.endpoint, bucket, {**os.environ, **env})
    store.client().create_bucket(Bucket=bucket)
    return store
