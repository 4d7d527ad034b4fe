"""The OpenAI-compatible routes of the test Ollama server, as Ollama serves them (``/v1/...``).

``/v1/models``, ``/v1/chat/completions``, ``/v1/completions`` (with ``suffix``) and
``/v1/embeddings``, answered by the same tiny model and the same request planning as ``/api/*``
(``ollama_generation.plan``). Streams are server-sent events (``data: {...}`` lines, then
``data: [DONE]``); ``stream_options.include_usage`` adds a last event with ``usage`` and no
choices. Errors are OpenAI's ``{"error": {"message", "type"}}``.

Reasoning, as Ollama's compatibility layer does it (github.com/ollama/ollama at fb30760,
openai/openai.go): ``reasoning_effort`` becomes ``think`` by ``thinkFromReasoningEffort``: left
out, the model's default (a thinking model thinks); ``"none"``, thinking off; ``minimal``, ``low``,
``medium``, ``high``, ``max``, ``xhigh``, ``ultra``, on; anything else a 400. Reasoning goes in
``reasoning`` deltas (``state.reasoning_field = "reasoning_content"`` answers as vLLM does).
``/v1/completions`` has no switch (``FromCompleteRequest`` sets no ``think``) and its chunks carry
only the response (``ToCompleteChunk``: ``Text: r.Response``): a thinking model's reasoning is
generated, counted in ``usage``, and dropped. ``state.reasoning_efforts`` narrows the efforts a
server takes (a server whose schema lists only ``low``/``medium``/``high`` answers 400 to the
others).
The fault modes apply as to ``/api/*`` (``set_fault(..., endpoint="/v1/chat/completions")``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from tests.support.llama_engine import ENGINE

if TYPE_CHECKING:
    from tests.support.ollama_server import Handler

OPENAI_PATHS = ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings")


def error_body(message: str, status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def models(handler: Handler, body: dict[str, Any]) -> None:
    state = handler.server.state
    window = {} if state.max_model_len is None else {"max_model_len": state.max_model_len}
    data = [
        {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "library", **window}
        for name in state.models
    ]
    handler._answer({"object": "list", "data": data})


def embeddings(handler: Handler, body: dict[str, Any]) -> None:
    state = handler.server.state
    name = str(body.get("model") or "")
    key, _spec = state.spec(name, handler.route)
    handler._load_faults()
    raw = body.get("input", "")
    texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
    vectors = ENGINE.embed(texts) if texts else []
    count = sum(len(ENGINE.tokenize(t)) for t in texts)
    state.loaded[key] = time.time() + 300
    handler._answer(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)
            ],
            "model": name,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
    )


def _as_ollama(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``/api/*`` request Ollama makes of an OpenAI one (what its compatibility layer does)."""
    options: dict[str, Any] = {}
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    if body.get("temperature") is not None:
        options["temperature"] = body["temperature"]
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    out: dict[str, Any] = {"model": body.get("model"), "options": options, "stream": True}
    if endpoint == "chat":
        out["messages"] = body.get("messages") or []
        effort = body.get("reasoning_effort")
        if effort not in (None, ""):
            out["think"] = effort != "none"
    else:
        out["prompt"] = body.get("prompt") or ""
        if body.get("suffix"):
            out["suffix"] = body["suffix"]
    return out


def completions(handler: Handler, body: dict[str, Any]) -> None:
    from tests.support.ollama_server import HttpError

    if body.get("suffix") is not None and not handler.server.state.v1_suffix:
        # vLLM's completion endpoint (vllm/entrypoints/openai/serving_completion.py)
        raise HttpError(400, "suffix is not currently supported")
    _run(handler, "generate", body)


def chat_completions(handler: Handler, body: dict[str, Any]) -> None:
    _run(handler, "chat", body)


def _run(handler: Handler, endpoint: str, body: dict[str, Any]) -> None:
    from tests.support.ollama_generation import plan
    from tests.support.ollama_server import Generation, HttpError

    state = handler.server.state
    name = str(body.get("model") or "")
    if not name:
        raise HttpError(400, "model is required")
    effort = body.get("reasoning_effort")
    if effort not in (None, "") and effort not in state.reasoning_efforts:
        allowed = ", ".join(f'"{e}"' for e in state.reasoning_efforts)
        raise HttpError(400, f"invalid reasoning value: {json.dumps(effort)} (must be {allowed})")
    request = _as_ollama(endpoint, body)
    key, spec = state.spec(name, handler.route)
    work = plan(endpoint, name, spec, request, state.version, state.think_tokens)
    handler._load_faults()
    state.loaded[key] = time.time() + 300
    record = Generation(f"openai-{endpoint}", name, body, time.monotonic())
    state.generations.append(record)
    ident = f"{'chatcmpl' if endpoint == 'chat' else 'cmpl'}-{len(state.generations)}"
    created = int(time.time())
    kind = "chat.completion.chunk" if endpoint == "chat" else "text_completion"
    fault = handler._fault("cut-stream", "malformed-chunk")

    def event(choice: dict[str, Any] | None, usage: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {
            "id": ident,
            "object": kind,
            "created": created,
            "model": name,
            "choices": [choice] if choice is not None else [],
        }
        if usage is not None:
            payload["usage"] = usage
        _sse(handler, "data: " + json.dumps(payload))

    def piece(kind_: str, text: str, finish: str | None = None) -> dict[str, Any]:
        if endpoint == "generate":
            return {"index": 0, "text": text, "finish_reason": finish}
        delta: dict[str, Any] = {"role": "assistant"}
        if text:
            delta[state.reasoning_field if kind_ == "thinking" else "content"] = text
        return {"index": 0, "delta": delta, "finish_reason": finish}

    from tests.support.ollama_server import ClientGone

    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    sent = 0
    try:
        with ENGINE.lock:
            pieces = work.pieces("", record)
            try:
                for kind_, text in pieces:
                    if endpoint == "generate" and kind_ == "thinking":
                        continue  # generated and counted, never sent (ToCompleteChunk)
                    event(piece(kind_, text))
                    sent += 1
                    if fault is not None and sent == 2:
                        if fault.mode == "malformed-chunk":
                            _sse(handler, 'data: {"id": "' + ident + '", "choi')
                        else:
                            record.stop = "cut"
                            break
                else:
                    event(piece("content", "", work.done_reason))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        event(
                            None,
                            {
                                "prompt_tokens": work.prompt_eval_count,
                                "completion_tokens": work.eval_count,
                                "total_tokens": work.prompt_eval_count + work.eval_count,
                            },
                        )
                    _sse(handler, "data: [DONE]")
                    record.stop = "done"
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()
    except ClientGone:
        record.stop = "client-closed"
    finally:
        record.stopped_at = time.monotonic()
    if record.stop in ("client-closed", "cut"):
        handler.close_connection = True
        if record.stop == "client-closed":
            return
    handler._end_chunks()


def _sse(handler: Handler, line: str) -> None:
    from tests.support.ollama_server import ClientGone

    if handler._client_gone():
        raise ClientGone
    data = (line + "\n\n").encode()
    try:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()
    except OSError:
        raise ClientGone from None
