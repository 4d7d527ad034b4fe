"""An OpenAI-compatible model server (vLLM, llama.cpp's server, Ollama's own ``/v1``) behind the
model client, for ``ollama.api = "openai"``.

:class:`OpenAIBackend` answers the few calls the model client makes of the ``ollama`` client
(``generate``, ``chat``, ``show``, ``list``) in that client's own types and errors
(``ollama.ResponseError`` with the HTTP status, ``ConnectionError``), so every rule of the model
client (the trust boundary, the audit log, timeouts, failover) holds unchanged:

- ``chat`` -> ``POST /v1/chat/completions`` streamed (server-sent events) with
  ``stream_options.include_usage`` for the token counts. Reasoning comes apart from the answer:
  ``reasoning_content`` (vLLM) or ``reasoning`` (Ollama) deltas become thinking; ``<think>`` tags
  in the content are split off by the client as for Ollama.
- Thinking: the API has no capabilities, so none is claimed beyond ``completion`` (and
  ``insert``, below). A thinking model thinks by default on every such server, and a model that
  cannot think must never be asked to (Ollama answers 400), so a question leaves
  ``reasoning_effort`` out unless thinking is turned off (``chat.think = false``, or the caller
  says so): then ``"none"``, which Ollama's ``/v1`` maps to ``think: false``. Completions through
  ``/v1/chat/completions`` always send ``"none"``: otherwise a reasoning model spends the
  completion's few tokens thinking and the suggestion is empty. A server that rejects an effort
  (a schema of ``low``/``medium``/``high`` only) gets the request again without it, and never
  again from this backend.
- ``generate`` with a system prompt (the chat prompt for completion models without
  fill-in-the-middle) -> ``/v1/chat/completions``; without one -> ``POST /v1/completions`` with
  ``suffix`` when the client sends one (``ollama.openai_fim``: the server's model takes it; a
  server that rejects ``suffix``, as vLLM does, is a one-line error naming the setting).
  ``/v1/completions`` has no thinking switch on any server: a reasoning model there answers
  nothing until it is done thinking.
- ``show`` -> ``GET /v1/models`` (cached): the model must be listed (else 404, as Ollama says), by
  its id, or by its file's name where the id is a path (llama.cpp's server without ``--alias``
  lists the GGUF's path: tools/server/server.cpp); requests then name it by the listed id;
  capabilities ``completion``, and ``insert`` for the completion model when
  ``ollama.openai_fim`` is on; ``max_model_len`` (vLLM) is the context length when given.
- ``generate`` with nothing to generate (the warm-up) only checks the server answers: such
  servers load their models at start.

Closing a stream closes its HTTP response: the server stops generating. ``num_ctx`` and
``keep_alive`` have no counterpart: the server's own settings decide.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import httpx
import ollama

from enclave.config import Config
from enclave.hosts import v1_base
from enclave.modelservers import error_text
from enclave.server.model.errors import ModelError


class OpenAIBackend:
    def __init__(
        self,
        url: str,
        config: Config,
        *,
        headers: Mapping[str, str],
        timeout: httpx.Timeout,
        http: Mapping[str, Any] | None = None,
    ) -> None:
        """``http``: more settings of the httpx client (the model client's refusal of redirects,
        :func:`enclave.hosts.no_redirects`); without them redirects are not followed either."""
        self.config = config
        self._http = httpx.AsyncClient(
            base_url=v1_base(url),
            timeout=timeout,
            headers={"Accept": "application/json", **headers},
            **{"follow_redirects": False, **(http or {})},
        )
        self._models: dict[str, dict[str, Any]] | None = None
        self._takes_effort = True  # until the server rejects reasoning_effort once

    async def close(self) -> None:
        await self._http.aclose()

    # -- plumbing -----------------------------------------------------------------------------
    async def _get(self, path: str) -> Any:
        try:
            response = await self._http.get(path)
        except httpx.ConnectError:
            raise ConnectionError(f"cannot connect to {self._http.base_url}") from None
        if response.status_code >= 400:
            raise ollama.ResponseError(error_text(response)[:500], response.status_code)
        return response.json()

    async def _models_listed(self) -> dict[str, dict[str, Any]]:
        if self._models is None:
            listed = await self._get("models")
            self._models = {str(m["id"]): m for m in listed["data"]}
        return self._models

    async def version(self) -> str:
        """What a health probe asks: ``GET /v1/models`` answers."""
        self._models = None
        models = await self._models_listed()
        return f"OpenAI-compatible ({len(models)} models)"

    async def _listed(self, model: str) -> tuple[str, dict[str, Any]]:
        """The server's id and entry for ``model``: the id itself, Ollama's ``:latest`` form,
        or a listed file path whose name (without ``.gguf``) is ``model`` or its file name: a
        llama.cpp server started without ``--alias`` lists the model's path as its id."""
        models = await self._models_listed()
        for key in (model, f"{model}:latest"):
            if key in models:
                return key, models[key]
        wanted = _file_stem(model)
        for key, entry in models.items():
            if ("/" in key or "\\" in key) and _file_stem(key) == wanted:
                return key, entry
        raise ollama.ResponseError(f"model '{model}' not found", 404)

    # -- metadata -----------------------------------------------------------------------------
    async def show(self, model: str) -> Any:
        _, entry = await self._listed(model)
        capabilities = ["completion"]  # what the API says; thinking: see the module doc
        o = self.config.ollama
        if o.openai_fim and model == o.effective_completion_model:
            capabilities.append("insert")
        info: dict[str, Any] = {}
        if isinstance(entry.get("max_model_len"), int):
            info["openai.context_length"] = entry["max_model_len"]
        return SimpleNamespace(capabilities=capabilities, modelinfo=info)

    async def list(self) -> Any:
        models = await self._models_listed()
        return SimpleNamespace(models=[SimpleNamespace(model=m, size=None) for m in models])

    # -- generation ---------------------------------------------------------------------------
    async def generate(
        self,
        *,
        model: str,
        prompt: str = "",
        suffix: str = "",
        system: str = "",
        think: bool | None = None,
        stream: bool = False,
        options: Mapping[str, Any] | None = None,
        keep_alive: str | None = None,
    ) -> Any:
        if not (prompt or suffix):  # a warm-up: the server's models are loaded already
            await self._get("models")
            return ollama.GenerateResponse(model=model, done=True, response="")
        listed, _ = await self._listed(model)
        if system:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
            body = self._chat_body(listed, messages, False, options)  # completions never think
            return self._stream("chat/completions", body, model, generate=True)
        body = {"model": listed, "prompt": prompt, **_sampling(options)}
        if suffix:
            body["suffix"] = suffix
        return self._stream("completions", body, model, generate=True)

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        think: bool | None = None,
        stream: bool = True,
        options: Mapping[str, Any] | None = None,
        keep_alive: str | None = None,
    ) -> AsyncIterator[Any]:
        listed, _ = await self._listed(model)
        body = self._chat_body(listed, [dict(m) for m in messages], think, options)
        return self._stream("chat/completions", body, model, generate=False)

    def _chat_body(
        self,
        model: str,
        messages: builtins.list[dict[str, Any]],
        think: bool | None,
        options: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": messages, **_sampling(options)}
        if think is None:
            think = None if self.config.chat.think else False
        if think is not None and self._takes_effort:
            body["reasoning_effort"] = "medium" if think else "none"
        return body

    def _rejected_effort(self, body: dict[str, Any], status: int, error: str) -> bool:
        """A 400 about ``reasoning_effort`` from a server that does not take it: from now on it
        is left out (the request is sent again without it)."""
        if status == 400 and "reasoning_effort" in body and "reasoning" in error.lower():
            self._takes_effort = False
            return True
        return False

    async def _stream(
        self, path: str, body: dict[str, Any], model: str, *, generate: bool
    ) -> AsyncIterator[Any]:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        finish = ""
        usage: dict[str, Any] = {}
        try:
            async with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    error = error_text(response)[:500]
                    if "suffix" in body and "suffix" in error.lower():
                        raise ModelError(
                            f"the server at {self._http.base_url} does not take `suffix` on "
                            f"/v1/completions ({error[:200]}), so {model} cannot fill in the "
                            "middle there",
                            "set ollama.openai_fim = false (completions then use the chat "
                            "prompt), or serve the completion model where `suffix` is taken "
                            "(llama.cpp's server, Ollama's /v1)",
                        )
                    if self._rejected_effort(body, response.status_code, error):
                        async for part in self._stream(
                            path, _without_effort(body), model, generate=generate
                        ):
                            yield part
                        return
                    raise ollama.ResponseError(error, response.status_code)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments (": ping"), event names
                    data = line[5:].strip()
                    if data == "[DONE]":
                        yield _part(model, "", "", generate, finish or "stop", usage)
                        return
                    event = json.loads(data)
                    if not isinstance(event, dict):
                        raise ValueError(f"an event that is not an object: {data[:80]!r}")
                    if "error" in event:
                        error = event["error"]
                        message = error.get("message") if isinstance(error, dict) else error
                        raise ollama.ResponseError(str(message), 500)
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        if generate and "text" in choice:
                            text, thinking = str(choice.get("text") or ""), ""
                        else:
                            delta = choice.get("delta") or {}
                            text = str(delta.get("content") or "")
                            thinking = str(
                                delta.get("reasoning_content") or delta.get("reasoning") or ""
                            )
                        finish = choice.get("finish_reason") or finish
                        if text or thinking:
                            yield _part(model, text, thinking, generate, "", None)
        except httpx.ConnectError:
            raise ConnectionError(f"cannot connect to {self._http.base_url}") from None


def _file_stem(name: str) -> str:
    """A model file's name without its folders and ``.gguf``: how a listed path is matched."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base[: -len(".gguf")] if base.lower().endswith(".gguf") else base


def _without_effort(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "reasoning_effort"}


def _sampling(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ollama's options as OpenAI request fields (``num_ctx``: the server's own setting)."""
    options = options or {}
    out: dict[str, Any] = {}
    if "num_predict" in options:
        out["max_tokens"] = options["num_predict"]
    if "temperature" in options:
        out["temperature"] = options["temperature"]
    if options.get("stop"):
        out["stop"] = list(options["stop"])
    return out


def _part(
    model: str,
    text: str,
    thinking: str,
    generate: bool,
    done_reason: str,
    usage: Mapping[str, Any] | None,
) -> Any:
    """One streamed part in the ollama client's types; the last (``usage`` given) is ``done``."""
    done = usage is not None
    counts: dict[str, Any] = {}
    if usage is not None:
        counts = {
            "done_reason": done_reason,
            "prompt_eval_count": usage.get("prompt_tokens"),
            "eval_count": usage.get("completion_tokens"),
        }
    if generate:
        return ollama.GenerateResponse(
            model=model, done=done, response=text, thinking=thinking or None, **counts
        )
    message = ollama.Message(role="assistant", content=text, thinking=thinking or None)
    return ollama.ChatResponse(model=model, done=done, message=message, **counts)
