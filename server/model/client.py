"""The one model client of a process: Ollama through the official async ``ollama`` client.

- Capabilities come from ``/api/show`` (cached per model): a completion model with ``insert`` gets
  Ollama's ``suffix`` (FIM); any other gets a chat-style prompt and an extractor.
- Thinking is off for completions; for chat it is requested and returned apart. ``<think>`` text
  written into the answer (servers before Ollama 0.9, models that ignore the flag) is stripped.
- ``num_ctx`` is always sent and prompts are cut to fit it first; a ``prompt_eval_count`` that
  fills the window means Ollama cut the prompt anyway, and is logged as a warning.
- Streams: cancelling the awaiting task or closing the iterator closes the HTTP stream, which
  stops generation. A stream that ends without ``done: true`` raises StreamInterrupted.
- Errors become the few :mod:`server.model.errors` exceptions, each with a fix: nothing the server
  sends (an error status, a body or an NDJSON line that is not Ollama's JSON, silence) escapes as
  anything else. 503 (busy) is retried a bounded number of times with jittered backoff before the
  first token.
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
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
import ollama

from enclave.audit import AuditLog, Source
from enclave.config import Config
from enclave.errors import one_line
from enclave.hosts import HostNotAllowed, check_host, display_url
from enclave.server.model import prompts
from enclave.server.model.budget import PROMPT_MARGIN, TokenEstimator, predict_tokens
from enclave.server.model.errors import (
    ContextTooLong,
    HostRefused,
    MalformedResponse,
    ModelBusy,
    ModelError,
    ModelLoadTimeout,
    ModelNotAllowed,
    ModelNotFound,
    ModelTimeout,
    OllamaUnavailable,
    StreamInterrupted,
)
from enclave.server.model.postprocess import extract_completion, is_settled
from enclave.server.model.think import ThinkSplitter
from enclave.server.trust import Admitted, Boundary, Material
from enclave.server.types import ContextPiece

log = logging.getLogger(__name__)

# What the ollama client raises when the server's answer is not Ollama's JSON: json.JSONDecodeError,
# pydantic's ValidationError and UnicodeDecodeError (all ValueError) for a body or an NDJSON line
# that does not parse or does not fit, AttributeError / TypeError for JSON that is not an object
# (it calls ``part.get(...)`` and ``cls(**part)``); httpx.DecodingError for a broken encoding.
MALFORMED: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    AttributeError,
    httpx.DecodingError,
)
# Everything a request to Ollama can fail with (besides timeouts, which are handled apart).
FAULTS: tuple[type[BaseException], ...] = (
    ollama.ResponseError,
    ConnectionError,
    httpx.HTTPError,
    *MALFORMED,
)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    capabilities: frozenset[str]
    context_length: int | None
    size_bytes: int | None


@dataclass(frozen=True)
class CompletionResult:
    text: str
    model: str
    prompt_tokens: int
    truncated: bool
    fim: bool


@dataclass(frozen=True)
class ChatDelta:
    thinking: str = ""
    content: str = ""


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


def same_model(a: str, b: str) -> bool:
    def full(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"

    return full(a) == full(b)


class ModelClient:
    """Talks to Ollama for completions and chat; create one per process and pass it down."""

    busy_retries = 3
    busy_backoff = 0.25  # seconds, doubled per retry, with +-50% jitter

    def __init__(self, config: Config) -> None:
        self.config = config
        o = config.ollama
        self._url = o.host
        self.host = display_url(o.host)  # for messages: never the credentials a URL may carry
        # Everything this client sends passes the trust boundary first (see ``_admit``).
        self.boundary = Boundary(config)
        self._host_problem: HostRefused | None = None
        try:
            check_host(o.host, config.trust.allowed_hosts)
        except HostNotAllowed as exc:
            self._host_problem = HostRefused(exc.message, exc.fix)
        timeout = httpx.Timeout(None, connect=o.connect_timeout)
        self._ollama = ollama.AsyncClient(host=o.host, timeout=timeout)
        self.audit = AuditLog(config)  # one JSON line per request (enclave.audit)
        self._info: dict[str, ModelInfo] = {}
        self._estimators: dict[str, TokenEstimator] = {}
        self.last_truncated = False

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

    def admit(self, material: Material) -> Admitted:
        """The trust boundary (``enclave.server.trust``) that every prompt passes before it is sent."""
        return self.boundary.admit(material)

    # -- errors ---------------------------------------------------------------------------------
    def unavailable(self) -> OllamaUnavailable:
        return OllamaUnavailable(
            f"Ollama is not running at {self.host}",
            "start it with `ollama serve` (or open the Ollama app), or set OLLAMA_HOST to the "
            "address where it runs",
        )

    def malformed(self, exc: BaseException, what: str) -> MalformedResponse:
        return MalformedResponse(
            f"Ollama at {self.host} answered {what} with something that is not Ollama's JSON "
            f"({type(exc).__name__}: {one_line(exc, 100)})",
            "check that ollama.host (or OLLAMA_HOST) points at an Ollama server and not at a "
            "proxy or another service; if it does, try again and check the Ollama server log",
        )

    def _map(self, exc: BaseException, model: str, *, midstream: bool = False) -> ModelError:
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return self.unavailable()
        if isinstance(exc, httpx.TransportError):
            during = f"while {model} was answering" if model else "during a request"
            return StreamInterrupted(
                f"the connection to Ollama broke {during} ({type(exc).__name__}: {one_line(exc)})",
                "try again; if it keeps happening, check the Ollama server log",
            )
        if isinstance(exc, MALFORMED):
            if midstream:
                return MalformedResponse(
                    f"the answer of {model} broke off with a line that is not Ollama's JSON "
                    f"({type(exc).__name__}: {one_line(exc, 100)})",
                    "try again; if it keeps happening, check the Ollama server log and that "
                    "nothing between Enclave and Ollama (a proxy) rewrites the stream",
                )
            return self.malformed(exc, f"the request for {model}" if model else "a request")
        if isinstance(exc, ollama.ResponseError):
            text = one_line(exc.error)
            low = text.lower()
            if exc.status_code == 404 or "not found" in low:
                return ModelNotFound(model)
            if exc.status_code == 503 or "server busy" in low:
                return ModelBusy(
                    f"Ollama is busy and did not take the request for {model}",
                    "wait a moment and retry, or raise OLLAMA_NUM_PARALLEL / OLLAMA_MAX_QUEUE",
                )
            if "timed out" in low and ("llama runner" in low or "load" in low):
                return ModelLoadTimeout(
                    f"Ollama timed out loading {model}",
                    "the model may be too large for this machine's memory: try a smaller one "
                    "(e.g. deepseek-r1:1.5b) or raise OLLAMA_LOAD_TIMEOUT",
                )
            if "context" in low and ("length" in low or "exceed" in low):
                return ContextTooLong(
                    f"the prompt is longer than {model}'s context window",
                    "select less text or raise completion.num_ctx / chat.num_ctx",
                )
            status = f" (HTTP {exc.status_code})" if exc.status_code > 0 else ""
            return ModelError(
                f"Ollama failed{status}: {text}",
                "try again; if it keeps happening, check the Ollama server log",
            )
        return ModelError(f"unexpected error talking to Ollama: {exc!r}", "see the Enclave log")

    def _raise(self, exc: BaseException, model: str) -> NoReturn:
        raise self._map(exc, model) from exc

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

    async def _quick(self, call: Awaitable[Any], model: str = "", what: str = "") -> Any:
        """A short non-streaming request with a bounded wait."""
        self._check_host()
        try:
            async with asyncio.timeout(self._quick_wait()[0]):
                return await call
        except TimeoutError:
            raise self._quick_timeout(what or "a request") from None
        except FAULTS as exc:
            self._raise(exc, model)

    # -- metadata -------------------------------------------------------------------------------
    async def version(self) -> str:
        """The server's version (``/api/version``); raises OllamaUnavailable if unreachable."""
        self._check_host()
        wait, _ = self._quick_wait()
        timeout = httpx.Timeout(wait, connect=min(wait, self.config.ollama.connect_timeout))
        try:
            async with (
                asyncio.timeout(wait),
                httpx.AsyncClient(base_url=self._url, timeout=timeout) as http,
            ):
                response = await http.get("/api/version")
        except (TimeoutError, httpx.TimeoutException) as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise self.unavailable() from exc
            raise self._quick_timeout("/api/version") from None
        except httpx.HTTPError as exc:
            self._raise(exc, "")
        if response.status_code != 200:
            raise OllamaUnavailable(
                f"{self.host} answered HTTP {response.status_code} to /api/version",
                "check that OLLAMA_HOST points at an Ollama server",
            )
        try:
            return str(response.json()["version"])
        except (ValueError, KeyError, TypeError):
            raise OllamaUnavailable(
                f"{self.host} does not look like an Ollama server",
                "check that OLLAMA_HOST points at an Ollama server",
            ) from None

    async def model_info(self, model: str) -> ModelInfo:
        """Capabilities, context length and size of ``model`` (cached)."""
        if model in self._info:
            return self._info[model]
        shown = await self._quick(self._ollama.show(model), model, f"/api/show for {model}")
        context_length = None
        for key, value in (shown.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                context_length = value
        size = None
        listed = await self._quick(self._ollama.list(), model, "/api/tags")
        for entry in listed.models:
            if entry.model and same_model(entry.model, model):
                size = int(entry.size) if entry.size is not None else None
        info = ModelInfo(model, frozenset(shown.capabilities or ()), context_length, size)
        self._info[model] = info
        return info

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
            try:
                async with asyncio.timeout(o.first_token_timeout):
                    await self._ollama.generate(
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
                self._raise(exc, model)

    def estimator(self, model: str) -> TokenEstimator:
        return self._estimators.setdefault(model, TokenEstimator())

    # -- streaming core -------------------------------------------------------------------------
    async def _parts(
        self, model: str, start: Callable[[], Awaitable[AsyncIterator[Any]]]
    ) -> AsyncGenerator[Any, None]:
        """Parts of one streamed response, ending with the ``done`` part; see module doc."""
        o = self.config.ollama
        loop = asyncio.get_running_loop()
        deadline = loop.time() + o.total_timeout
        attempt = 0
        while True:
            stream: AsyncIterator[Any] | None = None
            left = deadline - loop.time()
            try:
                # The request is sent, and its headers awaited, inside the first-token wait.
                async with asyncio.timeout(min(o.first_token_timeout, left)):
                    stream = await start()
                    first = await anext(stream)
                break
            except TimeoutError:
                await _close(stream)
                if left < o.first_token_timeout:
                    raise self._total_timeout(model) from None
                raise ModelTimeout(
                    f"{model} produced nothing within {o.first_token_timeout:g} s",
                    "the model may still be loading or the machine is overloaded; retry, or "
                    "raise ollama.first_token_timeout",
                ) from None
            except StopAsyncIteration:
                await _close(stream)
                raise StreamInterrupted(
                    f"Ollama closed the answer of {model} before it started",
                    "try again; if it keeps happening, check the Ollama server log",
                ) from None
            except FAULTS as exc:
                await _close(stream)
                error = self._map(exc, model)
                if isinstance(error, ModelBusy) and attempt < self.busy_retries:
                    delay = self.busy_backoff * 2**attempt * random.uniform(0.5, 1.5)
                    attempt += 1
                    log.info("Ollama busy; retry %d in %.2f s", attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                raise error from exc
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
                        raise self._total_timeout(model) from None
                    raise ModelTimeout(
                        f"{model} stopped answering: nothing for {o.idle_timeout:g} s in the "
                        "middle of its answer",
                        "the model or the machine may be stuck: retry; if it is only slow, raise "
                        "ollama.idle_timeout",
                    ) from None
                except FAULTS as exc:
                    raise self._map(exc, model, midstream=True) from exc
        finally:
            await _close(stream)

    def _total_timeout(self, model: str) -> ModelTimeout:
        return ModelTimeout(
            f"{model} did not finish within {self.config.ollama.total_timeout:g} s",
            "raise ollama.total_timeout or ask for less",
        )

    def _note_usage(
        self, model: str, chars: int, prompt_eval_count: int | None, limit: int
    ) -> bool:
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

    # -- completion -----------------------------------------------------------------------------
    async def complete(
        self,
        *,
        prefix: str,
        suffix: str,
        language: str,
        path: str,
        context: Sequence[ContextPiece],
        multiline: bool,
    ) -> CompletionResult:
        """An inline completion at the cursor between ``prefix`` and ``suffix``.

        The text and ``context`` come already fitted to their budgets (``budget.fit_cursor_text``
        and ``budget.fit_pieces``, as ``context.prepare_completion`` does); a prompt that would
        still overflow ``num_ctx`` is refused, never sent to be cut.
        """
        self._check_host()
        cc = self.config.completion
        model = self.config.ollama.effective_completion_model
        self.check_model(model)
        sealed = self.admit(Material(path, (prefix, suffix), tuple(context)))
        info = await self.model_info(model)
        fim = "insert" in info.capabilities
        est = self.estimator(model)
        num_predict = predict_tokens(cc, multiline)
        (head, tail), pieces = sealed.texts, list(sealed.pieces)
        options: dict[str, Any] = {
            "num_ctx": self.context_size(model),
            "num_predict": num_predict,
            "temperature": 0.2,
        }
        think = False if "thinking" in info.capabilities else None
        if fim:
            prompt = prompts.fim_prompt(head, path, language, pieces)
            system = ""
            if not multiline:
                options["stop"] = ["\n"]
            send_suffix = tail
        else:
            prompt = prompts.chat_fill_prompt(
                head, tail, path, language, pieces, multiline=multiline,
                cache_friendly=cc.cache_friendly,
            )  # fmt: skip
            system = prompts.COMPLETION_SYSTEM
            send_suffix = ""

        needed = est.count(prompt) + est.count(send_suffix) + est.count(system)
        if needed > cc.num_ctx - num_predict - PROMPT_MARGIN:
            # The caller fits the text with budget.fit_cursor_text; never let Ollama cut it.
            raise ContextTooLong(
                f"the completion prompt needs about {needed} tokens but completion.num_ctx "
                f"({cc.num_ctx}) leaves {cc.num_ctx - num_predict - PROMPT_MARGIN}",
                "raise completion.num_ctx or lower completion.prefix_tokens/context_tokens",
            )

        def start() -> Awaitable[AsyncIterator[Any]]:
            return self._ollama.generate(
                model=model,
                prompt=prompt,
                suffix=send_suffix,
                system=system,
                think=think,
                stream=True,
                options=options,
                keep_alive=self.config.ollama.keep_alive,
            )

        raw: list[str] = []
        prompt_tokens = 0
        line = head.count("\n") + 1
        sources: list[Source] = [(path, line, line), *_sources(pieces)]
        with self.audit.request(
            "completion", model, f"{system}\n{prompt}\n{send_suffix}", sources
        ) as audited:
            async with contextlib.aclosing(self._parts(model, start)) as parts:
                async for part in parts:
                    chunk = part.response or ""
                    raw.append(chunk)
                    if part.done:
                        prompt_tokens = part.prompt_eval_count or 0
                        audited.prompt_tokens = prompt_tokens
                        audited.output_tokens = part.eval_count or 0
                    elif "\n" in chunk and is_settled(
                        "".join(raw), prefix=head, suffix=tail, multiline=multiline
                    ):
                        break  # leaving the block closes the stream: the model stops generating
            audited.output_tokens = audited.output_tokens or len(raw)
        chars = len(prompt) + len(send_suffix) + len(system)
        truncated = self._note_usage(model, chars, prompt_tokens, cc.num_ctx - num_predict)
        text = extract_completion("".join(raw), prefix=head, suffix=tail, multiline=multiline)
        return CompletionResult(text, model, prompt_tokens, truncated, fim)

    # -- chat -----------------------------------------------------------------------------------
    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        think: bool | None = None,
        purpose: str = "chat",
        sources: Sequence[Source] = (),
    ) -> AsyncIterator[ChatDelta]:
        """Stream an answer; thinking comes apart from content. Close it to stop the model.
        ``purpose`` and ``sources`` (the files and lines in the messages) go to the audit log."""
        return self._chat(messages, think, purpose, sources)

    async def _chat(
        self,
        messages: list[dict[str, str]],
        think: bool | None,
        purpose: str,
        sources: Sequence[Source],
    ) -> AsyncIterator[ChatDelta]:
        self._check_host()
        chat = self.config.chat
        model = self.config.ollama.chat_model
        self.check_model(model)
        # The rendered messages pass the boundary too (redaction, size); the pieces in them
        # passed it as Material in enclave.server.answer, which knows their files.
        contents = self.admit(Material(None, tuple(m.get("content", "") for m in messages))).texts
        messages = [{**m, "content": c} for m, c in zip(messages, contents, strict=True)]
        info = await self.model_info(model)
        want = chat.think if think is None else think
        think_flag = want if "thinking" in info.capabilities else None
        est = self.estimator(model)
        needed = sum(est.count(m.get("content", "")) + 8 for m in messages)
        limit = chat.num_ctx - chat.max_tokens
        if needed > limit - PROMPT_MARGIN:
            raise ContextTooLong(
                f"the request needs about {needed} tokens but chat.num_ctx ({chat.num_ctx}) "
                f"leaves {limit - PROMPT_MARGIN} after the answer's {chat.max_tokens}",
                "select less text, or raise chat.num_ctx (the model must support it)",
            )
        options = {
            "num_ctx": self.context_size(model),
            "num_predict": chat.max_tokens,
            "temperature": 0.6,
        }

        def start() -> Awaitable[AsyncIterator[Any]]:
            return self._ollama.chat(
                model=model,
                messages=messages,
                think=think_flag,
                stream=True,
                options=options,
                keep_alive=self.config.ollama.keep_alive,
            )

        splitter = ThinkSplitter()
        prompt = "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages)
        with self.audit.request(purpose, model, prompt, sources) as audited:
            async with contextlib.aclosing(self._parts(model, start)) as parts:
                async for part in parts:
                    message = part.message
                    tagged, content = splitter.feed(message.content or "")
                    thinking = (message.thinking or "") + tagged
                    if thinking or content:
                        yield ChatDelta(thinking, content)
                    if part.done:
                        chars = sum(len(m.get("content", "")) for m in messages)
                        self._note_usage(model, chars, part.prompt_eval_count, limit)
                        audited.prompt_tokens = part.prompt_eval_count or 0
                        audited.output_tokens = part.eval_count or 0
        thinking, content = splitter.flush()
        if thinking or content:
            yield ChatDelta(thinking, content)

    async def aclose(self) -> None:
        await self._ollama.close()


def _sources(pieces: Sequence[ContextPiece]) -> list[Source]:
    return [(p.path, p.start_line, p.end_line) for p in pieces]


async def _close(stream: AsyncIterator[Any] | None) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
