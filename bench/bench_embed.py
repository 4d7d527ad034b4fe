"""Embedding throughput while indexing: chunks per second, per batch size and requests in flight.

    python bench/bench_embed.py                          # the test model server (started here)
    python bench/bench_embed.py --host http://127.0.0.1:11434 --model nomic-embed-text
    python bench/bench_embed.py --local                  # also the in-process MiniLM provider
    python bench/bench_embed.py --packages json,email --batch-sizes 16,64 --concurrency 1,4
    python bench/bench_embed.py --json PATH              # the figures also written to PATH

Corpus: stdlib packages copied into a temporary git repository. Each configuration indexes it
into a fresh index and times only the embedding phase (from "embedding N chunks" to the last
batch stored, vectors written to LanceDB included). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enclave.config import Config, EmbeddingConfig, IndexConfig, OllamaConfig  # noqa: E402
from enclave.indexer.api import open_index  # noqa: E402
from enclave.indexer.embed import make_embedder  # noqa: E402
from tests.support.repos import commit_all, make_repo  # noqa: E402


def build_corpus(target: Path, packages: list[str]) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for package in packages:
        source = stdlib / package
        if source.is_dir():
            shutil.copytree(source, target / package, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(stdlib / f"{package}.py", target / f"{package}.py")
    make_repo(target, {})
    commit_all(target, "bench corpus")


def embedding_phase(repo: Path, config: Config, db: Path) -> tuple[int, float, str]:
    """(chunks embedded, seconds of the embedding phase, reason if semantic search is off)."""
    marks: dict[str, float] = {}

    def progress(done: int, total: int, message: str) -> None:
        if message.startswith("embedding "):
            marks["start"] = time.perf_counter()
        elif message.startswith("embedded "):
            marks["end"] = time.perf_counter()

    config = replace(config, index=IndexConfig(db=str(db)))
    summary = open_index(repo, config).update(progress=progress)
    seconds = marks.get("end", 0.0) - marks.get("start", 0.0)
    return summary.embedded, seconds, summary.semantic_reason


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="json,csv,textwrap")
    parser.add_argument("--host", help="an Ollama server (default: the test model server)")
    parser.add_argument("--model", default="nomic-embed-text")
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--concurrency", default="1,2,3")
    parser.add_argument("--local", action="store_true", help="also the in-process provider")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    runs: list[dict[str, object]] = []

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-embed-"))
    server = None
    try:
        repo = work / "repo"
        repo.mkdir()
        build_corpus(repo, args.packages.split(","))
        host = args.host
        if host is None:
            from tests.support.ollama_server import OllamaTestServer

            server = OllamaTestServer(0).start()
            host = server.url
            print("server: the test model server (SmolLM2-135M embeddings, llama.cpp, 1 model)")
        else:
            print(f"server: {host}")
        base = Config(
            embedding=EmbeddingConfig(provider="ollama", model=args.model, timeout=600.0),
            ollama=OllamaConfig(host=host),
        )
        make_embedder(base).embed(["load the model before the clock starts"])
        print(f"corpus: stdlib {args.packages}")
        print(f"{'batch':>5} {'in flight':>9} {'chunks':>7} {'seconds':>8} {'chunks/s':>9}")
        for size in [int(s) for s in args.batch_sizes.split(",")]:
            for depth in [int(c) for c in args.concurrency.split(",")]:
                embedding = replace(base.embedding, batch_size=size, concurrency=depth)
                db = work / f"db-{size}-{depth}"
                count, seconds, off = embedding_phase(repo, replace(base, embedding=embedding), db)
                rate = count / seconds if seconds > 0 else 0.0
                note = f"  (off: {off})" if off else ""
                print(
                    f"{size:>5} {depth:>9} {count:>7} {seconds:>8.1f} {rate:>9.1f}{note}",
                    flush=True,
                )
                runs.append(
                    {"embedder": host, "batch": size, "in_flight": depth, "chunks": count,
                     "seconds": seconds, "chunks_per_s": rate}
                )  # fmt: skip
        if args.local:
            local = Config(embedding=EmbeddingConfig(provider="local", batch_size=32))
            count, seconds, off = embedding_phase(repo, local, work / "db-local")
            rate = count / seconds if seconds > 0 else 0.0
            print(f"local all-MiniLM-L6-v2 in-process: {count} chunks, {seconds:.1f} s, "
                  f"{rate:.1f} chunks/s{f'  (off: {off})' if off else ''}")  # fmt: skip
            runs.append(
                {"embedder": "local", "batch": 32, "in_flight": 1, "chunks": count,
                 "seconds": seconds, "chunks_per_s": rate}
            )  # fmt: skip
        if args.json:
            document = {"packages": args.packages, "model": args.model, "runs": runs}
            args.json.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
