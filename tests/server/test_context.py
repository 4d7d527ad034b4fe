"""Completion context against a real index: what is chosen, why, and what is left out."""

from __future__ import annotations

from pathlib import Path

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.server.context import prepare_completion
from tests.support.repos import make_repo


def test_definitions_come_from_imports_and_the_same_language(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo",
        {
            "shapes/geometry.py": "def perimeter(width, height):\n    return 2 * (width + height)\n",
            "web/ui.ts": "export function perimeter(el: Element): number {\n  return 0;\n}\n",
            "app.py": "from shapes.geometry import perimeter\n\n\ndef fence(w, h):\n    return \n",
        },
    )
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    text = (root / "app.py").read_text().replace("return \n", "return perimeter(w, h) + \n")
    pieces = prepare_completion(
        index, "app.py", text, 4, len("    return perimeter(w, h) + "), config
    ).pieces
    definitions = [p for p in pieces if p.reason.startswith("definition")]
    assert [(p.path, p.start_line, p.end_line) for p in definitions] == [
        ("shapes/geometry.py", 1, 2)
    ]
    assert "imported by this file from shapes.geometry" in definitions[0].reason
    assert definitions[0].text.startswith("def perimeter(width, height):")
    assert all(p.path != "web/ui.ts" for p in pieces if p.reason.startswith("definition"))
