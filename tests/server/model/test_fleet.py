"""A fleet of model servers (``ollama.hosts``): routing, health, failover, allow-list, headers.

The routing rules are unit-tested on :class:`Fleet` with a fake clock. Failover runs for real:
two forwarding proxies (``tests.support.forward_proxy``) stand for two hosts in front of the one
session test server, and one of them dies or answers 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from enclave.config import Config, load_config, to_wire
from enclave.modelservers import DOWN_FIRST, Fleet, Host
from enclave.server.completion.pipeline import complete_text
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import (
    HostRefused,
    ModelTimeout,
    OllamaUnavailable,
    StreamInterrupted,
)
from tests.support.forward_proxy import ForwardProxy
from tests.support.ollama_fixtures import FAST, config_for
from tests.support.ollama_server import OllamaTestServer

# -- routing (no I/O) ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def three() -> tuple[Fleet, list[Host], Clock]:
    clock = Clock()
    hosts = [Host(f"http://10.0.0.{i}:11434", f"h{i}") for i in range(3)]
    return Fleet(hosts, clock), hosts, clock


def test_idle_fleet_keeps_the_configured_order() -> None:
    fleet, hosts, _ = three()
    assert fleet.order() == hosts


def test_least_busy_host_goes_first() -> None:
    fleet, (a, b, c), _ = three()
    a.in_flight, b.in_flight, c.in_flight = 2, 0, 1
    assert fleet.order() == [b, c, a]


def test_completion_sticks_to_its_host_unless_it_is_clearly_busier() -> None:
    fleet, (a, b, c), _ = three()
    c.in_flight = 1  # one more than the idle hosts: still the sticky choice (its prompt cache)
    assert fleet.order(sticky=c)[0] is c
    c.in_flight = 2  # two more: clearly busier, the least busy host takes the completion
    assert fleet.order(sticky=c)[0] is a
    fleet.failed(c, "refused")  # a down host is never sticky
    c.in_flight = 0
    assert fleet.order(sticky=c)[:2] == [a, b]


def test_a_failed_host_waits_out_a_growing_back_off_then_is_due_for_a_probe() -> None:
    fleet, (a, b, c), clock = three()
    fleet.failed(a, "connection refused")
    assert fleet.state(a) == "down" and fleet.order() == [b, c, a]  # last resort only
    clock.now += DOWN_FIRST
    assert fleet.state(a) == "due"
    assert fleet.order() == [a, b, c]  # back in its place, to be probed before use
    fleet.failed(a, "connection refused")  # the probe failed: twice as long this time
    clock.now += DOWN_FIRST
    assert fleet.state(a) == "down"
    clock.now += DOWN_FIRST
    assert fleet.state(a) == "due"
    fleet.answered(a)
    assert fleet.state(a) == "up" and a.last_error == "" and fleet.order() == [a, b, c]


def test_all_down_are_still_tried_soonest_back_first() -> None:
    fleet, (a, b, c), clock = three()
    fleet.failed(b, "x")
    clock.now += 1
    fleet.failed(a, "x")
    fleet.failed(c, "x")
    fleet.failed(c, "x")
    assert fleet.order() == [b, a, c]


# -- two hosts for real ----------------------------------------------------------------------------


@pytest.fixture
def proxies(ollama_server: OllamaTestServer) -> Iterator[tuple[ForwardProxy, ForwardProxy]]:
    first = ForwardProxy(ollama_server.url).start()
    second = ForwardProxy(ollama_server.url).start()
    yield first, second
    first.stop()
    second.stop()


def fleet_config(proxies: tuple[ForwardProxy, ForwardProxy]) -> Config:
    data: dict[str, dict[str, object]] = {k: dict(v) for k, v in FAST.items()}
    data["ollama"]["hosts"] = [p.url for p in proxies]
    data["ollama"]["headers"] = {
        "Authorization": "Bearer ${ENCLAVE_TEST_FLEET_TOKEN}",
        "X-Team": "ml",
    }
    config, problems = load_config(None, data, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return config


@pytest.fixture
async def fleet_client(
    proxies: tuple[ForwardProxy, ForwardProxy], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ModelClient]:
    monkeypatch.setenv("ENCLAVE_TEST_FLEET_TOKEN", "s3cr3t-t0ken-value")
    client = ModelClient(fleet_config(proxies))
    yield client
    await client.aclose()


async def _ask(client: ModelClient) -> str:
    text = ""
    async for delta in client.chat(
        client.boundary.admit_messages([{"role": "user", "content": "Say hello."}]), think=False
    ):
        text += delta.content
    return text


async def test_a_dead_host_is_skipped_without_an_error(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    first, second = proxies
    assert await _ask(fleet_client)
    assert first.paths("/api/chat") and not second.paths("/api/chat")  # idle fleet: first host
    first.kill()  # the host dies between two requests (its kept-alive connection too)
    assert await _ask(fleet_client)  # no error reaches the user
    assert len(second.paths("/api/chat")) == 1
    states = {s.name: s.state for s in fleet_client.host_states()}
    assert states == {first.url: "down", second.url: "up"}
    assert "Connection refused" in fleet_client.host_states()[0].error or "not running" in (
        fleet_client.host_states()[0].error
    )
    # and it stays skipped while it is down: no new connection attempt slows the next request
    assert await _ask(fleet_client)
    assert len(second.paths("/api/chat")) == 2


async def test_a_host_answering_5xx_fails_over_and_is_probed_again_later(
    fleet_client: ModelClient,
    proxies: tuple[ForwardProxy, ForwardProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = proxies
    first.fail_with(502)
    assert await _ask(fleet_client)
    assert first.paths("/api/") and second.paths("/api/chat")
    assert fleet_client.host_states()[0].state == "down"
    # once the back-off is over, the host is probed (GET /api/version) and used again
    first.fail_with(None)
    fleet_client.fleet.hosts[0].down_until = 1.0  # back-off over
    before = len(first.paths("/api/version"))
    assert await _ask(fleet_client)
    assert len(first.paths("/api/version")) == before + 1
    assert first.paths("/api/chat")  # back in service
    assert fleet_client.host_states()[0].state == "up"


async def test_a_model_missing_on_one_host_is_asked_of_the_next(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    first, second = proxies
    first.fail_with(404)  # {"error": ...} with 404: that host does not have the model
    assert await _ask(fleet_client)
    assert second.paths("/api/chat")
    assert fleet_client.host_states()[0].state == "up"  # a real answer: the host is not down


async def test_a_host_that_dies_mid_answer_fails_the_request_without_repeating_text(
    fleet_client: ModelClient,
    proxies: tuple[ForwardProxy, ForwardProxy],
    ollama_server: OllamaTestServer,
) -> None:
    first, second = proxies
    await fleet_client.model_info(fleet_client.config.ollama.chat_model)
    ollama_server.set_fault("hang-after-first-token", delay=10, count=1)
    received: list[str] = []
    with pytest.raises(StreamInterrupted) as caught:
        async for delta in fleet_client.chat(
            fleet_client.boundary.admit_messages([{"role": "user", "content": "Hi"}]), think=False
        ):
            received.append(delta.content)
            first.kill()  # the first part reached us; then the host dies
    assert received  # the user saw the start of the answer
    assert first.url in caught.value.message and "broke" in caught.value.message
    assert not second.paths("/api/chat")  # no second answer was started elsewhere
    for _ in range(100):  # and the model server saw its client go: it stopped generating
        if ollama_server.state.hangs and ollama_server.state.hangs[-1].ended_at:
            break
        await asyncio.sleep(0.05)
    assert ollama_server.state.hangs[-1].client_gone


async def test_completion_through_a_fleet_with_a_dead_host(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    first, second = proxies
    first.kill()
    await _complete(fleet_client)
    assert second.paths("/api/generate")
    assert fleet_client._sticky is fleet_client.fleet.hosts[1]


def test_every_host_must_be_allowed(ollama_server: OllamaTestServer) -> None:
    config = config_for(ollama_server, ollama={"hosts": [ollama_server.url, "gpu1.corp:11434"]})
    client = ModelClient(config)
    with pytest.raises(HostRefused) as caught:
        client._check_host()
    assert "gpu1.corp" in caught.value.message
    assert "trust.allowed_hosts" in caught.value.fix and "ollama.hosts" in caught.value.fix
    allowed = config_for(
        ollama_server,
        ollama={"hosts": [ollama_server.url, "gpu1.corp:11434"]},
        trust={"allowed_hosts": ["gpu1.corp"]},
    )
    ModelClient(allowed)._check_host()  # listed: no refusal


async def test_headers_reach_every_endpoint_and_are_never_shown(
    fleet_client: ModelClient,
    proxies: tuple[ForwardProxy, ForwardProxy],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, _ = proxies
    caplog.set_level(logging.DEBUG)
    await fleet_client.version()
    await fleet_client.warm_up([fleet_client.config.ollama.chat_model])
    assert await _ask(fleet_client)
    await fleet_client.check_hosts()
    paths = set()
    for seen in first.state.seen:
        headers = {k.lower(): v for k, v in seen.headers.items()}
        assert headers.get("authorization") == "Bearer s3cr3t-t0ken-value", seen.path
        assert headers.get("x-team") == "ml"
        paths.add(seen.path)
    assert {"/api/version", "/api/show", "/api/tags", "/api/generate", "/api/chat"} <= paths
    wire = to_wire(fleet_client.config)
    assert wire["ollama"]["headers"] == {"Authorization": "***", "X-Team": "***"}
    shown = repr(wire) + repr(fleet_client.host_states()) + caplog.text
    assert "s3cr3t" not in shown and "ENCLAVE_TEST_FLEET_TOKEN" not in repr(wire)


def test_a_header_naming_an_unset_variable_is_refused_without_its_value(
    ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_TEST_UNSET", raising=False)
    config = config_for(
        ollama_server, ollama={"headers": {"Authorization": "Bearer ${ENCLAVE_TEST_UNSET}"}}
    )
    client = ModelClient(config)
    with pytest.raises(Exception) as caught:
        client._check_host()
    assert "ENCLAVE_TEST_UNSET" in str(caught.value.message)  # type: ignore[attr-defined]
    assert "Bearer" not in str(caught.value.message)  # type: ignore[attr-defined]


async def test_a_busy_host_passes_the_request_on_without_being_marked_down(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    first, second = proxies
    await fleet_client.model_info(fleet_client.config.ollama.chat_model)
    first.fail_with(503)
    assert await _ask(fleet_client)
    assert second.paths("/api/chat") and fleet_client.host_states()[0].state == "up"


async def test_when_every_host_is_down_the_error_names_each(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    for proxy in proxies:
        proxy.kill()
    with pytest.raises(OllamaUnavailable) as caught:
        await _ask(fleet_client)
    assert all(p.url in caught.value.message for p in proxies)
    assert "ollama.hosts" in caught.value.fix and "enclave doctor" in caught.value.fix


async def test_requests_at_once_spread_over_the_hosts(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    await fleet_client.model_info(fleet_client.config.ollama.chat_model)
    await asyncio.gather(_ask(fleet_client), _ask(fleet_client))
    assert [len(p.paths("/api/chat")) for p in proxies] == [1, 1]  # the least busy each time


async def test_completions_stay_on_their_host_while_other_requests_go_elsewhere(
    fleet_client: ModelClient, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    first, second = proxies
    first.fail_with(502)  # the first completion is served by the second host...
    await _complete(fleet_client)
    assert len(second.paths("/api/generate")) == 1
    first.fail_with(None)  # ...then the first host is back (its back-off over)
    fleet_client.fleet.hosts[0].down_until = 1.0
    assert await _ask(fleet_client)  # a question goes to the first host (configured order)
    assert first.paths("/api/chat")
    await _complete(fleet_client)  # the next completion stays where its prompt cache is
    assert len(second.paths("/api/generate")) == 2 and not first.paths("/api/generate")


async def _complete(client: ModelClient) -> None:
    result = await complete_text(
        client,
        prefix="def add(a, b):\n    return ",
        suffix="\n",
        language="python",
        path="m.py",
        context=[],
        multiline=False,
    )
    assert result.fim


async def test_a_silent_host_times_out_once_then_is_avoided(
    proxies: tuple[ForwardProxy, ForwardProxy],
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENCLAVE_TEST_FLEET_TOKEN", "t")
    config = fleet_config(proxies)
    config = replace(config, ollama=replace(config.ollama, first_token_timeout=1.0))
    client = ModelClient(config)
    try:
        await client.model_info(config.ollama.chat_model)
        ollama_server.set_fault("hang-before-headers", delay=5, count=1, endpoint="/api/chat")
        with pytest.raises(ModelTimeout):  # the wait is spent: the error, not a second wait
            await _ask(client)
        assert client.host_states()[0].state == "down"
        # the next request goes to the other host at once (with the usual wait for its answer:
        # a loaded test machine may take more than a second to the first token)
        client.config = replace(config, ollama=replace(config.ollama, first_token_timeout=20.0))
        assert await _ask(client)
        assert proxies[1].paths("/api/chat")
    finally:
        await client.aclose()


async def test_servers_of_other_versions_serve_what_the_request_needs(
    ollama_server: OllamaTestServer,
) -> None:
    """A fleet whose servers list a model's capabilities differently (another Ollama version
    adds one the request does not use) was skipped whole, and the error said no server ran.
    The first server is down; the second lists one capability more: it takes the completion."""
    newer = OllamaTestServer().start()
    try:
        spec = newer.state.models["qwen2.5-coder:1.5b"]
        newer.state.models["qwen2.5-coder:1.5b"] = replace(
            spec, capabilities=(*spec.capabilities, "tools")
        )
        config = config_for(ollama_server, ollama={"hosts": [ollama_server.url, newer.url]})
        client = ModelClient(config)
        try:
            first = await complete_text(
                client, prefix="def add(a, b):\n    return ", suffix="\n", language="python",
                path="m.py", context=[], multiline=False,
            )  # fmt: skip
            assert first.fim
            ollama_server.refuse()  # the server that served it goes away
            second = await complete_text(
                client, prefix="def sub(a, b):\n    return ", suffix="\n", language="python",
                path="m.py", context=[], multiline=False,
            )  # fmt: skip
        finally:
            ollama_server.resume()
            await client.aclose()
        assert second.fim
        assert [path for path, _ in newer.state.requests].count("/api/generate") == 1
    finally:
        newer.stop()
