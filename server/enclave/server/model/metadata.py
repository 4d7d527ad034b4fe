"""What the model servers say of themselves, for ``enclave.server.model.client``: a server's
version (``/api/version``, or ``/v1/models`` for an OpenAI-compatible server: the health probe)
and a model's capabilities, context length and size (``/api/show``, ``/api/tags``; kept per host).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import httpx
import ollama

from enclave.config import Config
from enclave.modelservers import Host
from enclave.server.model.errors import ModelTimeout, OllamaUnavailable


class Client(Protocol):
    """What these requests need of their model client (``ModelClient``; a protocol, so that
    this module does not import the client that imports it)."""

    config: Config
    _headers: dict[str, str]

    def _check_host(self) -> None: ...

    def _no_redirects(self) -> dict[str, Any]: ...

    def _quick_wait(self) -> tuple[float, str]: ...

    def _quick_timeout(self, what: str) -> ModelTimeout: ...

    async def _quick(
        self, call: Awaitable[Any], model: str = "", what: str = "", where: str = ""
    ) -> Any: ...

    def _raise(self, exc: BaseException, model: str, where: str = "") -> NoReturn: ...

    def unavailable(self, where: str = "") -> OllamaUnavailable: ...


@dataclass(frozen=True)
class ModelInfo:
    """A model as one server has it (``/api/show`` and ``/api/tags``)."""

    name: str
    capabilities: frozenset[str]
    context_length: int | None
    size_bytes: int | None


def refusal(capabilities: frozenset[str], *, insert: bool, think: bool | None, quiet: bool) -> str:
    """Why a host whose model has ``capabilities`` cannot take a request made with these ("" if
    it can): only what the request needs is compared, so servers of other versions (whose
    lists differ in what the request does not use) all serve. ``insert``: the prompt has a
    ``suffix``; ``think``: the flag sent; ``quiet``: the request must not think. A server that
    reports no capabilities (Ollama before 0.6.4) is taken at its word."""
    if not capabilities:
        return ""
    if insert and "insert" not in capabilities:
        return "its model does not fill in the middle (no insert capability)"
    if think and "thinking" not in capabilities:
        return "its model does not think"
    if quiet and think is None and "thinking" in capabilities:
        return "its model would think, and this request must not"
    return ""


def same_model(a: str, b: str) -> bool:
    """The same model, with or without its ``:latest`` tag."""

    def full(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"

    return full(a) == full(b)


async def version_of(client: Client, host: Host) -> str:
    """``host``'s version (``GET /api/version``, with the headers): the health probe."""
    client._check_host()
    if client.config.ollama.api == "openai":
        version = await client._quick(host.backend.version(), "", "/v1/models", where=host.name)
        host.version = str(version)
        return host.version
    wait, _ = client._quick_wait()
    timeout = httpx.Timeout(wait, connect=min(wait, client.config.ollama.connect_timeout))
    try:
        async with (
            asyncio.timeout(wait),
            httpx.AsyncClient(
                base_url=host.url,
                timeout=timeout,
                headers=client._headers,
                **client._no_redirects(),
            ) as http,
        ):
            response = await http.get("/api/version")
    except (TimeoutError, httpx.TimeoutException) as exc:
        if isinstance(exc, httpx.ConnectTimeout):
            raise client.unavailable(host.name) from exc
        raise client._quick_timeout("/api/version") from None
    except httpx.HTTPError as exc:
        client._raise(exc, "", host.name)
    if response.status_code != 200:
        error = OllamaUnavailable(
            f"{host.name} answered HTTP {response.status_code} to /api/version",
            "check that OLLAMA_HOST points at an Ollama server",
        )
        cause = ollama.ResponseError(response.text, response.status_code)
        raise error from cause
    try:
        host.version = str(response.json()["version"])
    except (ValueError, KeyError, TypeError):
        raise OllamaUnavailable(
            f"{host.name} does not look like an Ollama server",
            "check that OLLAMA_HOST points at an Ollama server",
        ) from None
    return host.version


async def model_info_on(client: Client, host: Host, model: str) -> ModelInfo:
    """Capabilities, context length and size of ``model`` on ``host`` (kept per host)."""
    if model in host.info:
        info: ModelInfo = host.info[model]
        return info
    backend, where = host.backend, host.name
    shown = await client._quick(_show(backend, model), model, f"/api/show for {model}", where)
    context_length = None
    for key, value in (shown.get("model_info") or {}).items():
        if key.endswith(".context_length") and isinstance(value, int):
            context_length = value
    size = None
    listed = await client._quick(backend.list(), model, "/api/tags", where)
    for entry in listed.models:
        if entry.model and same_model(entry.model, model):
            size = int(entry.size) if entry.size is not None else None
    info = ModelInfo(model, frozenset(shown.get("capabilities") or ()), context_length, size)
    host.info[model] = info
    return info


async def _show(backend: Any, model: str) -> dict[str, Any]:
    """What ``/api/show`` says of ``model``, read for the two fields used. The official client's
    ``show`` requires ``model_info``, which Ollama 0.6.4 to 0.12 leaves out for some models
    (ollama/ollama-python#607: a validation error for a model that works), so Ollama's answer is
    read as JSON through the same client (its headers, timeouts and refusal of redirects)."""
    if not isinstance(backend, ollama.AsyncClient):  # the OpenAI-compatible backend
        shown = await backend.show(model)
        return {"capabilities": shown.capabilities, "model_info": shown.modelinfo}
    response = await backend._request_raw("POST", "/api/show", json={"model": model})
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"/api/show answered {type(body).__name__}, not an object")
    capabilities = body.get("capabilities") or []
    model_info = body.get("model_info") or {}
    if not isinstance(capabilities, list) or not isinstance(model_info, dict):
        raise ValueError("/api/show answered capabilities or model_info of the wrong type")
    return {"capabilities": [str(c) for c in capabilities], "model_info": model_info}
