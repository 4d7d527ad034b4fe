"""docs/benchmarks.md against bench/: every script has its section and the command that runs it,
every image the page shows exists, every link inside the page leads to one of its headings, and
every committed result file is one that bench/plot.py reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
ANCHOR = re.compile(r"\]\(#([^)\s]+)\)")
# What bench/plot.py reads (its module docstring lists the same files).
RESULT_FILES = re.compile(r"(server|typing|scale|quality-[\w-]+|index-[\w-]+)\.json")


def text() -> str:
    return DOC.read_text("utf-8")


def scripts() -> list[Path]:
    return sorted((ROOT / "bench").glob("*.py"))


def commands(doc: str) -> list[str]:
    """The lines of the page's shell blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", doc, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_every_bench_script_has_a_section_and_its_command() -> None:
    doc = text()
    headings = [line for line in doc.splitlines() if line.startswith("#")]
    lines = commands(doc)
    assert len(scripts()) >= 10, scripts()
    missing = []
    for script in scripts():
        name = f"bench/{script.name}"
        if script.name != "plot.py" and not any(f"`{name}" in h for h in headings):
            missing.append(f"{name}: no section heading names it")
        if not any(line.startswith(f".venv/bin/python {name}") for line in lines):
            missing.append(f"{name}: no `.venv/bin/python {name}` command in a shell block")
    assert not missing, missing


def test_every_image_the_page_shows_exists() -> None:
    images = IMAGE.findall(text())
    assert images, "the page shows no plot"
    absent = [image for image in images if not (DOC.parent / image).is_file()]
    assert not absent, f"images linked from docs/benchmarks.md that do not exist: {absent}"


def test_every_link_inside_the_page_leads_to_a_heading() -> None:
    doc = text()
    anchors = set()
    for line in doc.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    links = ANCHOR.findall(doc)
    assert links, "the summary links to no section"
    assert not [link for link in links if link not in anchors], sorted(anchors)


def test_every_committed_result_is_json_that_the_plots_read() -> None:
    results = sorted((ROOT / "docs" / "bench-results").glob("*"))
    assert results, "no results committed beside the plots"
    for path in results:
        assert RESULT_FILES.fullmatch(path.name), f"{path.name}: bench/plot.py does not read it"
        assert isinstance(json.loads(path.read_text("utf-8")), dict), path
