"""The `enclave` command line: its commands (index, search, status, ...) and their shared behaviour.

Human output goes to stdout (results) and stderr (progress, notes, problems); `--json` prints one
JSON document on stdout for machines. Failures exit non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from enclave import package_version
from enclave.errors import EnclaveError
from enclave.server.cli import company_commands, index_commands, model_commands
from enclave.server.cli.common import EXIT_FAIL, EXIT_USAGE, CliError, Parser


def cmd_lsp(args: argparse.Namespace) -> int:
    if args.transport is not None:
        raise CliError(
            f"the language server speaks LSP over stdio only, not {args.transport}",
            "configure your editor to start `enclave lsp` with the stdio transport",
            EXIT_USAGE,
        )
    from enclave.server.lsp.app import run_lsp

    return run_lsp(verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="enclave")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    parser.add_argument("--version", action="version", version=f"enclave {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    index_commands.register(sub)
    model_commands.register(sub)
    company_commands.register(sub)
    p = sub.add_parser("lsp", help="run the language server on stdio (editors start this)")
    # LSP clients name the transport they chose (vscode-languageclient appends --stdio).
    p.add_argument(
        "--stdio", action="store_true", help="use stdio (the default and only transport)"
    )
    for other in ("--socket", "--pipe", "--node-ipc", "--port"):
        p.add_argument(
            other, dest="transport", action="store_const", const=other, help=argparse.SUPPRESS
        )
    p.set_defaults(func=cmd_lsp, json=False, quiet=True, transport=None)
    # The summary names every command registered above, so it cannot leave one out.
    parser.description = "The Enclave command line: " + ", ".join(sub.choices) + "."
    return parser


def keep_workspaces_off_sys_path() -> None:
    """Child processes (indexing workers are started as ``python -c ...``) must not put their
    working directory, a workspace, first on ``sys.path``: a workspace with its own
    ``multiprocessing/`` (or ``enclave/``) package would run in their place. PYTHONSAFEPATH is
    ``-P`` for every Python started from here."""
    os.environ["PYTHONSAFEPATH"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    keep_workspaces_off_sys_path()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "lsp":  # the server configures its own logging (INFO, to the client too)
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
        print("enclave: interrupted (what was finished is kept)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `enclave search ... | head`: the reader is gone, nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (stdout's final flush must not fail)
        return EXIT_FAIL
