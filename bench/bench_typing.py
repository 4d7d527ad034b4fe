"""Typing through the real server: time to suggestion and prompt tokens evaluated, per layout.

    python bench/bench_typing.py                              # chat-fill prompts (deepseek-r1)
    python bench/bench_typing.py --model qwen2.5-coder:1.5b   # FIM prompts
    python bench/bench_typing.py --places 1 --lines 1 --chars 8   # a short session
    python bench/bench_typing.py --json

Replays one typing session twice through the real language server (``python -P -m
enclave.server.lsp`` over stdio, a fresh process each time) against the test Ollama server (a
real tiny model, started here): first with ``completion.cacheFriendly = false`` (the baseline
prompt layout), then with ``true`` (the cache-friendly layout), and prints both side by side with
their ratio (baseline / cache-friendly).

The corpus is a temporary git clone of this repository, indexed lexically (embedding provider
``none``). In ``--places`` places inside function bodies of a few of its Python files the user
presses Enter at the end of a statement (the new line gets the statement's indentation) and types
a statement made of the function's own names character by character (at most ``--chars``
characters), then Enter and another one, ``--lines`` statements in all (people write a few lines
where they stop, not one).
Each keystroke does what VS Code does: ``textDocument/didChange`` (one incremental change), then
``textDocument/inlineCompletion`` at the new cursor; a request still pending at the next
keystroke is cancelled (``$/cancelRequest``). Keys come every 90-160 ms (seeded); when a word is
complete (a space, ``(``, ``,``, ``=`` or ``.`` typed before the next word starts) and at the end
of each place the user waits for the suggestion (up to ``--wait`` seconds).

Figures: time to suggestion (from the didChange to an answer with an item, over the requests
not cancelled) p50/p95, suggestions shown and how many came in under 50 ms (answered without the
model: the server's cache or a typed-through suggestion); model runs recorded by the test server
per keystroke; prompt tokens the model evaluated per run (``prompt_tokens - cached_tokens``, its
prompt cache reuses the longest common prefix with the previous run) and prompt tokens per run;
model runs the server hung up on ("client-closed": a cancelled request, or the server stopping
the stream once it has its line). Prints figures, asserts nothing.

``--num-ctx`` defaults to the test model's real window (2048): with the server's default (4096)
a long prompt loses its start in the model server, and then no prompt cache can help. ``-v``
logs every model run. Time to suggestion depends on the machine's load (the test model runs on
one CPU thread); prompt tokens evaluated do not.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsprotocol import types  # noqa: E402
from pygls.exceptions import JsonRpcRequestCancelled  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from tests.support.llama_engine import ENGINE, N_CTX  # noqa: E402
from tests.support.lsp_params import inline_params, insertion  # noqa: E402
from tests.support.ollama_server import Generation, OllamaTestServer  # noqa: E402

ENCLAVE = Path(sys.executable).with_name("enclave")
FILES = (
    "server/enclave/server/completion/sources/imports.py",
    "indexer/enclave/indexer/engine.py",
    "server/enclave/server/model/budget.py",
    "server/enclave/server/model/client.py",
    "server/enclave/server/lsp/completion.py",
)
WORD_ENDS = " (,=."
INSTANT_S = 0.050  # a suggestion this fast came without a model run
LAYOUTS = (("baseline", False), ("cache-friendly", True))


@dataclass
class Place:
    path: str  # relative to the repository
    line: int  # 0-based line the Enter is pressed at the end of
    indent: str
    statements: list[str]
    function: str


@dataclass
class Request:
    msg_id: str
    sent_at: float  # perf_counter() when the didChange went out
    future: Future[Any]
    answered_at: float = 0.0


@dataclass
class Session:
    """What one typing session measured."""

    keystrokes: int = 0
    requests: list[Request] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    seconds: float = 0.0
    server_log: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    warnings: int = 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the places and what is typed there ------------------------------------------------------


def _clean_end(lines: list[str], node: ast.stmt) -> bool:
    """The statement ends its line (nothing but a comment after it)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    rest = lines[node.end_lineno - 1][node.end_col_offset :].strip()
    return not rest or rest.startswith("#")


def _dotted(node: ast.expr) -> bool:
    """A name or a chain of attributes on a name (``self.store.search``), no calls inside."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _statement(function: ast.FunctionDef | ast.AsyncFunctionDef, rng: random.Random) -> str:
    """An assignment from a call, made of the names this function already uses."""
    targets = sorted(
        {
            t.id
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name) and len(t.id) > 2
        }
    )
    callees = sorted(
        {
            ast.unparse(node.func)
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and _dotted(node.func)
            and 3 < len(ast.unparse(node.func)) <= 32
            and ast.unparse(node.func) not in ("len", "isinstance", "list", "dict", "sorted")
        }
    )
    args = [a.arg for a in function.args.args if a.arg not in ("self", "cls")]
    target = rng.choice(targets) if targets else "result"
    callee = rng.choice(callees) if callees else function.name
    return f"{target} = {callee}({', '.join(args[:3] or ['value'])})"


def choose_places(repo: Path, count: int, lines_per_place: int, rng: random.Random) -> list[Place]:
    """``count`` places in function bodies, spread over FILES; per file, last place first (typing
    there does not move the lines of the places before it)."""
    per_file: dict[str, int] = {}
    for index in range(count):
        path = FILES[index % len(FILES)]
        per_file[path] = per_file.get(path, 0) + 1
    places: list[Place] = []
    for path, wanted in per_file.items():
        text = (repo / path).read_text(encoding="utf-8")
        lines = text.splitlines()
        candidates: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, int]] = []
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            spots = [
                i
                for i in range(1, len(node.body))
                if _clean_end(lines, node.body[i - 1])
                and lines[node.body[i].lineno - 1][: node.body[i].col_offset].strip() == ""
                and not isinstance(node.body[i - 1], ast.Expr | ast.Return)
            ]
            if len(node.body) >= 3 and spots:
                candidates.append((node, rng.choice(spots)))
        chosen = rng.sample(candidates, min(wanted, len(candidates)))
        found = []
        for function, i in chosen:
            before, after = function.body[i - 1], function.body[i]
            assert before.end_lineno is not None
            indent = lines[after.lineno - 1][: after.col_offset]
            found.append(
                Place(
                    path,
                    before.end_lineno - 1,
                    indent,
                    [_statement(function, rng) for _ in range(lines_per_place)],
                    function.name,
                )
            )
        places.extend(sorted(found, key=lambda p: -p.line))
    return places


# --- one session through the real server -----------------------------------------------------


def server_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
    env["XDG_CONFIG_HOME"] = str(work / "xdg")  # no user configuration
    env["ENCLAVE_LOG_LEVEL"] = "WARNING"
    return env


def settings(url: str, model: str, cache_friendly: bool, num_ctx: int | None) -> dict[str, Any]:
    completion: dict[str, Any] = {"cacheFriendly": cache_friendly, "maxTokens": 24}
    if num_ctx:
        completion["numCtx"] = num_ctx
    return {
        "ollama": {"host": url, "chatModel": "deepseek-r1", "completionModel": model},
        "embedding": {"provider": "none"},
        "completion": completion,
    }


async def _drain(stream: asyncio.StreamReader | None, session: Session) -> None:
    """Read the server's stderr (a full pipe would block it); keep the tail."""
    if stream is None:
        return
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        session.server_log.append(text)
        if "WARNING" in text or "ERROR" in text or "Traceback" in text:
            session.warnings += 1


async def _settle(request: Request, timeout: float) -> None:
    """Wait for the answer (without cancelling the request when the wait times out)."""
    answer = asyncio.wrap_future(request.future)
    answer.add_done_callback(lambda f: f.cancelled() or f.exception())  # read later, not here
    await asyncio.wait({answer}, timeout=timeout)


async def run_session(
    repo: Path,
    work: Path,
    places: list[Place],
    options: dict[str, Any],
    model_server: OllamaTestServer,
    *,
    seed: int,
    wait: float,
) -> Session:
    session = Session()
    client = LanguageClient("enclave-bench-typing", "1")
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @client.feature("enclave/status")
    def status(ls: LanguageClient, params: Any) -> None:
        if params.state in ("ready", "degraded", "error") and not ready.done():
            ready.set_result(params)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show(ls: LanguageClient, params: Any) -> None:
        log(f"  server says: {params.message}")

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(ls: LanguageClient, params: Any) -> None:
        pass

    await client.start_io(
        sys.executable, "-P", "-m", "enclave.server.lsp", cwd=str(repo), env=server_env(work)
    )
    process = client._server
    assert process is not None
    drain = asyncio.create_task(_drain(process.stderr, session))
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=repo.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name=repo.name)],
                initialization_options=options,
            )
        )
        client.initialized(types.InitializedParams())
        state = await asyncio.wait_for(ready, 300)
        if state.state != "ready":
            raise SystemExit(f"the server is {state.state}: {getattr(state, 'message', '')}")
        await asyncio.sleep(0.5)  # the model check and the model load request settle
        first_generation = len(model_server.state.generations)
        rng = random.Random(seed)
        texts: dict[str, list[str]] = {}
        versions: dict[str, int] = {}
        pending: Request | None = None
        started = time.perf_counter()

        def keystroke(
            uri: str, start: types.Position, text: str, cursor: types.Position
        ) -> Request:
            nonlocal pending
            if pending is not None and not pending.future.done():
                client.cancel_request(types.CancelParams(id=pending.msg_id))
            versions[uri] += 1
            sent_at = time.perf_counter()
            client.text_document_did_change(
                insertion(uri, versions[uri], start.line, start.character, text)
            )
            msg_id = f"typing-{uuid.uuid4().hex[:12]}"
            future = client.protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION,
                inline_params(uri, cursor.line, cursor.character),
                msg_id=msg_id,
            )
            request = Request(msg_id, sent_at, future)

            def answered(_: Future[Any]) -> None:
                request.answered_at = time.perf_counter()

            future.add_done_callback(answered)
            session.requests.append(request)
            session.keystrokes += 1
            pending = request
            return request

        for number, place in enumerate(places, start=1):
            uri = (repo / place.path).as_uri()
            if uri not in texts:
                body = (repo / place.path).read_text(encoding="utf-8")
                texts[uri] = body.splitlines()
                versions[uri] = 1
                client.text_document_did_open(
                    types.DidOpenTextDocumentParams(
                        text_document=types.TextDocumentItem(
                            uri=uri, language_id="python", version=1, text=body
                        )
                    )
                )
            log(
                f"  place {number}/{len(places)}: {place.path}:{place.line + 2} in "
                f"{place.function}(), typing {place.statements!r}"
            )
            line, column = place.line, len(texts[uri][place.line])
            for typed in place.statements:
                # Enter at the end of the line: the new line gets the statement's indentation
                keystroke(
                    uri,
                    types.Position(line, column),
                    "\n" + place.indent,
                    types.Position(line + 1, len(place.indent)),
                )
                line, column = line + 1, len(place.indent)
                await asyncio.sleep(rng.uniform(0.09, 0.16))
                for i, char in enumerate(typed):
                    request = keystroke(
                        uri, types.Position(line, column), char, types.Position(line, column + 1)
                    )
                    column += 1
                    following = typed[i + 1] if i + 1 < len(typed) else ""
                    if i + 1 == len(typed) or (
                        char in WORD_ENDS and (following.isalnum() or following == "_")
                    ):
                        await _settle(request, wait)  # the user waits for the suggestion
                    await asyncio.sleep(rng.uniform(0.09, 0.16))
        session.seconds = time.perf_counter() - started
        for request in session.requests:
            if not request.future.done():
                await _settle(request, wait)
        # Cancelled model runs still hold the model until they notice: wait for them to end.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(
            not g.stop for g in model_server.state.generations[first_generation:]
        ):
            await asyncio.sleep(0.1)
        session.generations = list(model_server.state.generations[first_generation:])
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(client.stop(), 5)
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
    return session


def log_runs(session: Session) -> None:
    """Every model run of the session: when, how long, prompt and cached tokens, how it ended."""
    zero = session.generations[0].started_at if session.generations else 0.0
    for g in session.generations:
        took = (g.stopped_at - g.started_at) if g.stopped_at else math.nan
        log(
            f"    run at +{g.started_at - zero:6.1f} s, {took:5.1f} s: {g.endpoint} prompt "
            f"{g.prompt_tokens} cached {g.cached_tokens} stop {g.stop or '-'} text {g.text!r}"
        )


# --- figures ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (nan when there is no value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures(session: Session) -> dict[str, float]:
    latencies: list[float] = []
    cancelled = empty = failed = 0
    for request in session.requests:
        future = request.future
        if not future.done() or future.cancelled():
            failed += 1
            continue
        error = future.exception()
        if isinstance(error, JsonRpcRequestCancelled):
            cancelled += 1
        elif error is not None:
            failed += 1
        elif isinstance(result := future.result(), types.InlineCompletionList) and result.items:
            latencies.append(request.answered_at - request.sent_at)
        else:
            empty += 1
    runs = [g for g in session.generations if g.endpoint in ("generate", "chat")]
    started = [g for g in runs if g.prompt_tokens > 0]
    evaluated = [g.prompt_tokens - g.cached_tokens for g in started]
    prompt_total = sum(g.prompt_tokens for g in started)
    nan = math.nan
    return {
        "time_to_suggestion_p50_s": percentile(latencies, 0.50),
        "time_to_suggestion_p95_s": percentile(latencies, 0.95),
        "suggestions_shown": len(latencies),
        "suggestions_without_model": sum(1 for t in latencies if t < INSTANT_S),
        "keystrokes": session.keystrokes,
        "requests_cancelled": cancelled,
        "requests_empty": empty,
        "requests_failed": failed,
        "model_runs": len(runs),
        "model_runs_per_keystroke": len(runs) / session.keystrokes if session.keystrokes else nan,
        "prompt_tokens_evaluated_mean": statistics.fmean(evaluated) if evaluated else nan,
        "prompt_tokens_evaluated_median": statistics.median(evaluated) if evaluated else nan,
        "prompt_tokens_mean": prompt_total / len(started) if started else nan,
        "cached_share": sum(g.cached_tokens for g in started) / prompt_total if started else nan,
        "model_runs_cancelled": sum(1 for g in runs if g.stop == "client-closed"),
        "model_runs_at_window": sum(1 for g in started if g.prompt_tokens >= N_CTX - 24),
        "session_s": session.seconds,
        "server_warnings": session.warnings,
    }


ROWS: list[tuple[str, str, str]] = [
    ("time to suggestion p50 (s)", "time_to_suggestion_p50_s", "{:.2f}"),
    ("time to suggestion p95 (s)", "time_to_suggestion_p95_s", "{:.2f}"),
    ("suggestions shown", "suggestions_shown", "{:.0f}"),
    ("  of those without the model (<50 ms)", "suggestions_without_model", "{:.0f}"),
    ("keystrokes", "keystrokes", "{:.0f}"),
    ("requests cancelled / empty", "requests_cancelled", "{:.0f}"),
    ("model calls per keystroke", "model_runs_per_keystroke", "{:.2f}"),
    ("prompt tokens evaluated per request (mean)", "prompt_tokens_evaluated_mean", "{:.0f}"),
    ("prompt tokens evaluated per request (median)", "prompt_tokens_evaluated_median", "{:.0f}"),
    ("prompt tokens per request (mean)", "prompt_tokens_mean", "{:.0f}"),
    ("cached share of prompt tokens", "cached_share", "{:.0%}"),
    ("model runs closed by the server (client-closed)", "model_runs_cancelled", "{:.0f}"),
    ("session wall time (s)", "session_s", "{:.1f}"),
]


def ratio(base: float, friendly: float) -> float:
    if math.isnan(base) or math.isnan(friendly) or friendly == 0:
        return math.nan
    return base / friendly


def table(results: dict[str, dict[str, float]]) -> str:
    base, friendly = results["baseline"], results["cache-friendly"]
    lines = [f"{'figure':50} {'baseline':>10} {'cache-friendly':>15} {'ratio':>7}"]
    for label, key, fmt in ROWS:
        left, right = fmt.format(base[key]), fmt.format(friendly[key])
        if key == "requests_cancelled":
            left = f"{base[key]:.0f} / {base['requests_empty']:.0f}"
            right = f"{friendly[key]:.0f} / {friendly['requests_empty']:.0f}"
        value = ratio(base[key], friendly[key])
        shown = "" if math.isnan(value) else f"{value:.2f}"
        lines.append(f"{label:50} {left:>10} {right:>15} {shown:>7}")
    return "\n".join(lines)


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --- main ------------------------------------------------------------------------------------


def prepare_repo(work: Path) -> Path:
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    log(f"cloned {ROOT} into {repo}; indexing it (lexical)")
    started = time.perf_counter()
    built = subprocess.run(
        [str(ENCLAVE), "index", str(repo), "-q", "--settings", '{"embedding":{"provider":"none"}}'],
        env=server_env(work),
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise SystemExit(f"enclave index failed: {built.stderr.strip()[-600:]}")
    log(f"indexed in {time.perf_counter() - started:.1f} s")
    return repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=3, help="places typed at (default 3)")
    parser.add_argument("--lines", type=int, default=3, help="statements typed per place")
    parser.add_argument("--chars", type=int, default=40, help="most characters per statement")
    parser.add_argument("--model", default="deepseek-r1", help="completion model (test server)")
    parser.add_argument(
        "--num-ctx",
        type=int,
        default=N_CTX,
        help=f"completion.numCtx (default {N_CTX}, the test model's real window: a longer prompt "
        "loses its start in the model server, which defeats any prompt cache; 0: the server's "
        "default)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every model run")
    parser.add_argument("--wait", type=float, default=120.0, help="longest wait for an answer (s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-typing-"))
    model_server: OllamaTestServer | None = None
    try:
        repo = prepare_repo(work)
        places = choose_places(repo, args.places, args.lines, random.Random(args.seed))
        for place in places:
            place.statements = [statement[: args.chars] for statement in place.statements]
        model_server = OllamaTestServer(0).start()
        with ENGINE.lock:
            ENGINE.gen  # noqa: B018  (load the model now, not inside the first session's figures)
        log(f"test model server on {model_server.url}; completion model {args.model}")
        results: dict[str, dict[str, float]] = {}
        for name, cache_friendly in LAYOUTS:
            with ENGINE.lock:
                ENGINE.gen.reset()  # no prompt cache carried over from the other session
            model_server.state.generations.clear()
            log(f"session {name} (completion.cacheFriendly = {str(cache_friendly).lower()})")
            options = settings(model_server.url, args.model, cache_friendly, args.num_ctx)
            session = asyncio.run(
                run_session(
                    repo, work, places, options, model_server, seed=args.seed, wait=args.wait
                )
            )
            results[name] = figures(session)
            if args.verbose:
                log_runs(session)
            if session.warnings:
                log(f"  the server logged {session.warnings} warning/error lines; its last lines:")
                for line in list(session.server_log)[-8:]:
                    log(f"    {line}")
            if results[name]["model_runs_at_window"]:
                log(
                    f"  {results[name]['model_runs_at_window']:.0f} prompts filled the test "
                    f"model's {N_CTX}-token window (cut by the model server, no prompt cache): lower --num-ctx"
                )
    finally:
        if model_server is not None:
            model_server.stop()
        shutil.rmtree(work, ignore_errors=True)

    base, friendly = results["baseline"], results["cache-friendly"]
    if args.json:
        keys = [key for _, key, _ in ROWS] + ["requests_empty", "requests_failed", "model_runs"]
        payload = {
            "model": args.model,
            "places": args.places,
            "lines": args.lines,
            "chars": args.chars,
            "baseline": base,
            "cache_friendly": friendly,
            "ratio": {key: ratio(base[key], friendly[key]) for key in keys},
        }
        print(json.dumps(_no_nan(payload), indent=2))
        return 0
    print(
        f"typing session: {args.places} places x {args.lines} statements of up to "
        f"{args.chars} characters, model {args.model}"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
