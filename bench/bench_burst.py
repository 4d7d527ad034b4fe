"""Bursts of completion requests on a slow model: generations in flight and the server's memory.

    python bench/bench_burst.py                  # 5 bursts of 200 requests, 10 ms apart
    python bench/bench_burst.py --bursts 3 --requests 100 --json

The real language server (``python -P -m enclave.server.lsp`` over stdio) on a temporary git
clone of this repository (lexical index), against the test Ollama server (started here) in its
slow mode: every generation waits ``--delay`` seconds before its first part, as a loaded model
does. Each burst is one edit of ``server/enclave/server/completion/sources/imports.py`` (so the server's cache cannot answer),
then ``--requests`` `textDocument/inlineCompletion` requests for the same document and position,
``--gap`` seconds apart, with no edit between them and no `$/cancelRequest`: an editor asking
again and again. The server must cancel each request the next one supersedes before it costs a
model generation, and close the stream of any that had started.

Per burst: model generations started, the most under way at once (counted by the model server:
a generation whose client has gone ends within 20 ms), requests answered and cancelled, and the
server's RSS once the burst's last answer is in and the server has been idle for a second
(before the first burst: after one completion at the same place). Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsprotocol import types  # noqa: E402
from pygls.exceptions import JsonRpcRequestCancelled  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from tests.support.llama_engine import ENGINE  # noqa: E402
from tests.support.lsp_params import inline_params, insertion  # noqa: E402
from tests.support.ollama_server import OllamaTestServer  # noqa: E402

ENCLAVE = Path(sys.executable).with_name("enclave")
FILE = "server/enclave/server/completion/sources/imports.py"
SERVER = "enclave.server.lsp"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
    env["XDG_CONFIG_HOME"] = str(work / "xdg")  # no user configuration
    env["ENCLAVE_LOG_LEVEL"] = "WARNING"
    return env


def prepare_repo(work: Path) -> Path:
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    built = subprocess.run(
        [str(ENCLAVE), "index", str(repo), "-q", "--settings", '{"embedding":{"provider":"none"}}'],
        env=server_env(work),
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise SystemExit(f"enclave index failed: {built.stderr.strip()[-600:]}")
    return repo


async def _drain(stream: asyncio.StreamReader | None) -> None:
    """Read the server's stderr (a full pipe would block it)."""
    while stream is not None and await stream.readline():
        pass


async def run(repo: Path, work: Path, model: OllamaTestServer, args: argparse.Namespace) -> dict:
    client = LanguageClient("enclave-bench-burst", "1")
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @client.feature("enclave/status")
    def status(ls: LanguageClient, params: Any) -> None:
        if params.state in ("ready", "degraded", "error") and not ready.done():
            ready.set_result(params)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(ls: LanguageClient, params: Any) -> None:
        pass

    command = args.command.split() if args.command else [sys.executable, "-P", "-m", SERVER]
    await client.start_io(*command, cwd=str(repo), env=server_env(work))
    process = client._server
    assert process is not None
    drain = asyncio.create_task(_drain(process.stderr))
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=repo.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name=repo.name)],
            initialization_options={
                "ollama": {"host": model.url, "completionModel": "qwen2.5-coder:1.5b"},
                "embedding": {"provider": "none"},
                "completion": {"maxTokens": 16},
            },
        )
    )
    client.initialized(types.InitializedParams())
    state = await asyncio.wait_for(ready, 300)
    if state.state != "ready":
        raise SystemExit(f"the server is {state.state}: {getattr(state, 'message', '')}")
    path = repo / FILE
    uri = path.as_uri()
    lines = path.read_text().splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines) if text.startswith("def ")) + 1
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, "".join(lines)))
    )
    await client.text_document_inline_completion_async(inline_params(uri, line, 4))
    await asyncio.sleep(1.0)
    pid = process.pid
    result: dict[str, Any] = {"rss_start_mb": rss_mb(pid), "bursts": []}
    model.set_fault("slow-first-token", delay=args.delay)  # from here on, a slow model
    for burst in range(args.bursts):
        # an edit on the line: the text around the cursor is new, the server's cache misses
        client.text_document_did_change(insertion(uri, burst + 2, line, 4, "x"))
        started = len(model.state.generations)
        model.state.most_generating = 0
        pending = []
        for _ in range(args.requests):
            pending.append(
                asyncio.ensure_future(
                    client.text_document_inline_completion_async(
                        inline_params(uri, line, 5 + burst)
                    )
                )
            )
            await asyncio.sleep(args.gap)
        answers = await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(1.0)
        figures = {
            "generations": len(model.state.generations) - started,
            "most_in_flight": model.state.most_generating,
            "answered": sum(isinstance(a, types.InlineCompletionList) for a in answers),
            "cancelled": sum(isinstance(a, JsonRpcRequestCancelled) for a in answers),
            "rss_mb": rss_mb(pid),
        }
        result["bursts"].append(figures)
        log(f"burst {burst + 1}: {figures}")
    model.clear_fault()
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    drain.cancel()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per burst")
    parser.add_argument("--gap", type=float, default=0.010, help="seconds between requests")
    parser.add_argument("--delay", type=float, default=2.0, help="the model's first-token delay")
    parser.add_argument(
        "--command", default="", help=f"the server command (default: python -P -m {SERVER})"
    )
    parser.add_argument(
        "--repo", default="", help="an indexed git clone of this repository to use (kept)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-burst-"))
    model: OllamaTestServer | None = None
    try:
        if args.repo:
            repo = Path(args.repo).resolve()
        else:
            log(f"cloning {ROOT} and indexing it (lexical)")
            repo = prepare_repo(work)
        model = OllamaTestServer(0).start()
        with ENGINE.lock:
            ENGINE.gen  # noqa: B018  (load the model now, not inside the first burst)
        result = asyncio.run(run(repo, work, model, args))
    finally:
        if model is not None:
            model.stop()
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.bursts} bursts of {args.requests} requests {args.gap * 1000:g} ms apart, "
          f"model first token after {args.delay:g} s")  # fmt: skip
    print(f"RSS before the first burst {result['rss_start_mb']:.0f} MB")
    print("burst  generations  most at once  answered  cancelled  RSS after (MB)")
    for n, b in enumerate(result["bursts"], start=1):
        print(
            f"{n:>5}  {b['generations']:>11}  {b['most_in_flight']:>12}  {b['answered']:>8}  "
            f"{b['cancelled']:>9}  {b['rss_mb']:>14.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
