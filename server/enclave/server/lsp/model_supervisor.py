"""The model client's supervisor: create it from the settings, check Ollama and the
configured models at start and after a settings change, and turn problems into status.

A missing Ollama or model makes the state ``degraded`` (search and symbols keep working) with the
fix in the `enclave/status` notification and one `window/showMessage`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from enclave.hosts import remote_note
from enclave.server.lsp.services import Services
from enclave.server.lsp.status import StatusReporter
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import ModelError

log = logging.getLogger(__name__)


class ModelSupervisor:
    def __init__(self, services: Services, status: StatusReporter) -> None:
        self.services = services
        self.status = status
        self._task: asyncio.Task[Any] | None = None
        self._warned: set[str] = set()

    def replace_client(self) -> None:
        self.services.model = ModelClient(self.services.config)

    async def aclose_client(self) -> None:
        model, self.services.model = self.services.model, None
        if model is not None:
            try:
                await model.aclose()
            except Exception:
                log.warning("closing the model client failed", exc_info=True)

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.create_task(self.check())

    async def check(self) -> ModelError | None:
        """Ask Ollama for its version and each configured model; publish the outcome."""
        model = self.services.model
        if model is None:
            return None
        ollama = self.services.config.ollama
        for url in ollama.effective_hosts:
            note = remote_note(url)
            if note and note not in self._warned:  # allowed, but not this machine: say it once
                self._warned.add(note)
                self.services.show_message(f"Enclave: {note}", types.MessageType.Warning)
        problem: ModelError | None = None
        try:
            for name in dict.fromkeys([ollama.chat_model, ollama.effective_completion_model]):
                model.check_model(name)  # the administrator's allowed_models, before any request
            if len(ollama.effective_hosts) > 1:
                await model.check_hosts()  # each server's state, for enclave/status (modelHosts)
            await model.version()
            for name in dict.fromkeys([ollama.chat_model, ollama.effective_completion_model]):
                await model.model_info(name)
        except ModelError as exc:
            problem = exc
        except Exception as exc:  # never let a health check take the server down
            log.warning("model check failed", exc_info=True)
            problem = ModelError(f"checking the model failed: {exc}", "run `enclave doctor`")
        self.services.model_problem = problem
        self.status.publish_all()
        if problem is None:
            await self._warm_up(model, ollama.effective_completion_model)
        return problem

    async def _warm_up(self, model: ModelClient, name: str) -> None:
        """Load the completion model now so the first completion does not wait for it (the chat
        model loads with the first question: loading both at once can exhaust a laptop's RAM)."""
        try:
            await model.warm_up([name])
            log.info("completion model %s loaded", name)
        except ModelError as exc:  # the first completion will report it if it persists
            log.warning("warming up %s failed: %s (%s)", name, exc.message, exc.fix)
