"""One streamed request to the model servers (``enclave.server.model.client``'s core): the host
that takes it (the fleet's order, a cheap probe of a host whose back-off is over, failover before
the first part, busy hosts retried with jittered backoff), its first part within
``ollama.first_token_timeout``, then its parts within ``ollama.idle_timeout`` and the whole within
``ollama.total_timeout``. Once a part has reached the caller, a failure ends the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import ollama

from enclave.config import Config
from enclave.errors import one_line
from enclave.modelservers import Fleet, Host, failover, malformed_errors
from enclave.server.model.errors import (
    ModelBusy,
    ModelError,
    ModelTimeout,
    OllamaUnavailable,
    RedirectRefused,
    StreamInterrupted,
)


class Client(Protocol):
    """What a streamed request needs of its model client (``ModelClient``; a protocol, so that
    this module does not import the client that imports it)."""

    config: Config
    fleet: Fleet
    busy_retries: int
    busy_backoff: float
    _sticky: Host | None

    async def _version_of(self, host: Host) -> str: ...

    def _map(
        self, exc: BaseException, model: str, *, midstream: bool = False, where: str = ""
    ) -> ModelError: ...

    def _fleet_unavailable(self) -> OllamaUnavailable: ...

    def unavailable(self, where: str = "") -> OllamaUnavailable: ...


log = logging.getLogger(__name__)

# What the ollama client raises when the server's answer is not Ollama's JSON.
MALFORMED: tuple[type[BaseException], ...] = malformed_errors()
# Everything a request to Ollama can fail with (besides timeouts, which are handled apart).
FAULTS: tuple[type[BaseException], ...] = (
    ollama.ResponseError,
    ConnectionError,
    httpx.HTTPError,
    *MALFORMED,
)

# Before the first part: the above, and what a host's model information (fetched first) raised.
_START_FAULTS: tuple[type[BaseException], ...] = (ModelError, *FAULTS)


class Skip(Exception):
    """This host cannot serve this request as prepared (another model's capabilities)."""


@dataclass
class _Tried:
    """What a round over the hosts has met so far: the error to raise if no host answers, how
    many hosts were busy, and whether to stop the round (one host, busy: retried after a
    backoff)."""

    error: ModelError | None = None
    busy: int = 0
    stop: bool = False


async def stream_parts(
    client: Client,
    model: str,
    start: Callable[[Host], Awaitable[AsyncIterator[Any]]],
    *,
    sticky: bool = False,
) -> AsyncGenerator[Any, None]:
    """Parts of one streamed response, ending with the ``done`` part; see module doc.
    ``sticky``: a completion, which prefers the host of the previous completion."""
    o = client.config.ollama
    loop = asyncio.get_running_loop()
    deadline = loop.time() + o.total_timeout
    host, stream, first = await _open(client, model, start, sticky, deadline)
    client.fleet.answered(host)
    if sticky:
        client._sticky = host
    try:
        part = first
        while True:
            yield part
            if part.done:
                return
            left = deadline - loop.time()
            try:
                async with asyncio.timeout(min(o.idle_timeout, left)):
                    part = await anext(stream)
            except StopAsyncIteration:
                raise StreamInterrupted(
                    f"the answer of {model} ended before the model finished",
                    "try again; if it keeps happening, check the Ollama server log",
                ) from None
            except TimeoutError:
                if left <= o.idle_timeout:
                    raise _total_timeout(client, model) from None
                raise ModelTimeout(
                    f"{model} stopped answering: nothing for {o.idle_timeout:g} s in the "
                    "middle of its answer",
                    "the model or the machine may be stuck: retry; if it is only slow, raise "
                    "ollama.idle_timeout",
                ) from None
            except FAULTS as exc:
                # Part of the answer has reached the caller: no other host may continue it.
                if failover(exc) == "down":
                    client.fleet.failed(host, f"broke while answering ({type(exc).__name__})")
                raise client._map(exc, model, midstream=True, where=host.name) from exc
    finally:
        host.in_flight -= 1
        await _close(stream)


async def _open(
    client: Client,
    model: str,
    start: Callable[[Host], Awaitable[AsyncIterator[Any]]],
    sticky: bool,
    deadline: float,
) -> tuple[Host, AsyncIterator[Any], Any]:
    """The host that took the request, its stream and the stream's first part: the hosts
    in the fleet's order (see :meth:`_try_host`), the whole round again after a jittered
    backoff while a host was only busy (503), a bounded number of times."""
    attempt = 0
    while True:
        tried = _Tried()
        for candidate in client.fleet.order(client._sticky if sticky else None):
            opened = await _try_host(client, candidate, model, start, deadline, tried)
            if opened is not None:
                return opened
            if tried.stop:
                break
        if tried.busy and attempt < client.busy_retries:
            delay = client.busy_backoff * 2**attempt * random.uniform(0.5, 1.5)
            attempt += 1
            log.info("Ollama busy; retry %d in %.2f s", attempt, delay)
            await asyncio.sleep(delay)
            continue
        error = tried.error
        if error is None:
            error = client.unavailable()
        elif len(client.fleet.hosts) > 1 and isinstance(error, OllamaUnavailable):
            error = client._fleet_unavailable()
        raise error


async def _try_host(
    client: Client,
    candidate: Host,
    model: str,
    start: Callable[[Host], Awaitable[AsyncIterator[Any]]],
    deadline: float,
    tried: _Tried,
) -> tuple[Host, AsyncIterator[Any], Any] | None:
    """Send the request to ``candidate`` and wait for its first part (the request is sent,
    and its headers awaited, inside the first-token wait). None when the next host is to be
    tried (``tried`` says why); a failure no other host would answer differently raises."""
    o = client.config.ollama
    fleet = len(client.fleet.hosts) > 1
    if fleet and client.fleet.state(candidate) == "due":
        try:  # its back-off is over: a cheap probe before it gets a prompt
            await client._version_of(candidate)
        except ModelError as exc:
            client.fleet.failed(candidate, exc.message)
            tried.error = tried.error or exc
            return None
        client.fleet.answered(candidate)
    left = deadline - asyncio.get_running_loop().time()
    stream: AsyncIterator[Any] | None = None
    candidate.in_flight += 1
    try:
        async with asyncio.timeout(min(o.first_token_timeout, left)):
            stream = await start(candidate)
            first = await anext(stream)
    except Skip as skipped:
        candidate.in_flight -= 1
        tried.error = tried.error or ModelError(
            f"{candidate.name} cannot take this request for {model}: {skipped}",
            "serve the same model with the same capabilities on every server of ollama.hosts",
        )
        return None
    except TimeoutError:
        candidate.in_flight -= 1
        await _close(stream)
        if left < o.first_token_timeout:
            raise _total_timeout(client, model) from None
        if fleet:  # the wait is spent: no retry, but the next requests go elsewhere
            client.fleet.failed(candidate, "no answer within ollama.first_token_timeout")
        raise ModelTimeout(
            f"{model} produced nothing within {o.first_token_timeout:g} s",
            "the model may still be loading or the machine is overloaded; retry, or "
            "raise ollama.first_token_timeout",
        ) from None
    except StopAsyncIteration:
        candidate.in_flight -= 1
        await _close(stream)
        closed = StreamInterrupted(
            f"Ollama closed the answer of {model} before it started",
            "try again; if it keeps happening, check the Ollama server log",
        )
        if not fleet:
            raise closed from None
        client.fleet.failed(candidate, closed.message)
        tried.error = closed
        return None
    except _START_FAULTS as exc:
        candidate.in_flight -= 1
        await _close(stream)
        _start_failed(client, candidate, exc, model, tried)
        return None
    except BaseException:
        candidate.in_flight -= 1
        raise
    return candidate, stream, first


def _start_failed(
    client: Client, candidate: Host, exc: BaseException, model: str, tried: _Tried
) -> None:
    """Before the first part: mark ``candidate`` down when it is, and say in ``tried``
    whether the next host may be tried; raises when none may (one host, or an answer that
    would be the same on every host)."""
    fleet = len(client.fleet.hosts) > 1
    mapped = client._map(exc, model, where=candidate.name)
    cause = exc.__cause__ if isinstance(exc, ModelError) else exc
    reason = failover(cause) if cause is not None else ""
    if isinstance(exc, OllamaUnavailable | RedirectRefused):
        reason = "down"
    if reason == "down":
        client.fleet.failed(candidate, mapped.message)
    if not reason or not fleet:
        if isinstance(mapped, ModelBusy) and not fleet:
            tried.busy += 1
            tried.error = mapped
            tried.stop = True
            return
        if mapped is exc:
            raise exc
        raise mapped from exc
    log.warning(
        "model server %s did not take the request for %s (%s); trying the next",
        candidate.name,
        model,
        one_line(mapped.message, 120),
    )
    tried.busy += reason == "busy"
    # a refusal by one host says less than an answer by another
    if tried.error is None or reason != "down" or isinstance(tried.error, OllamaUnavailable):
        tried.error = mapped


def _total_timeout(client: Client, model: str) -> ModelTimeout:
    return ModelTimeout(
        f"{model} did not finish within {client.config.ollama.total_timeout:g} s",
        "raise ollama.total_timeout or ask for less",
    )


async def _close(stream: AsyncIterator[Any] | None) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
