"""Team benchmark: an index built in CI on an S3 store, read by a laptop with a local overlay.

    python bench/bench_team.py                  # this Python's standard library, lexical index
    python bench/bench_team.py --source DIR     # any directory (copied into a temporary git repo)
    python bench/bench_team.py --json PATH      # the figures also written to PATH

The store is moto's S3 server on loopback (a real S3 wire protocol, no network latency: add your
store's round trips to the S3 figures). Prints, for the CI job: a full build vs the update after
a one-commit change (seconds, objects and bytes written to the bucket); for a laptop: the time to
ready with the shared index (open, index what differs, status) vs a local full build, the time to
copy the shared index into the user cache after that (index.sharedCopy), and lexical search
latency reading the store, reading the copy, and with a local index only, and the completion
pipeline's context gathering (``prepare_completion``) at the same spots with each. Asserts nothing but
that the laptop writes nothing to the bucket; docs/benchmarks.md records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_index import copy_tree  # noqa: E402  (this script's folder is on sys.path)

from enclave.config import Config, EmbeddingConfig, IndexConfig  # noqa: E402
from enclave.indexer.api import open_index  # noqa: E402
from enclave.indexer.mirror import mirror_folder  # noqa: E402
from enclave.indexer.store import Store, storage_options_from_env  # noqa: E402
from enclave.server.completion.pipeline import prepare_completion  # noqa: E402
from tests.support.repos import commit_all, git, make_repo  # noqa: E402
from tests.support.s3 import MotoServer, S3Store  # noqa: E402

T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def bucket(store: S3Store) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    pages = store.client().get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    for page in pages:
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["ETag"], int(item["Size"]))
    return found


def written(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> str:
    """Objects (and their bytes) that are new or replaced: what the job uploaded and kept."""
    new = {k: v for k, v in after.items() if before.get(k, ("", 0))[0] != v[0]}
    size = sum(v[1] for v in new.values())
    total = sum(v[1] for v in after.values())
    return f"{len(new)} objects, {size / 1e6:.2f} MB written (bucket now {total / 1e6:.1f} MB)"


QUERIES = [
    "socket timeout", "parse the header", "json decode error", "log record format",
    "http cookie expires", "thread pool executor shutdown", "quote url path", "email address",
    "retry the request", "bench_team_function",
]  # fmt: skip
ROUNDS = 20  # 200 searches: a p95 of 50 moved by 2x between runs on a busy machine
STORE_ROUNDS = 3  # reading the store takes about a second a search


def search_latency(*indexes: Any, rounds: int = ROUNDS) -> list[tuple[float, float]]:
    """p50 and p95 in ms of lexical searches on each index, each query ``rounds`` times (after
    one warm-up), the indexes taking turns query by query: they see the same machine load."""
    for query in QUERIES:
        for index in indexes:
            index.search(query, k=10, mode="lexical")
    times: list[list[float]] = [[] for _ in indexes]
    for _ in range(rounds):
        for query in QUERIES:
            for index, spent in zip(indexes, times, strict=True):
                start = time.perf_counter()
                index.search(query, k=10, mode="lexical")
                spent.append((time.perf_counter() - start) * 1000)
    return [percentiles(spent) for spent in times]


def percentiles(spent: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``spent``."""
    spent = sorted(spent)
    return spent[len(spent) // 2], spent[int(len(spent) * 0.95) - 1]


CONTEXT_SPOTS = 100  # completion positions, each asked of both indexes


def context_latency(root: Path, *pairs: tuple[Any, Config]) -> list[tuple[float, float]]:
    """p50 and p95 in ms of ``prepare_completion`` (the context a completion sends) at the same
    seeded spots of the tree's Python files with each (index, config), taking turns; each
    spot's first request (pieces chosen afresh), after one warm-up spot."""
    files = sorted(p for p in root.rglob("*.py") if p.stat().st_size > 2000)
    rng = random.Random(7)
    spots = []
    for _ in range(CONTEXT_SPOTS + 1):
        path = rng.choice(files)
        lines = path.read_text("utf-8", errors="replace").splitlines()
        line = rng.randrange(len(lines))
        spots.append((path, line, rng.randrange(len(lines[line]) + 1)))
    times: list[list[float]] = [[] for _ in pairs]
    for n, (path, line, character) in enumerate(spots):
        text = path.read_text("utf-8", errors="replace")
        relative = path.relative_to(root).as_posix()
        for (index, config), spent in zip(pairs, times, strict=True):
            start = time.perf_counter()
            prepare_completion(index, relative, text, line, character, config)
            if n:
                spent.append((time.perf_counter() - start) * 1000)
    return [percentiles(spent) for spent in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"corpus": str(args.source)}

    server = MotoServer()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="enclave-bench-team-"))
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint,
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    os.environ.update(env)
    try:
        store = S3Store(server.endpoint, "team-index", env)
        store.client().create_bucket(Bucket=store.bucket)
        uri = "s3://team-index/stdlib"
        ci = work / "ci"
        copy_tree(args.source, ci)
        make_repo(ci, {})
        commit_all(ci, "bench corpus")
        lexical = EmbeddingConfig(provider="none")
        ci_config = Config(index=IndexConfig(db=uri), embedding=lexical)

        print(f"corpus:                 {args.source}")
        before = bucket(store)
        summary, full_s = timed(lambda: open_index(ci, ci_config).update())
        note = written(before, bucket(store))
        print(
            f"CI full build to S3:    {full_s:.1f} s, {summary.files_indexed} files,"
            f" {summary.chunks_total} chunks; {note}"
        )
        figures["ci_full_build"] = {"s": full_s, "written": note}

        target = sorted(ci.rglob("*.py"))[100]
        with target.open("a") as handle:
            handle.write("\n\ndef bench_team_function():\n    return 'one commit'\n")
        commit_all(ci, "one change")
        before = bucket(store)
        update, update_s = timed(lambda: open_index(ci, ci_config).update())
        unfolded = Store(uri, storage_options_from_env()).unindexed_rows()
        note = written(before, bucket(store))
        print(
            f"CI update, 1 commit:    {update_s:.1f} s, {update.files_indexed} file(s) parsed,"
            f" {update.versions_removed} old versions removed, {unfolded} chunk(s) not folded"
            f" into the full-text index yet; {note}"
        )
        figures["ci_update"] = {"s": update_s, "written": note}

        laptop = work / "laptop"
        git(work, "clone", "-q", str(ci), str(laptop))
        # a handful of local differences: uncommitted edits (the committed change's file among
        # them), an untracked file and a deleted one
        sources = sorted(laptop.rglob("*.py"))
        for edited in [laptop / target.relative_to(ci), *sources[200:800:300]]:
            with edited.open("a") as handle:
                handle.write("\n# an uncommitted edit\n")
        (laptop / "bench_team_untracked.py").write_text("def untracked_helper():\n    return 1\n")
        sources[900].unlink()
        shared_config = Config(index=IndexConfig(shared=uri), embedding=lexical)
        before = bucket(store)

        layered = open_index(laptop, shared_config)

        def ready_with_shared() -> Any:
            result = layered.update()
            status = layered.status()
            assert status.healthy and not status.shared_problem, status
            layered.search("socket timeout", k=10)
            return result, status

        (overlay, status), shared_s = timed(ready_with_shared)
        print(
            f"laptop ready, shared:   {shared_s:.1f} s ({overlay.files_indexed} file(s) indexed"
            f" locally, {status.hidden_files} path(s) shadowed or hidden in the shared index;"
            " first search included)"
        )
        [(store_p50, store_p95)] = search_latency(layered, rounds=STORE_ROUNDS)
        _, copy_s = timed(lambda: layered.prefetch(wait=True))
        copied = sum(f.stat().st_size for f in mirror_folder(uri).rglob("*") if f.is_file())
        print(
            f"laptop, local copy:     {copy_s:.1f} s after ready, in the background"
            f" ({copied / 1e6:.1f} MB in the user cache)"
        )
        # a local index of the same working tree, elsewhere: the layered one stays open
        local_config = Config(index=IndexConfig(db=str(work / "local-index")), embedding=lexical)

        alone = open_index(laptop, local_config)

        def ready_alone() -> Any:
            result = alone.update()
            alone.search("socket timeout", k=10)
            return result

        local, local_s = timed(ready_alone)
        print(f"laptop ready, local:    {local_s:.1f} s (full build, {local.files_indexed} files)")
        figures.update(ready_shared_s=shared_s, copy_s=copy_s, copy_mb=copied / 1e6)
        figures["ready_local_s"] = local_s
        (shared_p50, shared_p95), (local_p50, local_p95) = search_latency(layered, alone)
        assert bucket(store) == before, "the laptop wrote to the shared bucket"
        print(
            f"search p50 / p95:       shared copy + overlay {shared_p50:.1f} / {shared_p95:.1f} ms,"
            f" local only {local_p50:.1f} / {local_p95:.1f} ms"
            f" (p95 ratio {shared_p95 / local_p95:.2f}; {len(QUERIES) * ROUNDS} lexical searches"
            " each, taking turns);"
            f" reading the store instead {store_p50:.1f} / {store_p95:.1f} ms"
            f" ({len(QUERIES) * STORE_ROUNDS} searches);"
            " nothing written to the bucket"
        )
        (shared_c50, shared_c95), (local_c50, local_c95) = context_latency(
            laptop, (layered, shared_config), (alone, local_config)
        )
        assert bucket(store) == before, "the laptop wrote to the shared bucket"
        print(
            f"completion context:     shared copy + overlay {shared_c50:.1f} / {shared_c95:.1f} ms,"
            f" local only {local_c50:.1f} / {local_c95:.1f} ms (p50 / p95 of prepare_completion"
            f" at {CONTEXT_SPOTS} spots, taking turns)"
        )
        figures["search_ms"] = {
            "shared_copy_overlay": [shared_p50, shared_p95],
            "local_only": [local_p50, local_p95],
            "reading_the_store": [store_p50, store_p95],
        }
        figures["context_ms"] = {
            "shared_copy_overlay": [shared_c50, shared_c95],
            "local_only": [local_c50, local_c95],
        }
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
