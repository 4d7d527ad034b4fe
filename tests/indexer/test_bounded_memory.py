"""No input exhausts memory: minified files are skipped, signatures and docs are clipped, and a
text with over-long lines becomes bounded windows in the chunker itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lancedb

from enclave.indexer.chunker import DOC_CHARS, NAME_CHARS, SIGNATURE_CHARS, analyze
from enclave.indexer.discover import read_source
from enclave.indexer.excludes import LONG_LINE_CHARS, minified_reason
from enclave.indexer.types import Candidate, Skipped
from tests.support.inputs import dense_lines, one_line_bundle, run_measured
from tests.support.repos import make_repo

PEAK_RSS_MB = 600


def index_in_child(root: Path, tmp_path: Path) -> tuple[dict[str, object], float]:
    """`enclave index --json` in a child process: its summary and its own peak RSS in MB."""
    out = tmp_path / "summary.json"
    env = {**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none"}
    args = ["-m", "enclave.server.cli", "index", str(root), "--json", "-q"]
    code, peak_mb, _ = run_measured(args, out, env)
    assert code == 0, out.read_text()
    return json.loads(out.read_text()), peak_mb


def test_indexing_a_one_line_bundle_and_dense_lines_stays_bounded(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo",
        {
            "dist/bundle.js": one_line_bundle(256 * 1024),  # not *.min.js: found by content
            "src/dense.js": dense_lines(120),
            "src/app.py": "def main():\n    return 1\n",
        },
    )
    summary, peak_mb = index_in_child(root, tmp_path)
    assert peak_mb < PEAK_RSS_MB, f"indexing peaked at {peak_mb:.0f} MB"
    skipped = {s["path"]: s for s in summary["skipped"]}  # type: ignore[attr-defined]
    assert skipped["dist/bundle.js"]["reason"] == "minified"
    assert skipped["dist/bundle.js"]["detail"].startswith("line 1 has 262,144 characters")
    assert summary["files_indexed"] == 2

    symbols = lancedb.connect(str(root / ".enclave")).open_table("symbols").to_arrow()
    dense = [s for s in symbols.to_pylist() if s["path"] == "src/dense.js"]
    assert len(dense) > 5_000
    assert max(len(s["signature"]) for s in symbols.to_pylist()) <= SIGNATURE_CHARS
    chunks = lancedb.connect(str(root / ".enclave")).open_table("chunks").to_arrow()
    assert max(len(text) for text in chunks.column("text").to_pylist()) <= 6000


def test_minified_reason() -> None:
    assert minified_reason("def f():\n    return 1\n" * 2000) is None
    assert minified_reason("x" * (LONG_LINE_CHARS + 1)) == (
        "line 1 has 4,001 characters (over 4,000): minified or generated"
    )
    wrapped = "\n".join(["y" * 1500] * 20)  # every line under the limit, but a bundle wrapped
    assert (minified_reason(wrapped) or "").startswith("lines average 1,501 characters")
    prose = "\n\n".join(["word " * 160] * 40)  # long paragraphs on one line each
    assert minified_reason(prose) is None


def test_read_source_skips_minified_content(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("var a=1;" * 1000)
    found = read_source(tmp_path, Candidate("app.js", 8000, "0" * 40, "javascript"))
    assert isinstance(found, Skipped) and found.reason == "minified"


def test_signatures_docs_and_names_are_clipped() -> None:
    long_default = "x" * 3000
    text = (
        f"def long_signature(value='{long_default}'):\n"
        f'    """{"A very long docstring line. " * 120}"""\n'
        "    return value\n\n\n"
        f"class {'N' * 3000}:\n"
        "    pass\n"
    )
    result = analyze("clip.py", text, "python")
    symbols = {s.start_line: s for s in result.symbols}
    assert len(symbols[1].signature) == SIGNATURE_CHARS and symbols[1].signature.endswith("…")
    assert symbols[1].signature.startswith("def long_signature(value='xxx")
    assert len(symbols[1].doc) == DOC_CHARS
    assert len(symbols[6].name) == NAME_CHARS and len(symbols[6].qualified_name) == NAME_CHARS
    assert {c.kind for c in result.chunks} == {"function", "class"}


def test_the_chunker_itself_bounds_over_long_lines() -> None:
    text = "def ok():\n    return 1\n" + one_line_bundle(200_000) + "\nmore = 2\n"
    result = analyze("dist/app.js", text, "javascript")
    assert result.symbols == [] and result.imports == []
    assert "line 3 has 200,000 characters" in result.note
    assert all(c.kind == "window" for c in result.chunks)
    assert max(len(c.text) for c in result.chunks) <= 6000  # max_chunk_chars
    assert result.chunks[0].start_line == 1 and result.chunks[-1].end_line == 4
    small = analyze("dist/app.js", text, "javascript", max_chunk_chars=500)
    assert max(len(c.text) for c in small.chunks) <= 500
