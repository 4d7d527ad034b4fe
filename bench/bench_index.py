"""Indexing and search benchmark: prints figures, asserts nothing (targets live in docs/benchmarks.md).

    python bench/bench_index.py                 # this Python's standard library, lexical index
    python bench/bench_index.py --source DIR    # any directory (copied into a temporary git repo)
    python bench/bench_index.py --copies 4      # the source 4 times in one repository (scale)
    python bench/bench_index.py --json PATH     # the figures also written to PATH (bench/plot.py)

Prints files, MB, chunks, full-index seconds and MB/s, the full build's peak memory (the RSS of
this process and its chunking workers added up, sampled every 20 ms, or one process's own peak
when higher), the incremental update after editing one file (seconds, files parsed; every update starts with the index's self-check), the
self-check alone (`status()`), and search latency p50/p95 over 200 queries (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enclave.config import Config, EmbeddingConfig  # noqa: E402
from enclave.indexer.api import Index, open_index  # noqa: E402
from tests.support.repos import commit_all, make_repo  # noqa: E402

SKIP_DIRS = {"site-packages", "__pycache__", "lib-dynload", "config-3.11-x86_64-linux-gnu"}


def copy_tree(source: Path, target: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith((".pyc", ".so", ".a"))}

    shutil.copytree(source, target, ignore=ignore, symlinks=True)


def build_corpus(source: Path, copies: int, repo: Path) -> None:
    """The bench's repository: ``source`` once, or ``copies`` times side by side, committed."""
    if copies == 1:
        copy_tree(source, repo)
    else:
        for copy in range(1, copies + 1):
            copy_tree(source, repo / f"copy{copy}")
    make_repo(repo, {})
    commit_all(repo, "bench corpus")


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """A process and all its descendants now: their resident memory added up, and the highest
    peak (VmHWM) any one of them has reached so far, in MB (0 for a process gone meanwhile)."""
    rss = hwm = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # the process ended while we looked
        return rss, hwm
    for child in children:
        child_rss, child_hwm = tree_memory_mb(int(child))
        rss, hwm = rss + child_rss, max(hwm, child_hwm)
    return rss, hwm


class TreePeak:
    """The peak memory of a process tree while the ``with`` block runs: a thread samples
    :func:`tree_memory_mb` every ``every`` seconds (a build's workers count with the process
    that runs them). ``peak_mb``: the highest sum seen, or the highest single-process peak when
    that is higher (a peak between two samples is caught by the kernel's high-water mark)."""

    def __init__(self, pid: int | None = None, every: float = 0.02) -> None:
        self.pid, self.every = pid or os.getpid(), every
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, *tree_memory_mb(self.pid))
            if self._done.wait(self.every):
                return

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def queries_from(index: Index, count: int, seed: int = 7) -> list[str]:
    """Realistic queries: docstring words of random functions, and bare identifiers."""
    symbols = [
        s for s in index.find_symbols("", limit=1_000_000) if s.kind in ("function", "method")
    ]
    rng = random.Random(seed)
    rng.shuffle(symbols)
    out: list[str] = []
    for symbol in symbols:
        if len(out) >= count:
            break
        words = symbol.doc.split()[:6]
        out.append(" ".join(words) if len(words) >= 3 else symbol.name)
    return out


def vector_search(rows: int, dim: int, queries: int = 200) -> dict[str, float]:
    """The dense side of search: top-40 over an in-memory matrix as big as the chunk table."""
    import numpy as np

    from enclave.indexer.search import VectorMatrix

    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((rows, dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = [f"c{i}" for i in range(rows)]
    paths = np.array([f"pkg/m{i % 500}.py" for i in range(rows)], dtype=object)
    vectors = VectorMatrix(
        ids,
        paths,
        np.array(["python"] * rows, dtype=object),
        np.arange(rows, dtype=np.int32),
        matrix,
    )
    times = []
    for i in range(queries):
        started = time.perf_counter()
        vectors.top(matrix[i % rows], 40, path_prefix=None, language=None)
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"vector top-40 ({rows} x {dim} float32, {matrix.nbytes / 1e6:.0f} MB): "
        f"p50 {percentile(times, 0.5):.1f} ms, p95 {percentile(times, 0.95):.1f} ms"
    )
    return {"p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95), "dim": dim}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedding", choices=("none", "local", "ollama"), default="none")
    parser.add_argument("--dim", type=int, default=768, help="vector size for the dense timing")
    parser.add_argument("--copies", type=int, default=1, help="the source this many times")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"corpus": str(args.source), "copies": args.copies}
    figures["load_average_at_start"] = os.getloadavg()[0]  # another job sharing the cores

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-"))
    try:
        repo = work / "repo"
        build_corpus(args.source, args.copies, repo)
        config = Config(embedding=EmbeddingConfig(provider=args.embedding))

        index = open_index(repo, config)
        with TreePeak() as peak:
            started = time.perf_counter()
            summary = index.update()
            full_s = time.perf_counter() - started
        mb = summary.bytes_indexed / 1e6
        print(f"corpus:            {args.source}" + f" x {args.copies}" * (args.copies > 1))
        print(f"files indexed:     {summary.files_indexed} ({summary.files_skipped} skipped)")
        print(f"source MB:         {mb:.1f}")
        print(f"chunks:            {summary.chunks_total}")
        print(f"full index:        {full_s:.2f} s  ({mb / full_s:.2f} MB/s)")
        print(f"full build peak:   {peak.peak_mb:.0f} MB RSS (this process and its workers)")
        print(f"semantic:          {summary.semantic} {summary.semantic_reason}")
        figures.update(
            full_peak_rss_mb=peak.peak_mb,
            files=summary.files_indexed,
            skipped=summary.files_skipped,
            source_mb=mb,
            chunks=summary.chunks_total,
            full_index_s=full_s,
            mb_per_s=mb / full_s,
        )

        sources = sorted(repo.rglob("*.py"))
        target = sources[(len(summary.skipped) % 50 + 100) % len(sources)]
        with target.open("a") as handle:
            handle.write("\n\ndef bench_added_function():\n    return 'edited'\n")
        incremental = []
        for attempt in range(3):
            with target.open("a") as handle:
                handle.write(f"\n# edit {attempt}\n")
            started = time.perf_counter()
            inc = index.update()
            incremental.append(time.perf_counter() - started)
            assert inc.files_indexed == 1, inc
        print(
            f"incremental (1 file edited): median {statistics.median(incremental):.3f} s "
            f"of {', '.join(f'{t:.3f}' for t in incremental)}, files parsed: 1"
        )
        figures["incremental_s"] = statistics.median(incremental)

        checks = []
        for _ in range(3):
            started = time.perf_counter()
            assert index.status().healthy
            checks.append(time.perf_counter() - started)
        print(
            f"status (self-check): median {statistics.median(checks) * 1000:.0f} ms "
            f"of {', '.join(f'{t * 1000:.0f}' for t in checks)}"
        )
        figures["status_ms"] = statistics.median(checks) * 1000

        queries = queries_from(index, args.queries)
        for mode in ("hybrid", "lexical"):
            for query in queries[:10]:  # warm caches
                index.search(query, k=10, mode=mode)
            times = []
            for query in queries:
                started = time.perf_counter()
                index.search(query, k=10, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"search {mode:8s} ({len(times)} queries): p50 {percentile(times, 0.5):.1f} ms,"
                f" p95 {percentile(times, 0.95):.1f} ms"
            )
            figures[f"search_{mode}"] = {
                "p50_ms": percentile(times, 0.5),
                "p95_ms": percentile(times, 0.95),
            }
        size = sum(f.stat().st_size for f in (repo / ".enclave").rglob("*") if f.is_file())
        print(f"index size:        {size / 1e6:.1f} MB")
        figures["index_mb"] = size / 1e6
        figures["vector_top40"] = vector_search(summary.chunks_total, args.dim)
        figures["load_average_at_end"] = os.getloadavg()[0]
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    subprocess.run(["git", "--version"], check=True, capture_output=True)
    sys.exit(main())
