"""Search quality: lexical vs semantic vs hybrid fusion weights, on docstring-stripped code.

    python bench/bench_ranking.py                       # stdlib packages json, email, logging, http
    python bench/bench_ranking.py --packages csv,argparse --embedding ollama

Each documented function's docstring is removed from the corpus and its first line becomes a query;
a hit is the chunk that contains the function's `def` line. Prints recall@5 and MRR@10 per mode and
for several lexical weights of the fusion, so LEXICAL_WEIGHT in enclave.indexer.search rests on numbers.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import enclave.indexer.engine as engine  # noqa: E402
from enclave.config import Config, EmbeddingConfig  # noqa: E402
from enclave.indexer.api import Index, open_index  # noqa: E402
from tests.support.repos import commit_all, make_repo  # noqa: E402


def strip_docstrings(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The source without docstrings, and (def line in that source, first docstring line)."""
    tree = ast.parse(source)
    docs: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            doc = ast.get_docstring(node)
            if doc and node.body and isinstance(node.body[0], ast.Expr):
                if not isinstance(node, ast.Module | ast.ClassDef) and len(doc.split()) >= 4:
                    docs[node] = doc.strip().splitlines()[0]
                node.body = node.body[1:] or [ast.Pass()]
    stripped = ast.unparse(tree)
    queries: list[tuple[int, str]] = []
    # Re-parse to learn the def lines in the stripped text; match functions by walk order.
    new_funcs = [
        n
        for n in ast.walk(ast.parse(stripped))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    old_funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for old, new in zip(old_funcs, new_funcs, strict=True):
        if old in docs:
            queries.append((new.lineno, docs[old]))
    return stripped, queries


def build_corpus(target: Path, packages: list[str]) -> list[tuple[str, int, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    cases: list[tuple[str, int, str]] = []
    for package in packages:
        for path in sorted((stdlib / package).rglob("*.py")):
            if "test" in path.parts:
                continue
            rel = path.relative_to(stdlib).as_posix()
            try:
                stripped, queries = strip_docstrings(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(stripped + "\n", encoding="utf-8")
            cases.extend((rel, line, doc) for line, doc in queries)
    return cases


def evaluate(index: Index, cases: list[tuple[str, int, str]], mode: str) -> tuple[float, float]:
    found5 = 0
    reciprocal = 0.0
    for path, line, query in cases:
        hits = index.search(query, k=10, mode=mode).hits
        for rank, hit in enumerate(hits, 1):
            if hit.path == path and hit.start_line <= line <= hit.end_line:
                found5 += rank <= 5
                reciprocal += 1 / rank
                break
    return found5 / len(cases), reciprocal / len(cases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="json,email,logging,http")
    parser.add_argument("--embedding", choices=("local", "ollama"), default="local")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="enclave-rank-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        cases = build_corpus(repo, args.packages.split(","))
        make_repo(repo, {})
        commit_all(repo, "corpus")
        index = open_index(repo, Config(embedding=EmbeddingConfig(provider=args.embedding)))
        summary = index.update()
        print(
            f"corpus: {args.packages} ({summary.files_indexed} files, {summary.chunks_total} chunks)"
        )
        print(f"queries: {len(cases)} docstring first lines; embedding: {args.embedding}")
        if not summary.semantic:
            print(f"semantic search unavailable: {summary.semantic_reason}")
            return 1
        for mode in ("lexical", "semantic"):
            recall, mrr = evaluate(index, cases, mode)
            print(f"{mode:22s} recall@5 {recall:.3f}  MRR@10 {mrr:.3f}")
        for weight in (0.0, 0.3, 0.6, 1.0):
            engine.LEXICAL_WEIGHT = weight  # the weight search() reads
            recall, mrr = evaluate(index, cases, "hybrid")
            print(f"hybrid lexical w={weight:<4} recall@5 {recall:.3f}  MRR@10 {mrr:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
