"""Step 1 of indexing: find the files of a repository worth indexing, and read them safely.

In a git repository the file list comes from git itself (tracked + untracked-not-ignored files,
so `.gitignore` is honoured exactly as git does); a plain directory is walked, honouring every
`.gitignore` in it. Both then apply `.enclaveignore` at the root, the ``index.exclude`` setting
and the built-in rules of :mod:`enclave.indexer.excludes`. Secret-bearing files are never read,
symlinks never lead out of the root, and clean tracked files are not read at all: their content
id is the blob id git already has in its index.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from enclave.config import IndexConfig
from enclave.errors import EnclaveError
from enclave.indexer.excludes import (
    SILENT_DIRS,
    VENDORED_DIRS,
    VIRTUALENV_DIRS,
    IgnoreRules,
    builtin_file_exclusion,
    first_decision,
    in_silent_dir,
    is_secret_filename,
    minified_reason,
    vendored_dir,
)
from enclave.indexer.gitfiles import GitFailure, GitListing, GitUnavailable, list_git_files
from enclave.indexer.types import Candidate, Discovery, Skipped

__all__ = [
    "DiscoveryError",
    "DiscoveryMemo",
    "SourceText",
    "discover",
    "git_blob_id",
    "is_secret_filename",
    "read_source",
]

log = logging.getLogger(__name__)

_SNIFF_BYTES = 8192


class DiscoveryError(EnclaveError):
    """Discovery cannot start: ``message`` says what is wrong, ``fix`` what to do about it."""


@dataclass(slots=True)
class SourceText:
    path: str
    text: str  # decoded, BOM stripped, newlines normalised to "\n"
    note: str = ""  # e.g. "invalid UTF-8 replaced"


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with this content (what `git hash-object` prints)."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _check_root(root: Path) -> Path:
    if not root.exists():
        raise DiscoveryError(f"no such directory: {root}", "pass the path of a repository")
    if not root.is_dir():
        raise DiscoveryError(f"not a directory: {root}", "pass the path of a repository's folder")
    return root.resolve()


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot read %s (%s); its rules are not applied", path, exc)
        return []


# What discovery decided for one tracked file: a candidate, a recorded skip, a vendored
# directory's file (its prefix) or a silent exclusion (None).
_Decision = Candidate | Skipped | tuple[str] | None


class DiscoveryMemo:
    """The decisions of the last discovery for tracked files git reported clean, by path and blob
    id, so that the next one in the same process (an editor's server saving one file) takes them
    again without a rule check or a stat per file: O(changed files) Python work instead of
    O(files). Git has just compared each such file with its blob (`git ls-files -m`), so the
    file on disk is that blob, as it was when the decision was made. Symbolic links, modified,
    untracked and virtualenv-named folders' files are decided afresh every time (what they
    resolve to can change without their blob changing), and a change to the rules
    (`.enclaveignore`, the settings, the administrator's policy) forgets everything.

    It holds one entry per tracked file (the same Candidate objects a discovery returns)."""

    def __init__(self) -> None:
        self.rules: tuple[str, ...] = ()
        self.decisions: dict[str, tuple[str, _Decision]] = {}

    def for_rules(self, rules: tuple[str, ...]) -> dict[str, tuple[str, _Decision]]:
        if rules != self.rules:
            self.rules, self.decisions = rules, {}
        return self.decisions


class _Sorter:
    """Applies the ignore files, settings and built-in rules to each path and collects results."""

    def __init__(self, root: Path, cfg: IndexConfig, language_for_path: Callable[[str], str]):
        self.root = root
        self._root = str(root)
        self.cfg = cfg
        self.language_for_path = language_for_path
        self.enclaveignore_lines = _read_lines(root / ".enclaveignore")
        self.enclaveignore = IgnoreRules(self.enclaveignore_lines, "", ".enclaveignore")
        self.settings = IgnoreRules(cfg.exclude, "", "index.exclude setting")
        self.policy = IgnoreRules(cfg.never_index, "", "never_index (administrator's policy)")
        self.candidates: list[Candidate] = []
        self.notes = [
            f"invalid pattern {pattern!r} in {rules.source} left out"
            for rules in (self.enclaveignore, self.settings, self.policy)
            for pattern in rules.invalid
        ]
        self.skipped: list[Skipped] = []
        self.vendored: dict[str, int] = {}
        self._virtualenvs: dict[str, bool] = {}
        self.last_vendored: str | None = None

    def memo_key(self) -> tuple[str, ...]:
        """Everything a tracked file's decision depends on besides its path and blob."""
        return (repr(self.cfg), *self.enclaveignore_lines)

    def decide_tracked(self, path: str, blob_id: str) -> _Decision | Literal[False]:
        """Sort a tracked, clean file; its decision, or False when it is not one to remember."""
        candidates, skipped = len(self.candidates), len(self.skipped)
        self.last_vendored = None
        if self.excluded_file(path):
            if len(self.skipped) > skipped:
                return self.skipped[-1]
            return (self.last_vendored,) if self.last_vendored is not None else None
        self.add(path, blob_id)
        if len(self.candidates) > candidates:
            added = self.candidates[-1]
            return added if added.content_id == blob_id else False  # a link: never remembered
        return False  # gone from the disk, or skipped for what it is on disk now

    def replay(self, decision: _Decision) -> None:
        """Take a remembered decision again."""
        if isinstance(decision, Candidate):
            self.candidates.append(decision)
        elif isinstance(decision, Skipped):
            self.skipped.append(decision)
        elif decision is not None:
            prefix = decision[0]
            self.vendored[prefix] = self.vendored.get(prefix, 0) + 1

    def is_virtualenv(self, prefix: str) -> bool:
        """``prefix`` ("a/venv/") holds a Python virtualenv (checked once per directory)."""
        known = self._virtualenvs.get(prefix)
        if known is None:
            known = self._virtualenvs[prefix] = (self.root / prefix / "pyvenv.cfg").exists()
        return known

    def excluded_dir(self, path: str) -> bool:
        """For the directory walk: prune ``path`` (no trailing slash) before entering it."""
        name = path.rsplit("/", 1)[-1]
        if name in SILENT_DIRS:
            return True
        if name in VENDORED_DIRS or (name in VIRTUALENV_DIRS and self.is_virtualenv(path + "/")):
            self.vendored[path + "/"] = self.vendored.get(path + "/", 0)
            return True
        for rules in (self.policy, self.enclaveignore, self.settings):
            if rules.decide(path, is_dir=True):
                self.skipped.append(Skipped(path + "/", "excluded", rules.source))
                return True
        return False

    def excluded_file(self, path: str) -> bool:
        """Apply name-based rules; records a Skipped entry when worth telling."""
        if in_silent_dir(path):
            return True
        prefix = vendored_dir(path, self.is_virtualenv)
        if prefix is not None:
            self.vendored[prefix] = self.vendored.get(prefix, 0) + 1
            self.last_vendored = prefix
            return True
        if is_secret_filename(path):
            self.skipped.append(Skipped(path, "secret-file", "secret-bearing file name; not read"))
            return True
        why = builtin_file_exclusion(path)
        if why is not None:
            self.skipped.append(Skipped(path, "excluded", why))
            return True
        for rules in (self.policy, self.enclaveignore, self.settings):
            if rules.decide(path):
                self.skipped.append(Skipped(path, "excluded", rules.source))
                return True
        return False

    def add(self, path: str, blob_id: str | None = None) -> None:
        """Check the file on disk and add it as a candidate (``blob_id`` when git knows it)."""
        full = os.path.join(self._root, path)  # a string: a Path per file costs 3x the lstat
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            return  # deleted from the working tree since git listed it
        except OSError as exc:
            self.skipped.append(Skipped(path, "unreadable", str(exc)))
            return
        if stat.S_ISLNK(info.st_mode):
            blob_id = None  # git's blob for a link is its target text, not the content
            resolved = Path(os.path.realpath(full))
            if not resolved.is_relative_to(self.root):
                self.skipped.append(Skipped(path, "symlink-outside", f"points to {resolved}"))
                return
            if is_secret_filename(resolved.relative_to(self.root).as_posix()):
                self.skipped.append(Skipped(path, "secret-file", "links to a secret-bearing file"))
                return
            try:
                info = os.stat(full)
            except OSError:
                self.skipped.append(Skipped(path, "unreadable", "dangling symbolic link"))
                return
            if stat.S_ISDIR(info.st_mode):
                self.skipped.append(Skipped(path, "excluded", "symbolic link to a directory"))
                return
        if not stat.S_ISREG(info.st_mode):
            self.skipped.append(Skipped(path, "unreadable", "not a regular file"))
            return
        if info.st_size > self.cfg.max_file_bytes:
            detail = f"{_human(info.st_size)} > {_human(self.cfg.max_file_bytes)} cap"
            self.skipped.append(Skipped(path, "too-large", detail))
            return
        if blob_id is None:
            try:
                with open(full, "rb") as handle:
                    blob_id = git_blob_id(handle.read())
            except OSError as exc:
                self.skipped.append(Skipped(path, "unreadable", str(exc)))
                return
        language = self.language_for_path(path)
        self.candidates.append(Candidate(path, info.st_size, blob_id, language))

    def add_glossary(self) -> None:
        """The project glossary lives in .enclave/ (never walked): index it as documents."""
        from enclave.glossary import FILES

        for name in FILES:
            if (self.root / name).exists() and not self.policy.decide(name):
                self.add(name)

    def finish(self, discovery: Discovery) -> Discovery:
        self.add_glossary()
        for prefix, count in sorted(self.vendored.items()):
            files = f" ({count} file{'' if count == 1 else 's'})" if count else ""
            detail = "vendored directory" + files
            self.skipped.append(Skipped(prefix, "excluded", detail))
        discovery.candidates = sorted(self.candidates, key=lambda c: c.path)
        discovery.skipped = self.skipped
        discovery.notes.extend(self.notes)
        return discovery


def discover(root: Path, cfg: IndexConfig, memo: DiscoveryMemo | None = None) -> Discovery:
    """List the files under ``root`` to index (candidates) and those left out (skipped).
    ``memo``: the decisions of an earlier discovery of ``root`` in this process, taken again
    for the tracked files git reports unchanged (and updated)."""
    from enclave.indexer.languages import language_for_path

    root = _check_root(Path(root))
    sorter = _Sorter(root, cfg, language_for_path)
    try:
        listing = list_git_files(root)
    except GitUnavailable as exc:  # the directory can still be walked
        listing = None
        note = f"{exc}: walked the directory tree"
    except GitFailure as exc:
        raise DiscoveryError(exc.message, exc.fix) from exc
    else:
        note = "not a git repository: walked the directory tree"
    if listing is None:
        discovery = Discovery(root=root, is_git=False, head_commit=None, notes=[note])
        _walk(sorter, "")
        return sorter.finish(discovery)
    return _from_git(sorter, listing, memo)


def exclusion_rules(root: Path, cfg: IndexConfig) -> list[IgnoreRules]:
    """The rule sets in force now that can leave out a file indexed earlier: the
    administrator's ``never_index``, ``.enclaveignore`` and ``index.exclude`` (empty ones
    left out, so ``[]`` means there is nothing to check)."""
    return [
        rules
        for rules in (
            IgnoreRules(cfg.never_index, "", "never_index (administrator's policy)"),
            IgnoreRules(_read_lines(root / ".enclaveignore"), "", ".enclaveignore"),
            IgnoreRules(cfg.exclude, "", "index.exclude setting"),
        )
        if not rules.empty
    ]


def excluded_now(rule_sets: list[IgnoreRules], paths: Iterable[str]) -> frozenset[str]:
    """Which of ``paths`` (indexed earlier) ``rule_sets`` (:func:`exclusion_rules`) leave out:
    queries never answer with them, even before the next update removes their rows."""
    return frozenset(path for path in paths if any(rules.decide(path) for rules in rule_sets))


def _from_git(sorter: _Sorter, listing: GitListing, memo: DiscoveryMemo | None) -> Discovery:
    discovery = Discovery(
        root=sorter.root, is_git=True, head_commit=listing.head_commit, notes=listing.notes
    )
    for path in listing.submodules:
        discovery.notes.append(f"git submodule not indexed: {path}")
    known = memo.for_rules(sorter.memo_key()) if memo is not None else None
    remembered: dict[str, tuple[str, _Decision]] = {}
    modified = listing.modified
    for path, blob_id in listing.tracked.items():
        if blob_id is None or path in modified:
            if not sorter.excluded_file(path):
                sorter.add(path)
            continue
        if known is not None:
            earlier = known.get(path)
            if earlier is not None and earlier[0] == blob_id:
                sorter.replay(earlier[1])
                remembered[path] = earlier
                continue
        decision = sorter.decide_tracked(path, blob_id)
        if decision is not False and VIRTUALENV_DIRS.isdisjoint(path.split("/")[:-1]):
            remembered[path] = (blob_id, decision)
    if memo is not None:
        memo.decisions = remembered  # files gone from the listing are forgotten
    for path in listing.untracked:
        if path.endswith("/"):
            discovery.notes.append(f"nested git repository not indexed: {path}")
        elif not sorter.excluded_file(path):
            sorter.add(path)
    return sorter.finish(discovery)


def _walk(sorter: _Sorter, rel_dir: str, gitignores: tuple[IgnoreRules, ...] = ()) -> None:
    """Walk one directory (``rel_dir`` is "" or "a/b/"), not following directory symlinks."""
    here = sorter.root / rel_dir
    lines = _read_lines(here / ".gitignore")
    if lines:  # deeper rule sets come first: they win over their parents
        gitignores = (IgnoreRules(lines, rel_dir, rel_dir + ".gitignore"), *gitignores)
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError as exc:
        sorter.skipped.append(Skipped(rel_dir or ".", "unreadable", str(exc)))
        return
    for entry in entries:
        path = rel_dir + entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if not first_decision(gitignores, path, is_dir=True) and not sorter.excluded_dir(path):
                _walk(sorter, path + "/", gitignores)
        elif not first_decision(gitignores, path) and not sorter.excluded_file(path):
            sorter.add(path)


def read_source(root: Path, candidate: Candidate) -> SourceText | Skipped:
    """Read a candidate's text: decoded, BOM stripped, newlines normalised; or why it was not
    (minified or generated content among the reasons: see
    :func:`enclave.indexer.excludes.minified_reason`)."""
    root = Path(root).resolve()
    full = root / candidate.path
    resolved = Path(os.path.realpath(full))
    if not resolved.is_relative_to(root):
        return Skipped(candidate.path, "symlink-outside", f"points to {resolved}")
    if is_secret_filename(resolved.relative_to(root).as_posix()):
        return Skipped(candidate.path, "secret-file", "secret-bearing file name; not read")
    try:
        data = resolved.read_bytes()
    except IsADirectoryError:
        return Skipped(candidate.path, "unreadable", "is a directory")
    except OSError as exc:
        return Skipped(candidate.path, "unreadable", str(exc))
    if b"\0" in data[:_SNIFF_BYTES]:
        return Skipped(candidate.path, "binary", "NUL byte in the first 8 KiB")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    note = ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        note = "invalid UTF-8 replaced"
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    minified = minified_reason(text)
    if minified is not None:
        return Skipped(candidate.path, "minified", minified)
    return SourceText(candidate.path, text, note)
