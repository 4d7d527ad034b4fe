"""Redirects are never followed: a model server that answers 307/308 does not get to send the
prompt to a host nobody allowed (``trust.allowed_hosts``), on any path of the model client.

A redirecting proxy (``tests.support.loopback_servers.Redirector``) stands in front of the session
test server and answers the requests that carry a prompt (``/api/chat``, ``/api/generate``,
``/v1/chat/completions``, ``/api/create``, ...) with a redirect to ANOTHER loopback server, which
records every request that reaches it: nothing may. The refusal is one line naming both hosts
and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Config, load_config
from enclave.server import customize
from enclave.server.cli import main
from enclave.server.completion.pipeline import complete_text
from enclave.server.doctor import run_doctor
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import RedirectRefused
from tests.support.loopback_servers import Recorder, Redirector
from tests.support.ollama_fixtures import FAST, env_for, use_env
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo


def config_at(url: str, **sections: dict[str, object]) -> Config:
    data: dict[str, dict[str, object]] = {k: dict(v) for k, v in FAST.items()}
    data["ollama"]["host"] = url
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config, problems = load_config(None, data, env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert not problems, problems
    return config


def assert_refused(message: str, redirector: Redirector, recorder: Recorder) -> None:
    assert redirector.redirected, "the redirect never came: the test proves nothing"
    assert recorder.seen() == [], "a request followed the redirect"
    assert "\n" not in message
    assert f"redirected the request to {recorder.url}" in message
    assert "did not follow" in message and redirector.url in message


async def test_a_question_is_not_sent_where_a_redirect_points(
    redirector: Redirector, recorder: Recorder
) -> None:
    client = ModelClient(config_at(redirector.url))
    try:
        with pytest.raises(RedirectRefused) as caught:
            async for _ in client.chat(
                client.boundary.admit_messages([{"role": "user", "content": "secret code"}]),
                think=False,
            ):
                pass
    finally:
        await client.aclose()
    assert_refused(str(caught.value), redirector, recorder)
    assert "point ollama.host at the final address" in caught.value.fix


async def test_a_completion_is_not_sent_where_a_redirect_points(
    redirector: Redirector, recorder: Recorder
) -> None:
    client = ModelClient(config_at(redirector.url))
    try:
        with pytest.raises(RedirectRefused) as caught:
            await complete_text(
                client,
                prefix="def add(a, b):\n    return ",
                suffix="\n",
                language="python",
                path="m.py",
                context=[],
                multiline=False,
            )
    finally:
        await client.aclose()
    assert_refused(str(caught.value), redirector, recorder)


async def test_the_openai_path_is_not_sent_where_a_redirect_points(
    redirector: Redirector, recorder: Recorder
) -> None:
    client = ModelClient(config_at(redirector.url, ollama={"api": "openai"}))
    try:
        with pytest.raises(RedirectRefused) as caught:
            async for _ in client.chat(
                client.boundary.admit_messages([{"role": "user", "content": "secret code"}]),
                think=False,
            ):
                pass
    finally:
        await client.aclose()
    assert_refused(str(caught.value), redirector, recorder)


async def test_a_version_probe_does_not_follow_a_redirect(
    ollama_server: OllamaTestServer, recorder: Recorder
) -> None:
    everything = Redirector(ollama_server.url, recorder.url, 308, redirect=lambda _: True).start()
    try:
        report = await run_doctor(config_at(everything.url), None)
    finally:
        everything.stop()
    problem = next(c for c in report.checks if c.name == "ollama")
    assert problem.status == "error"
    assert_refused(problem.message, everything, recorder)


def test_a_fleet_host_that_redirects_is_skipped(
    redirector: Redirector, recorder: Recorder, ollama_server: OllamaTestServer
) -> None:
    """In a fleet (``ollama.hosts``) the host that redirects is marked down, the other answers."""
    import asyncio

    config = config_at(redirector.url, ollama={"hosts": [redirector.url, ollama_server.url]})
    client = ModelClient(config)

    async def ask() -> str:
        try:
            text = ""
            async for delta in client.chat(
                client.boundary.admit_messages([{"role": "user", "content": "Say hi."}]),
                think=False,
            ):
                text += delta.content
            return text
        finally:
            await client.aclose()

    asyncio.run(ask())
    assert redirector.redirected and recorder.seen() == []
    first = client.host_states()[0]
    # down (or due for a probe already, if the answer took longer than the first back-off)
    assert first.state in ("down", "due") and "redirected the request" in first.error


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})


@pytest.mark.parametrize("command", ["ask", "explain"])
def test_ask_and_explain_end_in_one_line_and_send_nothing_there(
    command: str,
    repo: Path,
    redirector: Redirector,
    recorder: Recorder,
    ollama_server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = env_for(ollama_server, repo.parent / "xdg")
    env["OLLAMA_HOST"] = redirector.url
    env["ENCLAVE_EMBEDDING_PROVIDER"] = "none"
    use_env(env, monkeypatch)
    args = ["What does add do?"] if command == "ask" else [str(repo / "calc.py") + ":1-2"]
    code = main([command, "--root", str(repo), *args])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert_refused(err.strip().splitlines()[-1], redirector, recorder)


def test_customize_does_not_follow_a_redirect(
    redirector: Redirector, recorder: Recorder, tmp_path: Path
) -> None:
    config = config_at(redirector.url)
    plan = customize.Customization(
        "enclave-redirected", "deepseek-r1", "Glossary: the secret terms", {"temperature": 0.2}
    )
    with pytest.raises(customize.CustomizeError) as caught:
        customize.create(config, plan, lambda _: None)
    assert_refused(str(caught.value), redirector, recorder)
