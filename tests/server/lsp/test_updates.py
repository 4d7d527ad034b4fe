"""The indexing child process (enclave.server.lsp.updates) reports in typed events."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import IndexProblem, IndexSummary
from enclave.server.lsp.updates import Crashed, Done, Progress, Refused, update_in_child
from tests.support.repos import make_repo

LEXICAL = Config(embedding=EmbeddingConfig(provider="none"))


def test_every_event_crosses_a_process_boundary_as_itself() -> None:
    events = [
        Progress(3, 7, "3/7 files"),
        Done(IndexSummary(root="/repo", db="/repo/.enclave", full=True)),
        Refused("no such directory: /gone", "pass the path of a repository"),
        Crashed("RuntimeError: boom"),
    ]
    assert [pickle.loads(pickle.dumps(event)) for event in events] == events


def test_an_update_in_the_child_reports_progress_and_returns_its_summary(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"shapes.py": "def area(w, h):\n    return w * h\n"})
    seen: list[tuple[int, int, str]] = []
    summary = update_in_child(
        repo,
        LEXICAL,
        full=False,
        progress=lambda done, total, message: seen.append((done, total, message)),
        cancelled=lambda: False,
    )
    assert summary.files_indexed == 1
    assert seen[0] == (0, 1, "indexing 1 changed file(s)")
    assert seen[-1] == (1, 1, "done")


def test_a_refused_update_in_the_child_is_the_same_index_problem(tmp_path: Path) -> None:
    with pytest.raises(IndexProblem) as caught:
        update_in_child(
            tmp_path / "gone",
            LEXICAL,
            full=False,
            progress=lambda done, total, message: None,
            cancelled=lambda: False,
        )
    assert caught.value.message == f"no such directory: {tmp_path / 'gone'}"
    assert caught.value.fix == "pass the path of a repository"
