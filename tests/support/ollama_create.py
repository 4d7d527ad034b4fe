"""``/api/create`` and ``/api/blobs/:digest`` for the test Ollama server, as Ollama answers them.

- ``POST /api/blobs/sha256:<hex>``: the raw bytes of a file (a LoRA adapter, a GGUF); 201 when
  their sha256 matches the digest, 400 otherwise. ``HEAD`` answers 200 for a known blob, 404.
- ``POST /api/create`` with ``model``, ``from``, ``system``, ``parameters``, ``adapters``
  (file name -> blob digest), ``template`` and ``stream``: every adapter blob must have been
  uploaded (400 otherwise). Streams Ollama's status objects (``reading model metadata``,
  ``creating system layer``, ``using already created layer ...``, ``writing manifest``,
  ``success``) or answers ``{"status": "success"}``. The new model then shows in ``/api/tags``
  and ``/api/show`` (its Modelfile, system prompt and parameters) and answers like its base model.

As Ollama (github.com/ollama/ollama at fb30760) does:
- a ``from`` model that is not on the server is *pulled from the registry* (server/model.go,
  ``parseFromModel``: ``manifest.ParseNamedManifest`` -> ``os.ErrNotExist`` -> ``PullModel``).
  The attempt is recorded in ``state.pulls`` and, with no network, fails in the stream with
  ``pulling manifest`` then the registry lookup error, so a test can assert nobody let it happen;
- safetensors adapters are converted only for ``llama`` and ``gemma2`` bases and need
  ``adapter_config.json`` among the files (convert/convert.go, ``ConvertAdapter``: it reads that
  file first, then switches on the base's architecture, else ``unsupported architecture``),
  reported after a ``converting adapter`` status. GGUF adapters are taken for any base.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any


def read_raw(handler: Any) -> bytes:
    """The request body, sent with a Content-Length or chunked (httpx streams files chunked)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(data)
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def push_blob(handler: Any, digest: str) -> None:
    from tests.support.ollama_server import HttpError

    data = read_raw(handler)
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        raise HttpError(400, "digest mismatch, expected " + digest)
    handler.server.state.blobs[digest] = data
    handler.send_response(201)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def has_blob(handler: Any, digest: str) -> int:
    return 200 if digest in handler.server.state.blobs else 404


def _modelfile(base: str, body: dict[str, Any]) -> str:
    lines = [f"FROM {base}"]
    if body.get("system"):
        lines.append(f'SYSTEM """{body["system"]}"""')
    for key, value in (body.get("parameters") or {}).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {item}")
    for name in body.get("adapters") or {}:
        lines.append(f"ADAPTER {name}")
    return "\n".join(lines) + "\n"


def _pull_error(name: str) -> str:
    model, _, tag = name.partition(":")
    path = model if "/" in model else f"library/{model}"
    return (
        f'pull model manifest: Get "https://registry.ollama.ai/v2/{path}/manifests/{tag}": '
        "dial tcp: lookup registry.ollama.ai: no such host"
    )


def _safetensors_problem(architecture: str, adapters: dict[str, Any]) -> str:
    if "adapter_config.json" not in adapters:
        return "open adapter_config.json: no such file or directory"
    if architecture not in ("llama", "gemma2"):
        return "unsupported architecture"
    return ""


def _fail(handler: Any, body: dict[str, Any], statuses: list[str], error: str) -> None:
    """A create that fails on the way: the statuses so far, then the error (in the stream, as
    Ollama's CreateHandler sends it; a whole answer is a 500 with the error)."""
    from tests.support.ollama_server import HttpError

    if body.get("stream", True) is False:
        raise HttpError(500, error)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-ndjson")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for status in statuses:
        handler._chunk({"status": status})
    handler._chunk({"error": error})
    handler._end_chunks()


def create(handler: Any, body: dict[str, Any]) -> None:
    from tests.support.ollama_server import HttpError, full_name

    state = handler.server.state
    name = str(body.get("model") or "")
    base = str(body.get("from") or "")
    if not name:
        raise HttpError(400, "model is required")
    if not base:
        raise HttpError(400, "neither 'from' or 'files' was specified")
    adapters = body.get("adapters") or {}
    if not isinstance(adapters, dict):
        raise HttpError(400, "adapters must be an object of file names and digests")
    for file, digest in adapters.items():
        if digest not in state.blobs:
            raise HttpError(400, f"blob {digest} for {file} not found: upload it first")
    if full_name(base) not in state.models:
        state.pulls.append(full_name(base))
        _fail(handler, body, ["pulling manifest"], _pull_error(full_name(base)))
        return
    if any(file.endswith(".safetensors") for file in adapters):
        problem = _safetensors_problem(state.models[full_name(base)].family, adapters)
        if problem:
            _fail(handler, body, ["reading model metadata", "converting adapter"], problem)
            return
    statuses = ["reading model metadata"]
    if body.get("system"):
        statuses.append("creating system layer")
    if body.get("parameters"):
        statuses.append("creating parameters layer")
    statuses += [
        f"using already created layer sha256:{d.split(':')[-1]}" for d in adapters.values()
    ]
    statuses += ["writing manifest", "success"]
    key = full_name(name)
    state.models[key] = replace(state.models[full_name(base)])
    state.created[key] = {**body, "modelfile": _modelfile(full_name(base), body)}
    if body.get("stream", True) is False:
        handler._send_json(200, {"status": "success"})
        return
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-ndjson")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for status in statuses:
        handler._chunk({"status": status})
    handler._end_chunks()
