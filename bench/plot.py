"""Draws the benchmark figures people would rather look at, from the JSON the benches write.

    .venv/bin/python -m pip install -e '.[bench]'     # matplotlib, for this script only
    .venv/bin/python bench/plot.py                   # docs/bench-results/*.json -> docs/images/
    .venv/bin/python bench/plot.py --results DIR --out DIR

Each plot reads the files one bench writes (a plot whose files are missing is skipped, with a
line on stderr); docs/benchmarks.md says which run each committed file holds:

- ``server.json`` (``bench/bench_server.py --json``): every completion's overhead without the
  model (``overhead_ms``), drawn as its distribution -> ``bench-completion-overhead.svg``;
- ``typing.json`` (``bench/bench_typing.py --json``): time to suggestion p50 / p95 per prompt
  layout -> ``bench-typing.svg``;
- ``quality-*.json`` (``bench/quality.py --json FILE``): MRR@10 per corpus against the baselines,
  and how often the completion context holds the cross-file definition -> ``bench-quality.svg``;
- ``index-*.json`` (``bench/bench_index.py --copies N --json PATH``) and ``scale.json``
  (``bench/bench_scale.py --json PATH``, its ``sizes``): full index time, a one-file update and
  the self-check against the repository's size, one line per ``series`` (a field added to the
  files of one set of runs; bench_scale's sizes are one series) -> ``bench-index-scale.svg``.

The SVGs are written without a date and with fixed element ids, so drawing the same figures
again gives the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "bench-results"
IMAGES = ROOT / "docs" / "images"

# The search methods of bench/quality.py drawn side by side, in this order (label, name prefix).
SEARCH_METHODS = [
    ("Enclave lexical", "Enclave lexical"),
    ("Enclave semantic", "Enclave semantic"),
    ("Enclave hybrid", "Enclave hybrid"),
    ("BM25 function chunks", "BM25 function chunks"),
    ("dense model alone", "dense "),
]
CONTEXT_METHODS = [
    ("Enclave context (1,024 tokens)", "Enclave context"),
    ("open the imports, same budget", "open the imports, same budget"),
    ("open the imports, whole files (no budget)", "open the imports, whole files"),
]
CORPUS_ORDER = ["stdlib", "self", "rxjs", "go-cmp"]


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def pyplot() -> Any:
    """matplotlib's pyplot with a file backend and reproducible SVG output."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "bench/plot.py needs matplotlib. Fix: .venv/bin/python -m pip install -e '.[bench]'"
        ) from None
    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "enclave-bench", "svg.fonttype": "none", "font.size": 9})
    return plt


def save(plt: Any, figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def completion_overhead(plt: Any, results: Path, out: Path) -> Path | None:
    source = results / "server.json"
    if not source.exists():
        return None
    figures = load(source)
    samples = sorted(figures["overhead_ms"])
    p50, p95 = figures["overhead_p50_ms"], figures["overhead_p95_ms"]
    figure, axis = plt.subplots(figsize=(6.4, 3.2))
    low, high = samples[0], samples[-1]
    bins = [low * (high / low) ** (i / 40) for i in range(41)]  # even on a log scale
    axis.hist(samples, bins=bins, color="#4c72b0")
    axis.set_xscale("log")
    for value, label, style in ((p50, "p50", ":"), (p95, "p95", "--")):
        axis.axvline(value, color="black", linestyle=style, label=f"{label} {value:.1f} ms")
    axis.axvline(30.0, color="#c44e52", label="target p95 <= 30 ms")
    axis.set_xlabel("completion overhead without the model (ms)")
    axis.set_ylabel("completions")
    busy = figures.get("load_average_at_end")
    axis.set_title(
        f"bench_server.py: {len(samples)} completions at random spots, "
        f"{figures['chunks']:,.0f}-chunk index" + (f", load {busy:.1f}" if busy else ""),
        fontsize=9,
    )
    axis.legend()
    path = out / "bench-completion-overhead.svg"
    save(plt, figure, path)
    return path


def typing(plt: Any, results: Path, out: Path) -> Path | None:
    source = results / "typing.json"
    if not source.exists():
        return None
    document = load(source)
    layouts = [
        ("baseline layout", document["baseline"]),
        ("cache-friendly", document["cache_friendly"]),
    ]
    figure, axis = plt.subplots(figsize=(6.4, 3.0))
    width = 0.38
    for shift, (key, label) in enumerate(
        (("time_to_suggestion_p50_s", "p50"), ("time_to_suggestion_p95_s", "p95"))
    ):
        values = [figures[key] for _, figures in layouts]
        spots = [i + (shift - 0.5) * width for i in range(len(layouts))]
        bars = axis.bar(spots, values, width, label=label, color=("#4c72b0", "#dd8452")[shift])
        axis.bar_label(bars, fmt="%.2f s", fontsize=8)
    axis.set_xticks(range(len(layouts)), [name for name, _ in layouts])
    axis.set_ylim(0, 1.15 * max(f["time_to_suggestion_p95_s"] for _, f in layouts))
    axis.set_ylabel("time to suggestion (s)")
    axis.set_title(
        f"bench_typing.py: keystroke to suggestion, test model ({document['model']})", fontsize=9
    )
    axis.legend()
    path = out / "bench-typing.svg"
    save(plt, figure, path)
    return path


def _method(section: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    return next((v for name, v in section.items() if name.startswith(prefix)), None)


def quality(plt: Any, results: Path, out: Path) -> Path | None:
    documents = {load(p)["name"]: load(p) for p in sorted(results.glob("quality-*.json"))}
    if not documents:
        return None
    corpora = sorted(documents, key=lambda n: [*CORPUS_ORDER, n].index(n))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 6.4))
    colours = ["#4c72b0", "#55a868", "#8172b2", "#937860", "#8c8c8c"]

    def bars(
        axis: Any, methods: list[tuple[str, str]], section: str, key: str, scale: float
    ) -> None:
        width = 0.8 / len(methods)
        for shift, (label, prefix) in enumerate(methods):
            values = []
            for corpus in corpora:
                found = _method(documents[corpus]["results"].get(section, {}), prefix)
                values.append(scale * found[key] if found else 0.0)
            spots = [i + (shift - (len(methods) - 1) / 2) * width for i in range(len(corpora))]
            drawn = axis.bar(spots, values, width, label=label, color=colours[shift])
            axis.bar_label(drawn, fmt="%.3f" if scale == 1 else "%.1f", fontsize=5.5)
        axis.set_xticks(range(len(corpora)), corpora)

    bars(top, SEARCH_METHODS, "search", "mrr@10", 1.0)
    top.set_ylabel("MRR@10")
    top.set_title("bench/quality.py: search, documentation sentence -> function", fontsize=9)
    top.legend(fontsize=7, ncols=3, loc="upper right")
    top.set_ylim(0, 0.8)
    bars(bottom, CONTEXT_METHODS, "context", "found", 100.0)
    bottom.axhline(95.0, color="#c44e52", linewidth=1, label="target 95 %")
    bottom.set_ylabel("cross-file definition found (%)")
    bottom.set_title(
        "completion context: the called function's definition in the prompt", fontsize=9
    )
    bottom.legend(fontsize=7, ncols=2, loc="upper center")
    bottom.set_ylim(0, 135)
    path = out / "bench-quality.svg"
    save(plt, figure, path)
    return path


def from_zero(axis: Any, x: str, y: str, title: str) -> None:
    """Both axes from 0, their labels, the title and a small legend."""
    axis.set_xlabel(x)
    axis.set_ylabel(y)
    axis.set_title(title, fontsize=9)
    axis.set_xlim(0, None)
    axis.set_ylim(0, None)
    axis.legend(fontsize=6)


def index_scale(plt: Any, results: Path, out: Path) -> Path | None:
    runs = [load(p) for p in results.glob("index-*.json")]
    if (results / "scale.json").exists():  # bench_scale.py: its sizes are one series
        scale = load(results / "scale.json")
        runs += [{"series": scale.get("series", "bench_scale.py"), **run} for run in scale["sizes"]]
    runs.sort(key=lambda d: d["source_mb"])
    if not runs:
        return None
    series: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        series.setdefault(run.get("series", "bench_index.py"), []).append(run)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    for (label, group), style in zip(series.items(), ("o-", "s--", "^:"), strict=False):
        size = [run["source_mb"] for run in group]
        chunks = [run["chunks"] / 1000 for run in group]
        left.plot(size, [run["full_index_s"] for run in group], style, label=label)
        for run in group:
            busy = run.get("load_average_at_end")
            left.annotate(
                f"{run['mb_per_s']:.1f} MB/s" + (f", load {busy:.1f}" if busy else ""),
                (run["source_mb"], run["full_index_s"]),
                textcoords="offset points",
                xytext=(5, -4),
                fontsize=6,
            )
        right.plot(chunks, [run["incremental_s"] * 1000 for run in group], style, color="#4c72b0")
        right.plot(chunks, [run["status_ms"] for run in group], style, color="#dd8452")
    right.plot([], [], color="#4c72b0", label="one-file update")
    right.plot([], [], color="#dd8452", label="status() self-check")
    right.axhline(300, color="#4c72b0", linewidth=0.8, alpha=0.5, label="targets at 404k chunks")
    right.axhline(50, color="#dd8452", linewidth=0.8, alpha=0.5)
    from_zero(left, "source indexed (MB)", "full lexical index (s)", "full index")
    from_zero(
        right,
        "chunks in the index (thousands)",
        "ms",
        "one-file update and self-check (line style: series)",
    )
    path = out / "bench-index-scale.svg"
    save(plt, figure, path)
    return path


PLOTS: list[Callable[[Any, Path, Path], Path | None]] = [
    completion_overhead,
    typing,
    quality,
    index_scale,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the benches' JSON files")
    parser.add_argument("--out", type=Path, default=IMAGES, help="where the SVGs go")
    args = parser.parse_args(argv)
    plt = pyplot()
    args.out.mkdir(parents=True, exist_ok=True)
    for plot in PLOTS:
        if plot(plt, args.results, args.out) is None:
            print(f"{plot.__name__}: no results in {args.results}, skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
