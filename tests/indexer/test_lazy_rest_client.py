"""LanceDB's REST catalog client is not built until something uses it (enclave.indexer.lazy_rest_client)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from enclave.indexer.lazy_rest_client import PACKAGE


def _run(code: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-P", "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_opening_and_searching_an_index_leaves_the_rest_client_unbuilt(tmp_path: Path) -> None:
    out = _run(
        f"""
        import sys
        from enclave.indexer.store import Store  # noqa: F401  (imports lancedb through us)
        import lancedb
        db = lancedb.connect({str(tmp_path / "db")!r})
        table = db.create_table("t", data=[{{"text": "retry the request", "n": 1}}])
        rows = table.search().where("n = 1").limit(1).to_list()
        print(len(rows), "{PACKAGE}.api" in sys.modules, "{PACKAGE}" in sys.modules)
        """,
        tmp_path,
    )
    assert out == ["1", "False", "True"]


def test_the_first_use_of_the_client_builds_it_whole(tmp_path: Path) -> None:
    out = _run(
        f"""
        import sys
        import enclave.indexer
        import lancedb  # noqa: F401
        import {PACKAGE} as client
        before = "{PACKAGE}.api" in sys.modules
        print(before, client.ApiClient.__name__, client.TableApi.__name__, "{PACKAGE}.api" in sys.modules)
        """,
        tmp_path,
    )
    assert out == ["False", "ApiClient", "TableApi", "True"]
