"""The CLI commands for a company's controls: `enclave audit`, `enclave glossary`, `enclave
customize` and `enclave dataset` (the work itself is in ``enclave.audit``, ``enclave.glossary``,
``enclave.server.customize`` and ``enclave.server.dataset``).

``register(subparsers)`` adds them to the `enclave` parser (``enclave.server.cli.main``).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from enclave.files import data_dir
from enclave.server.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_common_options,
    bounded_int,
    emit_json,
    load,
    note_remote_host,
    root_of,
)

_RELATIVE = re.compile(r"^(\d+)([dhm])$")


def parse_since(text: str) -> datetime:
    """``7d``, ``24h``, ``30m``, a date (``2026-12-01``) or an ISO time; UTC when none is given."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match[2]]
        try:
            return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
        except (OverflowError, ValueError):  # before the year 1: every record is after it
            return datetime.min.replace(tzinfo=UTC)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 7d, 24h, 30m, a date such as 2026-12-01 or an ISO time, got {text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    from enclave.audit import audit_path, read_records, select, summarize

    root = root_of(args)
    config = load(root, args, broken_policy_ok=True)
    path = audit_path(config)
    if path is None:
        raise CliError("the audit log is off (audit.enabled = false)", "set audit.enabled = true")
    records, bad = read_records(path)
    chosen = select(records, since=args.since, model=args.model, purpose=args.purpose)
    summary = summarize(chosen)
    for note in bad[:20]:
        print(f"enclave: warning: {path.parent / note}", file=sys.stderr)
    if args.json:
        out: dict[str, Any] = {"log": str(path), "unreadable_lines": len(bad), **summary}
        if args.records:
            out["records"] = chosen
        emit_json(out)
        return EXIT_OK
    print(f"audit log: {path} ({summary['requests']} request(s) selected of {len(records)})")
    for title, key in (("model", "by_model"), ("purpose", "by_purpose"), ("day", "by_day")):
        print(f"\nby {title}:")
        print(f"  {'':<28} {'requests':>8} {'prompt tok':>11} {'output tok':>11} {'failed':>7}")
        for name, entry in summary[key].items():
            print(
                f"  {name:<28} {entry['requests']:>8} {entry['prompt_tokens']:>11} "
                f"{entry['output_tokens']:>11} {entry['failed']:>7}"
            )
    if args.records:
        print()
        for record in chosen:
            files = ", ".join(
                f"{f['path']}:{f['start_line']}-{f['end_line']}" for f in record.get("files", [])
            )
            print(
                f"{record.get('time')}  {record.get('user')}  {record.get('model')}  "
                f"{record.get('purpose')}  {record.get('outcome')}  {files}"
            )
    return EXIT_OK


def cmd_glossary(args: argparse.Namespace) -> int:
    from enclave.glossary import add_term, load_glossary

    root = root_of(args)
    if args.action == "add":
        if len(args.words) < 2:
            raise CliError(
                "`enclave glossary add` needs a term and its definition",
                'e.g. enclave glossary add EBD "electronic brake-force distribution"',
                EXIT_USAGE,
            )
        term = add_term(root, args.words[0], " ".join(args.words[1:]))
        print(f"added to {term.source}:{term.line}: {term.render()}")
        return EXIT_OK
    if args.words:
        raise CliError(f"`enclave glossary {args.action}` takes no arguments", "", EXIT_USAGE)
    glossary = load_glossary(root)
    if args.action == "list":
        if args.json:
            emit_json({"terms": glossary.terms, "problems": len(glossary.problems)})
        else:
            for term in glossary.terms:
                print(term.render())
            if glossary.problems:
                print(f"enclave: {len(glossary.problems)} problem(s): run `enclave glossary "
                      "check`", file=sys.stderr)  # fmt: skip
        return EXIT_OK
    if args.json:
        emit_json({"terms": len(glossary.terms), "problems": [str(p) for p in glossary.problems]})
    else:
        for problem in glossary.problems:
            print(problem)
        print(f"{len(glossary.terms)} term(s), {len(glossary.problems)} problem(s)")
    return EXIT_FAIL if glossary.problems else EXIT_OK


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 2.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 2, got {text!r}")
    return value


def cmd_customize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from enclave.server import customize

    root = root_of(args)
    config = load(root, args)
    plan = customize.plan(
        root, config, name=args.name, base=args.base,
        adapter=Path(args.adapter) if args.adapter else None,
        conventions=Path(args.conventions) if args.conventions else None,
        num_ctx=args.num_ctx, temperature=args.temperature,
    )  # fmt: skip
    text = customize.modelfile(plan)
    if args.dry_run:
        sys.stdout.write(text)
        return EXIT_OK
    target = data_dir(root) / "Modelfile"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    note_remote_host(config)

    def on_status(status: str) -> None:
        if not args.quiet and not args.json:
            print(f"enclave: {status}", file=sys.stderr, flush=True)

    customize.create(config, plan, on_status)
    refusal = config.policy.why_not_model(plan.name)
    used = None
    if args.use:
        if refusal is not None:
            raise CliError(
                f"{plan.name} was created but cannot be the chat model: {refusal}",
                "ask your administrator to allow it (allowed_models)",
            )
        used = customize.use_as_chat_model(root, plan.name)
    if args.json:
        emit_json({"model": plan.name, "base": plan.base, "modelfile": str(target),
                   "adapter": str(plan.adapter) if plan.adapter else None,
                   "chat_model_set_in": str(used) if used else None})  # fmt: skip
        return EXIT_OK
    print(f"created {plan.name} from {plan.base} (Modelfile: {target})")
    if used is not None:
        print(f"chat model set to {plan.name} in {used}")
    else:
        print(f"use it with: enclave customize --use, or ollama.chat_model = {plan.name!r}")
    return EXIT_OK


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 0.99, got {text!r}")
    return value


def cmd_dataset(args: argparse.Namespace) -> int:
    from pathlib import Path

    from enclave.indexer.api import open_index
    from enclave.server import dataset

    root = root_of(args)
    config = load(root, args)
    csv_files = [Path(p).expanduser() for p in args.csv]
    for path in csv_files:
        if not path.is_file():
            raise CliError(f"no such CSV file: {path}", "pass a file of question,answer rows")
    out = Path(args.out).expanduser()
    dataset.prepare_output(out)  # a file, /proc, no permission: said before any work
    index = None
    if not args.no_index:
        index = open_index(root, config)
        if not index.status().exists:
            print(f"enclave: note: no index for {root}: run `enclave index` to export code pairs",
                  file=sys.stderr)  # fmt: skip
            index.close()
            index = None
    try:
        export = dataset.build(
            config, root, index, csv_files, validation=args.validation, seed=args.seed,
            include_tests=args.include_tests,
        )  # fmt: skip
    finally:
        if index is not None:
            index.close()
    formats = ("jsonl", "csv") if args.format == "both" else (args.format,)
    dataset.write(export, out, formats)
    for row in export.bad_rows[:50]:
        print(f"enclave: skipped {row}", file=sys.stderr)
    if export.dropped and not args.quiet:
        reasons = "; ".join(f"{n} {why}" for why, n in export.dropped.items())
        print(f"enclave: left out {sum(export.dropped.values())} pair(s): {reasons}",
              file=sys.stderr)  # fmt: skip
    report = {
        "pairs": len(export.pairs),
        "train": len(export.train),
        "validation": len(export.validation),
        "by_source": export.by_source,
        "exact_duplicates": export.exact_duplicates,
        "near_duplicates": export.near_duplicates,
        "redactions": export.redactions,
        "bad_rows": export.bad_rows,
        "dropped": export.dropped,
        "files": export.files,
    }
    if args.json:
        emit_json(report)
        return EXIT_OK
    sources = ", ".join(f"{n} {k}" for k, n in sorted(export.by_source.items())) or "none"
    print(
        f"{len(export.pairs)} pair(s) ({sources}): {len(export.train)} train, "
        f"{len(export.validation)} validation; removed {export.exact_duplicates} exact and "
        f"{export.near_duplicates} near duplicate(s); {export.redactions} secret(s) redacted; "
        f"{len(export.bad_rows)} bad row(s) skipped"
    )
    for file in export.files:
        print(f"  {file}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add `audit`, `glossary`, `customize` and `dataset` to the `enclave` command line."""
    p = subparsers.add_parser(
        "dataset", help="export instruction pairs for LoRA fine-tuning (JSONL and CSV)"
    )
    p.add_argument("out", help="the directory to write train/valid files to")
    p.add_argument("--csv", action="append", default=[], help="a question,answer CSV (repeatable)")
    p.add_argument("--no-index", action="store_true", help="leave out the pairs from the index")
    p.add_argument("--format", choices=("jsonl", "csv", "both"), default="both")
    p.add_argument("--validation", type=_fraction, default=0.1, help="validation share (0.1)")
    p.add_argument("--seed", type=int, default=7, help="shuffle seed (default 7)")
    p.add_argument("--include-tests", action="store_true", help="also make pairs from test code")
    add_common_options(p)
    p.set_defaults(func=cmd_dataset)

    p = subparsers.add_parser(
        "customize",
        help="create the project's own Ollama model (system prompt, glossary, LoRA adapter)",
    )
    p.add_argument("--name", help="the model's name (default: enclave-<repository>)")
    p.add_argument("--base", help="the model it is made FROM (default: ollama.chat_model)")
    p.add_argument("--adapter", help="a LoRA adapter: a GGUF file or safetensors file/directory")
    p.add_argument("--conventions", help="the conventions file (default .enclave/conventions.md)")
    p.add_argument(
        "--num-ctx", type=bounded_int(256), help="PARAMETER num_ctx (default chat.num_ctx)"
    )
    p.add_argument("--temperature", type=_temperature, help="PARAMETER temperature (default 0.6)")
    p.add_argument("--dry-run", action="store_true", help="print the Modelfile, create nothing")
    p.add_argument("--use", action="store_true", help="set it as the chat model (.enclave.toml)")
    add_common_options(p)
    p.set_defaults(func=cmd_customize)

    p = subparsers.add_parser(
        "glossary",
        help="the project glossary (.enclave/glossary.md): add TERM DEFINITION, list, check",
    )
    p.add_argument("action", choices=("add", "list", "check"))
    p.add_argument("words", nargs="*", help="for add: the term, then its definition")
    add_common_options(p)
    p.set_defaults(func=cmd_glossary)

    p = subparsers.add_parser(
        "audit", help="summarize the audit log of model requests (by model, purpose and day)"
    )
    p.add_argument("--since", type=parse_since, help="only requests since 7d, 24h, or a date")
    p.add_argument("--model", help="only requests to this model")
    p.add_argument("--purpose", help="only this purpose (completion, explain, ask, embedding)")
    p.add_argument("--records", action="store_true", help="also list the selected records")
    add_common_options(p)
    p.set_defaults(func=cmd_audit)
