"""Reading a file that a user or a repository names (a policy, a configuration file, a glossary,
an adapter, ...): a regular file only, and never more than a bound.

A name can point at ``/dev/zero`` (endless), a FIFO (opening it for reading waits for a writer
forever), a directory or a socket. :func:`open_regular` opens without blocking and refuses
anything but a regular file; :func:`read_regular` also stops after ``limit`` bytes. Both raise
:class:`FileProblem` (one line: what is wrong and the fix); a missing file raises
``FileNotFoundError`` as ``open`` does, for callers to whom "absent" is a normal answer.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

from enclave.errors import EnclaveError

# What a settings-like file (a policy, config.toml, .enclave.toml) may weigh.
SETTINGS_LIMIT = 1024 * 1024


class FileProblem(EnclaveError):
    """A named file that cannot be used: not a regular file, too large, or unreadable."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path | str, what: str = "file") -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (links followed); never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblem(
            f"cannot read the {what} {path}: {exc.strerror or exc}", "check the file"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileProblem(
                f"the {what} {path} is {_kind(mode)}, not a regular file", "name a regular file"
            )
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``; :class:`FileProblem` past ``limit`` bytes."""
    with open_regular(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise FileProblem(
                f"cannot read the {what} {path}: {exc.strerror or exc}", "check the file"
            ) from None
    if len(data) > limit:
        raise FileProblem(
            f"the {what} {path} is larger than {limit:,} bytes", f"keep the {what} smaller"
        )
    return data


DATA_DIR = ".enclave"


def index_location(root: Path, db: str) -> str:
    """Where the index of ``root`` is, ``db`` being ``index.db`` as configured: a URI as
    written, a relative path inside the repository, empty for the default (``data_dir``)."""
    if not db:
        return str(data_dir(root))
    if "://" in db:
        return db
    path = Path(db).expanduser()  # a relative path in .enclave.toml means inside the repository
    return str(path if path.is_absolute() else root / path)


def data_dir(root: Path | str) -> Path:
    """``<root>/.enclave``, the folder Enclave writes its index, audit log and Modelfile in by
    default; :class:`FileProblem` when the repository made it a link (a cloned repository would
    then choose where the index and the log of its users go) or something other than a folder."""
    path = Path(root) / DATA_DIR
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path  # made on first write, as a folder
    except OSError as exc:
        raise FileProblem(f"cannot use {path}: {exc.strerror or exc}", "check the folder") from None
    if stat.S_ISLNK(mode):
        raise FileProblem(
            f"{path} is a link (to {os.readlink(path)}): a repository cannot choose where Enclave"
            " writes its index and audit log",
            f"remove the link (`rm {path}`; Enclave makes the folder), or set index.db and"
            " audit.path in your user configuration",
        )
    if not stat.S_ISDIR(mode):
        raise FileProblem(f"{path} is {_kind(mode)}, not a folder", f"remove {path}")
    return path
