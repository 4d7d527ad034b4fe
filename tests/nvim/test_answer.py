"""The answer window in a real Neovim, fed by a stand-in client: the final result's notes (what
limited the repository context) show as "Note: ..." lines before the citations, and <CR> on a
citation still opens the cited lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.nvim.harness import Nvim
from tests.support.ollama_server import OllamaTestServer

# A client with just what enclave.answer uses (id, root_dir, request); the test answers the
# request itself through the handler it keeps.
ASK = """
local root = ...
local client = { id = 424242, root_dir = root }
function client:request(method, params, handler)
  self.method, self.params, self.handler = method, params, handler
  return true, 1
end
_G.enclave_test_client = client
require('enclave.answer').request(client, 'enclave/ask', { question = 'Where?' }, 'Ask: Where?')
return client.params.partialResultToken
"""

RESPOND = """
local result = ...
_G.enclave_test_client.handler(nil, result)
local v = require('enclave.answer').last
local marks = vim.api.nvim_buf_get_extmarks(v.buf, require('enclave.answer').ns, 0, -1,
  { details = true })
local highlighted = {}
for _, m in ipairs(marks) do
  highlighted[#highlighted + 1] = { m[2], m[3], m[4].end_col, m[4].hl_group }
end
local citation_lines = {}
for lnum, c in pairs(v.citation_lines) do
  citation_lines[#citation_lines + 1] = { lnum, c.path }
end
table.sort(citation_lines, function(a, b) return a[1] < b[1] end)
return { lines = vim.api.nvim_buf_get_lines(v.buf, 0, -1, false), notes = v.notes, win = v.win,
         done = v.done, highlighted = highlighted, citation_lines = citation_lines }
"""

SEMANTIC_OFF = (
    "semantic search is off: embedding model 'nomic-embed-text' is not pulled "
    "(context from lexical matches only)"
)
CUT = "only lines 1-40 were explained: raise chat.num_ctx for more"


def citation(path: str, start: int, end: int, root: Path | None = None) -> dict[str, Any]:
    """A citation of 0-based lines [start, end) of ``path``; by uri when ``root`` is given."""
    c: dict[str, Any] = {
        "path": path,
        "range": {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}},
    }
    if root is not None:
        c["uri"] = (root / path).as_uri()
    return c


def ask(nvim: Nvim, root: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Ask through the plugin, stream one delta, then answer with ``result``; the window's state."""
    token = nvim.lua(ASK, str(root))
    assert nvim.lua(
        "return require('enclave.answer').on_progress(...)",
        {"token": token, "value": {"markdown": "Look "}},
    )
    state: dict[str, Any] = nvim.lua(RESPOND, result)
    assert state["done"]
    return state


def test_notes_show_before_the_citations_and_citations_still_jump(
    nvim: Nvim, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (root / "pkg" / name).write_text("".join(f"line_{i} = {i}\n" for i in range(1, 31)))
    result = {
        "markdown": "Look in pkg/a.py.\n\nAnd pkg/b.py.",
        "model": "deepseek-r1",
        "citations": [
            citation("pkg/a.py", 2, 5, root),
            citation("pkg/b.py", 19, 24),  # no uri: found under the client's root_dir
        ],
        "notes": [
            SEMANTIC_OFF,
            42,
            {"text": "not a note"},
            "the index could not be read (disk I/O error\nat page 7): answered without that context",
            ["nested"],
            CUT,
        ],
    }
    state = ask(nvim, root, result)
    lines: list[str] = state["lines"]
    notes = [text for text in lines if text.startswith("Note: ")]
    assert notes == [
        f"Note: {SEMANTIC_OFF}",
        "Note: the index could not be read (disk I/O error at page 7): answered without that context",
        f"Note: {CUT}",
    ]
    # After the answer, set off by a blank line, and before the citations.
    first_note = lines.index(notes[0])
    assert lines[first_note - 2 : first_note] == ["And pkg/b.py.", ""]
    assert lines.index(notes[-1]) + 2 == lines.index("## Citations (<CR> opens one)")
    # The "Note:" prefixes are highlighted as warnings.
    assert state["highlighted"] == [
        [lines.index(note), 0, len("Note:"), "DiagnosticWarn"] for note in notes
    ]

    # <CR> reads the citation from the cursor's line: each key is the line showing that citation.
    assert state["citation_lines"] == [
        [lines.index("[1] pkg/a.py:3-5") + 1, "pkg/a.py"],
        [lines.index("[2] pkg/b.py:20-24") + 1, "pkg/b.py"],
    ]
    answer_win = state["win"]
    nvim.lua("vim.api.nvim_set_current_win(...)", answer_win)
    # <CR> on a note is not a citation: nothing opens, the answer stays.
    nvim.lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", lines.index(notes[1]) + 1)
    nvim.lua("vim.api.nvim_feedkeys(vim.keycode('<CR>'), 'mx', false)")  # typed, run at once
    assert nvim.lua("return vim.api.nvim_get_current_win()") == answer_win
    # <CR> on the second citation closes the float and opens its first line.
    nvim.lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", lines.index("[2] pkg/b.py:20-24") + 1)
    nvim.input("<CR>")
    nvim.wait_for("the cited file", lambda: nvim.lua("return vim.fn.expand('%:t')") == "b.py")
    assert not nvim.lua("return vim.api.nvim_win_is_valid(...)", answer_win)
    assert nvim.lua("return vim.fn.expand('%:p')") == str(root / "pkg" / "b.py")
    assert nvim.lua("return vim.api.nvim_win_get_cursor(0)[1]") == 20
    # The quickfix list has the citations, not the notes.
    qf = nvim.lua("return vim.tbl_map(function(i) return i.text end, vim.fn.getqflist())")
    assert qf == ["[1] pkg/a.py:3-5", "[2] pkg/b.py:20-24"]


def test_no_notes_no_note_lines(nvim: Nvim, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\ny = 2\n")
    for result in (
        {"markdown": "Fine.", "citations": [citation("pkg/a.py", 1, 2, root)], "notes": []},
        {"markdown": "Fine.", "citations": [citation("pkg/a.py", 1, 2, root)]},  # older server
    ):
        state = ask(nvim, root, result)
        lines: list[str] = state["lines"]
        assert not any(text.startswith("Note:") for text in lines), lines
        assert state["notes"] in ({}, [])
        assert state["highlighted"] == []
        assert lines[lines.index("Fine.") + 1 :] == [
            "",
            "## Citations (<CR> opens one)",
            "[1] pkg/a.py:2-2",
        ]
        assert state["citation_lines"] == [[len(lines), "pkg/a.py"]]
        nvim.lua("require('enclave.answer').last:close()")


EXPLAIN = """
local root = ...
local client = { id = 424243, root_dir = root }
function client:request(method, params, handler)
  self.method, self.params, self.handler = method, params, handler
  return true, 1
end
_G.enclave_test_client = client
require('enclave.answer').request(client, 'enclave/explain', {}, 'Explain pkg/a.py:12')
return client.params.partialResultToken
"""

DONE = """
local v = require('enclave.answer').last
if not v or not v.done then return nil end
return vim.api.nvim_buf_get_lines(v.buf, 0, -1, false)
"""

WINDOW = """
local v = require('enclave.answer').last
return { title = vim.api.nvim_win_get_config(v.win).title, view = v.title }
"""


def test_a_cut_answer_says_so_and_an_explanation_is_titled_with_what_it_explained(
    nvim: Nvim, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("".join(f"line_{i} = {i}\n" for i in range(1, 31)))
    nvim.lua(EXPLAIN, str(root))
    cut = "answer cut at chat.maxTokens (48); raise it (setting chat.maxTokens: ...)"
    target = citation("pkg/a.py", 10, 14, root) | {"symbol": "Shelf.get"}
    result = {
        "markdown": "It retur",
        "citations": [citation("pkg/a.py", 10, 14, root)],
        "notes": [SEMANTIC_OFF],
        "doneReason": "length",
        "cut": cut,
        "target": target,
    }
    state = nvim.lua(RESPOND, result)
    lines: list[str] = state["lines"]
    # Titled with the definition explained (11-14), not the cursor's line 12.
    assert lines[0] == "# Explain pkg/a.py:11-14  Shelf.get"
    window = nvim.lua(WINDOW)
    title = window["title"][0][0] if isinstance(window["title"], list) else window["title"]
    assert title.strip() == "Explain pkg/a.py:11-14  Shelf.get"
    # The cut line follows the notes, highlighted like them, before the citations.
    assert lines[lines.index(f"Note: {SEMANTIC_OFF}") + 1] == f"Cut: {cut}"
    assert [lines.index(f"Cut: {cut}"), 0, len("Cut:"), "DiagnosticWarn"] in state["highlighted"]
    assert lines.index(f"Cut: {cut}") + 2 == lines.index("## Citations (<CR> opens one)")
    nvim.lua("require('enclave.answer').last:close()")

    # An answer that was not cut has no such line; an ask keeps its own title.
    state = ask(nvim, root, {"markdown": "Fine.", "citations": [], "cut": "", "target": target})
    assert not any(text.startswith("Cut:") for text in state["lines"])
    assert state["lines"][0] == "# Ask: Where?"


def test_explain_without_a_range_is_titled_with_the_definition_and_says_when_cut(
    editing: Nvim, ollama_server: OllamaTestServer
) -> None:
    """The reported case: `:EnclaveExplain` on line 12 explained Rectangle.area (11-12) but the
    window said "12". With a real Ollama R1 can think past any budget: here it thinks past
    chat.thinkTokens (16), is stopped there and answers from its reasoning so far; the window
    shows the answer, and a note says what happened and the fix."""
    nvim = editing
    ollama_server.state.think_tokens = 10_000
    nvim.lua("vim.api.nvim_win_set_cursor(0, { 12, 8 })")
    nvim.api.command("EnclaveExplain")
    lines = nvim.wait_for("the explanation", lambda: nvim.lua(DONE), timeout=120)
    assert lines[0] == "# Explain geometry/shapes.py:11-12  Rectangle.area", lines
    assert "_(empty answer)_" not in lines and lines[lines.index("## Answer") + 1].strip(), lines
    assert (
        "Note: the model's thinking reached chat.thinkTokens (16) and was stopped there; it "
        "answered from its reasoning so far (raise chat.thinkTokens for a longer think)"
    ) in lines
