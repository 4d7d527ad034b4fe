"""The CLI commands that use the model: `enclave doctor`, `enclave ask`, `enclave explain`.

``register(subparsers)`` adds them to the `enclave` parser (``enclave.server.cli.main``). Answers stream to
stdout as they come; while the model thinks, stderr shows how long (tokens, seconds), the
reasoning itself with ``--show-thinking`` (none of it with ``--no-thinking``); the answer ends with the path:line citations of the repository chunks used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from enclave.config import Config
from enclave.server.cli.common import add_common_options, load, note_remote_host, root_of
from enclave.server.model.errors import ModelError

_RANGE = re.compile(r"^(?P<path>.+?):(?P<start>\d+)(?:-(?P<end>\d+))?$")


def register(subparsers: Any) -> None:
    """Add `doctor`, `ask` and `explain` to the `enclave` command line."""

    p = subparsers.add_parser("doctor", help="check Ollama, the models and the index")
    add_common_options(p)
    p.set_defaults(func=cmd_doctor)

    p = subparsers.add_parser("ask", help="ask a question about the repository")
    p.add_argument("question", nargs="+", help="the question (quote it or not)")
    _thinking_options(p)
    add_common_options(p)
    p.set_defaults(func=cmd_ask)

    p = subparsers.add_parser("explain", help="explain FILE or FILE:START-END (1-based lines)")
    p.add_argument("target", metavar="FILE[:START-END]")
    _thinking_options(p)
    add_common_options(p)
    p.set_defaults(func=cmd_explain)


def _thinking_options(p: argparse.ArgumentParser) -> None:
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "--show-thinking", action="store_true",
        help="print the model's thinking on stderr as it comes (default: its length and time)",
    )  # fmt: skip
    shown.add_argument(
        "--no-thinking", action="store_true", help="print nothing about the model's thinking"
    )


def _fail(message: str, fix: str = "") -> int:
    print(f"enclave: error: {message}" + (f" ({fix})" if fix else ""), file=sys.stderr)
    return 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from enclave.server.doctor import render, run_doctor

    root = root_of(args)
    config = load(root, args)
    report = asyncio.run(run_doctor(config, root))
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(report))
    return 0 if report.ok else 1


def _open_index(root: Path, config: Config, quiet: bool) -> Any:
    from enclave.indexer.api import IndexProblem, open_index

    try:
        index = open_index(root, config)
        if not index.status().exists:
            if not quiet:
                print(
                    f"enclave: no index at {root}: answering without repository context "
                    "(run `enclave index` first)",
                    file=sys.stderr,
                )
            index.close()
            return None
        return index
    except IndexProblem as exc:
        print(f"enclave: the index cannot be used ({exc}); answering without it", file=sys.stderr)
        return None


class _Thinking:
    """How the model's thinking shows on stderr while it thinks: by default a count of its
    tokens and the time so far (on a terminal one line rewritten in place, at most 4 times a
    second; elsewhere one line when the thinking ends), the reasoning itself with
    ``--show-thinking``, nothing with ``--no-thinking``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.mode = "hide" if args.no_thinking else "show" if args.show_thinking else "count"
        self.live = sys.stderr.isatty()
        self.tokens = 0
        self.started = 0.0
        self.drawn = 0.0
        self.open = False  # thinking is being shown and has not ended yet

    def add(self, text: str) -> None:
        if self.mode == "hide":
            return
        now = time.monotonic()
        if not self.open:
            self.open, self.started = True, now
            if self.mode == "show":
                sys.stderr.write("thinking: ")
        self.tokens += 1  # Ollama streams the thinking one token a part
        if self.mode == "show":
            sys.stderr.write(text)
        elif self.live and now - self.drawn >= 0.25:
            self.drawn = now
            sys.stderr.write(f"\rthinking… {self.tokens} tokens, {now - self.started:.0f} s ")
        sys.stderr.flush()

    def end(self) -> None:
        """The answer begins (or the stream ended): close what the thinking showed."""
        if not self.open:
            return
        self.open = False
        seconds = time.monotonic() - self.started
        if self.mode == "show":
            sys.stderr.write("\n\n")
        else:
            erase = "\r\x1b[K" if self.live else ""
            sys.stderr.write(f"{erase}thought {self.tokens} tokens in {seconds:.1f} s\n")
        sys.stderr.flush()


def _printer(args: argparse.Namespace) -> tuple[Any, _Thinking]:
    """The answer's event handler (answer text to stdout as it comes) and its thinking view."""
    from enclave.server.answer import AnswerEvent

    thinking = _Thinking(args)

    def on_event(event: AnswerEvent) -> None:
        if args.json:
            return
        if event.thinking:
            thinking.add(event.thinking)
        if event.markdown:
            thinking.end()
            sys.stdout.write(event.markdown)
            sys.stdout.flush()

    return on_event, thinking


def cut_message(answer: Any) -> str:
    """The one line on a cut answer, with the command line's ways to change the settings."""
    if answer.cut is None:
        return ""
    more = max(answer.cut.max_tokens * 2, 2048)
    return answer.cut.message(
        f'--settings \'{{"chat": {{"maxTokens": {more}}}}}\' or ENCLAVE_CHAT_MAX_TOKENS={more}',
        '--settings \'{"chat": {"think": false}}\' or ENCLAVE_CHAT_THINK=false',
    )


def _finish(args: argparse.Namespace, answer: Any) -> int:
    """Print the answer's end; 1 when the model answered nothing at all (the reason on stderr)."""
    cut = cut_message(answer)
    code = 0
    if not answer.markdown:
        code = 1
        cut = cut or (
            f"{answer.model} answered nothing (done_reason: {answer.done_reason or 'none'}); "
            "try again, or ask in other words"
        )
    if args.json:
        json.dump(
            {
                "model": answer.model,
                "markdown": answer.markdown,
                "thinking": answer.thinking,
                "citations": [
                    {"path": c.path, "start_line": c.start_line, "end_line": c.end_line,
                     "symbol": c.symbol}
                    for c in answer.citations
                ],
                "notes": answer.notes,
                "done_reason": answer.done_reason,
                "cut": cut_message(answer),
            },
            sys.stdout,
            indent=2,
        )  # fmt: skip
        sys.stdout.write("\n")
        if cut:
            print(f"enclave: {cut}", file=sys.stderr)
        return code
    sys.stdout.write("\n")
    for note in answer.notes:
        print(f"note: {note}", file=sys.stderr)
    if cut:
        print(f"enclave: {cut}", file=sys.stderr)
    if answer.citations:
        sys.stdout.write("\nSources:\n")
        for c in answer.citations:
            symbol = f"  {c.symbol}" if c.symbol else ""
            sys.stdout.write(f"  {c.path}:{c.start_line}-{c.end_line}{symbol}\n")
    sys.stdout.flush()
    return code


def _answer(args: argparse.Namespace, root: Path, config: Config, job: Any) -> int:
    """Open the index (if any), run ``job(index, client, on_event)``, print the answer; the
    exit code."""
    from enclave.server.model.client import not_allowed

    refusal = not_allowed(config, config.ollama.chat_model)
    if refusal is not None:  # before anything is opened or gathered
        return _fail(refusal.message, refusal.fix)
    note_remote_host(config)
    index = _open_index(root, config, args.quiet)
    on_event, thinking = _printer(args)
    try:
        answer = asyncio.run(_run(config, lambda client: job(index, client, on_event)))
    except ModelError as exc:
        return _fail(exc.message, exc.fix)
    finally:
        thinking.end()
        if index is not None:
            index.close()
    return _finish(args, answer)


async def _run(config: Config, job: Any) -> Any:
    from enclave.server.model.client import ModelClient

    client = ModelClient(config)
    try:
        return await job(client)
    finally:
        await client.aclose()


def cmd_ask(args: argparse.Namespace) -> int:
    from enclave.server.answer import ask

    root = root_of(args)
    config = load(root, args)
    question = " ".join(args.question).strip()
    if not question:
        return _fail("the question is empty", "write what you want to know")
    return _answer(
        args,
        root,
        config,
        lambda index, client, on_event: ask(index, client, question, on_event=on_event),
    )


def parse_target(target: str) -> tuple[Path, int | None, int | None]:
    """FILE[:START[-END]] -> (the file as given, start, end); lines are 1-based."""
    match = _RANGE.match(target)
    raw, start, end = target, None, None
    if match and not Path(target).exists():
        raw, start = match["path"], int(match["start"])
        end = int(match["end"]) if match["end"] else start
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path), start, end


def cmd_explain(args: argparse.Namespace) -> int:
    from enclave.server.answer import explain
    from enclave.server.trust import Boundary

    root = root_of(args)
    config = load(root, args)
    path, start, end = parse_target(args.target)
    # The trust boundary reads the file: inside the repository, a regular file, not a secret
    # file or one of trust.never_send, under the size cap.
    found = Boundary(config, [root]).read_file(path)
    rel = found.path
    lines = found.text.splitlines(keepends=True)
    start = start or 1
    end = end or len(lines)
    if not lines or start < 1 or end < start or end > len(lines):
        return _fail(
            f"lines {start}-{end} are not in {rel} ({len(lines)} lines)",
            "use FILE:START-END with 1-based inclusive line numbers",
        )
    text = "".join(lines[start - 1 : end])
    return _answer(
        args,
        root,
        config,
        lambda index, client, on_event: explain(
            index, client, path=rel, text=text, start_line=start, end_line=end,
            on_event=on_event,
        ),
    )  # fmt: skip
