"""Memory benchmark: peak RSS and time of indexing adversarial files (prints figures, asserts nothing).

    python bench/bench_memory.py              # 1 MB inputs
    python bench/bench_memory.py --mb 5       # 5 MB inputs (the size cap is raised to fit)
    python bench/bench_memory.py --json PATH  # the figures also written to PATH

Each case is a temporary git repository indexed by `enclave index` in a child process (lexical
index); the peak RSS is the child's own (``os.wait4``), the time its wall-clock time:

- baseline: one small Python file (what starting Python, LanceDB and tree-sitter costs);
- one-line bundle: minified JavaScript on one line, definitions back to back (skipped: minified);
- dense lines: definition-dense lines just under the long-line limit among short lines (indexed:
  thousands of symbols whose signature line is ~4,000 characters);
- chunker only: ``analyze()`` on the one-line bundle itself (its own bound: plain windows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.inputs import dense_lines, one_line_bundle, run_measured  # noqa: E402
from tests.support.repos import make_repo  # noqa: E402

CHUNKER_ONLY = """
import sys, time
from enclave.indexer.chunker import analyze
text = open(sys.argv[1], encoding="utf-8").read()
started = time.perf_counter()
result = analyze("dist/bundle.js", text, "javascript")
print(time.perf_counter() - started, len(result.chunks), len(result.symbols))
"""


def dense_text(size: int) -> str:
    """About ``size`` bytes of definition-dense lines."""
    return dense_lines(max(1, size // len(dense_lines(1))))


def run_child(args: list[str], out: Path) -> tuple[float, float, int]:
    """(peak RSS MB, wall seconds, exit code) of one child process (``args`` after python)."""
    env = {**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none"}
    code, peak, seconds = run_measured(args, out, env)
    return peak, seconds, code


def index_case(work: Path, name: str, files: dict[str, str], cap: int) -> dict[str, Any]:
    config = {".enclave.toml": f"[index]\nmax_file_bytes = {cap}\n"}
    root = make_repo(work / name, {**files, **config})
    out = work / f"{name}.json"
    command = ["-m", "enclave.server.cli", "index", str(root), "--json", "-q"]
    peak, seconds, code = run_child(command, out)
    if code != 0:
        print(f"{name:18s} failed (exit {code})")
        return {"peak_rss_mb": peak, "seconds": seconds, "exit": code}
    summary = json.loads(out.read_text())
    skipped = [f"{s['path']}: {s['reason']}" for s in summary["skipped"]]
    import lancedb

    symbols = lancedb.connect(str(root / ".enclave")).open_table("symbols").to_arrow()
    longest = max((len(s) for s in symbols.column("signature").to_pylist()), default=0)
    print(
        f"{name:18s} peak RSS {peak:6.0f} MB  {seconds:5.1f} s  {summary['chunks_total']} chunks,"
        f" {symbols.num_rows} symbols (longest signature {longest}); skipped: {skipped or '-'}"
    )
    return {
        "peak_rss_mb": peak,
        "seconds": seconds,
        "chunks": summary["chunks_total"],
        "symbols": symbols.num_rows,
        "longest_signature": longest,
        "skipped": skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0, help="input size in MB (default 1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    cases: dict[str, Any] = {}
    size = int(args.mb * 1024 * 1024) - 4096  # under a 1 MiB cap with the other files
    cap = max(1024 * 1024, size + 4096)  # the default cap for --mb 1
    work = Path(tempfile.mkdtemp(prefix="enclave-bench-memory-"))
    try:
        bundle = one_line_bundle(size)
        app = {"src/app.py": "def main():\n    return 1\n"}
        print(f"input: {size:,} bytes per file, index.max_file_bytes = {cap:,}")
        cases["baseline"] = index_case(work, "baseline", app, cap)
        cases["one-line bundle"] = index_case(
            work, "one-line bundle", {**app, "dist/bundle.js": bundle}, cap
        )
        cases["dense lines"] = index_case(
            work, "dense lines", {**app, "src/dense.js": dense_text(size)}, cap
        )
        source = work / "bundle.js"
        source.write_text(bundle, encoding="utf-8")
        out = work / "chunker.txt"
        peak, seconds, code = run_child(["-c", CHUNKER_ONLY, str(source)], out)
        took, chunks, symbols = out.read_text().split() if code == 0 else ("nan", "?", "?")
        print(
            f"{'chunker only':18s} peak RSS {peak:6.0f} MB  {seconds:5.1f} s"
            f" (analyze {float(took) * 1000:.1f} ms): {chunks} window chunk(s), {symbols} symbols"
        )
        cases["chunker only"] = {"peak_rss_mb": peak, "analyze_ms": float(took) * 1000}
        if args.json:
            document = {"input_bytes": size, "max_file_bytes": cap, "cases": cases}
            args.json.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
