"""An Ollama-API-compatible HTTP server for tests, answering from a real tiny model.

Speaks Ollama's wire format: ``/api/generate`` and ``/api/chat`` (NDJSON streaming or one object,
``suffix``, ``think`` with a separate ``thinking`` field, ``options``), ``/api/embed``,
``/api/show`` (capabilities per model name), ``/api/tags``, ``/api/ps``, ``/api/version``,
``/api/create`` and ``/api/blobs`` (``ollama_create``), the OpenAI-compatible ``/v1/models``,
``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings`` that Ollama serves too
(``openai_routes``), and
Ollama's ``{"error": "..."}`` bodies with its status codes. Text and vectors come from
SmolLM2-135M-Instruct through llama-cpp-python (see ``llama_engine``). Like Ollama, the model
keeps the previous request's evaluated tokens and reads only what follows the longest common
prefix: a final part reports ``prompt_eval_count`` (the whole prompt) and, when some was reused,
``prompt_eval_cached_count``; each ``Generation`` records both.

Models: ``deepseek-r1`` thinks for real (a short reasoning generation, then the answer);
``qwen2.5-coder:1.5b`` has ``insert`` (FIM: the tiny model has no FIM tokens, so it continues
the prefix); ``smollm2:135m`` is a plain chat model; ``nomic-embed-text`` embeds.

Faults (``set_fault(mode, count=, delay=, endpoint=)`` or ``POST /__admin/fault {"mode", "count",
"delay", "endpoint"}``): ``count`` requests get it (None: until cleared); ``endpoint`` (e.g.
``/api/embed`` or ``embed``) limits it to one endpoint, else the first request it applies to
takes it; ``after=N`` lets the first N requests it applies to pass untouched. Modes:

- ``refused``: the listening socket is closed (``set_fault`` only; ``resume()`` reopens it).
- ``not-found`` (404), ``load-timeout`` (500, Ollama's runner message), ``busy`` (503).
- ``error-500``: Ollama's ``{"error": ...}`` body with status 500 (a crashed runner, as Ollama
  before 0.30 and proxies answer it).
- ``runner-crash``: the model's runner dies, answered as the reported version of Ollama does
  (``CURRENT_VERSION`` unless set): generate and chat 500 "llama-server process has terminated:
  ..." (llm/llama_server.go), ``/api/embed`` **400** "do embedding request: ..." (server/routes.go,
  EmbedHandler: a runner error that is not an api.StatusError becomes StatusBadRequest).
  ``load-timeout`` says "llama-server" from 0.30 on (llm/llama_server.go), "llama runner" before.
- ``malformed-body``: status 200 with a body that is not JSON (a proxy's HTML page).
- ``hang-before-headers``: the connection is accepted, the request read, then nothing is sent
  for ``delay`` seconds; then the request is answered normally.
- ``hang-after-first-token``: a stream sends its first part (a whole answer: its headers and
  the first half of its body), then nothing for ``delay`` seconds; then it finishes.
- ``malformed-chunk``: a stream sends two parts, then a line that is not JSON, then goes on (a
  whole answer: its body is cut by garbage in the middle).
- ``cut-stream``: the stream ends without ``done``; ``slow-first-token``: ``delay`` seconds
  before the first part (holding the model; a client that hangs up meanwhile ends it, and
  ``state.most_generating`` counts the generations under way at once); ``think-tags``: the
  model writes ``<think>...</think>`` into its text.

The first five apply to /api/generate, /api/chat, /api/embed, /api/show, /api/version,
/api/tags and /api/ps; the two ``hang``/``malformed-chunk`` stream modes to streams of
/api/generate and /api/chat, and to the whole answers of all of those. A hang ends early when
the client hangs up (checked every 20 ms), so a test that gives up never leaves a server thread
stuck for longer than that. Each generation is recorded with how and when it stopped, so tests
can see that closing a stream (or giving up on a fault) stopped the model.

By hand: ``python -m tests.support.ollama_server [--port N] [--version V]``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import openai_routes
from tests.support.llama_engine import ENGINE
from tests.support.ollama_generation import version_tuple
from tests.support.openai_routes import OPENAI_PATHS

FAULTS = (
    "refused",
    "not-found",
    "load-timeout",
    "busy",
    "cut-stream",
    "slow-first-token",
    "think-tags",
    "error-500",
    "runner-crash",
    "malformed-body",
    "hang-before-headers",
    "hang-after-first-token",
    "malformed-chunk",
)
# The endpoints a model server answers (the fault modes apply to these, not to /__admin).
MODEL_PATHS = (
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/show",
    "/api/version",
    "/api/tags",
    "/api/ps",
    *OPENAI_PATHS,
)
# The Ollama release the stand-in answers as (github.com/ollama/ollama v0.32.7, the sources it
# cites are at fb30760); a test sets state.version for an older one.
CURRENT_VERSION = "0.32.7"
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "max", "xhigh", "ultra")
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1><p>upstream sent garbage</p></body></html>\n"
HANG_POLL = 0.02  # seconds between checks that a hung-on client is still there


@dataclass(frozen=True)
class ModelSpec:
    capabilities: tuple[str, ...]
    size: int  # bytes on disk, as /api/tags reports
    parameter_size: str = "135M"
    family: str = "llama"
    context_length: int = 8192


def default_models() -> dict[str, ModelSpec]:
    return {
        "deepseek-r1:latest": ModelSpec(("completion", "thinking"), 5_200_000_000, "8.2B", "qwen3"),
        "deepseek-r1:1.5b": ModelSpec(("completion", "thinking"), 1_100_000_000, "1.8B", "qwen2"),
        "qwen2.5-coder:1.5b": ModelSpec(("completion", "insert"), 986_000_000, "1.5B", "qwen2"),
        "smollm2:135m": ModelSpec(("completion",), 98_000_000),
        "nomic-embed-text:latest": ModelSpec(("embedding",), 274_000_000, "137M", "nomic-bert"),
    }


def full_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    mode: str
    count: int | None = None  # None: until cleared
    delay: float = 1.0  # slow-first-token and the hangs
    endpoint: str | None = None  # only requests to this path ("/api/embed"); None: any
    after: int = 0  # this many requests it applies to pass untouched first


@dataclass
class Generation:
    """One model run, as the tests see it."""

    endpoint: str
    model: str
    body: dict[str, Any]
    started_at: float
    stopped_at: float = 0.0
    stop: str = ""  # "done" | "client-closed" | "cut"
    text: str = ""
    prompt_tokens: int = 0  # the prompt as the model read it (after its template)
    cached_tokens: int = 0  # of those, reused from the previous request's evaluation
    truncated: bool = False  # the prompt did not fit the window: its start was cut, as Ollama does


@dataclass
class Hang:
    """One hang fault as it happened: tests check it ended when the client gave up."""

    path: str
    started_at: float  # time.monotonic()
    ended_at: float = 0.0
    client_gone: bool = False


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    pass


@dataclass
class State:
    models: dict[str, ModelSpec] = field(default_factory=default_models)
    version: str = CURRENT_VERSION
    fault: Fault | None = None
    generations: list[Generation] = field(default_factory=list)
    hangs: list[Hang] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    loaded: dict[str, float] = field(default_factory=dict)  # model -> expires (epoch seconds)
    # requests being answered now, and the most answered at once, per path
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    # generations started and not yet stopped (waiting for the model included), and the most
    generating: int = 0
    most_generating: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    blobs: dict[str, bytes] = field(default_factory=dict)  # /api/blobs (ollama_create)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # /api/create requests
    pulls: list[str] = field(default_factory=list)  # models a create tried to pull (ollama_create)
    # /api/show fields left out, as older servers did: "capabilities" (before Ollama 0.6.4),
    # "model_info" (0.6.4 to 0.12 for some models: ollama/ollama-python#607)
    show_omits: tuple[str, ...] = ()
    # the /v1 delta field reasoning goes in: Ollama's "reasoning", or vLLM's "reasoning_content"
    reasoning_field: str = "reasoning"
    # the reasoning_effort values /v1 takes (openai_routes): Ollama's thinkFromReasoningEffort
    reasoning_efforts: tuple[str, ...] = REASONING_EFFORTS
    v1_suffix: bool = True  # /v1/completions takes `suffix` (False: answers as vLLM does)
    # /v1/models entries carry the window the server runs, as vLLM's do (its ModelCard's
    # max_model_len, vllm/entrypoints/openai/protocol.py); None: as Ollama's /v1 (no such field)
    max_model_len: int | None = None
    # thinking of up to N tokens counted against num_predict, as Ollama does (ollama_generation)
    think_tokens: int | None = None

    def take_fault(self, *modes: str, path: str = "") -> Fault | None:
        with self.lock:
            fault = self.fault
            if fault is None or fault.mode not in modes:
                return None
            if fault.endpoint is not None and path != fault.endpoint:
                return None
            if fault.after > 0:
                fault.after -= 1
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.fault = None
            return fault

    def spec(self, name: str, path: str = "") -> tuple[str, ModelSpec]:
        if self.take_fault("not-found", path=path):
            raise HttpError(404, f'model "{name}" not found, try pulling it first')
        key = full_name(name)
        if key not in self.models:
            raise HttpError(404, f'model "{name}" not found, try pulling it first')
        return key, self.models[key]


def _keep_alive_seconds(value: Any) -> float:
    if value is None:
        return 300.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                break
    try:
        return float(text)
    except ValueError:
        raise HttpError(400, f'time: invalid duration "{text}"') from None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OllamaTestServer
    route = ""  # the path of the request being answered

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read state instead
        return

    # -- plumbing -----------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise HttpError(400, "invalid character in request body") from None
        if not isinstance(data, dict):
            raise HttpError(400, "json: cannot unmarshal into request")
        return data

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _client_gone(self) -> bool:
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    def _chunk(self, payload: dict[str, Any]) -> None:
        if self._client_gone():
            raise ClientGone
        data = (json.dumps(payload) + "\n").encode()
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError:
            raise ClientGone from None

    def _fault(self, *modes: str) -> Fault | None:
        return self.server.state.take_fault(*modes, path=self.route)

    def _hang(self, delay: float) -> bool:
        """Send nothing for ``delay`` seconds or until the client hangs up; True if it did."""
        hang = Hang(self.route, time.monotonic())
        self.server.state.hangs.append(hang)
        try:
            while time.monotonic() < hang.started_at + delay:
                if self._client_gone():
                    self.close_connection = True
                    hang.client_gone = True
                    return True
                time.sleep(HANG_POLL)
            return False
        finally:
            hang.ended_at = time.monotonic()

    def _wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or less if the client hangs up (then True), as Ollama stops
        a request whose client has gone."""
        until = time.monotonic() + delay
        while (left := until - time.monotonic()) > 0:
            if self._client_gone():
                self.close_connection = True
                return True
            time.sleep(min(HANG_POLL, left))
        return False

    def _before_answer(self) -> bool:
        """The faults that strike before any answer; True if the request is done with."""
        fault = self._fault("hang-before-headers", "error-500", "runner-crash", "malformed-body")
        if fault is None:
            return False
        if fault.mode == "hang-before-headers":
            return self._hang(fault.delay)
        if fault.mode == "error-500":
            raise HttpError(500, "llama runner process has terminated: exit status 2")
        if fault.mode == "runner-crash":
            raise self._runner_crash()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(MALFORMED_BODY)))
        self.end_headers()
        self.wfile.write(MALFORMED_BODY)
        return True

    def _runner_crash(self) -> HttpError:
        if version_tuple(self.server.state.version) < (0, 30):
            return HttpError(500, "llama runner process has terminated: exit status 2")
        if self.route == "/api/embed":
            port = self.server.server_address[1] + 1
            return HttpError(
                400, f'do embedding request: Post "http://127.0.0.1:{port}/v1/embeddings": EOF'
            )
        return HttpError(500, "llama-server process has terminated: exit status 2")

    def _answer(self, payload: Any) -> None:
        """A whole 200 answer of a model endpoint, unless a fault cuts it (see module doc)."""
        fault = self._fault("hang-after-first-token", "malformed-chunk")
        if fault is None:
            self._send_json(200, payload)
            return
        data = json.dumps(payload).encode()
        half = len(data) // 2
        if fault.mode == "malformed-chunk":
            data = data[:half] + b"\x00not json\n" + data[half:]
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data[:half])
            self.wfile.flush()
            if fault.mode == "hang-after-first-token" and self._hang(fault.delay):
                return
            self.wfile.write(data[half:])
        except OSError:
            self.close_connection = True

    def _end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        try:
            if self.path.startswith("/api/blobs/") and method == "POST":
                from tests.support.ollama_create import push_blob

                state.requests.append(("/api/blobs", {"digest": self.path.rsplit("/", 1)[-1]}))
                push_blob(self, self.path.rsplit("/", 1)[-1])
                return
            body = self._body() if method in ("POST", "DELETE") else {}
            route = (method, self.path.split("?", 1)[0])
            self.route = route[1]
            state.requests.append((route[1], body))
            handler = ROUTES.get(route)
            if handler is None:
                self._send_json(404, {"error": "404 page not found"})
                return
            with state.lock:
                now = state.in_flight[route[1]] = state.in_flight.get(route[1], 0) + 1
                state.most_in_flight[route[1]] = max(now, state.most_in_flight.get(route[1], 0))
            try:
                if route[1] in MODEL_PATHS and self._before_answer():
                    return
                handler(self, body)
            finally:
                with state.lock:
                    state.in_flight[route[1]] -= 1
        except HttpError as exc:
            if self.route.startswith("/v1/"):
                self._send_json(exc.status, openai_routes.error_body(exc.message, exc.status))
            else:
                self._send_json(exc.status, {"error": exc.message})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        status = 200
        if self.path.startswith("/api/blobs/"):
            from tests.support.ollama_create import has_blob

            status = has_blob(self, self.path.rsplit("/", 1)[-1])
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- simple endpoints ---------------------------------------------------------------------
    def version(self, body: dict[str, Any]) -> None:
        self._answer({"version": self.server.state.version})

    def tags(self, body: dict[str, Any]) -> None:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": _now(),
                "size": spec.size,
                "digest": f"{abs(hash(name)):064x}"[:64],
                "details": _details(spec),
            }
            for name, spec in self.server.state.models.items()
        ]
        self._answer({"models": models})

    def ps(self, body: dict[str, Any]) -> None:
        state = self.server.state
        out = []
        for name, expires in state.loaded.items():
            if expires < time.time() or name not in state.models:
                continue
            spec = state.models[name]
            out.append(
                {
                    "name": name,
                    "model": name,
                    "size": spec.size,
                    "digest": f"{abs(hash(name)):064x}"[:64],
                    "details": _details(spec),
                    "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
                    "size_vram": 0,
                    "context_length": 4096,
                }
            )
        self._answer({"models": out})

    def show(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        state = self.server.state
        if self._fault("not-found") or full_name(name) not in state.models:
            raise HttpError(404, f"model '{name}' not found")
        spec = state.models[full_name(name)]
        arch = spec.family
        made = state.created.get(full_name(name), {})
        params = made.get("parameters") or {"temperature": 0.6}
        shown = {
            "license": "Apache License 2.0",
            "modelfile": made.get("modelfile", f"FROM {name}\n"),
            "parameters": "\n".join(f"{k} {v}" for k, v in params.items()),
            "template": made.get("template") or "{{ .Prompt }}",
            "system": made.get("system", ""),
            "details": _details(spec),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": 134_515_008,
                f"{arch}.context_length": spec.context_length,
                f"{arch}.embedding_length": 576,
            },
            "capabilities": list(spec.capabilities),
            "modified_at": _now(),
        }
        self._answer({k: v for k, v in shown.items() if k not in state.show_omits})

    def embed(self, body: dict[str, Any]) -> None:
        state = self.server.state
        name = str(body.get("model") or "")
        key, _spec = state.spec(name, self.route)
        self._load_faults()
        raw = body.get("input", "")
        texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        started = time.perf_counter_ns()
        vectors = ENGINE.embed(texts) if texts else []
        count = sum(len(ENGINE.tokenize(t)) for t in texts)
        state.loaded[key] = time.time() + _keep_alive_seconds(body.get("keep_alive"))
        self._answer(
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": time.perf_counter_ns() - started,
                "load_duration": 0,
                "prompt_eval_count": count,
            },
        )

    def _load_faults(self) -> None:
        if self._fault("load-timeout"):
            current = version_tuple(self.server.state.version) >= (0, 30)
            runner = "llama-server" if current else "llama runner"
            raise HttpError(500, f"timed out waiting for {runner} to start - ")
        if self._fault("busy"):
            raise HttpError(
                503, "server busy, please try again.  maximum pending requests exceeded"
            )

    def admin_fault(self, body: dict[str, Any]) -> None:
        mode = str(body.get("mode", ""))
        if mode == "refused":
            raise HttpError(400, "use OllamaTestServer.refuse() for refused connections")
        try:
            self.server.set_fault(
                mode,
                count=body.get("count"),
                delay=body.get("delay", 1.0),
                endpoint=body.get("endpoint"),
            )
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        self._send_json(200, {"fault": mode})

    def admin_clear(self, body: dict[str, Any]) -> None:
        self.server.clear_fault()
        self._send_json(200, {"fault": None})

    def admin_state(self, body: dict[str, Any]) -> None:
        gens = [
            {"endpoint": g.endpoint, "model": g.model, "stop": g.stop, "text": g.text}
            for g in self.server.state.generations
        ]
        self._send_json(200, {"generations": gens})

    def create(self, body: dict[str, Any]) -> None:
        from tests.support.ollama_create import create

        create(self, body)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, body: dict[str, Any]) -> None:
        self._run("generate", body)

    def chat(self, body: dict[str, Any]) -> None:
        self._run("chat", body)

    def _run(self, endpoint: str, body: dict[str, Any]) -> None:
        from tests.support.ollama_generation import plan

        state = self.server.state
        name = str(body.get("model") or "")
        if not name:
            raise HttpError(400, "model is required")
        key, spec = state.spec(name, self.route)
        work = plan(endpoint, name, spec, body, state.version, state.think_tokens)
        self._load_faults()
        state.loaded[key] = time.time() + _keep_alive_seconds(body.get("keep_alive"))
        if not (body.get("prompt") or body.get("suffix") or body.get("messages")):
            # Ollama loads the model and answers at once when there is nothing to generate.
            payload: dict[str, Any] = {"model": name, "created_at": _now(), "done": True}
            if endpoint == "generate":
                payload["response"] = ""
            else:
                payload["message"] = {"role": "assistant", "content": ""}
            payload["done_reason"] = "load"
            self._answer(payload)
            return
        record = Generation(endpoint, name, body, time.monotonic())
        state.generations.append(record)
        with state.lock:
            state.generating += 1
            state.most_generating = max(state.most_generating, state.generating)
        try:
            self._generate(endpoint, name, body, work, record)
        finally:
            with state.lock:
                state.generating -= 1

    def _generate(
        self, endpoint: str, name: str, body: dict[str, Any], work: Any, record: Generation
    ) -> None:
        stream = body.get("stream", True) is not False
        if stream and (hung := self._fault("hang-after-first-token")):
            self._hang_after_first(endpoint, name, work, record, hung.delay)
            return
        modes = ("cut-stream", "slow-first-token", "think-tags")
        fault = self._fault(*modes, "malformed-chunk") if stream else self._fault(*modes)
        with ENGINE.lock:
            pieces = work.pieces(fault.mode if fault else "", record)
            if fault and fault.mode == "slow-first-token" and self._wait(fault.delay):
                record.stop, record.stopped_at = "client-closed", time.monotonic()
                return
            if stream:
                self._stream(
                    endpoint,
                    name,
                    work,
                    pieces,
                    record,
                    cut=fault is not None and fault.mode == "cut-stream",
                    garbage=fault is not None and fault.mode == "malformed-chunk",
                )
            else:
                self._whole(endpoint, name, work, pieces, record)

    def _stream(
        self,
        endpoint: str,
        name: str,
        work: Any,
        pieces: Iterator[tuple[str, str]],
        record: Generation,
        *,
        cut: bool,
        garbage: bool = False,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            for kind, text in pieces:
                self._chunk(_piece(endpoint, name, kind, text))
                sent += 1
                if garbage and sent == 2:  # a line cut short, as a broken proxy might send
                    self._raw_line(f'{{"model": "{name}", "created_at": "{_now()}", "respo')
                if cut and sent >= 3:
                    record.stop = "cut"
                    break
            else:
                self._chunk(_final(endpoint, name, work))
                record.stop = "done"
        except ClientGone:
            record.stop = "client-closed"
        finally:
            record.stopped_at = time.monotonic()
            if hasattr(pieces, "close"):
                pieces.close()
        if record.stop == "client-closed":
            self.close_connection = True
            return
        self._end_chunks()
        if cut:
            self.close_connection = True

    def _raw_line(self, line: str) -> None:
        if self._client_gone():
            raise ClientGone
        data = (line + "\n").encode()
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError:
            raise ClientGone from None

    def _hang_after_first(
        self, endpoint: str, name: str, work: Any, record: Generation, delay: float
    ) -> None:
        """One real part from the model, then silence for ``delay`` s (the model is not held)."""
        with ENGINE.lock:
            pieces = work.pieces("", record)
            try:
                first = next(pieces, ("content", ""))
            finally:
                pieces.close()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._chunk(_piece(endpoint, name, *first))
            if self._hang(delay):
                raise ClientGone
            self._chunk(_final(endpoint, name, work))
            record.stop = "done"
        except ClientGone:
            record.stop = "client-closed"
            self.close_connection = True
        finally:
            record.stopped_at = time.monotonic()
        if record.stop == "done":
            self._end_chunks()

    def _whole(
        self,
        endpoint: str,
        name: str,
        work: Any,
        pieces: Iterator[tuple[str, str]],
        record: Generation,
    ) -> None:
        thinking, content = "", ""
        for kind, text in pieces:
            if kind == "thinking":
                thinking += text
            else:
                content += text
        record.stop, record.stopped_at = "done", time.monotonic()
        payload = _final(endpoint, name, work)
        if endpoint == "generate":
            payload["response"] = content
            if thinking:
                payload["thinking"] = thinking
        else:
            payload["message"] = {"role": "assistant", "content": content}
            if thinking:
                payload["message"]["thinking"] = thinking
        self._answer(payload)


def _details(spec: ModelSpec) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": "Q4_K_M",
    }


def _piece(endpoint: str, name: str, kind: str, text: str) -> dict[str, Any]:
    if endpoint == "generate":
        out: dict[str, Any] = {"model": name, "created_at": _now(), "response": ""}
        out["thinking" if kind == "thinking" else "response"] = text
        out["done"] = False
        return out
    message = {"role": "assistant", "content": ""}
    message["thinking" if kind == "thinking" else "content"] = text
    return {"model": name, "created_at": _now(), "message": message, "done": False}


def _final(endpoint: str, name: str, work: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": name, "created_at": _now()}
    if endpoint == "generate":
        out["response"] = ""
    else:
        out["message"] = {"role": "assistant", "content": ""}
    out.update(
        {
            "done": True,
            "done_reason": work.done_reason,
            "total_duration": time.perf_counter_ns() - work.started_ns,
            "load_duration": 0,
            "prompt_eval_count": work.prompt_eval_count,
            "prompt_eval_duration": 1,
            **(
                {"prompt_eval_cached_count": work.prompt_eval_cached_count}
                if work.prompt_eval_cached_count
                else {}
            ),
            "eval_count": work.eval_count,
            "eval_duration": 1,
        }
    )
    return out


ROUTES = {
    ("GET", "/api/version"): Handler.version,
    ("GET", "/api/tags"): Handler.tags,
    ("GET", "/api/ps"): Handler.ps,
    ("POST", "/api/show"): Handler.show,
    ("POST", "/api/embed"): Handler.embed,
    ("POST", "/api/generate"): Handler.generate,
    ("POST", "/api/chat"): Handler.chat,
    ("POST", "/api/create"): Handler.create,
    ("POST", "/__admin/fault"): Handler.admin_fault,
    ("DELETE", "/__admin/fault"): Handler.admin_clear,
    ("GET", "/__admin/state"): Handler.admin_state,
    ("GET", "/v1/models"): openai_routes.models,
    ("POST", "/v1/chat/completions"): openai_routes.chat_completions,
    ("POST", "/v1/completions"): openai_routes.completions,
    ("POST", "/v1/embeddings"): openai_routes.embeddings,
}


class OllamaTestServer(ThreadingHTTPServer):
    """The server on a loopback port; ``start()`` serves from a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, *, version: str = CURRENT_VERSION) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State(version=version)
        self.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (cancelled streams, closed pools) are normal here."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OllamaTestServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="ollama-test")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def set_fault(
        self,
        mode: str,
        *,
        count: int | None = None,
        delay: float = 1.0,
        endpoint: str | None = None,
        after: int = 0,
    ) -> None:
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; one of {', '.join(FAULTS)}")
        if endpoint is not None:
            endpoint = endpoint if endpoint.startswith("/") else f"/api/{endpoint}"
            if endpoint not in MODEL_PATHS:
                raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(MODEL_PATHS)}")
        if mode == "refused":
            self.refuse()
            return
        with self.state.lock:
            self.state.fault = Fault(mode, count, float(delay), endpoint, after)

    def clear_fault(self) -> None:
        with self.state.lock:
            self.state.fault = None

    def refuse(self) -> None:
        """Stop listening: connections are refused until :meth:`resume`."""
        self.shutdown()
        self.socket.close()

    def resume(self) -> None:
        self.socket = socket.socket(self.address_family, self.socket_type)
        self.server_bind()
        self.server_activate()
        self.start()

    def reset(self) -> None:
        """Back to a healthy default state (between tests)."""
        self.clear_fault()
        self.state.models = default_models()
        self.state.version = CURRENT_VERSION
        self.state.generations.clear()
        self.state.hangs.clear()
        self.state.requests.clear()
        self.state.most_in_flight.clear()
        self.state.most_generating = 0
        self.state.blobs.clear()
        self.state.created.clear()
        self.state.pulls.clear()
        self.state.show_omits = ()
        self.state.reasoning_field = "reasoning"
        self.state.reasoning_efforts = REASONING_EFFORTS
        self.state.v1_suffix = True
        self.state.max_model_len = None
        self.state.think_tokens = None


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--version", default=CURRENT_VERSION, help="the Ollama version to report")
    args = parser.parse_args(argv)
    server = OllamaTestServer(args.port, version=args.version)
    print(f"test Ollama server on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
