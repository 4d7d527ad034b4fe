"""The glossary files: three forms, problems with line numbers, duplicates, relevance."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.glossary import GlossaryError, add_term, load_glossary

MARKDOWN = """\
# Brakes

EBD: electronic brake-force distribution
- **ABS**: anti-lock braking system
* `ECU`: engine control unit
<!-- a comment: ignored -->
this line has no colon
: no term here
abs: a duplicate in another case
"""
CSV = (
    'term,definition\nTCS,traction control system\n"LIN, bus",local interconnect network\nbad row\n'
)
TOML = '[terms]\nESP = "electronic stability program"\nNUM = 3\n'


def test_three_forms_with_problems_and_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / ".enclave"
    folder.mkdir()
    (folder / "glossary.md").write_text(MARKDOWN)
    (folder / "glossary.csv").write_text(CSV)
    (folder / "glossary.toml").write_text(TOML)
    glossary = load_glossary(tmp_path)
    assert [(t.term, t.line) for t in glossary.terms] == [
        ("EBD", 3), ("ABS", 4), ("ECU", 5), ("TCS", 2), ("LIN, bus", 3), ("ESP", 2)
    ]  # fmt: skip
    assert glossary.find("ebd") is not None and glossary.find("EBD").definition.startswith("elec")  # type: ignore[union-attr]
    problems = [str(p) for p in glossary.problems]
    assert problems == [
        ".enclave/glossary.md:7: expected `TERM: definition`",
        ".enclave/glossary.md:8: expected `TERM: definition`",
        ".enclave/glossary.md:9: 'abs' is already defined at .enclave/glossary.md:4; this "
        "definition is ignored",
        ".enclave/glossary.csv:4: expected 2 columns, got 1",
        ".enclave/glossary.toml:3: the definition of 'NUM' must be a non-empty string",
    ]


def test_only_terms_that_occur_are_relevant(tmp_path: Path) -> None:
    add_term(tmp_path, "EBD", "electronic brake-force distribution")
    add_term(tmp_path, "ABS", "anti-lock braking system")
    add_term(tmp_path, "torque vectoring", "sending torque to the wheel that needs it")
    glossary = load_glossary(tmp_path)
    assert [t.term for t in glossary.relevant(["how does the EBD work?"])] == ["EBD"]
    assert glossary.relevant(["the absolute value", "LABS", "ebd in lower case"]) == []
    assert [t.term for t in glossary.relevant(["def apply(): # Torque Vectoring"])] == [
        "torque vectoring"
    ]
    with pytest.raises(GlossaryError, match=r"already defined at \.enclave/glossary\.md:3"):
        add_term(tmp_path, "ebd", "again")
    with pytest.raises(GlossaryError, match="cannot hold ':'"):
        add_term(tmp_path, "A:B", "x")
    assert (tmp_path / ".enclave" / "glossary.md").read_text().splitlines()[2:] == [
        "EBD: electronic brake-force distribution",
        "ABS: anti-lock braking system",
        "torque vectoring: sending torque to the wheel that needs it",
    ]
