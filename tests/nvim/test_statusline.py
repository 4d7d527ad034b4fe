"""The statusline component when the server cannot run, in a real Neovim: "Enclave: not running"
(highlighted as an error on request) and :EnclaveStatus saying why, as VS Code's status bar does;
"" where Enclave has no reason to run."""

from __future__ import annotations

from pathlib import Path

from tests.nvim.harness import Nvim
from tests.support.repos import make_repo

ERROR = 4
STATUSLINE = "return require('enclave.status').statusline(...)"


def edit_in_repo(nvim: Nvim, tmp_path: Path, cmd: str) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "def main() -> None:\n    pass\n"})
    assert nvim.lua(f"return require('enclave').setup({{ cmd = {{ '{cmd}', 'lsp' }} }})")
    nvim.api.command(f"edit {repo / 'app.py'}")


def test_a_missing_server_program_shows_not_running_in_red(nvim: Nvim, tmp_path: Path) -> None:
    edit_in_repo(nvim, tmp_path, "enclave-not-installed-here")
    assert nvim.lua(STATUSLINE) == "Enclave: not running"
    painted = nvim.lua(STATUSLINE, {"highlight": True})
    assert painted == "%#EnclaveStatusError#Enclave: not running%*"
    assert nvim.lua("return vim.api.nvim_get_hl(0, { name = 'EnclaveStatusError' }).link") == (
        "ErrorMsg"
    )
    # A 'statusline' expression as :help enclave-status shows it renders the text.
    rendered = nvim.lua(
        "return vim.api.nvim_eval_statusline(...,  {}).str",
        "%{%v:lua.require'enclave.status'.statusline({'highlight': v:true})%}",
    )
    assert rendered == "Enclave: not running"
    nvim.api.command("EnclaveStatus")
    last = nvim.messages()[-1]
    assert last["level"] == ERROR
    assert last["msg"].startswith("Enclave: not running: cannot start the language server")
    assert '"enclave-not-installed-here" is not executable' in last["msg"]


def test_a_server_that_exits_at_start_shows_not_running(nvim: Nvim, tmp_path: Path) -> None:
    crashing = tmp_path / "crashing-enclave"
    crashing.write_text("#!/bin/sh\necho 'enclave: error: cannot start' >&2\nexit 3\n")
    crashing.chmod(0o755)
    edit_in_repo(nvim, tmp_path, str(crashing))
    nvim.wait_for(
        "the server to have exited",
        lambda: nvim.lua("return require('enclave').last_exit ~= nil"),
        timeout=20,
    )
    assert nvim.lua(STATUSLINE) == "Enclave: not running"
    nvim.api.command("EnclaveStatus")
    last = nvim.messages()[-1]
    assert last["level"] == ERROR
    assert f"the language server ({crashing} lsp) exited with code 3" in last["msg"]


def test_no_text_where_enclave_has_no_reason_to_run(nvim: Nvim, tmp_path: Path) -> None:
    outside = tmp_path / "notes.txt"  # not inside a git repository
    outside.write_text("hello\n")
    assert nvim.lua("return require('enclave').setup({ cmd = { 'enclave-not-here', 'lsp' } })")
    nvim.api.command(f"edit {outside}")
    assert nvim.lua(STATUSLINE) == ""
