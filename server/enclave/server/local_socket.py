"""The local socket through which `enclave status`, `search` and `context` ask a running server.

A language server that an editor runs for a workspace has the index open and warm; a CLI command
that opens it again pays for importing LanceDB and pyarrow (most of a second) before it reads a
byte. So each server listens on a Unix socket of its own for each workspace folder, and those
three commands ask it first, falling back to reading the index themselves whenever the server
cannot give the answer they would have computed.

Where: ``$XDG_RUNTIME_DIR/enclave/`` (else ``<temp dir>/enclave-<uid>/``), a folder that must be
the user's own, mode 0700 and not a link; the socket is named by a hash of the workspace folder's
real path and is mode 0600. The server also checks the peer's user id (Linux). Anything else
(another owner, wider permissions, a path too long for a socket) means no socket: the command
reads the index itself.

The exchange is one JSON line each way, then the connection closes::

    -> {"protocol": 1, "tool": "<enclave version>", "method": "status" | "search" | "context",
        "root": "<real path>", "fingerprint": "<sha256 of the settings the method depends on>",
        "params": {...}}
    <- {"result": {...}}   or   {"fallback": "<why the server did not answer>"}

The server answers only when its version, its folder and the settings that shape the answer are
the command's own (the fingerprint), so the answer is the one the command would have printed. This
module uses only the standard library: the command imports it before anything heavy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from enclave.config import Config

log = logging.getLogger(__name__)

PROTOCOL = 1
METHODS = ("status", "search", "context")
# The settings each answer depends on: the command's and the server's must hash the same.
SECTIONS: dict[str, tuple[str, ...]] = {
    "status": ("index", "embedding", "ollama", "trust", "policy"),
    "search": ("index", "embedding", "ollama", "trust", "policy"),
    "context": ("index", "embedding", "ollama", "completion", "trust", "policy"),
}
MAX_REQUEST = 64 * 1024  # bytes of one request line (a query, a path and a few numbers)
MAX_REPLY = 64 * 1024 * 1024  # bytes of one answer (a search for 1,000 chunks with their text)
ASK_TIMEOUT_S = 5.0  # past this the command stops waiting and reads the index itself
SOCKET_PATH_MAX = 100  # bytes: sun_path holds 104 (macOS) to 108 (Linux) with its NUL


def runtime_dir(*, create: bool = False) -> Path | None:
    """The user's own folder for the sockets, or None where it cannot be trusted (another
    owner, group or world access, a link) or Unix sockets do not exist."""
    if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute() and Path(runtime).is_dir():
        folder = Path(runtime) / "enclave"
    else:
        folder = Path(tempfile.gettempdir()) / f"enclave-{os.getuid()}"
    if create:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            log.debug("no socket folder %s: %s", folder, exc)
            return None
    try:
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning(
            "not using %s for the editor's socket: it must be a folder of yours alone (mode 0700)",
            folder,
        )
        return None
    return folder


def socket_path(root: Path, *, create: bool = False) -> Path | None:
    """The socket of the server for the workspace folder ``root`` (None: no socket here)."""
    folder = runtime_dir(create=create)
    if folder is None:
        return None
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:24]
    path = folder / f"{key}.sock"
    return path if len(os.fsencode(path)) <= SOCKET_PATH_MAX else None


def fingerprint(config: Config, method: str) -> str:
    """A hash of the settings that shape ``method``'s answer (never the settings themselves:
    they may hold an API key)."""
    shown = {name: getattr(config, name) for name in SECTIONS[method]}

    def loose(value: Any) -> Any:
        try:
            return json_default(value)
        except TypeError:
            return str(value)

    text = json.dumps(shown, default=loose, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def request_for(method: str, root: Path, config: Config, tool: str, **params: Any) -> bytes:
    """The request line the command sends."""
    message = {
        "protocol": PROTOCOL,
        "tool": tool,
        "method": method,
        "root": str(Path(root).resolve()),
        "fingerprint": fingerprint(config, method),
        "params": params,
    }
    return json.dumps(message).encode() + b"\n"


def ask(path: Path, request: bytes, timeout: float = ASK_TIMEOUT_S) -> tuple[Any, str]:
    """Send ``request`` to the server at ``path``: (its result, "") or (None, why not).

    Never raises: no server, a refused connection, a hung or dead server, a malformed or
    oversized reply are each a reason to read the index in this process instead."""
    deadline = time.monotonic() + timeout
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(timeout)
        client.connect(str(path))
        client.sendall(request)
        client.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while True:
            client.settimeout(max(deadline - time.monotonic(), 0.001))
            part = client.recv(1 << 16)
            if not part:
                break
            reply += part
            if len(reply) > MAX_REPLY:
                return None, f"its answer is over {MAX_REPLY} bytes"
    except FileNotFoundError:
        return None, "no language server serves this folder"
    except TimeoutError:
        return None, f"the language server did not answer within {timeout:g} s"
    except OSError as exc:
        return None, f"the language server's socket failed ({exc.strerror or exc})"
    finally:
        client.close()
    try:
        answer = json.loads(reply)
    except ValueError:
        return None, "the language server's answer is not JSON"
    if isinstance(answer, dict) and "result" in answer:
        return answer["result"], ""
    if isinstance(answer, dict) and isinstance(answer.get("fallback"), str):
        return None, f"the language server did not answer: {answer['fallback']}"
    return None, "the language server's answer has neither a result nor a reason"


def refusal(message: Any, root: Path, config: Config, tool: str) -> str:
    """Why the server must not answer ``message`` for the folder ``root`` ("" when it may)."""
    if not isinstance(message, dict):
        return "the request is not a JSON object"
    if message.get("protocol") != PROTOCOL:
        return f"protocol {message.get('protocol')!r} is not {PROTOCOL}"
    if message.get("tool") != tool:
        return f"the command is Enclave {message.get('tool')}, the server {tool}"
    method = message.get("method")
    if method not in METHODS:
        return f"unknown method {method!r}"
    if message.get("root") != str(Path(root).resolve()):
        return "the server serves another folder"
    if message.get("fingerprint") != fingerprint(config, method):
        sections = ", ".join(SECTIONS[method])
        return f"the command's settings ({sections}) are not the server's"
    if not isinstance(message.get("params"), dict):
        return "params must be an object"
    return ""


def peer_is_this_user(sock: socket.socket | None) -> bool:
    """The process at the other end runs as this user (checked where the system tells: Linux;
    elsewhere the folder's 0700 mode is the check)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return sock is not None
    import struct

    try:
        credentials = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


def json_default(item: Any) -> Any:
    """JSON for what the CLI's ``--json`` documents hold besides plain values: dataclasses as
    objects, paths as strings."""
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if isinstance(item, Path):
        return str(item)
    raise TypeError(f"cannot encode {type(item).__name__}")


def encode(value: Any) -> bytes:
    """One reply line."""
    return json.dumps(value, default=json_default).encode() + b"\n"
