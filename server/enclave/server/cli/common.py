"""What every `enclave` command shares: options, finding the repository, loading the
configuration, printing JSON and progress, and the one-line error a command fails with."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from enclave.config import Config, load_config
from enclave.errors import EnclaveError
from enclave.hosts import HostNotAllowed, check_host, model_urls, remote_note
from enclave.server.local_socket import json_default

# The CLI contract (docs/protocol.md): 0 done, 1 failed, 2 done but degraded (`enclave index`:
# e.g. no embeddings), 64 a usage error (sysexits' EX_USAGE; argparse's own 2 is remapped).
EXIT_OK, EXIT_FAIL, EXIT_DEGRADED, EXIT_USAGE = 0, 1, 2, 64


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on EXIT_USAGE (2 means "degraded" in Enclave's CLI)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class CliError(EnclaveError):
    """A failure to report in one line (and the fix), then exit with ``code``."""

    def __init__(self, message: str, fix: str = "", code: int = EXIT_FAIL) -> None:
        super().__init__(message, fix)
        self.code = code


def add_common_options(parser: argparse.ArgumentParser, *, root: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--db", help="index location: a path or a URI such as s3://bucket/prefix")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--settings",
        metavar="JSON",
        help='settings as an editor sends them, e.g. \'{"ollama": {"host": "..."}}\' '
        "(highest precedence)",
    )
    if root:
        parser.add_argument("--root", help="repository root (default: the one holding the cwd)")


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (the parser names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    return parse


def find_repository(start: Path | None = None) -> Path | None:
    """The repository that holds ``start`` (cwd): the nearest folder with .git or .enclave."""
    here = (start or Path.cwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / ".enclave").exists():
            return folder
    return None


def find_root(start: Path | None = None) -> Path:
    """The repository that holds ``start`` (cwd), or ``start`` itself when none does."""
    return find_repository(start) or (start or Path.cwd()).expanduser().resolve()


def root_of(args: argparse.Namespace) -> Path:
    """``--root`` if given, else the repository holding the working directory."""
    given = getattr(args, "root", None)
    return Path(given).expanduser().resolve() if given else find_root()


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    raw = getattr(args, "settings", None)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"--settings is not valid JSON ({exc.msg} at character {exc.pos})",
            'pass an object such as \'{"ollama": {"host": "http://127.0.0.1:11434"}}\'',
            EXIT_USAGE,
        ) from None
    if not isinstance(value, dict):
        raise CliError(
            f"--settings must be a JSON object, got {type(value).__name__}",
            'pass an object such as \'{"ollama": {"chatModel": "deepseek-r1"}}\'',
            EXIT_USAGE,
        )
    return value


def load(root: Path | None, args: argparse.Namespace, *, broken_policy_ok: bool = False) -> Config:
    """The configuration for ``root`` with the command's flags on top; problems go to stderr.

    A broken administrator's policy fails the command (fail closed) unless ``broken_policy_ok``
    (commands that only show things, such as `enclave status`)."""
    overrides: dict[str, Any] = _settings(args)
    flags = {"db": getattr(args, "db", None), "retain_minutes": getattr(args, "retain", None)}
    for key, value in flags.items():
        if value is not None and value != "":
            overrides.setdefault("index", {})
            if isinstance(overrides["index"], dict):
                overrides["index"][key] = value
    config, problems = load_config(root, overrides)
    for problem in problems:
        print(f"enclave: {problem}", file=sys.stderr)
    broken = config.policy.broken()
    if broken is not None and not broken_policy_ok:
        raise CliError(broken, "ask your administrator to fix the policy file")
    return config


def note_remote_host(config: Config, *, embedding: bool = False) -> None:
    """Say on stderr when what this command sends goes to another machine (allowed or not)."""
    if embedding and config.embedding.provider not in ("ollama", "openai"):
        return
    for url in model_urls(config, embedding=embedding):
        try:
            check_host(url, config.trust.allowed_hosts)
        except HostNotAllowed:
            return  # not allowed: the command refuses it with its own message
    for url in model_urls(config, embedding=embedding):
        note = remote_note(url)
        if note:
            print(f"enclave: note: {note}", file=sys.stderr)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, default=json_default, indent=2)
    sys.stdout.write("\n")


PLAIN_EVERY_S = 30.0
ProgressPrinter = tuple[Callable[[int, int, str], None], Callable[[], None]]


def progress_printer(args: argparse.Namespace) -> ProgressPrinter:
    """A rich progress bar on a terminal; plain lines (at most every 10%) in CI and pipes."""
    if args.json or args.quiet:
        return (lambda done, total, message: None), (lambda: None)
    if sys.stderr.isatty() and not os.environ.get("CI"):  # never a bar in a CI log or a pipe
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
        )
        task = bar.add_task("", total=None)
        bar.start()

        def update(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total or None, description=message)

        return update, bar.stop

    last = {"step": -1, "at": 0.0}

    def plain(done: int, total: int, message: str) -> None:
        # a line per tenth of each phase (files, then chunks to embed), and at least one every
        # PLAIN_EVERY_S seconds while a slow phase goes on: silence looks like a hang
        step = (done * 10 // total) if total else 10
        now = time.monotonic()
        if step != last["step"] or now - last["at"] >= PLAIN_EVERY_S:
            last["step"], last["at"] = step, now
            print(f"enclave: {message}", file=sys.stderr, flush=True)

    return plain, lambda: None
