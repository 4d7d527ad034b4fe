"""The trust boundary through the language server: what the test model server received.

Unsaved buffers, other open buffers, `.env` buffers and files outside the workspace: every prompt
is read on the model server's side for the planted secrets.
"""

from __future__ import annotations

import json

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from tests.server import secrets
from tests.server.lsp.conftest import Session, options_for
from tests.support.lsp_params import inline_params
from tests.support.ollama_server import OllamaTestServer

BUFFER = secrets.SETTINGS_PY + "\n\ndef region_of(settings):\n    return \n"
OTHER = f'"""Another open buffer, edited and not saved."""\nGITHUB_TOKEN = "{secrets.GITHUB}"\n'


def _sent(server: OllamaTestServer) -> str:
    return json.dumps([body for endpoint, body in server.state.requests if endpoint != "/api/show"])


def _edit(lsp: Session, uri: str, text: str) -> None:
    """An unsaved change: the server keeps it among the recently edited buffers."""
    lsp.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def test_completion_sends_no_secret_from_any_buffer(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server, completion={"contextTokens": 600}))
    assert (await lsp.wait_settled())["state"] == "ready"
    other = lsp.open("app/secrets_scratch.py", "")
    _edit(lsp, other, OTHER)
    uri = lsp.open("app/settings_draft.py", BUFFER)  # unsaved: never on disk
    ollama_server.state.requests.clear()
    lines = BUFFER.split("\n")
    result = await lsp.client.text_document_inline_completion_async(
        inline_params(uri, len(lines) - 2, len(lines[-2]), invoked=True)
    )
    assert isinstance(result, types.InlineCompletionList)
    generated = [
        b for e, b in ollama_server.state.requests if e == "/api/generate" and b.get("prompt")
    ]
    assert generated, "the completion reached the model"
    sent = _sent(ollama_server)
    assert "AWS_ACCESS_KEY_ID" in sent and "GITHUB_TOKEN" in sent  # both buffers were used...
    assert secrets.leaked(sent) == []  # ...and not one secret of them was sent


async def test_explain_of_a_secret_file_buffer_is_refused(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    uri = lsp.open(".env", f"AWS_SECRET_ACCESS_KEY={secrets.AWS_SECRET}\n")
    ollama_server.state.requests.clear()
    try:
        await lsp.request("enclave/explain", {"textDocument": {"uri": uri}})
    except JsonRpcInvalidParams as exc:
        assert "never sent to a model" in str(exc)
    else:
        raise AssertionError("explaining .env must be refused")
    assert [e for e, _ in ollama_server.state.requests if e in ("/api/chat", "/api/generate")] == []


async def test_files_outside_the_workspace_are_never_read(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    await lsp.start(options_for(ollama_server))
    await lsp.wait_settled()
    ollama_server.state.requests.clear()
    for uri in ("file:///etc/passwd", "file:///proc/self/environ"):
        result = await lsp.client.text_document_inline_completion_async(
            inline_params(uri, 0, 0, invoked=True)
        )
        assert isinstance(result, types.InlineCompletionList) and not result.items
    try:
        await lsp.request("enclave/explain", {"textDocument": {"uri": "file:///etc/passwd"}})
    except JsonRpcInvalidParams as exc:
        assert "not inside a workspace folder" in str(exc)
    else:
        raise AssertionError("explaining /etc/passwd must be refused")
    assert "root:" not in _sent(ollama_server)
    assert [e for e, _ in ollama_server.state.requests if e in ("/api/chat", "/api/generate")] == []


async def test_a_model_host_not_allowed_is_refused_and_an_allowed_one_is_announced(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    """`localhost.invalid` is not this machine (it does not even resolve): not allowed, the
    server never contacts it and says which setting would allow it."""
    remote = ollama_server.url.replace("127.0.0.1", "localhost.invalid")
    options = options_for(ollama_server, ollama={"host": remote}, embedding={"provider": "none"})
    options["trust"] = {"allowedHosts": ["localhost.invalid"]}
    await lsp.start(options)
    status = await lsp.wait_status(lambda s: s["state"] in ("ready", "degraded"))
    assert status["modelHost"] == remote and status["modelHostLocal"] is False
    shown = " ".join(m.message for m in lsp.client.messages)
    assert f"prompts and code are sent to {remote}, which is not this machine" in shown


async def test_a_model_host_not_allowed_makes_the_status_say_which_setting(
    lsp: Session, ollama_server: OllamaTestServer
) -> None:
    remote = ollama_server.url.replace("127.0.0.1", "localhost.invalid")
    options = options_for(ollama_server, ollama={"host": remote}, embedding={"provider": "none"})
    await lsp.start(options)
    status = await lsp.wait_status(lambda s: s["state"] == "degraded")
    assert "not on this machine and not allowed" in status["message"]
    assert "trust.allowed_hosts" in status["fix"]
