"""The server Neovim starts cannot be shadowed by the workspace it edits.

Python's `-m` puts the working directory first on sys.path, so a workspace holding its own
`enclave/` (or the old `server/`) package would run instead of Enclave. The plugin's default
command is the `enclave` console script, whose sys.path[0] is its own bin directory; `python -P
-m enclave lsp` is the safe custom form. The control checks prove the workspace below really
shadows an unprotected `python -m enclave lsp`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.nvim.conftest import start_editing
from tests.support.ollama_server import OllamaTestServer

SHADOWS = (
    "server/__init__.py",
    "server/lsp/__main__.py",
    "enclave/__init__.py",
    "enclave/__main__.py",
    "enclave/server/__init__.py",
    "enclave/server/lsp/__main__.py",
)


def shadow_workspace(markers: Path) -> dict[str, str]:
    """Files of a workspace whose modules, if imported, write a marker into ``markers`` and
    stop the process; plus an ordinary file to edit."""
    files = {"app.py": 'def greet(name: str) -> str:\n    return f"hello {name}"\n'}
    for rel in SHADOWS:
        marker = markers / rel.replace("/", ".")
        files[rel] = (
            "from pathlib import Path\n"
            f"Path({str(marker)!r}).write_text(__name__)\n"
            'raise SystemExit("shadowed")\n'
        )
    return files


def run_python_m(cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`python [flags] -m enclave lsp` in ``cwd`` with the server's environment; stdin is empty,
    so a real server exits at once."""
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent"}
    for key in ("OLLAMA_HOST", "PYTHONPATH"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, *flags, "-m", "enclave", "lsp"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def server_cwds(nvim_pid: int) -> list[Path]:
    """Working directories of Neovim's child processes that run `enclave lsp` (Linux /proc)."""
    found = []
    for child in Path(f"/proc/{nvim_pid}/task").glob("*/children"):
        for pid in child.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(part.endswith(b"enclave") for part in cmdline) and b"lsp" in cmdline:
                found.append(Path(os.readlink(f"/proc/{pid}/cwd")))
    return found


def test_workspace_files_cannot_shadow_the_server(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    nvim = start_editing(tmp_path, ollama_server.url, shadow_workspace(markers), "app.py")
    workspace = tmp_path / "repo"
    try:
        # start_editing waited for the client to attach and the server to say `ready`.
        assert nvim.lua("return vim.fn.getcwd()") == str(workspace)
        assert nvim.lua("return require('enclave').config.cmd[1]").endswith("/enclave")
        assert server_cwds(nvim.proc.pid) == [workspace]
        assert nvim.status_state() == "ready"
    finally:
        nvim.close()
    assert list(markers.iterdir()) == []

    # Control: the same workspace does shadow `python -m enclave lsp` without -P ...
    shadowed = run_python_m(workspace)
    assert shadowed.returncode != 0
    assert "shadowed" in shadowed.stderr
    assert sorted(p.name for p in markers.iterdir()) == ["enclave.__init__.py"]
    (markers / "enclave.__init__.py").unlink()
    # ... and not `python -P -m enclave lsp`, the form the documentation gives.
    isolated = run_python_m(workspace, "-P")
    assert "shadowed" not in isolated.stderr, isolated.stderr
    assert isolated.returncode == 0, isolated.stderr
    assert list(markers.iterdir()) == []
