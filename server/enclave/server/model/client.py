"""The one model client of a process: Ollama through the official async ``ollama`` client.

Transport only: requests, streams (their core: ``enclave.server.model.stream``), hosts and faults.
It sends nothing but a :class:`enclave.server.trust.Prompt`, which only admitted material makes;
what a completion asks and how its answer is read are ``enclave.server.completion``'s, an
answer's ``enclave.server.answer``'s.

- Capabilities come from ``/api/show`` (cached per model and host): a prompt made for one kind of
  model (FIM or chat-style) is never sent to a host whose model is of another kind.
- For chat, thinking is requested and returned apart. ``<think>`` text written into the answer
  (servers before Ollama 0.9, models that ignore the flag) is stripped.
- ``num_ctx`` is always sent and prompts are cut to fit it first; a ``prompt_eval_count`` that
  fills the window means Ollama cut the prompt anyway, and is logged as a warning.
- Streams: cancelling the awaiting task or closing the iterator closes the HTTP stream, which
  stops generation. A stream that ends without ``done: true`` raises StreamInterrupted.
- Errors become the few :mod:`enclave.server.model.errors` exceptions, each with a fix: nothing the server
  sends (an error status, a body or an NDJSON line that is not Ollama's JSON, silence) escapes as
  anything else. 503 (busy) is retried a bounded number of times with jittered backoff before the
  first token.
- A fleet (``ollama.hosts``): every host must pass ``trust.allowed_hosts``; requests go to the
  least busy healthy host (completions stay on the host that served the last one, whose prompt
  cache holds their stable prefix), see :mod:`enclave.modelservers`, whose host health the
  embedders share (a host down for one is down for both). A refused connection, a broken
  one or a 5xx answer before the first streamed part moves the request to the next host and marks
  the first one down; once a part has reached the caller, a failure ends the request with an
  error (never a second answer spliced onto the first). A 404 for the model is tried on the other
  hosts (a fleet may not have every model everywhere) and is the answer when none has it.
  ``ollama.headers`` go with every request; their values are never logged or shown.
- Redirects are never followed (every HTTP client here, the ``/api/version`` probe included):
  a 3xx answer is RedirectRefused, which names both hosts and the fix; in a fleet the host that
  redirected is marked down and the request goes to the next.
- ``ollama.api = "openai"``: the same requests through :mod:`enclave.server.model.openai_api`
  (``/v1/chat/completions``, ``/v1/completions``), which answers in the ``ollama`` client's types.
- Timeouts: ``connect_timeout`` (the TCP connection); ``first_token_timeout`` from sending a
  request to its first part (headers included, so a server that accepts and says nothing is
  bounded by it); ``idle_timeout`` between two parts of a stream; ``total_timeout`` for a whole
  answer. Short metadata requests wait at most ``first_token_timeout`` (and at most
  ``max(10 s, 2 * connect_timeout)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import httpx
import ollama

from enclave.audit import AuditLog
from enclave.config import Config, within_server_window
from enclave.errors import one_line
from enclave.hosts import HostNotAllowed, check_hosts, display_url, no_redirects, urls_setting
from enclave.modelservers import (
    Fleet,
    Host,
    MissingHeader,
    failover,
    fault_of,
    ollama_client,
    server_headers,
)
from enclave.server.model.budget import PROMPT_MARGIN, TokenEstimator
from enclave.server.model.errors import (
    ContextTooLong,
    HostRefused,
    MalformedResponse,
    ModelError,
    ModelLoadTimeout,
    ModelNotAllowed,
    ModelTimeout,
    OllamaUnavailable,
    RedirectRefused,
    StreamInterrupted,
    status_error,
)
from enclave.server.model.metadata import ModelInfo, model_info_on, refusal, version_of
from enclave.server.model.prompts import after_thinking
from enclave.server.model.stream import FAULTS, Skip, stream_parts
from enclave.server.model.think import ThinkSplitter
from enclave.server.trust import Boundary, Material, Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    """The raw text a generate request streamed, and the prompt tokens the server counted."""

    text: str
    prompt_tokens: int


@dataclass(frozen=True)
class HostStatus:
    """One model server as `enclave status` / `doctor` show it (never its headers)."""

    name: str  # URL without credentials
    state: str  # "up" | "down" | "due" (down, to be probed again)
    in_flight: int
    error: str = ""  # why it is down
    version: str = ""


@dataclass(frozen=True)
class ChatDelta:
    thinking: str = ""
    content: str = ""
    # On the last delta only: why the model stopped (Ollama's ``done_reason``: "stop", or
    # "length" when ``num_predict`` cut it).
    done_reason: str = ""
    # On the last delta only: the thinking budget (``chat.think_tokens``) at which the model's
    # thinking was stopped and the answer asked for apart; 0 when it was not.
    thinking_stopped: int = 0


def not_allowed(config: Config, model: str) -> ModelNotAllowed | None:
    """The refusal of ``model`` by the administrator's policy (None when it is allowed)."""
    why = config.policy.why_not_model(model)
    if why is None:
        return None
    fix = (
        "ask your administrator to fix the policy file"
        if config.policy.error
        else "choose an allowed model (ollama.chat_model / ollama.completion_model), or ask your "
        "administrator to allow this one"
    )
    return ModelNotAllowed(why, fix)


class ModelClient:
    """Talks to Ollama for completions and chat; create one per process and pass it down."""

    busy_retries = 3
    busy_backoff = 0.25  # seconds, doubled per retry, with +-50% jitter

    def __init__(self, config: Config) -> None:
        self.config = config = within_server_window(config)
        o = config.ollama
        urls = o.effective_hosts
        # for messages: never the credentials a URL may carry
        self.host = ", ".join(display_url(u) for u in urls)
        # The boundary of this configuration, for the callers: this client sends only a Prompt,
        # which only what the boundary admitted makes (enclave.server.trust).
        self.boundary = Boundary(config)
        self._host_problem: ModelError | None = None
        try:  # every host of the fleet must be allowed, or none is used
            check_hosts(config)
        except HostNotAllowed as exc:
            self._host_problem = HostRefused(exc.message, exc.fix)
        try:
            self._headers = server_headers(config)
        except MissingHeader as exc:
            self._headers = {}
            self._host_problem = self._host_problem or ModelError(exc.message, exc.fix)
        timeout = httpx.Timeout(None, connect=o.connect_timeout)
        hosts = [Host(url, display_url(url)) for url in urls]
        for host in hosts:
            host.backend = self._backend(host.url, timeout)
        self.fleet = Fleet(hosts)
        self._sticky: Host | None = None  # the host of the last completion (its prompt cache)
        self.audit = AuditLog(config)  # one JSON line per request (enclave.audit)
        self._estimators: dict[str, TokenEstimator] = {}
        self.last_truncated = False

    def _no_redirects(self) -> dict[str, Any]:
        """httpx settings that refuse a redirect (RedirectRefused) instead of following it."""
        return no_redirects(
            RedirectRefused,
            self.config.trust.allowed_hosts,
            asynchronous=True,
            setting=urls_setting(self.config),
            what="the OpenAI-compatible model server"
            if self.config.ollama.api == "openai"
            else "Ollama",
        )

    def _backend(self, url: str, timeout: httpx.Timeout) -> Any:
        if self.config.ollama.api == "openai":
            from enclave.server.model.openai_api import OpenAIBackend

            return OpenAIBackend(
                url, self.config, headers=self._headers, timeout=timeout, http=self._no_redirects()
            )
        return ollama_client(
            ollama.AsyncClient, url, self._headers, timeout=timeout, **self._no_redirects()
        )

    # -- the trust boundary -----------------------------------------------------------------------
    def _check_host(self) -> None:
        """Refuse to talk to a host the configuration does not allow (before any request)."""
        if self._host_problem is not None:
            raise self._host_problem

    def check_model(self, model: str) -> None:
        """Refuse ``model`` when the administrator's policy does not allow it (before any
        request)."""
        refusal = not_allowed(self.config, model)
        if refusal is not None:
            raise refusal

    # -- errors ---------------------------------------------------------------------------------
    def unavailable(self, where: str = "") -> OllamaUnavailable:
        if self.config.ollama.api == "openai":
            return OllamaUnavailable(
                f"the OpenAI-compatible model server at {where or self.host} is not reachable",
                "check that it runs and that ollama.hosts (or ollama.host) points at it",
            )
        return OllamaUnavailable(
            f"Ollama is not running at {where or self.host}",
            "start it with `ollama serve` (or open the Ollama app), or set OLLAMA_HOST to the "
            "address where it runs",
        )

    def malformed(self, exc: BaseException, what: str, where: str = "") -> MalformedResponse:
        return MalformedResponse(
            f"Ollama at {where or self.host} answered {what} with something that is not Ollama's JSON "
            f"({type(exc).__name__}: {one_line(exc, 100)})",
            "check that ollama.host (or OLLAMA_HOST) points at an Ollama server and not at a "
            "proxy or another service; if it does, try again and check the Ollama server log",
        )

    def _map(
        self, exc: BaseException, model: str, *, midstream: bool = False, where: str = ""
    ) -> ModelError:
        if isinstance(exc, ModelError):
            return exc
        fault = fault_of(exc)
        if fault.kind == "unreachable":
            return self.unavailable(where)
        if fault.kind in ("timeout", "broken"):
            during = f"while {model} was answering" if model else "during a request"
            at = f" at {where}" if where and len(self.fleet.hosts) > 1 else ""
            return StreamInterrupted(
                f"the connection to Ollama{at} broke {during} ({type(exc).__name__}: "
                f"{one_line(exc)})",
                "try again; if it keeps happening, check the Ollama server log",
            )
        if fault.kind == "malformed":
            if midstream:
                return MalformedResponse(
                    f"the answer of {model} broke off with a line that is not Ollama's JSON "
                    f"({type(exc).__name__}: {one_line(exc, 100)})",
                    "try again; if it keeps happening, check the Ollama server log and that "
                    "nothing between Enclave and Ollama (a proxy) rewrites the stream",
                )
            return self.malformed(exc, f"the request for {model}" if model else "a request", where)
        if fault.kind == "status":
            return status_error(fault, model)
        return ModelError(f"unexpected error talking to Ollama: {exc!r}", "see the Enclave log")

    def _raise(self, exc: BaseException, model: str, where: str = "") -> NoReturn:
        raise self._map(exc, model, where=where) from exc

    def _quick_wait(self) -> tuple[float, str]:
        """How long a short metadata request may take, and the setting that says so."""
        o = self.config.ollama
        ceiling = max(10.0, 2 * o.connect_timeout)
        if o.first_token_timeout < ceiling:
            return o.first_token_timeout, "ollama.first_token_timeout"
        return ceiling, "ollama.connect_timeout"

    def _quick_timeout(self, what: str) -> ModelTimeout:
        wait, setting = self._quick_wait()
        return ModelTimeout(
            f"Ollama at {self.host} did not answer {what} within {wait:g} s",
            "check that Ollama is healthy (`ollama ps`, its server log); if it is only slow, "
            f"raise {setting}",
        )

    async def _quick(
        self, call: Awaitable[Any], model: str = "", what: str = "", where: str = ""
    ) -> Any:
        """A short non-streaming request with a bounded wait."""
        self._check_host()
        try:
            async with asyncio.timeout(self._quick_wait()[0]):
                return await call
        except TimeoutError:
            raise self._quick_timeout(what or "a request") from None
        except FAULTS as exc:
            self._raise(exc, model, where)

    async def _each_host(
        self, call: Callable[[Host], Awaitable[Any]], sticky: Host | None = None
    ) -> Any:
        """``call`` on the best host; on a host failure (see
        :func:`enclave.modelservers.failover`) on the next one. The error of the last host tried
        is raised when none answers."""
        self._check_host()
        error: BaseException | None = None
        fleet = len(self.fleet.hosts) > 1
        for host in self.fleet.order(sticky):
            try:
                if fleet and self.fleet.state(host) == "due":
                    await self._version_of(host)  # back-off over: the cheap probe first
                result = await call(host)
            except ModelError as exc:
                cause = exc.__cause__
                reason = failover(cause) if cause is not None else ""
                if isinstance(exc, OllamaUnavailable | RedirectRefused):
                    reason = "down"
                if not reason or len(self.fleet.hosts) == 1:
                    if reason == "down":
                        self.fleet.failed(host, exc.message)
                    raise
                if reason == "down":
                    self.fleet.failed(host, exc.message)
                log.warning(
                    "model server %s did not answer (%s); trying the next",
                    host.name,
                    one_line(exc.message, 120),
                )
                # a real answer from one host (404: no such model) says more than a refusal
                if error is None or reason != "down" or isinstance(error, OllamaUnavailable):
                    error = exc
                continue
            self.fleet.answered(host)
            return result
        if isinstance(error, OllamaUnavailable):
            raise self._fleet_unavailable() from error
        assert error is not None
        raise error

    # -- metadata -------------------------------------------------------------------------------
    async def version(self) -> str:
        """The version of the first server that answers ``/api/version`` (or ``/v1/models``);
        raises OllamaUnavailable when none is reachable."""
        return str(await self._each_host(self._version_of))

    async def _version_of(self, host: Host) -> str:
        """``host``'s version (``GET /api/version``, with the headers): the health probe."""
        return await version_of(self, host)

    def host_states(self) -> list[HostStatus]:
        """What this process knows of each model server now (no request is made)."""
        return [
            HostStatus(h.name, self.fleet.state(h), h.in_flight, h.last_error, h.version)
            for h in self.fleet.hosts
        ]

    async def check_hosts(self) -> list[HostStatus]:
        """Ask every model server for its version now (for `enclave doctor` and health)."""
        self._check_host()
        for host in self.fleet.hosts:
            try:
                await self._version_of(host)
            except ModelError as exc:
                self.fleet.failed(host, exc.message)
            else:
                self.fleet.answered(host)
        return self.host_states()

    async def model_info(self, model: str) -> ModelInfo:
        """Capabilities, context length and size of ``model`` on the server that would answer
        (cached per server)."""
        return await self._each_host(lambda host: self._model_info_on(host, model))

    async def _model_info_on(self, host: Host, model: str) -> ModelInfo:
        return await model_info_on(self, host, model)

    def context_size(self, model: str) -> int:
        """The ``num_ctx`` every request to ``model`` sends. Ollama reloads a model whose
        ``num_ctx`` changes, dropping its prompt cache: a model serving both completions and
        questions gets the larger of the two windows, always (the budgets stay per purpose)."""
        o, sizes = self.config.ollama, []
        if model == o.effective_completion_model:
            sizes.append(self.config.completion.num_ctx)
        if model == o.chat_model:
            sizes.append(self.config.chat.num_ctx)
        return max(sizes or [self.config.chat.num_ctx])

    async def warm_up(self, models: Sequence[str] | None = None) -> None:
        """Load ``models`` (default: the chat and completion models) now, kept for keep_alive."""
        self._check_host()
        o = self.config.ollama
        for model in dict.fromkeys(models or [o.chat_model, o.effective_completion_model]):
            self.check_model(model)

            async def load(host: Host, model: str = model) -> None:
                try:
                    async with asyncio.timeout(o.first_token_timeout):
                        await host.backend.generate(
                            model=model,
                            prompt="",
                            keep_alive=o.keep_alive,
                            options={"num_ctx": self.context_size(model)},  # as it will be used
                        )
                except TimeoutError:
                    raise ModelLoadTimeout(
                        f"{model} did not load within {o.first_token_timeout:g} s",
                        "raise ollama.first_token_timeout or use a smaller model",
                    ) from None
                except FAULTS as exc:
                    self._raise(exc, model, host.name)

            # the host the next completion goes to (the sticky one once there is one)
            await self._each_host(load, self._sticky)

    def estimator(self, model: str) -> TokenEstimator:
        return self._estimators.setdefault(model, TokenEstimator())

    # -- streaming core -------------------------------------------------------------------------
    def _fleet_unavailable(self) -> OllamaUnavailable:
        states = "; ".join(
            f"{h.name}: {h.last_error or self.fleet.state(h)}" for h in self.fleet.hosts
        )
        return OllamaUnavailable(
            f"none of the model servers answered ({states})",
            "check that the servers in ollama.hosts are running and reachable (`enclave "
            "doctor` shows each one)",
        )

    def note_usage(self, model: str, chars: int, prompt_eval_count: int | None, limit: int) -> bool:
        """Learn from the server's token count; True if it shows the prompt was cut."""
        if not prompt_eval_count:
            return False
        truncated = prompt_eval_count >= limit
        if truncated:
            log.warning(
                "Ollama evaluated %d prompt tokens for %s, the whole usable window (%d): the start "
                "of the prompt was probably cut; Enclave will estimate more tokens per character",
                prompt_eval_count,
                model,
                limit,
            )
            est = self.estimator(model)
            est.chars_per_token = max(1.0, est.chars_per_token * 0.75)
        else:
            self.estimator(model).learn(chars, prompt_eval_count)
        self.last_truncated = truncated
        return truncated

    # -- generation (a completion's) -------------------------------------------------------------
    def completion_model(self) -> str:
        """The model completions go to, once the host and the administrator's policy allow it."""
        self._check_host()
        model = self.config.ollama.effective_completion_model
        self.check_model(model)
        return model

    async def generate(
        self,
        prompt: Prompt,
        *,
        model: str,
        options: dict[str, Any],
        think: bool | None,
        settled: Callable[[str], bool],
    ) -> Generation:
        """Stream a generate request for ``prompt`` (preferring the host of the previous one,
        whose prompt cache holds its stable beginning) until the model is done, or until
        ``settled`` says the text so far is the whole answer (asked at each newline): leaving
        closes the stream, which stops the model. A host whose model cannot take the prompt as
        rendered (:func:`enclave.server.model.metadata.refusal`) is skipped."""

        async def start(host: Host) -> AsyncIterator[Any]:
            caps = (await self._model_info_on(host, model)).capabilities
            why = refusal(caps, insert=bool(prompt.suffix), think=think, quiet=True)
            if why:
                raise Skip(why)  # the prompt was made for another kind of model
            return await host.backend.generate(
                model=model,
                prompt=prompt.prompt,
                suffix=prompt.suffix,
                system=prompt.system,
                think=think,
                stream=True,
                options=options,
                keep_alive=self.config.ollama.keep_alive,
            )

        raw: list[str] = []
        prompt_tokens = 0
        sent = f"{prompt.system}\n{prompt.prompt}\n{prompt.suffix}"
        with self.audit.request(prompt.purpose, model, sent, prompt.sources) as audited:
            async with contextlib.aclosing(stream_parts(self, model, start, sticky=True)) as parts:
                async for part in parts:
                    chunk = part.response or ""
                    raw.append(chunk)
                    if part.done:
                        prompt_tokens = part.prompt_eval_count or 0
                        audited.prompt_tokens = part.prompt_eval_count
                        audited.output_tokens = part.eval_count or 0
                    elif "\n" in chunk and settled("".join(raw)):
                        break  # leaving the stream closes it: the model stops generating
            audited.output_tokens = audited.output_tokens or len(raw)
        return Generation("".join(raw), prompt_tokens)

    # -- chat -----------------------------------------------------------------------------------
    def chat(self, prompt: Prompt, *, think: bool | None = None) -> AsyncIterator[ChatDelta]:
        """Stream the answer to ``prompt``'s messages; thinking comes apart from content. Close
        it to stop the model. The prompt's purpose and sources go to the audit log."""
        return self._chat(prompt, think)

    async def _chat(self, prompt: Prompt, think: bool | None) -> AsyncIterator[ChatDelta]:
        """A thinking model thinks at most ``chat.think_tokens`` tokens (counted as streamed),
        apart from the answer's ``chat.max_tokens``; at that budget its stream is closed and it is
        asked again, thinking off, to answer from its reasoning so far (after the same messages,
        which its prompt cache still holds)."""
        self._check_host()
        chat = self.config.chat
        model = self.config.ollama.chat_model
        self.check_model(model)
        info = await self.model_info(model)
        want = chat.think if think is None else think
        think_flag = want if "thinking" in info.capabilities else None
        # A model may think unasked (R1 behind an OpenAI-compatible API, old Ollama): the budget
        # holds whenever thinking is wanted, whatever the capabilities say; it is what the
        # window leaves after the prompt and the answer, at most chat.think_tokens.
        left = self._room_left(model, prompt.messages)
        budget = min(chat.think_tokens, left) if want else 0
        num_predict = chat.max_tokens + budget
        thought: list[str] = []  # the streamed parts of thinking: one token each
        answered = False
        async with contextlib.aclosing(
            self._chat_stream(model, prompt, think_flag, num_predict)
        ) as deltas:
            async for delta in deltas:
                answered = answered or bool(delta.content)
                if delta.thinking:
                    thought.append(delta.thinking)
                yield delta
                if budget and not answered and len(thought) >= budget:
                    break  # leaving closes the stream: the model stops thinking
            else:
                return
        log.info("%s thought %d tokens, its budget: asking for the answer now", model, budget)
        sealed = self.boundary.admit(Material(None, ("".join(thought).strip(),)))
        after = sealed.prompt(
            purpose=f"{prompt.purpose} (answer after the thinking budget)",
            sources=prompt.sources,
            messages=after_thinking(prompt.messages, sealed.texts[0]),
        )
        async with contextlib.aclosing(
            self._chat_stream(model, after, False, chat.max_tokens)
        ) as deltas:
            async for delta in deltas:
                yield replace(delta, thinking_stopped=budget) if delta.done_reason else delta

    def _room_left(self, model: str, messages: Sequence[dict[str, str]]) -> int:
        """Tokens of ``chat.num_ctx`` left after the messages and the answer's
        ``chat.max_tokens``; a chat that does not fit is refused (ContextTooLong), never sent to
        be cut from the front by the server."""
        chat = self.config.chat
        needed = sum(self.estimator(model).count(m.get("content", "")) + 8 for m in messages)
        room = chat.num_ctx - chat.max_tokens - PROMPT_MARGIN
        if needed > room:
            raise ContextTooLong(
                f"the request needs about {needed} tokens but chat.num_ctx ({chat.num_ctx}) "
                f"leaves {room} after the answer's {chat.max_tokens}",
                "select less text, or raise chat.num_ctx (the model must support it)",
            )
        return room - needed

    async def _chat_stream(
        self, model: str, prompt: Prompt, think_flag: bool | None, num_predict: int
    ) -> AsyncGenerator[ChatDelta, None]:
        """One streamed chat request; the last delta says why the model stopped."""
        messages = [dict(m) for m in prompt.messages]
        options = {
            "num_ctx": self.context_size(model),
            "num_predict": num_predict,
            "temperature": 0.6,
        }

        async def start(host: Host) -> AsyncIterator[Any]:
            caps = (await self._model_info_on(host, model)).capabilities
            why = refusal(caps, insert=False, think=think_flag, quiet=False)
            if why:
                raise Skip(why)  # the request was made for another kind of model
            return await host.backend.chat(
                model=model,
                messages=messages,
                think=think_flag,
                stream=True,
                options=options,
                keep_alive=self.config.ollama.keep_alive,
            )

        splitter = ThinkSplitter()
        done_reason = ""
        sent = "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages)
        with self.audit.request(prompt.purpose, model, sent, prompt.sources) as audited:
            async with contextlib.aclosing(stream_parts(self, model, start)) as parts:
                async for part in parts:
                    message = part.message
                    tagged, content = splitter.feed(message.content or "")
                    thinking = (message.thinking or "") + tagged
                    if thinking or content:
                        yield ChatDelta(thinking, content)
                    if part.done:
                        done_reason = getattr(part, "done_reason", None) or "stop"
                        chars = sum(len(m.get("content", "")) for m in messages)
                        limit = self.config.chat.num_ctx - num_predict
                        self.note_usage(model, chars, part.prompt_eval_count, limit)
                        audited.prompt_tokens = part.prompt_eval_count
                        audited.output_tokens = part.eval_count or 0
        thinking, content = splitter.flush()
        yield ChatDelta(thinking, content, done_reason)

    async def aclose(self) -> None:
        for host in self.fleet.hosts:
            await host.backend.close()
