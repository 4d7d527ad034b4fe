"""Cold start of each `enclave` command: wall-clock time of a fresh process, median of runs.

    python bench/bench_cli.py                  # a clone of this repository, lexical index
    python bench/bench_cli.py --source DIR     # any directory, copied as bench_index.py copies it
    python bench/bench_cli.py --json PATH      # the figures also written to PATH

Beside the commands, the floor they stand on: a bare `python -c pass`, `import lancedb`, and the
same import as Enclave does it, its REST catalog client deferred (which every command that reads
the index pays). Then the same `status`, `search` and `context` again while a language server
(`enclave lsp`, started here as an editor would, with the same settings) has the index open: they
ask it over its local socket instead of opening the index (server/enclave/server/local_socket.py).
Each command runs with no Ollama reachable and embedding provider `none`, so the figures are
Enclave's own. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_index import build_corpus  # noqa: E402  (this script's folder)

ENCLAVE = Path(sys.executable).with_name("enclave")


def timed(command: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):  # 1: e.g. doctor's "not ready" without Ollama
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-400:]}")
    return times


def frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def start_language_server(repo: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`enclave lsp` for ``repo``, initialized as an editor does (no client capabilities: it asks
    nothing back); what it sends is read and dropped on a thread so its pipe never fills."""
    server = subprocess.Popen(
        [str(ENCLAVE), "lsp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=repo,
    )
    assert server.stdin is not None and server.stdout is not None
    out = server.stdout

    def drain() -> None:
        while out.read(65536):
            pass

    threading.Thread(target=drain, daemon=True).start()
    folder = {"uri": repo.as_uri(), "name": "repo"}
    params: dict[str, object] = {
        "processId": None,
        "rootUri": repo.as_uri(),
        "capabilities": {},
        "workspaceFolders": [folder],
    }
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
    server.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    server.stdin.flush()
    return server


def wait_served(repo: Path, env: dict[str, str], timeout: float = 300.0) -> None:
    """Until `enclave status` is answered by the language server (it has opened the index)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [str(ENCLAVE), "-v", "status"], env=env, cwd=repo, capture_output=True, text=True
        )
        if "answered by the language server" in done.stderr:
            return
        time.sleep(0.5)
    raise SystemExit(f"the language server did not answer `enclave status` within {timeout:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="directory to index (default: this repo)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    commands: dict[str, dict[str, float]] = {}

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-cli-"))
    try:
        repo = work / "repo"
        if args.source:
            build_corpus(args.source, 1, repo)  # bench_index's copy: the same 50k-chunk stdlib
        else:
            subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
        env.update(
            {
                "XDG_CONFIG_HOME": str(work / "xdg"),
                "ENCLAVE_EMBEDDING_PROVIDER": "none",
                "OLLAMA_HOST": "http://127.0.0.1:9",  # nothing listens: fails at once
                "XDG_RUNTIME_DIR": str(work),  # this run's sockets, apart from the user's
            }
        )
        built = subprocess.run(
            [str(ENCLAVE), "index", str(repo), "--json"], env=env, capture_output=True, text=True
        )
        summary = json.loads(built.stdout)
        print(f"corpus: {args.source or ROOT} ({summary['chunks_total']} chunks)")
        target = next(p for p in sorted(repo.rglob("*.py")) if p.stat().st_size > 2000)
        relative = target.relative_to(repo)
        python = [sys.executable, "-I"]
        cases: list[tuple[str, list[str]]] = [
            ("python -c pass", [*python, "-c", "pass"]),
            ("python -c 'import lancedb'", [*python, "-c", "import lancedb"]),
            (
                "... as Enclave imports it",
                [*python, "-c", "import enclave.indexer, lancedb"],
            ),
            ("enclave --version", [str(ENCLAVE), "--version"]),
            ("enclave --help", [str(ENCLAVE), "--help"]),
            ("enclave status", [str(ENCLAVE), "status"]),
            (
                "enclave search --mode lexical",
                [str(ENCLAVE), "search", "index", "--mode", "lexical"],
            ),
            ("enclave search (hybrid)", [str(ENCLAVE), "search", "open the index"]),
            ("enclave index (nothing changed)", [str(ENCLAVE), "index"]),
            (
                "enclave context",
                [str(ENCLAVE), "context", str(relative), "--line", "20", "--character", "0"],
            ),
            ("enclave doctor (no Ollama)", [str(ENCLAVE), "doctor"]),
        ]
        print(f"{'command':44} {'median s':>9} {'min s':>7}  ({args.runs} runs)")

        def run(name: str, command: list[str]) -> None:
            times = timed(command, env, repo, args.runs)
            print(f"{name:44} {statistics.median(times):>9.2f} {min(times):>7.2f}")
            commands[name] = {"median_s": statistics.median(times), "min_s": min(times)}

        for name, command in cases:
            run(name, command)
        server = start_language_server(repo, env)
        try:
            wait_served(repo, env)
            for name, command in cases:
                if name.startswith(("enclave status", "enclave search", "enclave context")):
                    run(f"{name} (editor's server)", command)
        finally:
            server.kill()
            server.wait()
        if args.json:
            document = {"chunks": summary["chunks_total"], "runs": args.runs, "commands": commands}
            args.json.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
