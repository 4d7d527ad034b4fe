"""The `enclave` command line: index, search, status, context, lsp (+ doctor, ask, explain).

Human output goes to stdout (results) and stderr (progress, notes, problems); `--json` prints one JSON
document on stdout for machines. Failures exit non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexer.config import Config, load_config
from indexer.errors import EnclaveError
from server.cli_model import register as register_model_commands

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("enclave")


class CliError(EnclaveError):
    """A failure to report in one line (and the fix), then exit with ``code``."""

    def __init__(self, message: str, fix: str = "", code: int = EXIT_FAIL) -> None:
        super().__init__(message, fix)
        self.code = code


def find_root(start: Path | None = None) -> Path:
    """The repository that holds ``start`` (cwd): the nearest folder with .git or .enclave."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / ".enclave").exists():
            return folder
    return here


def load(root: Path | None, args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "db", None):
        overrides.setdefault("index", {})["db"] = args.db
    config, problems = load_config(root, overrides)
    for problem in problems:
        print(f"enclave: {problem}", file=sys.stderr)
    return config


def emit_json(data: Any) -> None:
    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"cannot encode {type(value).__name__}")

    json.dump(data, sys.stdout, default=default, indent=2)
    sys.stdout.write("\n")


def _progress_printer(
    args: argparse.Namespace,
) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A rich progress bar on a terminal; plain lines (at most every 10%) in CI and pipes."""
    if args.json or args.quiet:
        return (lambda done, total, message: None), (lambda: None)
    if sys.stderr.isatty() and not os.environ.get("CI"):
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

    last = [-1]

    def plain(done: int, total: int, message: str) -> None:
        step = (done * 10 // total) if total else 10
        if step != last[0]:
            last[0] = step
            print(f"enclave: {message}", file=sys.stderr, flush=True)

    return plain, lambda: None


def cmd_index(args: argparse.Namespace) -> int:
    from indexer.api import Index

    root = Path(args.path).expanduser()
    if not root.exists():
        raise CliError(f"no such directory: {root}", "pass the path of a repository")
    config = load(root, args)
    index = Index.open(root, config)
    update, done = _progress_printer(args)
    try:
        summary = index.update(full=args.full, progress=update)
    finally:
        done()
    if args.json:
        data = dataclasses.asdict(summary)
        data["skipped"] = [dataclasses.asdict(s) for s in summary.skipped]
        emit_json(data)
        return EXIT_OK
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)
    for error in summary.errors[:20]:
        print(f"warning: {error}", file=sys.stderr)
    mb = summary.bytes_indexed / 1e6
    print(
        f"indexed {summary.files_indexed} file(s) ({mb:.1f} MB), {summary.files_unchanged} unchanged,"
        f" {summary.files_deleted} removed, {summary.files_skipped} skipped;"
        f" {summary.chunks_total} chunks in {summary.seconds:.1f} s -> {summary.db}"
    )
    if summary.semantic:
        print(f"semantic search: on ({summary.embedded} chunk(s) embedded this run)")
    else:
        print(f"semantic search: off: {summary.semantic_reason}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.api import Index

    root = find_root(Path(args.root) if args.root else None)
    index = Index.open(root, load(root, args))
    hits = index.search(
        args.query, k=args.k, mode=args.mode, path_prefix=args.path_prefix, language=args.language
    )
    note = index.semantic_note
    if args.json:
        emit_json(
            {
                "query": args.query,
                "mode": args.mode,
                "semantic": not note,
                "note": note,
                "results": [
                    {k: v for k, v in dataclasses.asdict(h).items() if k != "text" or args.text}
                    for h in hits
                ],
            }
        )
        return EXIT_OK
    if note and args.mode == "hybrid":
        print(f"note: {note} (lexical results only)", file=sys.stderr)
    if not hits:
        print("no results", file=sys.stderr)
    for hit in hits:
        label = f"{hit.path}:{hit.start_line}-{hit.end_line}"
        print(f"{hit.score:8.4f}  {label}  {hit.kind} {hit.symbol}".rstrip())
        if args.text:
            for line in hit.text.splitlines()[:12]:
                print(f"          {line}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from indexer.api import Index

    root = find_root(Path(args.root) if args.root else None)
    status = Index.open(root, load(root, args)).status()
    if args.json:
        emit_json(status)
        return EXIT_OK
    if not status.exists:
        print(
            f"no index for {status.root} (expected at {status.db}): run `enclave index {status.root}`"
        )
        return EXIT_FAIL
    semantic = "on" if status.semantic else f"off: {status.semantic_reason}"
    print(f"index:     {status.db}")
    print(f"files:     {status.files} indexed, {status.files_skipped} skipped")
    print(f"chunks:    {status.chunks}   symbols: {status.symbols}")
    print(f"commit:    {status.commit or '-'}   indexed at {status.indexed_at}")
    print(f"embedding: {status.embedding_model or '-'} ({status.embedding_dim} dims)")
    print(f"semantic:  {semantic}")
    return EXIT_OK


def cmd_context(args: argparse.Namespace) -> int:
    from indexer.api import Index
    from server.context import context_report

    path = Path(args.file).expanduser().resolve()
    if not path.is_file():
        raise CliError(f"no such file: {args.file}")
    root = find_root(path.parent)
    config = load(root, args)
    text = path.read_text(encoding="utf-8", errors="replace")
    report = context_report(
        Index.open(root, config), path, text, args.line - 1, args.character, config
    )
    if args.json:
        emit_json(report)
        return EXIT_OK
    for piece in report.get("pieces", []):
        print(f"{piece['path']}:{piece['start_line']}-{piece['end_line']}  ({piece['reason']})")
    return EXIT_OK


def cmd_lsp(args: argparse.Namespace) -> int:
    from server.lsp.app import run_lsp

    return run_lsp()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclave", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, *, root: bool = True) -> None:
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.add_argument("--db", help="index location: a path or a URI such as s3://bucket/prefix")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        if root:
            p.add_argument("--root", help="repository root (default: the one holding the cwd)")

    p = sub.add_parser("index", help="build or update the index of a repository")
    p.add_argument("path", nargs="?", default=".", help="repository (default: .)")
    p.add_argument("--full", action="store_true", help="rebuild from scratch")
    common(p, root=False)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--mode", choices=("hybrid", "lexical", "semantic"), default="hybrid")
    p.add_argument("--path-prefix", help="only paths starting with this")
    p.add_argument("--language", help="only this language (python, go, ...)")
    p.add_argument("--text", action="store_true", help="show the chunks' text")
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("status", help="what the index holds and whether semantic search is on")
    common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("context", help="the context a completion at FILE:LINE:CHARACTER would use")
    p.add_argument("file")
    p.add_argument("--line", type=int, required=True, help="1-based line")
    p.add_argument("--character", type=int, required=True, help="0-based column")
    common(p, root=False)
    p.set_defaults(func=cmd_context)

    p = sub.add_parser("lsp", help="run the language server on stdio (editors start this)")
    p.set_defaults(func=cmd_lsp, json=False, quiet=True)

    register_model_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="enclave: %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except EnclaveError as exc:  # a CLI, index, discovery, embedding or model problem + its fix
        print(f"enclave: error: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else EXIT_FAIL
    except KeyboardInterrupt:
        print("enclave: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
