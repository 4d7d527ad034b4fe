"""Cold start of each `enclave` command: wall-clock time of a fresh process, median of runs.

    python bench/bench_cli.py                  # a clone of this repository, lexical index
    python bench/bench_cli.py --source DIR     # any directory (copied into a temporary git repo)
    python bench/bench_cli.py --json PATH      # the figures also written to PATH

Beside the commands, the floor they stand on: a bare `python -c pass`, `import lancedb`, and the
same import as Enclave does it, its REST catalog client deferred (which every command that reads
the index pays). Each command runs with no Ollama reachable and
embedding provider `none`, so the figures are Enclave's own. Prints figures, asserts nothing.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
            shutil.copytree(args.source, repo, symlinks=True)
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
            subprocess.run(["git", "commit", "-qm", "corpus"], cwd=repo, check=True)
        else:
            subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
        env.update(
            {
                "XDG_CONFIG_HOME": str(work / "xdg"),
                "ENCLAVE_EMBEDDING_PROVIDER": "none",
                "OLLAMA_HOST": "http://127.0.0.1:9",  # nothing listens: fails at once
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
        print(f"{'command':34} {'median s':>9} {'min s':>7}  ({args.runs} runs)")
        for name, command in cases:
            times = timed(command, env, repo, args.runs)
            print(f"{name:34} {statistics.median(times):>9.2f} {min(times):>7.2f}")
            commands[name] = {"median_s": statistics.median(times), "min_s": min(times)}
        if args.json:
            document = {"chunks": summary["chunks_total"], "runs": args.runs, "commands": commands}
            args.json.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
