"""The administrator's policy through the language server: a refused model is a message, never a
crash; never_index, PII redaction and allowed_models hold for editors as for the CLI."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.server.lsp.conftest import Session, _server_env, attach_session, make_client, options_for
from tests.support.lsp_params import inline_params
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo
from tests.support.shapes import FILES

POLICY = """\
allowed_models = ["qwen2.5-coder:*", "nomic-embed-text"]
never_index = ["hr/**"]
redact_pii = true
"""
POLICY_FILE = Path(tempfile.mkdtemp(prefix="enclave-policy-")) / "policy.toml"
POLICY_FILE.write_text(POLICY)
BROKEN_FILE = POLICY_FILE.with_name("broken.toml")
BROKEN_FILE.write_text('allowed_modles = ["qwen2.5-coder:*"]\n')  # misspelt: must not allow all
BUFFER = (
    "SUPPORT = 'jane.doe@corp.example'  # or +49 89 1234 5678\n"
    "\n"
    "def support_contact():\n"
    "    return "
)


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-P", "-m", "enclave.server.lsp"],
        server_env={**_server_env(), "ENCLAVE_POLICY": str(POLICY_FILE)},
        client_factory=make_client,
    ),
)
async def policed_client(lsp_client: LanguageClient, tmp_path: Path) -> AsyncIterator[None]:
    files = {**FILES, "hr/salaries.py": "def salary_of(name):\n    return 123456\n"}
    root = make_repo(tmp_path / "repo", files)
    attach_session(lsp_client, "visual-studio-code", root)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def policed(policed_client: LanguageClient) -> Session:
    session: Session = policed_client.enclave_session  # type: ignore[attr-defined]
    return session


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-P", "-m", "enclave.server.lsp"],
        server_env={**_server_env(), "ENCLAVE_POLICY": str(BROKEN_FILE)},
        client_factory=make_client,
    ),
)
async def broken_client(lsp_client: LanguageClient, tmp_path: Path) -> AsyncIterator[None]:
    session = Session(lsp_client, "neovim", make_repo(tmp_path / "repo", FILES))
    lsp_client.feature("enclave/status")(lambda ls, params: session.on_status(params))
    lsp_client.feature(types.PROGRESS)(lambda ls, params: session.on_progress(params))
    lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda ls, params: None)
    lsp_client.enclave_session = session  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_a_malformed_policy_fails_closed_in_the_language_server(
    broken_client: LanguageClient, ollama_server: OllamaTestServer
) -> None:
    lsp: Session = broken_client.enclave_session  # type: ignore[attr-defined]
    await lsp.start(options_for(ollama_server))
    status = await lsp.wait_status(lambda s: s["state"] == "error")
    assert "policy" in status["message"] and "allowed_modles" in status["message"]
    uri = lsp.open("app/report.py")
    result = await lsp.client.text_document_inline_completion_async(
        inline_params(uri, 4, 4, invoked=True)
    )
    assert not result or not getattr(result, "items", None)  # nothing, and no crash
    assert not [p for p, _ in ollama_server.state.requests if p in ("/api/generate", "/api/chat")]
    assert not (lsp.root / ".enclave" / "chunks.lance").exists()  # nothing was indexed


async def test_policy_rules_hold_in_the_language_server(
    policed: Session, ollama_server: OllamaTestServer
) -> None:
    lsp = policed
    await lsp.start(options_for(ollama_server))  # chat model deepseek-r1: not allowed
    status = await lsp.wait_status(
        lambda s: s["state"] == "degraded" and "deepseek-r1" in s.get("message", "")
    )
    assert "not allowed by the policy" in status["message"]
    assert any("deepseek-r1 is not allowed" in m.message for m in lsp.client.messages), (
        lsp.client.messages
    )  # shown to the user once, as a message

    ollama_server.state.requests.clear()
    uri = lsp.open("app/report.py")
    with pytest.raises(Exception, match="deepseek-r1 is not allowed by the policy"):
        await lsp.request(
            "enclave/explain",
            {
                "textDocument": {"uri": uri},
                "range": {"start": {"line": 3, "character": 0}, "end": {"line": 6, "character": 0}},
            },
        )
    assert not [p for p, _ in ollama_server.state.requests if p == "/api/chat"]

    # The server is still up; symbols come from the index, which never read hr/.
    symbols = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="salary"))
    assert not [s for s in symbols or [] if "hr/" in str(s.location)]
    found = await lsp.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Rectangle"))
    assert found, "the rest of the repository is indexed"

    # The allowed completion model gets the buffer without its email address or phone number.
    draft = lsp.open("app/contacts_draft.py", BUFFER)
    ollama_server.state.requests.clear()
    await lsp.client.text_document_inline_completion_async(
        inline_params(draft, 3, len("    return "), invoked=True)
    )
    sent = json.dumps([b for p, b in ollama_server.state.requests if p == "/api/generate"])
    assert "support_contact" in sent and "<redacted:email>" in sent and "<redacted:phone>" in sent
    assert "jane.doe@corp.example" not in sent and "1234 5678" not in sent

    # Every request the server made is in the audit log, without the prompt's text.
    text = (lsp.root / ".enclave" / "audit.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    completion = [r for r in records if r["purpose"] == "completion"]
    assert completion and completion[-1]["model"] == "qwen2.5-coder:1.5b"
    assert completion[-1]["files"][0] == {
        "path": "app/contacts_draft.py",
        "start_line": 4,
        "end_line": 4,
    }
    assert "support_contact" not in text and "jane.doe" not in text
