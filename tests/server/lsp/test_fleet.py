"""The language server on a fleet of model servers (``ollama.hosts``) with one host dead:
completions still arrive, and `enclave/status` shows each host and its state, never the headers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lsprotocol import types

from tests.server.lsp.conftest import Session, options_for
from tests.support.forward_proxy import ForwardProxy
from tests.support.lsp_params import inline_params
from tests.support.ollama_server import OllamaTestServer

SOURCE = "def add(a: int, b: int) -> int:\n    return \n"


@pytest.fixture
def fleet(ollama_server: OllamaTestServer) -> Iterator[tuple[ForwardProxy, ForwardProxy]]:
    dead, live = ForwardProxy(ollama_server.url).start(), ForwardProxy(ollama_server.url).start()
    dead.kill()  # first in the list: every request would go there first
    yield dead, live
    dead.stop()
    live.stop()


async def test_completion_through_a_fleet_with_one_host_dead(
    lsp: Session, ollama_server: OllamaTestServer, fleet: tuple[ForwardProxy, ForwardProxy]
) -> None:
    dead, live = fleet
    options = options_for(
        ollama_server,
        ollama={
            "hosts": [dead.url, live.url],
            "headers": {"Authorization": "Bearer lsp-fleet-s3cret"},
        },
    )
    await lsp.start(options)
    assert (await lsp.wait_settled())["state"] == "ready"
    uri = lsp.open("app/add.py", SOURCE)

    result = await lsp.client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert isinstance(result, types.InlineCompletionList) and len(result.items) == 1, result
    assert live.paths("/api/generate")
    for seen in live.state.seen:  # every request: status checks, show, embed, generate
        headers = {k.lower(): v for k, v in seen.headers.items()}
        assert headers.get("authorization") == "Bearer lsp-fleet-s3cret", seen.path

    status = lsp.statuses[-1]
    hosts = {h["host"]: h for h in status["modelHosts"]}
    assert hosts[live.url]["state"] == "up"
    # down: in its back-off, or past it and to be probed again ("due")
    assert hosts[dead.url]["state"] in ("down", "due") and hosts[dead.url]["error"], status
    assert "lsp-fleet-s3cret" not in json.dumps(lsp.statuses)
