"""Fixtures of the Neovim plugin tests: a headless Neovim per test, the test Ollama server, and
a Neovim editing a real git repository with the real `enclave lsp` attached."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.nvim.harness import Nvim, server_command
from tests.support.ollama_fixtures import _ollama_server_session, ollama_server
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

__all__ = ["_ollama_server_session", "ollama_server"]

# The server's environment: no user configuration, no OLLAMA_HOST from the machine.
SERVER_ENV: dict[str, str | None] = {"XDG_CONFIG_HOME": "/nonexistent", "OLLAMA_HOST": None}

REPO_FILES = {
    "geometry/shapes.py": (
        '"""Shapes and their areas."""\n'
        "\n"
        "\n"
        "class Rectangle:\n"
        '    """An axis-aligned rectangle."""\n'
        "\n"
        "    def __init__(self, width: float, height: float) -> None:\n"
        "        self.width = width\n"
        "        self.height = height\n"
        "\n"
        "    def area(self) -> float:\n"
        "        return self.width * self.height\n"
        "\n"
        "\n"
        "def total_area(shapes: list[Rectangle]) -> float:\n"
        "    return sum(shape.area() for shape in shapes)\n"
    ),
    "geometry/__init__.py": '"""Geometry helpers."""\n',
    "README.md": "# Geometry\n\nRectangles and their areas.\n",
}


def settings_lua(url: str) -> str:
    """Server settings (docs/protocol.md) aimed at the test Ollama server, with small limits."""
    return (
        f"{{ ollama = {{ host = '{url}', chatModel = 'deepseek-r1', completionModel = "
        "'qwen2.5-coder:1.5b', connectTimeout = 2, firstTokenTimeout = 30, totalTimeout = 90 }, "
        "embedding = { model = 'nomic-embed-text' }, "
        "completion = { debounceMs = 10, maxTokens = 16, numCtx = 1024, contextTokens = 200 }, "
        "chat = { maxTokens = 48, thinkTokens = 16, numCtx = 2048, contextTokens = 600 } }"
    )


@pytest.fixture
def nvim(tmp_path: Path) -> Iterator[Nvim]:
    """A fresh headless Neovim (plugin on the runtimepath, setup() not called yet)."""
    session = Nvim(tmp_path)
    try:
        yield session
    finally:
        session.close()


def start_editing(
    workdir: Path,
    ollama_url: str,
    files: Mapping[str, str] = REPO_FILES,
    path: str = "geometry/shapes.py",
) -> Nvim:
    """Neovim in a new git repository holding ``files`` (its working directory), set up with the
    real server, editing ``path``, once the server has said `ready`."""
    repo = make_repo(workdir / "repo", files)
    session = Nvim(workdir, env=SERVER_ENV, cwd=repo)
    try:
        cmd = "{ " + ", ".join(f"'{part}'" for part in server_command()) + " }"
        ok = session.lua(
            f"return require('enclave').setup({{ cmd = {cmd}, settings = {settings_lua(ollama_url)} }})"
        )
        assert ok, session.messages()
        session.api.command(f"edit {path}")
        session.wait_for(
            "the server to attach",
            lambda: session.lua("return require('enclave').client(0) ~= nil"),
            timeout=30,
        )
        session.wait_for(
            "enclave/status ready", lambda: session.status_state() == "ready", timeout=90
        )
        session.lua("_G.enclave_test_setup = vim.deepcopy(require('enclave').config)")
    except BaseException:
        session.close()
        raise
    return session


# Back to a fresh editor: normal mode, one window with geometry/shapes.py as on disk, the first
# setup() options, no answer, no messages, empty quickfix list.
RESET = """
vim.cmd('stopinsert')
require('enclave.completion').dismiss()
for _, win in ipairs(vim.api.nvim_list_wins()) do
  if vim.api.nvim_win_get_config(win).relative ~= '' then vim.api.nvim_win_close(win, true) end
end
vim.cmd('silent! only!')
vim.cmd('edit! geometry/shapes.py')
require('enclave').setup(_G.enclave_test_setup)
require('enclave.answer').last = nil
vim.fn.setqflist({}, 'r')
_G.enclave_test_messages = {}
"""


@pytest.fixture(scope="module")
def _shared_editing(
    tmp_path_factory: pytest.TempPathFactory, _ollama_server_session: OllamaTestServer
) -> Iterator[Nvim]:
    session = start_editing(tmp_path_factory.mktemp("nvim"), _ollama_server_session.url)
    yield session
    session.close()


@pytest.fixture
def editing(_shared_editing: Nvim, ollama_server: OllamaTestServer) -> Nvim:
    """The module's Neovim + server (starting one costs seconds), reset to a fresh state; the
    server is `ready`. Tests that break the server's state use ``fresh_editing``."""
    session = _shared_editing
    session.lua(RESET)
    session.wait_for("normal mode", lambda: session.mode() == "n", timeout=5)
    assert session.status_state() == "ready"
    return session


@pytest.fixture
def fresh_editing(tmp_path: Path, ollama_server: OllamaTestServer) -> Iterator[Nvim]:
    """A Neovim + server of its own, for tests that leave the server degraded."""
    session = start_editing(tmp_path, ollama_server.url)
    yield session
    session.close()
