"""Shared pytest setup: the test Ollama server fixtures (tests/support/ollama_fixtures.py), and a
guard that keeps the checkout's top-level folders from passing for packages.

Pytest puts the checkout on ``sys.path``, so ``indexer`` and ``server`` would import as top-level
packages here although no user has them: code that names them (an import, or a string such as
``resources.files("indexer")``) would pass the tests and fail for every user. The guard makes such
an import fail in the tests too.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest

pytest_plugins = ["tests.support.ollama_fixtures", "tests.support.s3"]

NOT_PACKAGES = ("indexer", "server")


class _NoTopLevelFolders(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] in NOT_PACKAGES:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: the package is enclave.{fullname}", name=fullname
            )
        return None


sys.meta_path.insert(0, _NoTopLevelFolders())


@pytest.fixture(autouse=True)
def _no_inherited_safe_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's main() sets PYTHONSAFEPATH for the processes it starts; run in-process, it would
    stay set for every later test's subprocesses and make them safer than a user's are."""
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
