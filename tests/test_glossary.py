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


@pytest.mark.parametrize(
    ("term", "definition", "why"),
    [
        ("A\rB", "x", "the term holds a line break or a control character"),
        ("A\u2028B", "x", "the term holds a line break or a control character"),
        ("A\x00B", "x", "the term holds a line break or a control character"),
        ("\udcff", "x", "the term is not valid UTF-8 text"),
        ("EBD", "brake\udcfe force", "the definition is not valid UTF-8 text"),
        ("EBD", "brake\x07force", "the definition holds a line break or a control character"),
    ],
)
def test_terms_and_definitions_that_cannot_be_a_line(
    tmp_path: Path, term: str, definition: str, why: str
) -> None:
    add_term(tmp_path, "ABS", "anti-lock braking system")
    before = (tmp_path / ".enclave" / "glossary.md").read_bytes()
    with pytest.raises(GlossaryError, match=why):
        add_term(tmp_path, term, definition)
    assert (tmp_path / ".enclave" / "glossary.md").read_bytes() == before


def test_add_appends_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / ".enclave" / "glossary.md"
    path.parent.mkdir()
    path.write_bytes(b"# Ours\r\nEBD: electronic brake-force distribution")  # no final newline
    term = add_term(tmp_path, "ABS", "anti-lock braking system")
    assert path.read_bytes() == (
        b"# Ours\r\nEBD: electronic brake-force distribution\nABS: anti-lock braking system\n"
    )
    assert term.line == 3 and load_glossary(tmp_path).find("ABS") == term


def test_definitions_are_read_redacted(tmp_path: Path) -> None:
    folder = tmp_path / ".enclave"
    folder.mkdir()
    (folder / "glossary.md").write_text(
        "STAGING: the staging db; password=Glossary-pw-2024 for CI\n"
        "OPS: ask ops@example.com or +49 89 1234 5678\n"
    )
    (folder / "glossary.toml").write_text('CI = "uses the token ghp_' + "a" * 36 + '"\n')
    glossary = load_glossary(tmp_path)
    assert [t.definition for t in glossary.terms] == [
        "the staging db; password=<redacted:secret-keyword> for CI",
        "ask ops@example.com or +49 89 1234 5678",
        "uses the token <redacted:github-token>",
    ]
    assert load_glossary(tmp_path, pii=True).terms[1].definition == (
        "ask <redacted:email> or <redacted:phone>"
    )
