"""Defer LanceDB's REST namespace client until something uses it.

``import lancedb`` imports ``lance_namespace``, which imports ``lance_namespace_urllib3_client``:
an OpenAPI-generated client for LanceDB's REST catalog whose package ``__init__`` builds every API
class (pydantic-validated methods) at import. Enclave opens directories and object stores and
never talks to a REST catalog, yet that import was half of the CPU a CLI command spent before it
did anything (about 0.65 s of 1.3 s on a 2-core machine; bench/bench_cli.py).

:func:`defer` registers a finder for that one package: its submodules (the model classes that
``lance_namespace`` re-exports) import as usual, but the package's own ``__init__`` (the API
classes) runs only when an attribute the submodules did not set is first read. Nothing changes
for code that uses the client: the first attribute access loads it whole, under a lock.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

PACKAGE = "lance_namespace_urllib3_client"


class _DeferInit(importlib.abc.Loader):
    """Creates the package with its ``__path__`` (so submodules import) and runs its
    ``__init__`` at the first read of an attribute it would have defined."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real
        self.lock = threading.Lock()

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module object, with __path__ and __spec__ set from the spec

    def exec_module(self, module: ModuleType) -> None:
        real, lock = self.real, self.lock

        def load_on_first_use(name: str) -> Any:
            if name.startswith("__"):  # dunders (__file__, __all__ probes) never load it
                raise AttributeError(name)
            with lock:
                if module.__dict__.get("__getattr__") is load_on_first_use:
                    del module.__dict__["__getattr__"]
                    real.exec_module(module)
            return getattr(module, name)

        module.__dict__["__getattr__"] = load_on_first_use


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != PACKAGE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return spec  # not installed, or not a package: the import system decides as usual
        spec.loader = _DeferInit(spec.loader)
        return spec


def defer() -> None:
    """Install the finder once, before lancedb is first imported (later, it changes nothing)."""
    if PACKAGE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
