"""The server's side of the local socket: `enclave status`, `search` and `context` asked here.

For each workspace folder the server listens on the socket ``enclave.server.local_socket`` names
(the user's own folder, mode 0600, the peer's user id checked) and answers from the index it
already has open, on a worker thread, so the command skips opening the index itself. It answers
only what the command would have computed: same version, same folder, same settings for that
answer (``local_socket.refusal``), an index that is open and not a team's layered one; anything
else gets a ``fallback`` with the reason and the command reads the index itself. The file that
`context` names is read through the trust boundary, as the command reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

from enclave import package_version
from enclave.errors import EnclaveError
from enclave.indexer.api import Index
from enclave.server import local_socket
from enclave.server.lsp.services import Root, Services

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0  # a client that connects and says nothing is dropped after this
ANSWERING = 2  # requests answered at once (each on a worker thread); more wait their turn
MODES = ("hybrid", "lexical", "semantic")
MAX_K = 1000


class Refusal(Exception):
    """The server will not answer this request; the command reads the index itself."""


class CliSocket:
    """One listening socket per workspace folder, opened at start and closed at shutdown."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._servers: dict[Path, tuple[asyncio.Server, Path, int]] = {}
        self._answering = asyncio.Semaphore(ANSWERING)

    async def open(self, root: Root) -> None:
        """Listen for ``root`` (a log line and no socket when it cannot be done safely)."""
        if root.path in self._servers:
            return
        path = local_socket.socket_path(root.path, create=True)
        if path is None:
            return
        if os.path.lexists(path):
            if await _alive(path):
                log.info("another Enclave server answers the CLI for %s", root.path)
                return
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a server that did not shut down
        try:
            server = await asyncio.start_unix_server(
                functools.partial(self._serve, root), path=str(path), limit=local_socket.MAX_REQUEST
            )
            path.chmod(0o600)
            inode = path.stat().st_ino
        except OSError as exc:
            log.info("no socket for the CLI at %s: %s", path, exc)
            return
        self._servers[root.path] = (server, path, inode)
        log.debug("answering the CLI for %s at %s", root.path, path)

    def close(self, folder: Path) -> None:
        """Stop listening for the workspace folder ``folder`` and remove its socket."""
        entry = self._servers.pop(folder, None)
        if entry is None:
            return
        server, path, inode = entry
        server.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == inode:  # ours, not a socket a newer server made since
                path.unlink()

    def close_all(self) -> None:
        for folder in list(self._servers):
            self.close(folder)

    async def _serve(
        self, root: Root, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if not local_socket.peer_is_this_user(writer.get_extra_info("socket")):
                log.warning("refused a connection to the CLI socket from another user")
                return
            try:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
                async with self._answering:
                    reply: dict[str, Any] = {"result": await self._answer(root, line)}
            except Refusal as why:
                reply = {"fallback": str(why)}
            except (ValueError, asyncio.LimitOverrunError):
                reply = {"fallback": f"the request is over {local_socket.MAX_REQUEST} bytes"}
            except TimeoutError:
                return
            except Exception as exc:  # the command still gets its answer, from the index itself
                log.warning("answering the CLI failed: %s", exc, exc_info=True)
                reply = {"fallback": f"the server failed: {exc}"}
            writer.write(local_socket.encode(reply))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the command went away: it reads the index itself
        finally:
            writer.close()

    async def _answer(self, root: Root, line: bytes) -> Any:
        try:
            message = json.loads(line)
        except ValueError:
            raise Refusal("the request is not JSON") from None
        why = local_socket.refusal(message, root.path, root.config, package_version())
        if why:
            raise Refusal(why)
        index = root.index
        if index is None or root.error is not None or not root.opened.is_set():
            raise Refusal("the server has not opened the index yet")
        from enclave.indexer.layered import LayeredIndex

        if isinstance(index, LayeredIndex):
            raise Refusal("a team's shared index is caught up by the command itself")
        answer = ANSWERS[message["method"]]
        return await asyncio.to_thread(answer, index, root, message["params"])


def _status(index: Index, root: Root, params: dict[str, Any]) -> Any:
    return index.status()


def _search(index: Index, root: Root, params: dict[str, Any]) -> Any:
    query, k, mode = params.get("query"), params.get("k"), params.get("mode")
    prefix, language = params.get("path_prefix"), params.get("language")
    if not isinstance(query, str) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise Refusal("search needs a query and k from 1 to 1000")
    if mode not in MODES or not all(v is None or isinstance(v, str) for v in (prefix, language)):
        raise Refusal("search's mode, path_prefix or language is not valid")
    return index.search(query, k=k, mode=mode, path_prefix=prefix, language=language)


def _context(index: Index, root: Root, params: dict[str, Any]) -> Any:
    from enclave.server.completion.pipeline import prepare_completion
    from enclave.server.completion.report import report_of
    from enclave.server.trust import Boundary

    file, line, character = params.get("file"), params.get("line"), params.get("character")
    if not isinstance(file, str) or not isinstance(line, int) or not isinstance(character, int):
        raise Refusal("context needs a file, a line and a character")
    try:
        found = Boundary(root.config, [root.path]).read_file(Path(file))
    except EnclaveError as exc:  # the command says why, in its own words
        raise Refusal(f"the file cannot be read here ({exc.message})") from None
    lines = found.text.count("\n") + (0 if found.text.endswith("\n") else 1)
    if not 1 <= line <= max(lines, 1) or character < 0:
        raise Refusal("the position is not in the file")
    if not index.status().exists:
        raise Refusal("there is no index yet")
    prepared = prepare_completion(index, found.path, found.text, line - 1, character, root.config)
    return report_of(prepared)


ANSWERS = {"status": _status, "search": _search, "context": _context}


async def _alive(path: Path) -> bool:
    """Something accepts connections at ``path``."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
