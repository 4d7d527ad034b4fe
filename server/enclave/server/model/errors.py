"""The few model errors Enclave shows people: what is wrong (``message``), what to do (``fix``).

Every failure of the Ollama server or of a stream is mapped to one of these by the client
(:mod:`enclave.server.model.client`, from the faults :mod:`enclave.modelservers` tells apart), so
editors and the CLI show one clear message instead of an HTTP status or a traceback.
"""

from __future__ import annotations

from enclave import hosts
from enclave.errors import EnclaveError


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
