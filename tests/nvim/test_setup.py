"""setup(): defaults, merging, validation with readable errors, idempotence — in a real Neovim."""

from __future__ import annotations

import json

import pytest

from tests.nvim.harness import Nvim

ERROR, WARN = 4, 3


def setup(nvim: Nvim, opts_lua: str) -> bool:
    return bool(nvim.lua(f"return require('enclave').setup({opts_lua})"))


def test_commands_exist_before_setup(nvim: Nvim) -> None:
    for command in ("EnclaveExplain", "EnclaveAsk", "EnclaveIndex", "EnclaveStatus"):
        assert nvim.lua("return vim.fn.exists(':' .. ...)", command) == 2, command


def test_defaults_merge_with_partial_options(nvim: Nvim) -> None:
    assert setup(nvim, "{ cmd = { 'true' }, completion = { keys = { accept = '<C-y>' } } }")
    cfg = nvim.lua("return require('enclave').config")
    assert cfg["cmd"] == ["true"]
    assert cfg["completion"]["keys"] == {
        "accept": "<C-y>",
        "next": "<M-]>",
        "prev": "<M-[>",
        "dismiss": "<C-]>",
    }
    assert cfg["completion"]["debounce_ms"] == 60
    assert cfg["answer"]["layout"] == "float"
    assert nvim.lua("return vim.lsp.is_enabled('enclave')")


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            "{ completion = { debounce_ms = 'fast' } }",
            'option "completion.debounce_ms" must be a non-negative integer, got string "fast"',
        ),
        ("{ bogus = 1 }", 'unknown option "bogus" (known options: answer, cmd, completion,'),
        (
            "{ answer = { layout = 'tab' } }",
            'option "answer.layout" must be one of "float", "split", got string "tab"',
        ),
        (
            "{ completion = { keys = { acept = '<Tab>' } } }",
            'unknown option "completion.keys.acept" (known options in completion.keys: '
            "accept, dismiss, next, prev)",
        ),
        ("{ cmd = 'enclave lsp' }", 'option "cmd" must be a list of strings, got string'),
        ("'fast'", 'setup() expects a table of options, got string "fast"'),
    ],
)
def test_bad_option_gives_a_readable_error(nvim: Nvim, opts: str, message: str) -> None:
    assert not setup(nvim, opts)
    errors = [m["msg"] for m in nvim.messages() if m["level"] == ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith("Enclave: invalid setup(): ")
    assert message in errors[0]
    assert nvim.lua("return require('enclave').config") is None
    assert not nvim.lua("return vim.lsp.is_enabled('enclave')")


def test_bad_setup_keeps_the_previous_configuration(nvim: Nvim) -> None:
    assert setup(nvim, "{ cmd = { 'true' }, answer = { layout = 'split' } }")
    assert not setup(nvim, "{ answer = { width = 2 } }")
    assert nvim.lua("return require('enclave').config.answer.layout") == "split"
    assert 'option "answer.width" must be a number in (0, 1], got number 2' in str(nvim.messages())


def test_server_settings_are_sent_as_given_for_the_server_to_check(nvim: Nvim) -> None:
    """The server checks settings and reports a bad value or an unknown key by name
    (tests/server/lsp/test_startup.py): the plugin neither refuses nor warns about them."""
    settings = "{ completion = { debounceMs = -1 }, ollama = { hots = 'x' } }"
    assert setup(nvim, f"{{ cmd = {{ 'true' }}, settings = {settings} }}")
    assert [m for m in nvim.messages() if m["level"] in (ERROR, WARN)] == []
    sent = nvim.lua("return vim.json.encode(vim.lsp.config.enclave.init_options)")
    assert json.loads(sent) == {"completion": {"debounceMs": -1}, "ollama": {"hots": "x"}}


def test_missing_server_command_names_the_install_step(nvim: Nvim) -> None:
    assert setup(nvim, "{ cmd = { 'enclave-not-installed-here', 'lsp' } }")
    errors = [m["msg"] for m in nvim.messages() if m["level"] == ERROR]
    assert len(errors) == 1
    assert '"enclave-not-installed-here" is not executable' in errors[0]
    assert "pip install" in errors[0]


def test_setup_is_idempotent(nvim: Nvim) -> None:
    opts = "{ cmd = { 'true' }, root_markers = { '.git', 'x' }, filetypes = { 'python', 'lua' } }"
    assert setup(nvim, opts)
    assert setup(nvim, "{ cmd = { 'true' }, filetypes = { 'go' } }")
    cfg = nvim.lua(
        "local c = vim.lsp.config.enclave return { cmd = c.cmd, filetypes = c.filetypes }"
    )
    # Lists are replaced, not merged index by index with the earlier setup().
    assert cfg["filetypes"] == ["go"]
    assert cfg["cmd"] == ["true"]
    assert nvim.lua("return require('enclave').config.root_markers") == [".git"]
    assert nvim.lua("return #vim.api.nvim_get_autocmds({ group = 'nvim.lsp.enable' })") == 1
    assert nvim.lua("return vim.json.encode(vim.lsp.config.enclave.init_options)") == "{}"
    assert nvim.lua("return vim.lsp.config.enclave.settings.enclave") == {}
