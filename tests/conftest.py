"""Shared pytest setup: the test Ollama server fixtures (tests/support/ollama_fixtures.py),
llama-cpp-python's own OpenAI-compatible server (tests/support/llama_cpp_server.py) and the
environment every test starts from."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.support.ollama_fixtures",
    "tests.support.s3",
    "tests.support.llama_cpp_server",
]


@pytest.fixture(autouse=True)
def _no_inherited_safe_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's main() sets PYTHONSAFEPATH for the processes it starts; run in-process, it would
    stay set for every later test's subprocesses and make them safer than a user's are."""
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)


@pytest.fixture(autouse=True)
def _model_servers_healthy() -> None:
    """Host health is one record per host URL for the whole process (enclave.modelservers):
    each test starts as a new process would, with every host up."""
    from enclave.modelservers import forget_health

    forget_health()
