"""The few model errors Enclave shows people: what is wrong (``message``), what to do (``fix``).

Every failure of the Ollama server or of a stream is mapped to one of these by the client
(:mod:`enclave.server.model.client`, from the faults :mod:`enclave.modelservers` tells apart), so
editors and the CLI show one clear message instead of an HTTP status or a traceback.
"""

from __future__ import annotations

from enclave import hosts
from enclave.errors import EnclaveError, one_line
from enclave.modelservers import Fault


class ModelError(EnclaveError):
    """Base of the model errors; ``kind`` is a stable identifier for machines (JSON, LSP)."""

    kind = "model-error"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix}


class OllamaUnavailable(ModelError):
    kind = "ollama-unavailable"


class ModelNotFound(ModelError):
    kind = "model-not-found"

    def __init__(self, model: str, message: str = "") -> None:
        super().__init__(
            message or f"the model {model} is not pulled in Ollama",
            f"run `ollama pull {model}`",
        )
        self.model = model


class ModelLoadTimeout(ModelError):
    kind = "model-load-timeout"


class ModelBusy(ModelError):
    kind = "model-busy"


class ContextTooLong(ModelError):
    kind = "context-too-long"


class StreamInterrupted(ModelError):
    kind = "stream-interrupted"


class ModelTimeout(ModelError):
    kind = "timeout"


class HostRefused(ModelError):
    """The configured server is not on this machine and not in ``trust.allowed_hosts``."""

    kind = "host-not-allowed"


class MalformedResponse(ModelError):
    """The server answered, but not with Ollama's JSON (a proxy page, a broken line mid-stream)."""

    kind = "malformed-response"


class ModelNotAllowed(ModelError):
    """The administrator's policy (``allowed_models``) does not allow the model, or the policy
    file is broken and allows nothing."""

    kind = "model-not-allowed"


class RedirectRefused(ModelError, hosts.RedirectRefused):
    """The model server answered with a redirect; it was not followed (the target may be a host
    ``trust.allowed_hosts`` does not allow), see :func:`enclave.hosts.no_redirects`."""

    kind = "redirect-refused"


def status_error(fault: Fault, model: str) -> ModelError:
    """What an error status (with Ollama's error text) means for a request for ``model``."""
    if fault.not_found:
        return ModelNotFound(model)
    if fault.busy:
        return ModelBusy(
            f"Ollama is busy and did not take the request for {model}",
            "wait a moment and retry, or raise OLLAMA_NUM_PARALLEL / OLLAMA_MAX_QUEUE",
        )
    if fault.load_timeout:
        return ModelLoadTimeout(
            f"Ollama timed out loading {model}",
            "the model may be too large for this machine's memory: try a smaller one "
            "(e.g. deepseek-r1:1.5b) or raise OLLAMA_LOAD_TIMEOUT",
        )
    if fault.context_too_long:
        return ContextTooLong(
            f"the prompt is longer than {model}'s context window",
            "select less text or raise completion.num_ctx / chat.num_ctx",
        )
    status = f" (HTTP {fault.status})" if fault.status > 0 else ""
    return ModelError(
        f"Ollama failed{status}: {one_line(fault.error)}",
        "try again; if it keeps happening, check the Ollama server log",
    )
