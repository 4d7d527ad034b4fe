"""Index cost against repository size, with aider's repository map side by side (issue 27).

    .venv/bin/python bench/bench_scale.py                       # 1, 4 and 8 copies of the stdlib
    .venv/bin/python bench/bench_scale.py --copies 1,2 --source DIR --json PATH
    .venv/bin/python bench/bench_scale.py --peer-python /work/venv-aider/bin/python

**Sizes.** Each size is `bench/bench_index.py --copies N --json` run as its own process (the
source N times in one git repository, lexical index, the in-process API), so each size starts
cold and its memory is its own. The full build's peak memory is bench_index's: the RSS of that
process and its chunking workers added up, sampled every 20 ms during `update()` (or one
process's own high-water mark when higher). One table
follows: each figure against size, its growth from the smallest size to the largest, and issue
27's target beside it (the 400k-chunk targets are judged at the largest size).

**The peer.** aider's repository map, `aider-chat==0.86.2` from PyPI, installed in a venv of its
own outside this repository and named with `--peer-python`. Its parsers are aider's dependency,
not Enclave's (Enclave uses the per-language grammar wheels): aider 0.86.2 pins a language pack
from before 1.0, whose grammars are compiled in; releases from 1.0 download them at run time, and
the peer's script refuses to run with one, so the peer never reaches the network either:

    python3 -m venv /work/venv-aider && /work/venv-aider/bin/pip install aider-chat==0.86.2

Without `--peer-python` the peer is not measured (a line says so). With it, on the smallest size's
tree: `RepoMap.get_repo_map([], files)` over every file git tracks, from a cold tag cache (the
`.aider.tags.cache.v*` folder is removed before each run), as one whole process; in turn with
Enclave's full lexical index of the same tree as one whole process, `enclave index PATH --json`
(its `.enclave` folder removed before each run). Each side: wall, CPU (user + system, workers
included) and peak RSS (the process tree's, sampled as above), median of `--peer-runs` runs; the
ratios peer / Enclave. aider's map needs a model only to count tokens: a stand-in counts 4
characters a token (aider's own model would fetch tiktoken's vocabulary from the network). The
files and tags aider reports are printed, so a map that parsed nothing cannot pass as fast.

Prints figures, asserts nothing. At 1,4,8 on the reference machine it takes about 12 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_index import TreePeak, build_corpus  # noqa: E402  (this script's folder)

ENCLAVE = Path(sys.executable).with_name("enclave")
PEER_VERSION = "aider-chat==0.86.2"

# Run by the peer's Python: the file list on stdin, the tree's root as argv[1]; prints one JSON line.
AIDER_MAP = """
import json, sys
from importlib.metadata import version
from pathlib import Path

# The peer as measured: aider-chat 0.86.2 pins its grammars (exact versions of its parser wheels)
if version("aider-chat") != "0.86.2":
    sys.exit(f"aider-chat {version('aider-chat')} is not the measured peer: install aider-chat==0.86.2")
from aider.io import InputOutput
from aider.repomap import RepoMap
from grep_ast import filename_to_lang

class FourCharactersAToken:
    def token_count(self, text):
        return len(text) / 4

root = Path(sys.argv[1])
files = [str(root / line) for line in sys.stdin.read().splitlines() if line]
io = InputOutput(pretty=False, yes=True, fancy_input=False)
repo_map = RepoMap(1024, str(root), FourCharactersAToken(), io, refresh="always")
text = repo_map.get_repo_map([], files) or ""
tags = [repo_map.TAGS_CACHE[key]["data"] for key in repo_map.TAGS_CACHE]
print(json.dumps({
    "files": len(files),
    "files_with_a_language": sum(1 for f in files if filename_to_lang(f)),
    "files_tagged": sum(1 for t in tags if t),
    "tags": sum(len(t) for t in tags),
    "map_chars": len(text),
}))
"""


@dataclass(frozen=True)
class Figure:
    """One row of the table: its label, how to read it from a size's figures, and its target."""

    label: str
    read: Callable[[dict[str, Any]], float]
    digits: int
    target: str = ""
    judge: Callable[[list[dict[str, Any]], float], bool] | None = None


def _at_largest(limit: float, read: Callable[[dict[str, Any]], float]) -> Callable[..., bool]:
    return lambda runs, growth: read(runs[-1]) <= limit


def _flat(limit: float, read: Callable[[dict[str, Any]], float]) -> Callable[..., bool]:
    """At most ``limit`` at the largest size and within 1.2x of the smallest size's figure."""
    return lambda runs, growth: read(runs[-1]) <= limit and growth <= 1.2


def _rss(run: dict[str, Any]) -> float:
    return float(run["full_peak_rss_mb"])


def _update(run: dict[str, Any]) -> float:
    return float(run["incremental_s"])


def _status(run: dict[str, Any]) -> float:
    return float(run["status_ms"])


def _hybrid(run: dict[str, Any]) -> float:
    return float(run["search_hybrid"]["p95_ms"])


def _lexical(run: dict[str, Any]) -> float:
    return float(run["search_lexical"]["p95_ms"])


FIGURES = [
    Figure("chunks", lambda r: r["chunks"], 0),
    Figure("source MB", lambda r: r["source_mb"], 1),
    Figure("full index s", lambda r: r["full_index_s"], 1),
    Figure("full index MB/s", lambda r: r["mb_per_s"], 2, "≥ 2× the peer (below)"),
    Figure("full build peak RSS MB", _rss, 0, "bounded; ≤ 1.5× the peer's (below)"),
    Figure("  per 100k chunks MB", lambda r: _rss(r) / r["chunks"] * 1e5, 0, "stated"),
    Figure("one-file update s", _update, 2, "≤ 0.3 s, ≤ 1.2× growth", _flat(0.3, _update)),
    Figure("status() ms", _status, 1, "≤ 50 ms, ≤ 1.2× growth", _flat(50, _status)),
    Figure("search p95 hybrid ms", _hybrid, 1, "≤ 10 ms", _at_largest(10, _hybrid)),
    Figure("search p95 lexical ms", _lexical, 1, "≤ 10 ms", _at_largest(10, _lexical)),
    Figure("index on disk MB", lambda r: r["index_mb"], 0),
]


def table(runs: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of every figure against size (runs sorted by size, smallest first)."""
    sizes = [f"{run['copies']}×" for run in runs]
    lines = [
        f"| figure | {' | '.join(sizes)} | growth {sizes[0]} → {sizes[-1]} | target | met |",
        "|---" * (len(runs) + 4) + "|",
    ]
    for figure in FIGURES:
        values = [figure.read(run) for run in runs]
        growth = values[-1] / values[0] if values[0] else float("nan")
        met = "" if figure.judge is None else ("yes" if figure.judge(runs, growth) else "no")
        cells = " | ".join(f"{value:,.{figure.digits}f}" for value in values)
        lines.append(f"| {figure.label} | {cells} | {growth:.2f}× | {figure.target} | {met} |")
    return lines


def marginal_rss(runs: list[dict[str, Any]]) -> float | None:
    """The build's peak memory per 100k chunks past the smallest size (fixed costs left out)."""
    first, last = runs[0], runs[-1]
    if last["chunks"] == first["chunks"]:
        return None
    return float((_rss(last) - _rss(first)) / (last["chunks"] - first["chunks"]) * 1e5)


def one_size(copies: int, source: Path, work: Path) -> dict[str, Any]:
    """bench_index.py at ``copies`` copies as a fresh process; its output goes to stderr."""
    output = work / f"index-x{copies}.json"
    command = [sys.executable, str(HERE / "bench_index.py"), "--copies", str(copies)]
    command += ["--source", str(source), "--json", str(output)]
    print(f"--- {copies}×: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    if subprocess.run(command, stdout=sys.stderr).returncode != 0:
        raise SystemExit(f"bench_index.py failed at {copies}× (its output is above)")
    figures: dict[str, Any] = json.loads(output.read_text("utf-8"))
    return figures


def whole_process(command: list[str], cwd: Path, env: dict[str, str], stdin: str) -> dict[str, Any]:
    """Wall, CPU (its waited-for workers included) and the tree's peak RSS of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with TreePeak(process.pid) as peak:
        out, err = process.communicate(stdin)
        wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {err.strip()[-400:]}")
    return {"wall_s": wall, "peak_rss_mb": peak.peak_mb, "stdout": out}


def cpu_of(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s figures plus the CPU seconds its child processes used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures


def peer_runs(repo: Path, python: Path, runs: int, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Enclave's full index and aider's map of ``repo``, each as a whole process, in turn."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_"))}
    env.update(XDG_CONFIG_HOME=str(work / "xdg"), ENCLAVE_EMBEDDING_PROVIDER="none")
    env.update(OLLAMA_HOST="http://127.0.0.1:9")  # nothing listens: fails at once
    sides: dict[str, list[dict[str, Any]]] = {"enclave": [], "aider": []}
    for attempt in range(1, runs + 1):
        shutil.rmtree(repo / ".enclave", ignore_errors=True)
        enclave = cpu_of(
            lambda: whole_process([str(ENCLAVE), "index", str(repo), "--json"], repo, env, "")
        )
        summary = json.loads(enclave.pop("stdout"))
        enclave.update(files=summary["files_indexed"], chunks=summary["chunks_total"])
        sides["enclave"].append(enclave)
        for cache in repo.glob(".aider.tags.cache.v*"):
            shutil.rmtree(cache)
        aider = cpu_of(
            lambda: whole_process([str(python), "-c", AIDER_MAP, str(repo)], repo, env, files)
        )
        aider.update(json.loads(aider.pop("stdout").strip().splitlines()[-1]))
        sides["aider"].append(aider)
        print(
            f"peer run {attempt}: enclave {enclave['wall_s']:.1f} s, aider {aider['wall_s']:.1f} s"
            f" ({aider['files_tagged']} files tagged, {aider['tags']} tags)",
            file=sys.stderr,
            flush=True,
        )
    return sides


def peer_summary(sides: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per side and the ratios peer / Enclave (above 1: Enclave is faster or smaller)."""
    median = {
        side: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for side, runs in sides.items()
    }
    ratios = {
        key: median["aider"][key] / median["enclave"][key]
        for key in ("wall_s", "cpu_s", "peak_rss_mb")
    }
    return {"runs": sides, "median": median, "aider_over_enclave": ratios}


def peer_lines(peer: dict[str, Any]) -> list[str]:
    """The side-by-side table: each side's medians and the ratio against the targets."""
    enclave, aider = peer["median"]["enclave"], peer["median"]["aider"]
    ratio = peer["aider_over_enclave"]
    runs = len(peer["runs"]["enclave"])
    faster = "yes" if ratio["wall_s"] >= 2 else "no"
    lighter = "yes" if ratio["peak_rss_mb"] >= 1 / 1.5 else "no"
    lines = [
        f"| whole process, median of {runs} in turn | Enclave `enclave index` | aider map"
        " | aider / Enclave | target | met |",
        "|---|---|---|---|---|---|",
        f"| wall s | {enclave['wall_s']:.1f} | {aider['wall_s']:.1f} | {ratio['wall_s']:.2f}×"
        f" | ≥ 2× | {faster} |",
        f"| CPU s | {enclave['cpu_s']:.1f} | {aider['cpu_s']:.1f} | {ratio['cpu_s']:.2f}× | | |",
        f"| peak RSS MB (process tree) | {enclave['peak_rss_mb']:.0f} | {aider['peak_rss_mb']:.0f}"
        f" | {ratio['peak_rss_mb']:.2f}× | ≥ 0.67× (Enclave ≤ 1.5× the peer) | {lighter} |",
        f"| what it read | {enclave['files']:,.0f} files, {enclave['chunks']:,.0f} chunks"
        f" | {aider['files_tagged']:,.0f} of {aider['files']:,.0f} files tagged"
        f" ({aider['files_with_a_language']:,.0f} in a language it knows), {aider['tags']:,.0f}"
        " tags | | | |",
    ]
    return lines


def parse_copies(text: str) -> list[int]:
    copies = sorted({int(part) for part in text.split(",") if part.strip()})
    if not copies or copies[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes as copies, e.g. 1,4,8")
    return copies


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--copies", type=parse_copies, default=[1, 4, 8], help="e.g. 1,4,8")
    parser.add_argument("--source", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--peer-python", type=Path, help="the Python of a venv with aider-chat")
    parser.add_argument("--peer-runs", type=int, default=3, help="runs of each side, in turn")
    parser.add_argument("--peer-copies", type=int, default=1, help="the peer's tree size")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    print(f"load average at start: {load_at_start:.2f}", flush=True)
    document: dict[str, Any] = {"corpus": str(args.source), "load_average_at_start": load_at_start}
    work = Path(tempfile.mkdtemp(prefix="enclave-bench-scale-"))
    try:
        runs = [one_size(copies, args.source, work) for copies in args.copies]
        document["sizes"] = runs
        peer = None
        if args.peer_python:
            repo = work / "peer"
            build_corpus(args.source, args.peer_copies, repo)
            peer = peer_summary(peer_runs(repo, args.peer_python, args.peer_runs, work))
            document["peer"] = {"package": PEER_VERSION, "copies": args.peer_copies, **peer}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(["", *table(runs)]))
    marginal = marginal_rss(runs)
    if marginal is not None:
        print(f"\nfull build peak RSS past the smallest size: {marginal:.0f} MB per 100k chunks")
        document["marginal_rss_mb_per_100k_chunks"] = marginal
    if peer is None:
        print(f"\npeer not measured: give --peer-python, a venv's Python with {PEER_VERSION}")
    else:
        print(f"\npeer, {PEER_VERSION}, on {args.peer_copies}× the corpus:")
        print("\n".join(peer_lines(peer)))
    document["load_average_at_end"] = os.getloadavg()[0]
    document["bench_s"] = time.perf_counter() - started
    print(f"\nload average at end: {document['load_average_at_end']:.2f}")
    print(f"bench time: {document['bench_s'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
