"""The trust boundary: what may reach a model, whatever path it came by.

Two gates, one for each way text enters a prompt:

- :meth:`Boundary.read_file` is how a file of the workspace is read for a prompt (`enclave explain
  FILE`, `enclave context FILE`, an editor asking about a document it has not opened): the resolved
  path must be a regular file inside a workspace root (no device files, FIFOs, ``/proc``, links
  leading out), not a secret-bearing file, not matched by ``trust.never_send``, and under the size
  cap; it is read with a bounded read.
- :meth:`Boundary.admit` is the one function every prompt's material passes through on its way to
  a model (completions, explanations and questions; CLI and language server alike), once: the
  file the request is about must be sendable,
  every text (prefix, suffix, buffer, selection, question) and every context piece is redacted
  with line numbers kept, pieces from files that must not be sent are dropped, and sizes are
  capped. ``enclave context --json`` shows what it admits. When the administrator's policy
  requires the audit log (``require_audit``) and it cannot be written, it refuses everything
  before anything is sent. (:meth:`Boundary.check` says the same of a file before anything of it
  is gathered, and admits nothing.)

What it admits is an :class:`Admitted`, which only ``admit`` can make (its constructor takes this
module's private seal); a prompt is rendered from it (:meth:`Admitted.prompt`), and the model
client (``enclave.server.model.client``) takes nothing but such a :class:`Prompt`: the type
checker sees that nothing unadmitted reaches a model, and the client admits nothing again.

Where a prompt may go is :func:`enclave.hosts.check_host` (``trust.allowed_hosts``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from enclave.audit import AuditLog, AuditUnavailable, Source
from enclave.config import Config
from enclave.errors import EnclaveError
from enclave.indexer.excludes import IgnoreRules, is_secret_filename
from enclave.indexer.redact import redact_all
from enclave.server.types import ContextPiece

# Pseudo file systems whose "files" are the machine's state, never code.
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


class Refused(EnclaveError):
    """Text that may not be sent to a model: ``message`` says why, ``fix`` what to do."""


@dataclass(frozen=True, slots=True)
class Material:
    """Everything a prompt carries, before it is rendered.

    ``path`` is the repository-relative file the request is about (None for a question about the
    whole repository); ``texts`` come from that file or from the user (a completion's prefix and
    suffix, a selection, a question); ``pieces`` are repository context from other places.
    """

    path: str | None
    texts: tuple[str, ...]
    pieces: tuple[ContextPiece, ...] = ()


class _Seal:
    """Proof of having passed the boundary: its one instance never leaves this module."""


_SEAL = _Seal()


class _Sealed:
    """Immutable, and made only with the seal (``dataclasses.replace`` does not apply)."""

    __slots__ = ()

    def __init__(self, seal: _Seal, **values: Any) -> None:
        if seal is not _SEAL:
            raise TypeError(f"only Boundary.admit makes a {type(self).__name__}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a {type(self).__name__} is not changed once admitted")


class Admitted(_Sealed):
    """Material that passed the boundary: redacted texts, the pieces allowed, and what was left
    (each left-out piece with why). Made by :meth:`Boundary.admit` only."""

    __slots__ = ("dropped", "path", "pieces", "redactions", "texts")
    path: str | None
    texts: tuple[str, ...]
    pieces: tuple[ContextPiece, ...]
    dropped: tuple[tuple[ContextPiece, str], ...]
    redactions: int  # secrets replaced, over all texts and pieces

    def prompt(
        self,
        *,
        purpose: str,
        sources: Sequence[Source],
        prompt: str = "",
        suffix: str = "",
        system: str = "",
        messages: Sequence[dict[str, str]] = (),
    ) -> Prompt:
        """The request a model receives, rendered from this material (a generate request's
        ``prompt``, ``suffix`` and ``system``, or a chat's ``messages``); ``purpose`` and
        ``sources`` (the files and lines in it) go to the audit log."""
        return Prompt(
            _SEAL, admitted=self, purpose=purpose, sources=tuple(sources), prompt=prompt,
            suffix=suffix, system=system, messages=tuple(dict(m) for m in messages),
        )  # fmt: skip


class Prompt(_Sealed):
    """What a model client sends: rendered from :class:`Admitted` material only."""

    __slots__ = ("admitted", "messages", "prompt", "purpose", "sources", "suffix", "system")
    admitted: Admitted
    purpose: str
    sources: tuple[Source, ...]
    prompt: str
    suffix: str
    system: str
    messages: tuple[dict[str, str], ...]


@dataclass(frozen=True, slots=True)
class WorkspaceFile:
    root: Path
    path: str  # repository-relative POSIX path
    text: str  # as read (admit() redacts it on its way to a model)


class Boundary:
    """The rules of one configuration (and, for reading files, the workspace roots)."""

    def __init__(self, config: Config, roots: Sequence[Path] = ()) -> None:
        self.max_bytes = config.index.max_file_bytes
        self.roots = [Path(root).resolve() for root in roots]
        self._never_send = IgnoreRules(config.trust.never_send, source="trust.never_send")
        self.pii = config.trust.redact_pii  # emails and phone numbers too (policy redact_pii)
        self._audit = AuditLog(config) if config.policy.require_audit else None

    # -- rules ---------------------------------------------------------------------------------
    def why_not_sent(self, path: str) -> str | None:
        """Why the file at repository-relative ``path`` may not reach a model (None if it may)."""
        posix = path.replace("\\", "/")
        if posix.startswith("/") or ".." in PurePosixPath(posix).parts:
            return "it is outside the workspace"
        if is_secret_filename(posix):
            return "it is a secret-bearing file (such files are never read)"
        if self._never_send.decide(posix):
            return "it matches trust.never_send"
        return None

    def _refuse(self, path: str, why: str) -> Refused:
        fix = (
            "remove the pattern from trust.never_send to allow it"
            if "never_send" in why
            else "ask about a file of the repository that holds no credentials"
        )
        return Refused(f"{path} is never sent to a model: {why}", fix)

    def check(self, path: str | None) -> None:
        """Refuse (:class:`Refused`) a request about ``path`` before anything is gathered for it:
        a file never sent, or an audit log the policy requires that cannot be written. Nothing
        is admitted: that is :meth:`admit`'s, once."""
        if self._audit is not None:
            try:
                self._audit.check()
            except AuditUnavailable as exc:
                raise Refused(exc.message, exc.fix) from None
        if path is not None:
            why = self.why_not_sent(path)
            if why is not None:
                raise self._refuse(path, why)

    # -- the one function every prompt passes through --------------------------------------------
    def admit(self, material: Material) -> Admitted:
        """Check, redact and cap ``material``; raises :class:`Refused` for a forbidden file, or
        when the audit log the policy requires cannot be written."""
        self.check(material.path)
        redactions = 0
        texts: list[str] = []
        for text in material.texts:
            if len(text) > self.max_bytes:
                raise Refused(
                    f"the text to send is {len(text):,} characters, over the "
                    f"{self.max_bytes:,} cap (index.max_file_bytes)",
                    "select less text, or raise index.max_file_bytes",
                )
            cleaned = redact_all(text, material.path or "", pii=self.pii)
            redactions += len(cleaned.findings)
            texts.append(cleaned.text)
        pieces: list[ContextPiece] = []
        dropped: list[tuple[ContextPiece, str]] = []
        for piece in material.pieces:
            why = self.why_not_sent(piece.path)
            if why is None and len(piece.text) > self.max_bytes:
                why = "it is over the size cap (index.max_file_bytes)"
            if why is not None:
                dropped.append((piece, why))
                continue
            cleaned = redact_all(piece.text, piece.path, pii=self.pii)
            redactions += len(cleaned.findings)
            pieces.append(_with_text(piece, cleaned.text))
        return Admitted(
            _SEAL, path=material.path, texts=tuple(texts), pieces=tuple(pieces),
            dropped=tuple(dropped), redactions=redactions,
        )  # fmt: skip

    def admit_messages(
        self, messages: Sequence[dict[str, str]], *, purpose: str = "chat",
        sources: Sequence[Source] = (),
    ) -> Prompt:  # fmt: skip
        """A chat written whole by the caller (no repository pieces apart): each message's
        content admitted as a text of no file, the messages rendered from what was admitted."""
        sealed = self.admit(Material(None, tuple(m.get("content", "") for m in messages)))
        admitted = [{**m, "content": c} for m, c in zip(messages, sealed.texts, strict=True)]
        return sealed.prompt(purpose=purpose, sources=sources, messages=admitted)

    # -- files of the workspace ------------------------------------------------------------------
    def read_file(self, path: Path) -> WorkspaceFile:
        """Read a workspace file for a prompt, or raise :class:`Refused` saying why not."""
        shown = str(path)
        try:
            real = Path(path).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            raise Refused(
                f"no such file: {shown}", "pass an existing file of the repository"
            ) from None
        if any(real == tree or tree in real.parents for tree in SYSTEM_TREES):
            raise Refused(f"{shown} is a system file, not code", "pass a file of the repository")
        root = next((r for r in self.roots if r == real or r in real.parents), None)
        if root is None:
            where = ", ".join(str(r) for r in self.roots) or "no workspace folder"
            raise Refused(
                f"{shown} is outside the workspace ({where})",
                "pass a file inside the repository; Enclave never sends other files",
            )
        relative = real.relative_to(root).as_posix()
        why = self.why_not_sent(relative)
        if why is not None:
            raise self._refuse(relative, why)
        try:
            info = os.stat(real)
        except OSError as exc:
            raise Refused(f"cannot read {shown}: {exc.strerror}", "check the file") from None
        if not stat.S_ISREG(info.st_mode):
            raise Refused(
                f"{shown} is not a regular file (a directory, device, FIFO or socket)",
                "pass a file of source code",
            )
        if info.st_size > self.max_bytes:
            raise Refused(
                f"{relative} is {info.st_size:,} bytes, over the {self.max_bytes:,} byte cap",
                "select a part of it, or raise index.max_file_bytes",
            )
        try:
            with open(real, "rb") as handle:
                data = handle.read(self.max_bytes + 1)  # bounded even if the file grows
        except OSError as exc:
            raise Refused(f"cannot read {shown}: {exc.strerror}", "check the file") from None
        if len(data) > self.max_bytes:
            raise Refused(f"{relative} grew past the size cap while being read", "try again")
        if b"\0" in data[:8192]:
            raise Refused(f"{relative} is a binary file", "pass a text file")
        return WorkspaceFile(root, relative, data.decode("utf-8", errors="replace"))


def _with_text(piece: ContextPiece, text: str) -> ContextPiece:
    if text == piece.text:
        return piece
    return ContextPiece(
        piece.path, piece.start_line, piece.end_line, text, piece.reason, piece.symbol, piece.score
    )
