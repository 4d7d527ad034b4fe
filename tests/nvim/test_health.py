""":checkhealth enclave in a real Neovim. Ollama, the models and the index come from `enclave
doctor --json` (run with the plugin's settings): with the test Ollama server, with Ollama
unreachable, and when the doctor cannot be run (no `lsp` form, missing, hanging, not JSON)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.nvim.harness import Nvim, server_command
from tests.support.ollama_server import CURRENT_VERSION, OllamaTestServer
from tests.support.repos import make_repo


def checkhealth(nvim: Nvim) -> list[str]:
    nvim.api.command("checkhealth enclave")
    return [str(line) for line in nvim.lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")]


def section(lines: list[str], title: str) -> list[str]:
    start = lines.index(f"{title} ~") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].endswith(" ~")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def setup(nvim: Nvim, cmd: list[str], settings_lua: str = "{}", *args: object) -> None:
    """setup() with ``cmd`` and ``settings_lua`` (``...`` holds ``args``); no filetype matches,
    so no server starts and the doctor alone speaks for Ollama, the models and the index."""
    cmd_lua = "{ " + ", ".join(f"'{part}'" for part in cmd) + " }"
    opts = f"{{ cmd = {cmd_lua}, filetypes = {{ 'none' }}, settings = {settings_lua} }}"
    assert nvim.lua(f"return require('enclave').setup({opts})", *args), nvim.messages()


def test_doctor_checks_are_ok_with_the_test_ollama(
    nvim: Nvim, ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "def main() -> None:\n    pass\n"})
    setup(
        nvim,
        server_command(),
        "{ ollama = { host = ..., completionModel = 'qwen2.5-coder:1.5b' } }",
        ollama_server.url,
    )
    nvim.api.command(f"edit {repo / 'app.py'}")
    lines = checkhealth(nvim)
    doctor = section(lines, "enclave doctor")
    assert doctor[0] == f"- Ollama host {ollama_server.url}, version {CURRENT_VERSION}"
    assert f"- ✅ OK Ollama {CURRENT_VERSION} answers at {ollama_server.url}" in doctor
    assert (
        "- ✅ OK model qwen2.5-coder:1.5b (completion) is pulled; capabilities: completion, insert"
        in doctor
    )
    # Every check is rendered; the only one not ok is the index this new repository lacks,
    # which the doctor looked for in the buffer's repository (--root).
    assert not any("ERROR" in line for line in lines), lines
    warnings = [line for line in doctor if "WARNING" in line]
    assert warnings == [f"- ⚠️ WARNING {repo} has no index yet"]
    assert "    - run `enclave index` in it" in doctor
    assert section(lines, "Models") == [
        "- ✅ OK deepseek-r1 (chat): pulled; capabilities: completion, thinking; "
        "fill-in-the-middle: no",
        "- ✅ OK qwen2.5-coder:1.5b (completion): pulled; capabilities: completion, insert; "
        "fill-in-the-middle: yes",
        "- ✅ OK nomic-embed-text (embedding): pulled; capabilities: embedding; "
        "fill-in-the-middle: no",
    ]
    assert section(lines, "Index") == [f"- no index at {repo / '.enclave'} yet"]
    # A cmd that names the file itself: its path once (it was printed twice).
    found = section(lines, "Language server")[0]
    assert found == f"- ✅ OK server command: {server_command()[0]}"


def test_a_command_found_on_path_names_where(nvim: Nvim) -> None:
    setup(nvim, ["sh", "lsp"])
    found = section(checkhealth(nvim), "Language server")[0]
    assert found == f"- ✅ OK sh found: {shutil.which('sh')}"


def test_doctor_reports_an_unreachable_ollama_and_its_fix(nvim: Nvim) -> None:
    setup(nvim, server_command(), "{ ollama = { host = 'http://127.0.0.1:9' } }")
    lines = checkhealth(nvim)
    doctor = section(lines, "enclave doctor")
    assert doctor[0] == "- Ollama host http://127.0.0.1:9, version ?"
    error = doctor.index("- ❌ ERROR Ollama is not running at http://127.0.0.1:9")
    assert doctor[error + 1] == "  - ADVICE:"
    assert doctor[error + 2].startswith("    - start it with `ollama serve`")
    # Nothing is claimed about models the doctor could not ask for.
    assert section(lines, "Models") == ["- no models reported (see enclave doctor above)"]


def test_a_cmd_without_lsp_is_reported_with_advice(nvim: Nvim) -> None:
    setup(nvim, ["true"])
    doctor = section(checkhealth(nvim), "enclave doctor")
    assert doctor[0] == (
        '- ⚠️ WARNING cmd = { "true" } does not end with the "lsp" argument: '
        "cannot derive `doctor` from it"
    )
    assert '    - or to { "python", "-P", "-m", "enclave", "lsp" }' in doctor


def test_doctor_command_keeps_everything_before_lsp(nvim: Nvim) -> None:
    doctor_cmd = "return require('enclave.health').doctor_cmd(...)"
    assert nvim.lua(doctor_cmd, ["/venv/bin/enclave", "lsp"]) == ["/venv/bin/enclave", "doctor"]
    assert nvim.lua(doctor_cmd, ["python", "-P", "-m", "enclave", "lsp"]) == [
        *("python", "-P", "-m", "enclave", "doctor")
    ]
    assert nvim.lua(doctor_cmd, ["python", "-m", "enclave.server.lsp"]) is None
    assert nvim.lua(doctor_cmd, ["lsp"]) is None


def test_reports_a_missing_server_command(nvim: Nvim) -> None:
    setup(nvim, ["enclave-missing", "lsp"])
    lines = checkhealth(nvim)
    server = section(lines, "Language server")
    assert server[0].startswith("- ❌ ERROR enclave-missing is not executable")
    assert any("pip install -e ." in line for line in server)
    doctor = section(lines, "enclave doctor")
    assert doctor[0] == "- ❌ ERROR cannot run the doctor: enclave-missing is not executable"
    assert section(lines, "Index") == ["- unknown (enclave doctor gave no report)"]


def fake_enclave(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-enclave"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_doctor_output_that_is_not_json_shows_its_first_error_line(
    nvim: Nvim, tmp_path: Path
) -> None:
    setup(
        nvim,
        [fake_enclave(tmp_path, "echo oops; echo 'Traceback: boom' >&2; echo more >&2"), "lsp"],
    )
    doctor = section(checkhealth(nvim), "enclave doctor")
    assert doctor[0] == (
        f"- ❌ ERROR `{tmp_path / 'fake-enclave'} doctor --json` gave no report: Traceback: boom"
    )


def test_a_hanging_doctor_times_out(nvim: Nvim, tmp_path: Path) -> None:
    setup(nvim, [fake_enclave(tmp_path, "exec sleep 30"), "lsp"])
    nvim.lua("require('enclave.health').timeout_ms = 500")
    doctor = section(checkhealth(nvim), "enclave doctor")
    assert (
        doctor[0] == f"- ❌ ERROR `{tmp_path / 'fake-enclave'} doctor` did not finish within 0.5 s"
    )


def test_python_m_without_isolation_is_warned_about(nvim: Nvim) -> None:
    warning = (
        "- ⚠️ WARNING cmd runs `python -m` without -P: files of the workspace can shadow Enclave"
    )
    setup(nvim, ["python3", "-m", "enclave", "lsp"])
    assert warning in section(checkhealth(nvim), "Language server")
    setup(nvim, ["python3", "-P", "-m", "enclave", "lsp"])
    assert warning not in section(checkhealth(nvim), "Language server")


def test_without_setup_checks_the_defaults(nvim: Nvim) -> None:
    config = section(checkhealth(nvim), "Configuration")
    assert config[0].startswith('- ⚠️ WARNING require("enclave").setup() has not been called')
