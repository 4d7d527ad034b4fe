"""The server's log: on stderr until the client is initialized, then as `window/logMessage`
only (editors show the server's stderr in the same log: one line per record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.lsp.test_transport import Server, frame
from tests.support.repos import make_repo


def test_server_logs_reach_stderr_or_the_client_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "def a():\n    return 1\n"})
    monkeypatch.delenv("ENCLAVE_LOG_LEVEL", raising=False)  # the default level: INFO
    server = Server(tmp_path)
    try:
        server.request(0, "initialize", {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {},
            "initializationOptions": {"embedding": {"provider": "none"}},
        })  # fmt: skip
        assert "result" in server.response(0)
        server.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        logged = []
        for message in server.messages(timeout=60):
            if message.get("method") == "window/logMessage":
                logged.append(message["params"]["message"])
                if f"status {root}: degraded " in logged[-1]:  # indexed; no model at port 9
                    break
        assert f"status {root}: degraded Ollama is not running" in logged[-1], logged
        assert server.shutdown_and_exit() == 0
        stderr = server.stderr()
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert "INFO enclave.server.lsp.app: Enclave " in stderr  # before initialize: stderr only
    # one line per record: what the client was sent is not on stderr too (VS Code showed each
    # twice, the stderr copy as an error)
    records = [line for line in logged if line.startswith(("INFO ", "WARNING ", "ERROR "))]
    assert records and f"INFO enclave.server.lsp.status: status {root}: degraded" in records[-1]
    assert not [line for line in records if line in stderr], stderr
