"""The CLI commands for a company's controls: `enclave audit` (and the glossary, the customized
model and the training data export, each in its own module under ``enclave.server.company``).

``register(subparsers)`` adds them to the `enclave` parser (``enclave.server.cli.main``).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from enclave.server.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_common_options,
    emit_json,
    load,
    root_of,
)

_RELATIVE = re.compile(r"^(\d+)([dhm])$")


def parse_since(text: str) -> datetime:
    """``7d``, ``24h``, ``30m``, a date (``2026-12-01``) or an ISO time; UTC when none is given."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
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


def register(subparsers: Any) -> None:
    """Add `audit` and `glossary` to the `enclave` command line."""
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
