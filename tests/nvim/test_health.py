""":checkhealth enclave in a real Neovim: a missing Ollama, the test Ollama server with and
without the configured models, a missing server command, and a running server's index."""

from __future__ import annotations

import socket

from tests.nvim.harness import Nvim
from tests.support.ollama_server import OllamaTestServer


def checkhealth(nvim: Nvim) -> list[str]:
    nvim.api.command("checkhealth enclave")
    return [str(line) for line in nvim.lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")]


def section(lines: list[str], title: str) -> list[str]:
    start = lines.index(f"{title} ~") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].endswith(" ~")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_reports_a_missing_ollama(nvim: Nvim) -> None:
    port = closed_port()
    nvim.lua(
        "require('enclave').setup({ cmd = { 'true' }, settings = { ollama = { host = ... } } })",
        f"http://127.0.0.1:{port}",
    )
    lines = checkhealth(nvim)
    ollama = section(lines, "Ollama")
    assert ollama[0] == (
        f"- ❌ ERROR Ollama is not reachable at http://127.0.0.1:{port}: "
        f"cannot connect to 127.0.0.1:{port} (ECONNREFUSED)"
    )
    assert "    - start it with `ollama serve`" in ollama
    # Nothing else about models is claimed when Ollama cannot be asked.
    assert not any("model" in line for line in ollama)


def test_reports_ok_with_ollama_and_its_models(nvim: Nvim, ollama_server: OllamaTestServer) -> None:
    nvim.lua(
        "require('enclave').setup({ cmd = { 'true' }, settings = { ollama = { host = ..., "
        "completionModel = 'qwen2.5-coder:1.5b' } } })",
        ollama_server.url,
    )
    lines = checkhealth(nvim)
    assert section(lines, "Ollama") == [
        f"- ✅ OK Ollama 0.12.6 reachable at {ollama_server.url}",
        "- ✅ OK chat model deepseek-r1 is pulled",
        "- ✅ OK completion model qwen2.5-coder:1.5b is pulled",
        "- ✅ OK embedding model nomic-embed-text is pulled",
    ]
    found = section(lines, "Language server")[0]
    assert found.startswith("- ✅ OK true found: /")
    assert found.endswith("/true")
    assert not any("ERROR" in line for line in lines)


def test_reports_models_that_are_not_pulled(nvim: Nvim, ollama_server: OllamaTestServer) -> None:
    nvim.lua(
        "require('enclave').setup({ cmd = { 'true' }, settings = { ollama = { host = ..., "
        "chatModel = 'llama9:70b' }, embedding = { model = 'no-such-embedder' } } })",
        ollama_server.url,
    )
    ollama = section(checkhealth(nvim), "Ollama")
    assert "- ❌ ERROR chat model llama9:70b is not pulled" in ollama
    assert "    - run `ollama pull llama9:70b`" in ollama
    assert "- ⚠️ WARNING embedding model no-such-embedder is not pulled" in ollama
    assert "    - run `ollama pull no-such-embedder`" in ollama


def test_reports_a_missing_server_command(nvim: Nvim) -> None:
    nvim.lua("require('enclave').setup({ cmd = { 'enclave-missing', 'lsp' } })")
    server = section(checkhealth(nvim), "Language server")
    assert server[0].startswith("- ❌ ERROR enclave-missing is not executable")
    assert any("pip install -e ." in line for line in server)


def test_without_setup_checks_the_defaults(nvim: Nvim) -> None:
    config = section(checkhealth(nvim), "Configuration")
    assert config[0].startswith('- ⚠️ WARNING require("enclave").setup() has not been called')
