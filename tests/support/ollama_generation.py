"""How the test Ollama server turns a /api/generate or /api/chat request into model output.

Validation mirrors Ollama (400 for ``think`` on a model without ``thinking``, for ``suffix`` on a
model without ``insert``, for generation on an embedding-only model). Thinking models reason for
real: a generation about the question, then the answer. Servers older than 0.9 ignore ``think``
and thinking models write ``<think>...</think>`` into their text, as old Ollama did.

As a current Ollama does (github.com/ollama/ollama at fb30760, server/routes.go,
GenerateHandler and ChatHandler):
- ``think`` left out on a model with the ``thinking`` capability means thinking *on*
  (``if req.Think == nil { req.Think = &api.ThinkValue{Value: true} }``), with the reasoning in
  its own ``thinking`` field;
- the reasoning is ordinary generated text that the thinking parser splits off, so
  ``num_predict`` and ``eval_count`` cover thinking and answer together, and a generation cut by
  ``num_predict`` ends with ``done_reason: "length"``, possibly with no content at all.
The model thinks ``think_tokens`` tokens (the server's ``State.think_tokens``; at most 8 unless a
test sets more, e.g. to make it think past the answer's budget: then exactly that many, or until
``num_predict``), each counted against ``num_predict``;
the answer gets what is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.support.llama_engine import ENGINE, chatml

THINK_TOKENS = 8
DEFAULT_PREDICT = 128  # Ollama's default is unbounded; tests never want that
END = "<|im_end|>"


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("-")[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@dataclass
class Work:
    prompt_text: str
    reasoning_text: str  # "" = no thinking
    separate_thinking: bool
    num_ctx: int
    num_predict: int
    stop: list[str]
    done_reason: str = "stop"
    prompt_eval_count: int = 0
    prompt_eval_cached_count: int = 0  # of prompt_eval_count, read from the prompt cache
    eval_count: int = 0
    think_tokens: int | None = None  # tokens of thinking, counted against num_predict
    started_ns: int = field(default_factory=time.perf_counter_ns)

    def pieces(self, fault: str, record: Any) -> Iterator[tuple[str, str]]:
        """(kind, text) pieces: kind is "thinking" or "content"; the caller holds ENGINE.lock."""
        inline = fault == "think-tags" or (bool(self.reasoning_text) and not self.separate_thinking)
        reasoning = self.reasoning_text or ("Let me think." if fault == "think-tags" else "")
        if inline:
            yield "content", "<thi"
            yield "content", "nk>"
        if reasoning:
            wanted = THINK_TOKENS if self.think_tokens is None else self.think_tokens
            budget = min(wanted, self.num_predict)
            thought = ENGINE.fit(reasoning, self.num_ctx, budget)
            while self.eval_count < budget:
                before = self.eval_count
                left = budget - self.eval_count
                for text in ENGINE.stream(thought.tokens, max_tokens=left, stop=[END]):
                    self.eval_count += 1
                    yield ("content" if inline else "thinking"), text
                # A test that sets think_tokens gets that many (R1 thinks for thousands of
                # tokens; the tiny model ends sooner, so it goes on); else the model's own end.
                if self.think_tokens is None or self.eval_count == before:
                    break
        left = self.num_predict - self.eval_count
        if left <= 0:  # the budget went to thinking: Ollama ends with "length" and no answer
            self.done_reason = "length"
            return
        if inline:
            yield "content", "</thi"
            yield "content", "nk>\n\n"
        prompt = ENGINE.fit(self.prompt_text, self.num_ctx, self.num_predict)
        self.prompt_eval_count = len(prompt.tokens)  # Ollama counts the cached tokens in it
        self.prompt_eval_cached_count = ENGINE.cached(prompt.tokens)
        record.prompt_tokens = self.prompt_eval_count
        record.truncated = prompt.truncated
        record.cached_tokens = self.prompt_eval_cached_count
        for text in ENGINE.stream(prompt.tokens, max_tokens=left, stop=self.stop):
            self.eval_count += 1
            record.text += text
            yield "content", text
        self.done_reason = "length" if self.eval_count >= self.num_predict else "stop"


def plan(
    endpoint: str,
    name: str,
    spec: Any,
    body: dict[str, Any],
    version: str,
    think_tokens: int | None = None,
) -> Work:
    from tests.support.ollama_server import HttpError

    caps = set(spec.capabilities)
    if "completion" not in caps:
        raise HttpError(400, f'"{name}" does not support {endpoint}')
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise HttpError(400, "json: cannot unmarshal options")
    think = body.get("think")
    legacy = version_tuple(version) < (0, 9)
    if think and not legacy and "thinking" not in caps:
        raise HttpError(400, f'"{name}" does not support thinking')
    suffix = str(body.get("suffix") or "")
    if endpoint == "generate" and suffix and "insert" not in caps:
        raise HttpError(400, f"registry.ollama.ai/library/{name} does not support insert")

    stop = [str(s) for s in options.get("stop") or []]
    if endpoint == "chat":
        messages = [
            {"role": str(m.get("role", "user")), "content": str(m.get("content") or "")}
            for m in body.get("messages") or []
        ]
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        text = chatml(messages)
        stop.append(END)
    else:
        prompt = str(body.get("prompt") or "")
        question = prompt
        if body.get("raw"):
            text = prompt
        elif suffix:
            # SmolLM2 has no FIM tokens: it continues the prefix (the suffix only gates the
            # request, as Ollama does for models without `insert`).
            text = prompt
        else:
            messages = []
            if body.get("system"):
                messages.append({"role": "system", "content": str(body["system"])})
            messages.append({"role": "user", "content": prompt})
            text = chatml(messages)
            stop.append(END)

    thinks = "thinking" in caps and (legacy or think is not False)
    reasoning = ""
    if thinks:
        reasoning = chatml(
            [
                {"role": "system", "content": "Think briefly, step by step, about the request."},
                {"role": "user", "content": question[-2000:]},
            ]
        )
    return Work(
        prompt_text=text,
        reasoning_text=reasoning,
        separate_thinking=think is not False and not legacy,  # absent: on (routes.go)
        num_ctx=int(options.get("num_ctx") or 2048),
        num_predict=int(options.get("num_predict") or DEFAULT_PREDICT),
        stop=stop,
        think_tokens=think_tokens,
    )
