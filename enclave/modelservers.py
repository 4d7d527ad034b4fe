"""One path to the model servers, shared by the model client (:mod:`enclave.server.model.client`)
and the embedders (:mod:`enclave.indexer.embed`): both send repository text to the same servers.

- Host health, one record per host URL for the whole process (:func:`health_of`): a host that
  failed a completion is down for the next embedding request too, and the reverse. Every
  :class:`Fleet` (``ollama.hosts``) of the process reads and writes these records.
- Headers: :func:`server_headers` resolves ``ollama.headers`` (their ``${VARIABLE}`` values) for
  every request, with one refusal naming the missing variable, never a value.
- Faults: :func:`failover` says what a failed request means for the fleet (the host is down, busy,
  lacks the model, or the answer is about the request and the same everywhere) and
  :func:`fault_of` what it was (unreachable, silent, broken, redirected, not the API's JSON, or an
  HTTP status with Ollama's structured error), from which each API's adapter words its
  ``EnclaveError``. The allow-list and the refusal of redirects are :mod:`enclave.hosts`.

Fleet bookkeeping is pure, no I/O: a client asks :meth:`Fleet.order` for the hosts to try, in
order, and reports back what happened (:meth:`Fleet.failed`, :meth:`Fleet.answered`).

- Health: a host that refused a connection, broke one, stayed silent past its wait, redirected or
  answered 5xx (or something that is not its API's JSON) is *down* for a back-off (``DOWN_FIRST``
  seconds from the moment it failed, doubled per failure in a row up to ``DOWN_MOST``); once it
  has passed the host is *due*: the client probes it (a cheap request with a short wait) before
  sending it repository text. When every host is down they are still tried, soonest-back first:
  the request itself is the probe. A busy host (503) passes the request on and is not down.
- Least busy: among healthy hosts, the one with the fewest requests in flight from this client
  goes first (ties keep the configured order, so a fleet of one idle host behaves like one host).
- Sticky: a request may name the host that served the previous one of its kind; it goes there
  while that host is healthy and not clearly busier (at most ``STICKY_SLACK`` more requests in
  flight than the least busy host).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from enclave.errors import EnclaveError, one_line
from enclave.hosts import RedirectRefused

_C = TypeVar("_C")

if TYPE_CHECKING:
    from enclave.config import Config

DOWN_FIRST = 2.0  # seconds a failed host is left alone before it is probed again
DOWN_MOST = 30.0
STICKY_SLACK = 1  # in-flight requests a sticky host may have beyond the least busy one


# -- host health, per host URL for the whole process ----------------------------------------------


@dataclass
class Health:
    """What this process knows of one host URL's health (shared by every client of it)."""

    down_until: float = 0.0  # clock time; 0: up
    failures: int = 0  # in a row
    last_error: str = ""  # why it is down (never a header value)


_HEALTH: dict[str, Health] = {}
_HEALTH_LOCK = threading.Lock()  # the embedders' threads and the server's event loop share it


def health_of(url: str) -> Health:
    """The one health record of ``url`` in this process."""
    with _HEALTH_LOCK:
        return _HEALTH.setdefault(url.rstrip("/"), Health())


def forget_health() -> None:
    """Every host up again, as in a new process (for tests)."""
    with _HEALTH_LOCK:
        _HEALTH.clear()


@dataclass
class Host:
    """One model server of a fleet: this client's handle on it, and the process's health of it."""

    url: str  # as configured (may carry credentials: never print it)
    name: str  # for messages: the URL without credentials
    backend: Any = None  # the API client(s) for this host
    in_flight: int = 0  # this client's requests to it
    version: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # model name -> what the client learnt
    health: Health = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.health = health_of(self.url)

    @property
    def down_until(self) -> float:
        return self.health.down_until

    @down_until.setter
    def down_until(self, value: float) -> None:
        self.health.down_until = value

    @property
    def failures(self) -> int:
        return self.health.failures

    @property
    def last_error(self) -> str:
        return self.health.last_error

    @property
    def down(self) -> bool:
        return self.down_until > 0


class Fleet:
    """The hosts one client may send a request to, in the order to try them (see module doc)."""

    def __init__(self, hosts: Sequence[Host], clock: Callable[[], float] = time.monotonic):
        if not hosts:
            raise ValueError("a fleet needs at least one host")
        self.hosts = list(hosts)
        self.clock = clock

    def state(self, host: Host) -> str:
        """``up``, ``down`` (in its back-off) or ``due`` (back-off over: probe before use)."""
        if not host.down:
            return "up"
        return "due" if self.clock() >= host.down_until else "down"

    def order(self, sticky: Host | None = None) -> list[Host]:
        """The hosts to try for one request, best first (see module doc)."""
        position = {id(h): i for i, h in enumerate(self.hosts)}
        now = self.clock()
        # due hosts take their place again (the client probes them first), so a host that came
        # back gets its share of the work instead of waiting for the others to fail
        ready = [h for h in self.hosts if not h.down or now >= h.down_until]
        ready.sort(key=lambda h: (h.in_flight, position[id(h)]))
        if (
            sticky is not None
            and sticky in ready
            and not sticky.down
            and sticky.in_flight <= ready[0].in_flight + STICKY_SLACK
        ):
            ready.remove(sticky)
            ready.insert(0, sticky)
        waiting = sorted((h for h in self.hosts if h not in ready), key=lambda h: h.down_until)
        return [*ready, *waiting]

    def failed(self, host: Host, reason: str) -> None:
        """``host`` refused, broke, stayed silent or answered 5xx: leave it alone for a while
        (counted from now, when it failed: not from when the request was sent)."""
        with _HEALTH_LOCK:
            health = host.health
            health.failures += 1
            backoff = min(DOWN_MOST, DOWN_FIRST * 2 ** (health.failures - 1))
            health.down_until = self.clock() + backoff
            health.last_error = reason

    def answered(self, host: Host) -> None:
        """``host`` answered: it is up again."""
        with _HEALTH_LOCK:
            host.health.failures = 0
            host.health.down_until = 0.0
            host.health.last_error = ""


# -- headers --------------------------------------------------------------------------------------


class MissingHeader(EnclaveError):
    """A header of ``ollama.headers`` names an environment variable that is not set."""


def server_headers(config: Config) -> dict[str, str]:
    """``ollama.headers`` as sent with every request to a model server; raises
    :class:`MissingHeader` (naming the variable, never a value) when one cannot be resolved."""
    from enclave.config import MissingHeaderVariable, resolve_headers

    try:
        return resolve_headers(config.ollama.headers)
    except MissingHeaderVariable as exc:
        raise MissingHeader(
            str(exc),
            f"set {exc.variable} in the environment Enclave starts in (the editor's, or the "
            "shell's), or change ollama.headers",
        ) from None


def ollama_client(
    factory: Callable[..., _C], host: str, headers: dict[str, str], **settings: Any
) -> _C:
    """An ``ollama`` client (``factory``: ``ollama.Client`` or ``ollama.AsyncClient``) that sends
    exactly ``headers`` (``ollama.headers``) to ``host``.

    The official client adds ``Authorization: Bearer $OLLAMA_API_KEY`` to every request whenever
    that variable is set (ollama-python >= 0.6.0, ``BaseClient.__init__`` in ollama/_client.py),
    which would hand a key meant for ollama.com to every server of a fleet and every proxy in
    between. Here it goes only where ``ollama.headers`` puts it."""
    client = factory(host=host, headers=headers, **settings)
    if not any(name.lower() == "authorization" for name in headers):
        client._client.headers.pop("authorization", None)  # type: ignore[attr-defined]
    return client


# -- faults ---------------------------------------------------------------------------------------


def malformed_errors() -> tuple[type[BaseException], ...]:
    """What a client raises when a server's answer is not its API's JSON: json.JSONDecodeError,
    pydantic's ValidationError and UnicodeDecodeError (all ValueError) for a body or an NDJSON
    line that does not parse or does not fit, AttributeError / TypeError for JSON that is not an
    object (the ``ollama`` client calls ``part.get(...)`` and ``cls(**part)``), and
    httpx.DecodingError for a broken encoding."""
    import httpx

    return (ValueError, TypeError, AttributeError, httpx.DecodingError)


# Ollama's own text for a model it does not have (server/routes.go: "model '%s' not found").
MODEL_NOT_FOUND = re.compile(r"\bmodel ['\"][^'\"]+['\"] not found")
# What Ollama says when a model's runner fails (llm/llama_server.go at fb30760; "llama runner"
# before 0.30).
RUNNER_FAILURES = (
    "do embedding request",
    "error reading embed response",
    "unexpected server status",
    "llama runner process has terminated",
    "llama-server process has terminated",
    "embedding contains nan or inf",
)


@dataclass(frozen=True)
class Fault:
    """What went wrong with one request to a model server, whatever the client raised.

    ``kind``: "unreachable" (refused, or no connection within its wait), "timeout" (connected,
    then silent past its wait), "broken" (the connection broke), "redirect" (a 3xx, not followed),
    "malformed" (not the API's JSON), "status" (an HTTP error status: ``status``, and ``error``,
    Ollama's or the OpenAI API's error text) or "other".
    """

    kind: str
    status: int = 0
    error: str = ""

    def _says(self, *words: str) -> bool:
        low = self.error.lower()
        return self.kind == "status" and all(w in low for w in words)

    @property
    def busy(self) -> bool:
        """The server said it is busy (503, or Ollama's "server busy")."""
        return (self.kind == "status" and self.status == 503) or self._says("server busy")

    @property
    def not_found(self) -> bool:
        """The model is not on that server: a 404, or (from a proxy that changed the status)
        exactly Ollama's ``model '<name>' not found``; never any text with "not found" in it."""
        if self.kind != "status":
            return False
        return self.status == 404 or MODEL_NOT_FOUND.search(self.error) is not None

    @property
    def load_timeout(self) -> bool:
        """Ollama gave up loading the model: "timed out waiting for llama-server to start"
        (Ollama >= 0.30, llm/llama_server.go), "... for llama runner to start" before."""
        return self._says("timed out waiting for llama") or (
            self._says("timed out") and self._says("load")
        )

    @property
    def runner_failed(self) -> bool:
        """The model's runner on that server failed (crashed, answered garbage): a fault of the
        host, not of the request. Ollama's EmbedHandler answers such a failure with **400**
        (server/routes.go: an error that is not an api.StatusError becomes StatusBadRequest), its
        generate and chat handlers with 500; the texts are llm/llama_server.go's."""
        return (
            self.kind == "status"
            and self.status in (400, 500)
            and any(self._says(words) for words in RUNNER_FAILURES)
        )

    @property
    def context_too_long(self) -> bool:
        """The prompt does not fit the model's context window."""
        return self._says("context") and (self._says("length") or self._says("exceed"))


def fault_of(exc: BaseException) -> Fault:
    """The :class:`Fault` that ``exc`` (raised by the ``ollama`` or the ``httpx`` client) is."""
    import httpx
    import ollama

    if isinstance(exc, ollama.ResponseError):
        return Fault("status", exc.status_code, str(exc.error))
    if isinstance(exc, httpx.HTTPStatusError):
        return Fault("status", exc.response.status_code, one_line(error_text(exc.response), 200))
    if isinstance(exc, RedirectRefused):
        return Fault("redirect")
    if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
        return Fault("unreachable")
    if isinstance(exc, httpx.TimeoutException):
        return Fault("timeout")
    if isinstance(exc, httpx.TransportError):
        return Fault("broken")
    if isinstance(exc, malformed_errors()):
        return Fault("malformed")
    return Fault("other")


def failover(exc: BaseException) -> str:
    """What a failure before any answer reached the caller means for a fleet: "down" (a failure
    of that host: refused, broken, silent, redirected, 5xx, not its API's JSON: the next host
    gets the request and this one a back-off), "busy" (503: the next host, this one is not
    down; a runner's failure too, which current Ollama answers with 400 for embeddings), "missing"
    (404: the model is not on that host), or "" (an answer about the request, the same on every
    host)."""
    fault = fault_of(exc)
    if fault.kind == "status":
        if fault.busy:
            return "busy"
        if fault.status == 404:
            return "missing"
        down = fault.status >= 500 or fault.status < 0 or fault.runner_failed
        return "down" if down else ""
    return "" if fault.kind == "other" else "down"


def error_text(response: Any) -> str:
    """The error an HTTP answer carries (``{"error": ...}``, or ``{"error": {"message": ...}}``
    as the OpenAI API writes it), else its body (callers shorten it)."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or body)
