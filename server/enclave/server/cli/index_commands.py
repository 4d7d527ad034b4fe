"""The CLI commands that read the index: `enclave index`, `search`, `status`, `context`.

``register(subparsers)`` adds them to the `enclave` parser (``enclave.server.cli.main``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enclave.config import Config, policy_rules
from enclave.files import index_location
from enclave.server.cli.common import (
    EXIT_DEGRADED,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_common_options,
    bounded_int,
    emit_json,
    find_repository,
    load,
    note_remote_host,
    progress_printer,
    root_of,
)
from enclave.server.cli.editor_server import add_no_server_option, ask_editor

if TYPE_CHECKING:
    from enclave.indexer.api import Index
    from enclave.indexer.results import IndexSummary, SearchResult
    from enclave.indexer.types import SearchHit

MAX_K = 1000  # results a search may return
# A search over a shared index indexes up to this many differing files first (a few seconds).
CATCH_UP_FILES = 50


def _builds_many(root: Path, config: Config, full: bool) -> bool:
    """Whether this `enclave index` is about to process enough files for the worker processes
    (``process.POOL_THRESHOLD``): a full build, or a first one (the index's meta table is
    written last; a remote index is taken to exist, looking costs a round trip), of a
    repository whose git index holds that many files."""
    from enclave.indexer.gitfiles import tracked_count
    from enclave.indexer.process import POOL_THRESHOLD

    location = index_location(root, config.index.db)
    built = "://" in location or (Path(location) / "meta.lance").is_dir()
    return (full or not built) and (tracked_count(root) or 0) >= POOL_THRESHOLD


def cmd_index(args: argparse.Namespace) -> int:
    from enclave.errors import EnclaveError
    from enclave.indexer.api import open_index
    from enclave.indexer.process import start_workers, stop_workers

    root = Path(args.path).expanduser()
    if not root.exists():
        raise CliError(f"no such directory: {root}", "pass the path of a repository")
    config = load(root, args)
    note_remote_host(config, embedding=True)
    update, done = progress_printer(args)
    if _builds_many(root, config, args.full):
        start_workers()
    try:
        index = open_index(root, config)
        summary = index.update(
            full=args.full, progress=update, complete_only=bool(args.fail_on_degraded)
        )
    except EnclaveError as exc:
        if args.json:  # the CI artifact says why too (the one line goes to stderr as always)
            emit_json(
                {
                    "root": str(root),
                    "db": config.index.db or str(root.resolve() / ".enclave"),
                    "error": exc.message,
                    "fix": exc.fix,
                    "degraded": [],
                    "exit_code": exc.code if isinstance(exc, CliError) else EXIT_FAIL,
                }
            )
        raise
    finally:
        stop_workers()
        done()
    degraded = degraded_reasons(summary, config)
    warning = semantic_warning(summary, config)
    code = EXIT_OK if not degraded else EXIT_FAIL if args.fail_on_degraded else EXIT_DEGRADED
    if args.json:
        warnings = [warning] if warning else []
        emit_json(
            {**summary.to_json(), "degraded": degraded, "warnings": warnings, "exit_code": code}
        )
    else:
        for note in summary.notes:
            print(f"note: {note}", file=sys.stderr)
        for error in summary.errors[:20]:
            print(f"warning: {error}", file=sys.stderr)
        mb = summary.bytes_indexed / 1e6
        print(
            f"indexed {summary.files_indexed} file(s) ({mb:.1f} MB), {summary.files_unchanged}"
            f" unchanged, {summary.files_deleted} removed, {summary.files_skipped} skipped;"
            f" {summary.chunks_total} chunks in {summary.seconds:.1f} s -> {summary.db}"
        )
        if summary.superseded:
            print(f"semantic search: {'on' if summary.semantic else 'off'} (nothing done)")
        elif summary.semantic:
            print(f"semantic search: on ({summary.embedded} chunk(s) embedded this run)")
        else:
            print(f"semantic search: off: {summary.semantic_reason}")
    # one line on stderr for a person or a CI log, with --json too (stdout may go to a file)
    if warning:
        print(f"enclave: warning: {warning}", file=sys.stderr)
    for reason in degraded:
        print(f"enclave: degraded: {reason}", file=sys.stderr)
    return code


def degraded_reasons(summary: IndexSummary, config: Config) -> list[str]:
    """Why an update that finished is not the index it should be ([] when it is): something
    configured and expected is missing. Semantic search off counts only when the configuration
    asked for embeddings (vectors_expected); a run that found the index at a newer commit did
    nothing and is never degraded."""
    from enclave.indexer.results import vectors_expected

    if summary.superseded:
        return []
    reasons = []
    if not summary.semantic and vectors_expected(config):
        fix = f" ({summary.semantic_fix})" if summary.semantic_fix else ""
        reasons.append(f"semantic search is off: {summary.semantic_reason}{fix}")
    if summary.errors:
        reasons.append(f"{len(summary.errors)} file(s) could not be indexed")
    if summary.cancelled:
        reasons.append("the update was cancelled before it finished")
    return reasons


def semantic_warning(summary: IndexSummary, config: Config) -> str:
    """Semantic search off with the default embedding settings: worth a warning naming the
    fix, not a degraded exit (a user who never asked for it has lost nothing)."""
    from enclave.indexer.results import vectors_expected

    if summary.superseded or summary.semantic or config.embedding.provider == "none":
        return ""
    if vectors_expected(config):
        return ""  # degraded instead
    fix = f" ({summary.semantic_fix})" if summary.semantic_fix else ""
    return f"semantic search is off: {summary.semantic_reason}{fix}; lexical search works"


def cmd_search(args: argparse.Namespace) -> int:
    root = root_of(args)
    config = load(root, args)
    if args.mode != "lexical":
        note_remote_host(config, embedding=True)
    found = _search(args, root, config)
    hits = found.hits
    note = found.semantic_off.message if found.semantic_off else ""
    if args.json:
        emit_json(
            {
                "query": args.query,
                "mode": args.mode,
                "semantic": not note,
                "note": note,
                "results": [_hit_json(h, text=args.text) for h in hits],
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
        for doc in hit.docs:  # the sections about it, cited beside it
            print(
                f"          docs: {doc.path}:{doc.start_line}-{doc.end_line}  {doc.symbol}".rstrip()
            )
    return EXIT_OK


def _hit_json(hit: SearchHit, *, text: bool) -> dict[str, Any]:
    """A hit as `enclave search --json` prints it: its text (and its docs') with ``--text``."""
    found = dataclasses.asdict(hit)
    if not text:
        del found["text"]
        for doc in found["docs"]:
            del doc["text"]
    return found


def _search(args: argparse.Namespace, root: Path, config: Config) -> SearchResult:
    """The search's result: from the editor's server when it has the index open, else here."""
    from enclave.indexer.results import Reason, SearchResult
    from enclave.indexer.types import SearchHit

    query = {
        "query": args.query,
        "k": args.k,
        "mode": args.mode,
        "path_prefix": args.path_prefix,
        "language": args.language,
    }
    served = ask_editor(args, root, config, "search", **query)
    if served is not None:
        off = served["semantic_off"]
        return SearchResult(
            hits=[SearchHit.from_json(hit) for hit in served["hits"]],
            semantic_off=Reason(**off) if off else None,
        )
    from enclave.indexer.api import open_index

    index = open_index(root, config)
    catch_up_layered(index)
    return index.search(**query)


def catch_up_layered(index: Index) -> None:
    """Over a team's shared index, the files that differ here are hidden from it until the
    local overlay holds them: index a handful of them now (as the language server does at
    start), or say that `enclave index` is needed. A note on stderr either way."""
    from enclave.indexer.layered import LayeredIndex

    if isinstance(index, LayeredIndex):
        note = index.catch_up(CATCH_UP_FILES)
        if note:
            print(f"note: {note}", file=sys.stderr)


def _policy_json(config: Config) -> dict[str, Any]:
    policy = config.policy
    return {
        "file": policy.path or None,
        "error": policy.error or None,
        "rules": policy_rules(config),
    }


def _print_policy(config: Config) -> None:
    policy = config.policy
    if not policy.path:
        print("policy:    none (no administrator's policy file)")
    elif policy.error:
        print(f"policy:    BROKEN: {policy.broken()}")
    else:
        print(f"policy:    {policy.path}")
    for rule in policy_rules(config):
        value = rule["value"]
        if value is None:
            shown = "any"
        elif isinstance(value, list):
            shown = ", ".join(value) or "-"
        else:
            shown = "on" if value else "off"
        print(f"  {rule['key']:<22} {shown}   ({rule['source']})")


def cmd_status(args: argparse.Namespace) -> int:
    from enclave.indexer.results import IndexStatus

    root = root_of(args)
    config = load(root, args, broken_policy_ok=True)
    served = ask_editor(args, root, config, "status")
    if served is not None:
        status = IndexStatus(**served)
    else:
        from enclave.indexer.api import open_index

        status = open_index(root, config).status()
    policy_failed = bool(config.policy.error)
    if args.json:
        emit_json({**dataclasses.asdict(status), "policy": _policy_json(config)})
        return EXIT_FAIL if (status.exists and not status.healthy) or policy_failed else EXIT_OK
    if not status.exists:
        print(
            f"no index for {status.root} (expected at {status.db}): run `enclave index {status.root}`"
        )
        if status.shared_problem:  # index.shared is set but cannot be read
            print(f"shared:    {status.shared}: {status.shared_problem}")
            print(f"fix:       {status.shared_fix}")
        _print_policy(config)
        return EXIT_FAIL
    semantic = "on" if status.semantic else f"off: {status.semantic_reason}"
    if status.semantic and status.vectors_missing:
        semantic += f" ({status.vectors_missing} chunks not embedded yet: run `enclave index`)"
    elif status.semantic and status.vectors_outdated:
        semantic += (
            " (its vectors were made by an older Enclave and rank less well: run `enclave index`"
            " to embed them again)"
        )
    print(f"index:     {status.db}")
    if status.shared:
        print(
            f"shared:    {status.shared} (read-only; {status.overlay_files} file(s) indexed"
            f" locally over it, {status.hidden_files} of its file(s) shadowed or deleted here)"
        )
        if status.shared_copy:
            print(f"copy:      {status.shared_copy} (queries read this local copy of it)")
        if status.shared_problem:
            print(f"degraded:  {status.shared_problem}")
            print(f"fix:       {status.shared_fix}")
    if not status.healthy:
        print(f"problem:   {status.problem}")
        print(f"fix:       {status.fix}")
    elif status.updating:
        print("state:     being updated (by `enclave index` or the editor's server)")
    if status.partial:
        print("state:     partial: the last update was cancelled; run `enclave index` to finish")
    print(f"files:     {status.files} indexed, {status.files_skipped} skipped")
    print(f"chunks:    {status.chunks}   symbols: {status.symbols}")
    print(f"commit:    {status.commit or '-'}   indexed at {status.indexed_at}")
    print(f"embedding: {status.embedding_model or '-'} ({status.embedding_dim} dims)")
    print(f"semantic:  {semantic}")
    _print_policy(config)
    return EXIT_OK if status.healthy and not policy_failed else EXIT_FAIL


def cmd_context(args: argparse.Namespace) -> int:
    given = Path(args.file).expanduser()
    root = find_repository(given.resolve().parent)
    if root is None:
        raise CliError(
            f"{args.file} is not inside a repository",
            "pass a file of a git repository (or of a folder indexed with `enclave index`)",
        )
    config = load(root, args)
    file = str(given.absolute())  # the server runs elsewhere: never relative
    served = ask_editor(
        args, root, config, "context", file=file, line=args.line, character=args.character
    )
    report = served if served is not None else _context_here(args, root, config, given)
    if args.json:
        emit_json(report)
        return EXIT_OK
    for piece in report.get("pieces", []):
        print(f"{piece['path']}:{piece['start_line']}-{piece['end_line']}  ({piece['reason']})")
    return EXIT_OK


def _context_here(
    args: argparse.Namespace, root: Path, config: Config, given: Path
) -> dict[str, Any]:
    """`enclave context` computed in this process: the file read through the trust boundary,
    the index opened here."""
    from enclave.indexer.api import open_index
    from enclave.server.completion.pipeline import prepare_completion
    from enclave.server.completion.report import report_of
    from enclave.server.trust import Boundary

    found = Boundary(config, [root]).read_file(given)  # the trust boundary reads it
    lines = found.text.count("\n") + (0 if found.text.endswith("\n") else 1)
    if args.line > max(lines, 1):
        raise CliError(
            f"line {args.line} is past the end of {found.path} ({lines} lines)",
            "pass --line between 1 and the number of lines",
            EXIT_USAGE,
        )
    opened = open_index(root, config)
    catch_up_layered(opened)
    status = opened.status()
    index: Index | None = opened
    if not status.exists:
        print(f"note: no index for {root}: run `enclave index {root}`", file=sys.stderr)
        opened.close()
        index = None
    prepared = prepare_completion(
        index, found.path, found.text, args.line - 1, args.character, config
    )
    return report_of(prepared)


def register(subparsers: Any) -> None:
    """Add `index`, `search`, `status` and `context` to the `enclave` command line."""
    p = subparsers.add_parser("index", help="build or update the index of a repository")
    p.add_argument("path", nargs="?", default=".", help="repository (default: .)")
    p.add_argument("--full", action="store_true", help="rebuild from scratch")
    p.add_argument(
        "--fail-on-degraded",
        action="store_true",
        help="exit 1 (not 2) when the index is built but degraded (e.g. no embeddings)",
    )
    p.add_argument(
        "--retain",
        type=bounded_int(0),
        metavar="MINUTES",
        help="keep old table versions this long after compaction (index.retain_minutes)",
    )
    add_common_options(p, root=False)
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser("search", help="search the index")
    p.add_argument("query")
    p.add_argument(
        "--k",
        type=bounded_int(1, MAX_K),
        default=10,
        help=f"number of results, 1-{MAX_K} (default 10)",
    )
    p.add_argument("--mode", choices=("hybrid", "lexical", "semantic"), default="hybrid")
    p.add_argument("--path-prefix", help="only paths starting with this")
    p.add_argument("--language", help="only this language (python, go, ...)")
    p.add_argument("--text", action="store_true", help="show the chunks' text")
    add_common_options(p)
    add_no_server_option(p)
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser(
        "status", help="what the index holds and whether semantic search is on"
    )
    add_common_options(p)
    add_no_server_option(p)
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser(
        "context", help="the context a completion at FILE:LINE:CHARACTER would use"
    )
    p.add_argument("file")
    p.add_argument("--line", type=bounded_int(1), required=True, help="1-based line")
    p.add_argument("--character", type=bounded_int(0), required=True, help="0-based column")
    add_common_options(p, root=False)
    add_no_server_option(p)
    p.set_defaults(func=cmd_context)
