"""The test Ollama server answers as a current Ollama does where a difference would hide a bug,
through the official client. Each case names the Ollama source it copies (github.com/ollama/ollama
at fb30760); the stand-in's own docstrings quote the lines."""

from __future__ import annotations

import ollama
import pytest

from tests.support.ollama_server import OllamaTestServer


def test_think_left_out_on_a_thinking_model_means_thinking_on_in_its_own_field(
    ollama_server: OllamaTestServer,
) -> None:
    """server/routes.go, ChatHandler: ``if req.Think == nil { req.Think = ...true }``."""
    client = ollama.Client(host=ollama_server.url)
    reply = client.chat(
        model="deepseek-r1",
        messages=[{"role": "user", "content": "Say hi."}],
        options={"num_predict": 40},
    )
    assert reply.message.thinking  # apart from the answer
    assert "<think>" not in (reply.message.content or "")


def test_thinking_counts_against_num_predict_and_can_leave_no_answer(
    ollama_server: OllamaTestServer,
) -> None:
    """server/routes.go: the thinking parser splits generated text, so ``num_predict`` and
    ``eval_count`` cover both; a think longer than the budget ends with "length" and nothing."""
    ollama_server.state.think_tokens = 12
    client = ollama.Client(host=ollama_server.url)
    cut = client.chat(
        model="deepseek-r1",
        messages=[{"role": "user", "content": "Explain recursion."}],
        think=True,
        options={"num_predict": 6},
    )
    assert cut.done_reason == "length" and cut.message.content == ""
    assert cut.eval_count == 6 and cut.message.thinking
    roomy = client.chat(
        model="deepseek-r1",
        messages=[{"role": "user", "content": "Explain recursion."}],
        think=True,
        options={"num_predict": 30},
    )
    assert roomy.message.thinking and roomy.message.content  # room left: an answer too


@pytest.mark.parametrize(
    ("think", "suffix", "error"),
    [
        (True, "", '"smollm2:135m" does not support thinking'),
        (None, "x", "does not support insert"),
    ],
)
def test_what_a_model_cannot_do_is_a_400(
    ollama_server: OllamaTestServer, think: bool | None, suffix: str, error: str
) -> None:
    """server/routes.go, GenerateHandler: think on a model without ``thinking``; server/images.go,
    CheckCapabilities: ``suffix`` on a model without ``insert``."""
    client = ollama.Client(host=ollama_server.url)
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(
            model="smollm2:135m",
            prompt="def f():",
            suffix=suffix,
            think=think,
            options={"num_predict": 4},
        )
    assert caught.value.status_code == 400 and error in caught.value.error
