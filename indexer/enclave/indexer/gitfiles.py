"""What git knows about a working tree: tracked files with their blob ids, which of them are
modified, the untracked-but-not-ignored files, submodules and HEAD. Used by discovery.

All paths are POSIX paths relative to the directory asked about (which may be a subdirectory of
the repository: git then lists only that subtree).
"""

from __future__ import annotations

import os
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


def _split(raw: bytes) -> list[str]:
    return [os.fsdecode(item) for item in raw.split(b"\0") if item]


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
        cmd = git.Git(str(root))
        try:
            head = repo.head.commit.hexsha if repo.head.is_valid() else None
            staged = cmd.ls_files("-z", "-s", "--cached", stdout_as_string=False)
            changed = cmd.ls_files("-z", "-m", stdout_as_string=False)
            others = cmd.ls_files("-z", "--others", "--exclude-standard", stdout_as_string=False)
        except git.GitCommandError as exc:
            detail = (exc.stderr or str(exc)).strip().removeprefix("stderr:").strip(" '")
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
