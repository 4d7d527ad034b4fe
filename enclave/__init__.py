"""Enclave: a private code assistant (language server + command line) over a local index and model.

One import namespace, three parts:

- ``enclave.config`` and ``enclave.errors``: the shared core (one configuration model, one error
  shape) that both halves use;
- ``enclave.indexer``: discover -> redact -> chunk -> embed -> store -> search; a library a CI job
  can use alone (never imports the server or pygls);
- ``enclave.server``: the command line, the language server, the model client and the prompts.

``python -m enclave`` is the `enclave` command.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "enclave-lsp"


def package_version() -> str:
    """The installed distribution's version ("0+unknown" when running from a bare checkout)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
