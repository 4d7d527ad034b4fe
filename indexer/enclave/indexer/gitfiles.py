"""What git knows about a working tree: tracked files with their blob ids, which of them are
modified, the untracked-but-not-ignored files, submodules and HEAD. Used by discovery.

All paths are POSIX paths relative to the directory asked about (which may be a subdirectory of
the repository: git then lists only that subtree).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_SUBMODULE_MODE = "160000"


class GitUnavailable(RuntimeError):
    """The git executable cannot be run (not installed or not on PATH)."""


class GitFailure(Exception):
    """git ran and failed on this directory; ``message`` and ``fix`` are shown to the user."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


@dataclass(slots=True)
class GitListing:
    head_commit: str | None
    tracked: dict[str, str | None] = field(default_factory=dict)  # path -> blob id in the index
    modified: set[str] = field(default_factory=set)  # modified or deleted in the working tree
    untracked: list[str] = field(default_factory=list)  # nested repositories end with "/"
    submodules: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def tracked_count(root: Path) -> int | None:
    """How many files git's index holds for the repository at ``root``, read from the index's
    header (git's index format: signature ``DIRC``, version, number of entries) without running
    git; None when ``root`` has no ``.git`` folder of its own (a subfolder of a repository, a
    worktree, not a repository) or the file is not such an index."""
    try:
        with open(root / ".git" / "index", "rb") as index:
            header = index.read(12)
    except OSError:
        return None
    if len(header) < 12 or header[:4] != b"DIRC":
        return None
    return int.from_bytes(header[8:12], "big")


def _split(raw: bytes) -> list[str]:
    return [os.fsdecode(item) for item in raw.split(b"\0") if item]


class _LsFilesFailed(Exception):
    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def _ls_files(root: Path, *listings: list[str]) -> list[bytes]:
    """``git ls-files -z`` with each argument list, run side by side; their outputs in order."""
    import git

    executable = git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
    processes = [
        subprocess.Popen(
            [executable, "ls-files", "-z", *arguments],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for arguments in listings
    ]
    outputs = [process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise _LsFilesFailed(os.fsdecode(stderr) or f"git exited with {process.returncode}")
    return [stdout for stdout, _ in outputs]


def list_git_files(root: Path) -> GitListing | None:
    """Ask git about ``root``; None when ``root`` is not inside a git working tree."""
    try:
        import git
    except ImportError as exc:
        raise GitUnavailable("git is not installed or not on PATH") from exc

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        if repo.bare or repo.working_tree_dir is None:
            raise GitFailure(
                f"{root} is a bare git repository (it has no working tree)",
                "pass the path of a checked-out working tree",
            )
        try:
            head = repo.head.commit.hexsha if repo.head.is_valid() else None
            # three listings at once: each reads the whole tree (the index, a stat per file,
            # a walk of the folders), in C, and together they are most of a one-file update
            staged, changed, others = _ls_files(
                root,
                ["-s", "--cached"],
                ["-m"],
                ["--others", "--exclude-standard"],
            )
        except _LsFilesFailed as exc:
            detail = exc.stderr.strip()
            fix = "check that `git status` works in this directory"
            if "dubious ownership" in detail:
                fix = f"run: git config --global --add safe.directory {repo.working_tree_dir}"
            raise GitFailure(f"git failed in {root}: {detail}", fix) from exc
        except (OSError, ValueError) as exc:  # e.g. a corrupt HEAD or index
            raise GitFailure(
                f"cannot read the git repository at {root}: {exc}",
                "check that `git status` works in this directory",
            ) from exc

    listing = GitListing(head_commit=head, untracked=_split(others), modified=set(_split(changed)))
    top = Path(repo.working_tree_dir).resolve()
    if top != root:
        listing.notes.append(f"indexing the subdirectory {root} of the git repository {top}")
    for record in _split(staged):
        meta, path = record.split("\t", 1)
        mode, blob_id, stage = meta.split(" ")
        if mode == _SUBMODULE_MODE:
            listing.submodules.append(path)
        elif stage != "0":  # unmerged: the working tree holds the merge result
            listing.tracked[path] = None
            listing.modified.add(path)
        else:
            listing.tracked[path] = blob_id
    return listing
