"""`enclave/status` notifications and the visible degraded states.

The state of a root is computed from what the server knows: the index cannot be opened or
updated -> ``error``; indexing under way -> ``indexing``; the team's shared index is out of
reach, the model is unreachable or missing, or
semantic search is off though an embedding provider is configured -> ``degraded`` (with
``message`` and ``fix``); otherwise ``ready``. Each
distinct degraded/error message is also shown once with `window/showMessage`.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from enclave.config import Config
from enclave.hosts import display_url, is_loopback
from enclave.server.lsp.services import Root, Services

log = logging.getLogger(__name__)
STATUS = "enclave/status"


def _problem(services: Services, root: Root) -> tuple[str, str, str]:
    """(state, message, fix) for ``root``."""
    if root.error is not None:
        return "error", root.error.message, root.error.fix
    if root.indexing:
        return "indexing", "indexing the repository", ""
    if root.status is not None and root.status.exists and not root.status.healthy:
        return "error", root.status.problem, root.status.fix
    if root.status is not None and root.status.partial:
        message = (
            f"indexing was cancelled before it finished: {root.status.files} files indexed so far"
        )
        return "degraded", message, "run `enclave.reindex` (Enclave: Reindex) to finish it"
    if root.status is not None and root.status.shared_problem:  # index.shared out of reach
        return "degraded", root.status.shared_problem, root.status.shared_fix
    if services.model_problem is not None:
        problem = services.model_problem
        message = f"{problem.message} (completions, explanations and questions are off; "
        message += "search and symbols still work)"
        return "degraded", message, problem.fix
    status = root.status
    # Semantic search turned off on purpose (embedding.provider = none) is a choice, not a fault.
    wanted = root.config.embedding.provider != "none"
    if status is not None and not status.semantic and wanted:
        reason = status.semantic_reason or "no embedding model"
        message = f"semantic search is off: {reason} (lexical search still works)"
        return "degraded", message, status.semantic_fix
    return "ready", "", ""


def status_payload(services: Services, root: Root) -> dict[str, Any]:
    state, message, fix = _problem(services, root)
    status = root.status
    config = root.config
    return {
        "state": state,
        "root": str(root.path),
        "files": status.files if status else 0,
        "chunks": status.chunks if status else 0,
        "symbols": status.symbols if status else 0,
        "semantic": bool(status and status.semantic),
        "semanticReason": status.semantic_reason if status else "",
        "semanticFix": status.semantic_fix if status else "",
        "modelHost": ", ".join(display_url(u) for u in config.ollama.effective_hosts),
        "modelHostLocal": all(is_loopback(u) for u in config.ollama.effective_hosts),
        # each model server and what this process knows of it (never the headers)
        "modelHosts": _hosts(services, config),
        "chatModel": config.ollama.chat_model,
        "completionModel": config.ollama.effective_completion_model,
        "message": message,
        "fix": fix,
    }


def _hosts(services: Services, config: Config) -> list[dict[str, Any]]:
    model = services.model
    if model is not None and model.config.ollama.effective_hosts == config.ollama.effective_hosts:
        return [
            {"host": h.name, "state": h.state, "inFlight": h.in_flight, "error": h.error}
            for h in model.host_states()
        ]
    return [
        {"host": display_url(u), "state": "unknown", "inFlight": 0, "error": ""}
        for u in config.ollama.effective_hosts
    ]


class StatusReporter:
    """Sends `enclave/status` for each root and shows each distinct problem once."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._shown: set[tuple[str, str]] = set()
        self.last: dict[str, dict[str, Any]] = {}

    def publish(self, root: Root) -> dict[str, Any]:
        payload = status_payload(self.services, root)
        self.last[str(root.path)] = payload
        state, message = payload["state"], payload["message"]
        if state in ("degraded", "error") and (state, message) not in self._shown:
            self._shown.add((state, message))
            text = f"Enclave ({state}): {message}"
            if payload["fix"]:
                text += f". Fix: {payload['fix']}"
            kind = types.MessageType.Error if state == "error" else types.MessageType.Warning
            self.services.show_message(text, kind)
        self.services.notify(STATUS, payload)  # after the message: a client sees both in order
        log.info("status %s: %s %s", root.path, state, message)
        return payload

    def publish_all(self) -> None:
        for root in self.services.roots:
            self.publish(root)
