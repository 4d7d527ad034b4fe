"""Ask the language server an editor runs for this folder, before opening the index here.

`enclave status`, `search` and `context` call :func:`ask_editor` first: when a server answers for
the folder with the same version and settings (``enclave.server.local_socket``), its answer is
printed as the command's own and the command never imports LanceDB. Otherwise (no editor, other
settings, a shared index, a server that is busy past the timeout) the command reads the index
itself; ``-v`` logs why. ``--no-server`` skips the question.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from enclave import package_version
from enclave.config import Config
from enclave.server import local_socket

log = logging.getLogger(__name__)


def ask_editor(
    args: argparse.Namespace, root: Path, config: Config, method: str, **params: Any
) -> Any | None:
    """The server's answer to ``method`` for ``root``, or None when this process must compute
    it (the reason is logged at debug level)."""
    if getattr(args, "no_server", False):
        return None
    path = local_socket.socket_path(root)
    if path is None:
        log.debug("no socket folder of this user's alone: reading the index here")
        return None
    request = local_socket.request_for(method, root, config, package_version(), **params)
    result, why = local_socket.ask(path, request)
    if why:
        log.debug("%s: reading the index here", why)
        return None
    log.debug("answered by the language server for %s", root)
    return result


def add_no_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="read the index in this process even when an editor's language server has it open",
    )
