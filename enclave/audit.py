"""The audit log: one JSON line per model request, appended to ``.enclave/audit.jsonl``.

Each record says when, who, which model, for what (``completion``, ``explain``, ``ask``,
``embedding``, ...), which files and line ranges were sent, the prompt's sha256, token counts,
how long it took and how it ended. The prompt itself only with ``audit.include_prompts = true``.

Appends are atomic: the line is built first and written with one ``os.write`` on a descriptor
opened with ``O_APPEND``, so several processes (the language server, CLI runs, CI) can write the
same file and every line stays whole. Past ``audit.max_bytes`` the file is rotated to
``audit.jsonl.1`` (``.2`` ...; ``audit.keep`` are kept) under an ``flock`` on ``audit.jsonl.lock``;
a writer that still holds the old file finishes its line there, which is still a whole line (so a
file can pass ``max_bytes`` by at most one line per process writing at that moment). A line torn
by a full disk is never continued: the next record starts on a line of its own.

Only a file Enclave writes is ever touched: the log must be a regular file that is empty or starts
with a record, and rotation moves or deletes only such files; anything else is left alone and
reported. With the administrator's ``require_audit``, a log that cannot be written refuses the
request before anything is sent (:meth:`AuditLog.check`).
Shared by the model client (server) and the embedding client (indexer).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enclave.config import Config
from enclave.errors import EnclaveError
from enclave.files import open_regular

log = logging.getLogger(__name__)

DEFAULT_FILE = ".enclave/audit.jsonl"
# Every record starts so (``Request.record`` puts the time first): how a file Enclave wrote is
# told from one it did not.
RECORD_START = b'{"time":"'


class AuditUnavailable(EnclaveError):
    """The audit log the administrator's policy requires cannot be written: nothing is sent."""

    kind = "audit-unavailable"


class NotAnAuditLog(OSError):
    """The file at the audit path (or a rotation's) was not written by Enclave: left alone."""


Source = tuple[str, int, int]  # path, first line, last line (1-based, inclusive)


def audit_path(config: Config) -> Path | None:
    """Where this configuration's audit log goes (None when off or no repository is known)."""
    audit = config.audit
    if not audit.enabled:
        return None
    given = Path(audit.path).expanduser() if audit.path else Path(DEFAULT_FILE)
    if given.is_absolute():
        return given
    return Path(config.root) / given if config.root else None


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


def prompt_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


@dataclass
class Request:
    """One model request being audited: filled in as it goes, written when it ends."""

    purpose: str
    model: str
    prompt: str
    sources: Sequence[Source] = ()
    prompt_tokens: int | None = None  # None: the server did not count them (no usage sent)
    output_tokens: int = 0
    outcome: str = "ok"
    started: float = field(default_factory=time.monotonic)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def record(self, include_prompt: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.at,
            "user": current_user(),
            "model": self.model,
            "purpose": self.purpose,
            "files": [{"path": p, "start_line": a, "end_line": b} for p, a, b in self.sources],
            "prompt_sha256": prompt_hash(self.prompt),
            "prompt_chars": len(self.prompt),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "duration_ms": round((time.monotonic() - self.started) * 1000),
            "outcome": self.outcome,
        }
        if include_prompt:
            out["prompt"] = self.prompt
        return out


class AuditLog:
    """Appends records for one configuration; a no-op when the audit log is off."""

    def __init__(self, config: Config) -> None:
        self.path = audit_path(config)
        # a path under the repository must stay there: a cloned repository's `.enclave` link
        # must not choose where its users' log is written
        relative = not Path(config.audit.path or DEFAULT_FILE).expanduser().is_absolute()
        self.inside = Path(config.root).resolve() if relative and config.root else None
        self.include_prompts = config.audit.include_prompts
        self.max_bytes = config.audit.max_bytes
        self.keep = config.audit.keep
        self.required = bool(config.policy.require_audit)
        self._warned = False

    def check(self) -> None:
        """When the policy requires the audit log: raise :class:`AuditUnavailable` unless a
        record can be appended now (called before a request is sent)."""
        if not self.required:
            return
        fix = "make the folder writable, or set audit.path to a file you can write"
        if self.path is None:
            raise AuditUnavailable(
                "the administrator's policy requires an audit log (require_audit) and there is "
                "no repository to keep it in, so nothing is sent",
                "run Enclave inside a repository, or set audit.path to an absolute file",
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(self._open())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise AuditUnavailable(
                f"the audit log {self.path} cannot be written ({reason}) and the administrator's "
                "policy requires it (require_audit), so nothing is sent",
                fix,
            ) from None

    def start(
        self, purpose: str, model: str, prompt: str, sources: Sequence[Source] = ()
    ) -> Request:
        return Request(purpose, model, prompt, tuple(sources))

    def finish(self, request: Request) -> None:
        """Write ``request``'s record; a failure to write is logged, never raised."""
        if self.path is None:
            return
        try:
            self.append(request.record(self.include_prompts))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot write the audit log %s: %s", self.path, exc)

    @contextlib.contextmanager
    def request(
        self, purpose: str, model: str, prompt: str, sources: Sequence[Source] = ()
    ) -> Iterator[Request]:
        """Audit the request made inside the ``with`` block; its outcome is set from how the
        block ends (an exception's ``kind`` attribute, ``cancelled``, or ``error``). A required
        log that cannot be written raises before the block runs: the request is never made."""
        self.check()
        request = self.start(purpose, model, prompt, sources)
        try:
            yield request
        except BaseException as exc:
            request.outcome = outcome_of(exc)
            raise
        finally:
            self.finish(request)

    def append(self, record: dict[str, Any]) -> None:
        """One line, one ``os.write`` on an ``O_APPEND`` descriptor (rotating first if due)."""
        assert self.path is not None
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._open()
        try:
            if os.fstat(fd).st_size + len(line) > self.max_bytes and os.fstat(fd).st_size > 0:
                os.close(fd)
                fd = -1
                self._rotate(len(line))
                fd = self._open()
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a line torn by a full disk
                line = b"\n" + line  # (another writer's whole line meanwhile: a blank line)
            written = os.write(fd, line)
            if written != len(line):  # a full disk: the line is cut; say so
                raise OSError(f"only {written} of {len(line)} bytes written")
        finally:
            if fd >= 0:
                os.close(fd)

    def _open(self) -> int:
        """The log opened for appending: a regular file Enclave wrote (never a FIFO, a device
        or someone's file), without blocking."""
        assert self.path is not None
        if self.inside and not self.path.parent.resolve().is_relative_to(self.inside):
            raise NotAnAuditLog(
                f"{self.path.parent} leads outside the repository (a link), so the audit log is"
                " not written there; remove the link, or set audit.path in your user configuration"
            )
        # read too: the first bytes say whose file it is, the last whether a line was torn
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotAnAuditLog(f"{self.path} is not a regular file")
            if not _starts_as_a_log(fd):
                raise NotAnAuditLog(f"{self.path} is not an Enclave audit log; it is left alone")
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _rotate(self, incoming: int) -> None:
        assert self.path is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO: ENXIO, no wait
        lock = os.open(f"{self.path}.lock", flags, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return
            if size + incoming <= self.max_bytes:  # another writer rotated it meanwhile
                return
            chain = [self.path, *(Path(f"{self.path}.{n}") for n in range(1, self.keep + 1))]
            for file in chain:  # moved or deleted below: each must be a log Enclave wrote
                if not _is_log_file(file):
                    raise NotAnAuditLog(
                        f"{file} is not an Enclave audit log, so the log is not rotated (nothing "
                        "is moved or deleted)"
                    )
            for n in range(self.keep - 1, 0, -1):
                older = Path(f"{self.path}.{n}")
                if older.exists():
                    os.replace(older, f"{self.path}.{n + 1}")
            if self.keep > 0:
                os.replace(self.path, f"{self.path}.1")
            else:
                self.path.unlink()
        finally:
            os.close(lock)


def _starts_as_a_log(fd: int) -> bool:
    """The open file is empty or starts as a record does (a torn first record included)."""
    head = os.pread(fd, len(RECORD_START), 0)
    return RECORD_START.startswith(head)


def _is_log_file(path: Path) -> bool:
    """``path`` does not exist, or is a regular file that starts as a record does."""
    try:
        info = path.stat()  # a link is followed: what it leads to must be a log too
    except FileNotFoundError:
        return not path.is_symlink()
    if not stat.S_ISREG(info.st_mode):
        return False
    try:
        with path.open("rb") as handle:
            return RECORD_START.startswith(handle.read(len(RECORD_START)))
    except OSError:
        return False


def outcome_of(exc: BaseException) -> str:
    import asyncio

    if isinstance(exc, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        return "cancelled"
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) else "error"


# -- reading it back (`enclave audit`) -----------------------------------------------------------


def log_files(path: Path) -> list[Path]:
    """The current file and its rotations, oldest first."""
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [*rotated, *([path] if path.exists() else [])]


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of the log and its rotations, and a note per line that is not a record."""
    records: list[dict[str, Any]] = []
    bad: list[str] = []
    for file in log_files(path):
        with open_regular(file, "audit log") as handle:  # a FIFO or a device: FileProblem
            for number, raw in enumerate(handle, 1):
                if not raw.strip():  # the line break put after a torn line
                    continue
                try:
                    value = json.loads(raw)
                except ValueError:
                    bad.append(f"{file.name}:{number}: not a JSON record")
                    continue
                if isinstance(value, dict):
                    records.append(value)
                else:
                    bad.append(f"{file.name}:{number}: not a JSON object")
    return records, bad


def select(
    records: Sequence[dict[str, Any]],
    *,
    since: datetime | None = None,
    model: str | None = None,
    purpose: str | None = None,
) -> list[dict[str, Any]]:
    def full(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"

    out = []
    for record in records:
        if model and full(str(record.get("model", ""))) != full(model):
            continue
        if purpose and record.get("purpose") != purpose:
            continue
        if since is not None:
            try:
                when = datetime.fromisoformat(str(record.get("time", "")))
            except ValueError:
                continue
            if when < since:
                continue
        out.append(record)
    return out


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Requests, tokens and failures by model, by purpose and by day."""

    def group(key: str) -> dict[str, dict[str, int]]:
        groups: dict[str, dict[str, int]] = {}
        for record in records:
            name = str(record.get(key, "?")) if key != "day" else str(record.get("time", ""))[:10]
            entry = groups.setdefault(
                name, {"requests": 0, "prompt_tokens": 0, "output_tokens": 0, "failed": 0}
            )
            entry["requests"] += 1
            entry["prompt_tokens"] += int(record.get("prompt_tokens") or 0)
            entry["output_tokens"] += int(record.get("output_tokens") or 0)
            entry["failed"] += record.get("outcome") != "ok"
        return dict(sorted(groups.items()))

    return {
        "requests": len(records),
        "by_model": group("model"),
        "by_purpose": group("purpose"),
        "by_day": group("day"),
    }
