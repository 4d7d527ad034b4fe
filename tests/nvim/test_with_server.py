"""The plugin against the real `enclave lsp` and the test Ollama server, in a headless Neovim:
ghost text appears and is accepted, :EnclaveExplain streams an answer with citations one can
jump to, :EnclaveStatus and :EnclaveIndex report the index."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.nvim.harness import Nvim
from tests.support.ollama_server import OllamaTestServer

GHOST = """
local ns = require('enclave.completion').ns
local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
if #marks == 0 then return nil end
local d = marks[1][4]
local lines = {}
for _, chunk in ipairs(d.virt_text or {}) do lines[#lines + 1] = chunk[1] end
return { row = marks[1][2], col = marks[1][3], text = table.concat(lines),
         pos = d.virt_text_pos, extra = #(d.virt_lines or {}) }
"""


def line(nvim: Nvim, row: int) -> str:
    return str(nvim.lua("return vim.api.nvim_buf_get_lines(0, ..., ... + 1, false)[1]", row))


def completion_calls(server: OllamaTestServer) -> int:
    return sum(1 for path, _ in server.state.requests if path in ("/api/generate", "/api/chat"))


def test_ghost_text_appears_and_tab_accepts_it(
    editing: Nvim, ollama_server: OllamaTestServer
) -> None:
    nvim = editing
    nvim.lua(
        "vim.api.nvim_buf_set_lines(0, -1, -1, false, ...)",
        ["", "def perimeter(rect: Rectangle) -> float:", "    return 2 * (rect.width"],
    )
    row = int(nvim.lua("return vim.api.nvim_buf_line_count(0)")) - 1
    nvim.lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", row + 1)
    nvim.api.command("startinsert!")
    nvim.input(" + ")  # typed as a user would: TextChangedI after each key
    nvim.wait_for("insert mode", lambda: nvim.mode() == "i", timeout=5)
    nvim.wait_for("the typed text", lambda: line(nvim, row).endswith(" + "))
    typed = line(nvim, row)
    assert typed == "    return 2 * (rect.width + "

    ghost: dict[str, Any] = nvim.wait_for("ghost text", lambda: nvim.lua(GHOST), timeout=60)
    assert ghost["row"] == row
    assert ghost["col"] == len(typed.encode())
    assert ghost["pos"] == "inline"
    assert ghost["text"].strip(), ghost
    # The ghost is only drawn: the buffer still holds what was typed.
    assert line(nvim, row) == typed

    nvim.input("<Tab>")
    nvim.wait_for("the suggestion in the buffer", lambda: line(nvim, row) != typed)
    accepted = line(nvim, row)
    assert accepted == typed + ghost["text"]
    assert nvim.mode() == "i"
    cursor = nvim.lua("return vim.api.nvim_win_get_cursor(0)")
    if ghost["extra"] == 0:
        assert cursor == [row + 1, len(accepted.encode())]

    # Accepting asks the model for nothing: the next request waits for the user's next key
    # (the plugin's debounce is 60 ms, the server's 10 ms here: a request would be out by now).
    calls = completion_calls(ollama_server)
    time.sleep(1.5)
    assert completion_calls(ollama_server) == calls
    assert nvim.lua(GHOST) is None
    nvim.input("x")  # ...and the next key does ask
    nvim.wait_for("a model call", lambda: completion_calls(ollama_server) > calls, timeout=30)


def test_keys_fall_through_when_no_ghost_text_is_shown(editing: Nvim) -> None:
    nvim = editing
    nvim.lua("vim.api.nvim_buf_set_lines(0, -1, -1, false, { '' })")
    nvim.api.command("normal! G")
    nvim.api.command("startinsert!")
    nvim.input("# note")
    nvim.wait_for("ghost text", lambda: nvim.lua(GHOST), timeout=60)
    row = int(nvim.lua("return vim.api.nvim_win_get_cursor(0)[1]")) - 1
    nvim.input("<C-]>")  # dismiss
    nvim.wait_for("the ghost text to go", lambda: nvim.lua(GHOST) is None, timeout=5)
    assert line(nvim, row) == "# note"
    nvim.input("<Tab>")  # nothing shown: the key's usual meaning (python's ftplugin: spaces)
    nvim.wait_for("indentation", lambda: line(nvim, row) != "# note", timeout=5)
    assert line(nvim, row) == "# note  "


ANSWER_STATE = """
local v = require('enclave.answer').last
if not v or not v.done then return nil end
return { lines = vim.api.nvim_buf_get_lines(v.buf, 0, -1, false), deltas = v.deltas,
         error = v.error or vim.NIL, win = v.win, buf = v.buf,
         relative = vim.api.nvim_win_get_config(v.win).relative,
         current = vim.api.nvim_get_current_win() == v.win, citations = #v.citations,
         thinking = v.thinking }
"""


def test_explain_streams_an_answer_with_citations_to_jump_to(editing: Nvim) -> None:
    nvim = editing
    nvim.api.command("11,12EnclaveExplain")
    state: dict[str, Any] = nvim.wait_for(
        "the explanation", lambda: nvim.lua(ANSWER_STATE), timeout=120
    )
    assert state["error"] is None, state
    assert state["relative"] == "editor"  # a floating window, focused
    assert state["current"]
    assert state["deltas"] > 0  # streamed through $/progress before the final answer
    lines: list[str] = state["lines"]
    assert lines[0] == "# Explain geometry/shapes.py:11-12"
    answer = lines.index("## Answer")
    assert any(text.strip() for text in lines[answer + 1 :])
    assert "## Citations (<CR> opens one)" in lines
    citations = [text for text in lines if text.startswith("[")]
    assert citations, lines
    assert citations[0].startswith("[1] geometry/shapes.py:")
    if state["thinking"]:  # the thinking section is folded away
        first = lines.index("## Thinking") + 1
        assert nvim.lua(f"return vim.fn.foldclosed({first})") == first

    qf = nvim.lua("return vim.tbl_map(function(i) return i.text end, vim.fn.getqflist())")
    assert qf == citations

    # <CR> on a citation closes the float and opens the cited lines.
    target = lines.index(citations[0]) + 1
    cited = int(citations[0].split(":")[1].split("-")[0])
    nvim.lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", target)
    nvim.input("<CR>")
    nvim.wait_for("the cited file", lambda: nvim.lua("return vim.fn.expand('%:t')") == "shapes.py")
    assert not nvim.lua("return vim.api.nvim_win_is_valid(...)", state["win"])
    assert nvim.lua("return vim.api.nvim_win_get_cursor(0)[1]") == cited


def test_status_and_reindex_report_the_index(editing: Nvim) -> None:
    nvim = editing
    nvim.api.command("EnclaveStatus")
    shown = nvim.messages()[-1]["msg"]
    assert "state: ready" in shown
    assert "index: 3 files" in shown
    assert "semantic search: on" in shown
    assert "models: chat deepseek-r1, completion qwen2.5-coder:1.5b" in shown
    assert nvim.lua("return require('enclave.status').statusline()") == "Enclave: ready"

    nvim.api.command("EnclaveIndex")
    done = nvim.wait_for(
        "the re-index summary",
        lambda: [m["msg"] for m in nvim.messages() if "index updated" in m["msg"]],
        timeout=60,
    )
    assert re.search(r"repo: 3 files \(0 re-indexed, 0 deleted\), \d+ chunks in \d+\.\d s", done[0])


def test_checkhealth_reports_the_running_server_and_its_index(editing: Nvim) -> None:
    nvim = editing
    nvim.api.command("checkhealth enclave")
    lines = [str(x) for x in nvim.lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")]
    assert not any("ERROR" in text or "WARNING" in text for text in lines), lines
    running = [text for text in lines if text.startswith("- ✅ OK running for ")]
    assert len(running) == 1
    index = [
        text for text in lines if text.startswith("- ✅ OK server: state: ready; repository: ")
    ]
    assert len(index) == 1
    assert "; index: 3 files, " in index[0]
    assert "; semantic search: on; " in index[0]
    # The doctor, run for the buffer's repository, reads the same index from disk.
    on_disk = [text for text in lines if text.startswith("- ✅ OK index at ")]
    assert len(on_disk) == 1
    assert re.fullmatch(
        r"- ✅ OK index at /.+/repo/\.enclave: 3 files, \d+ chunks, \d+ symbols; semantic search on",
        on_disk[0],
    ), on_disk


def test_ask_in_a_split_after_setup_is_called_again(editing: Nvim) -> None:
    nvim = editing
    assert nvim.lua(
        "return require('enclave').setup(vim.tbl_extend('force', "
        "require('enclave').config, { answer = { layout = 'split' } }))"
    )
    nvim.api.command("EnclaveAsk How is the total area computed?")
    state: dict[str, Any] = nvim.wait_for("the answer", lambda: nvim.lua(ANSWER_STATE), timeout=120)
    assert state["error"] is None, state
    assert state["relative"] == ""  # an ordinary window: the split
    assert nvim.lua("return #vim.api.nvim_tabpage_list_wins(0)") == 2
    lines: list[str] = state["lines"]
    assert lines[0] == "# Ask: How is the total area computed?"
    assert state["citations"] > 0
    # One server still serves the buffer: setup() again did not start a second one.
    assert nvim.lua("return #vim.lsp.get_clients({ name = 'enclave' })") == 1


def test_a_model_error_is_shown_with_its_fix(
    fresh_editing: Nvim, ollama_server: OllamaTestServer
) -> None:
    nvim = fresh_editing
    ollama_server.set_fault("not-found")
    nvim.api.command("EnclaveExplain")
    state: dict[str, Any] = nvim.wait_for("the answer", lambda: nvim.lua(ANSWER_STATE), timeout=60)
    assert state["error"], state
    assert "ollama pull" in state["error"]
    assert f"**Error:** {state['error']}" in state["lines"]
    errors = [m["msg"] for m in nvim.messages() if m["level"] == 4]
    assert f"Enclave: {state['error']}" in errors
    # The server now says it is degraded, and why; the plugin keeps that for :EnclaveStatus.
    nvim.wait_for("the degraded state", lambda: nvim.status_state() == "degraded", timeout=30)
    nvim.api.command("EnclaveStatus")
    shown = nvim.messages()[-1]
    assert shown["level"] == 3
    assert "state: degraded" in shown["msg"]
    assert "fix: " in shown["msg"] and "ollama pull" in shown["msg"]
    assert nvim.lua("return require('enclave.status').statusline()") == "Enclave: degraded"
