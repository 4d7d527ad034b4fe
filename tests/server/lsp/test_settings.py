"""Settings from the client: what replaces what."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from enclave.server.lsp.services import Services
from enclave.server.lsp.settings import client_overrides


def test_client_settings_replace_initialization_options() -> None:
    services = cast(
        Services, SimpleNamespace(init_options={"ollama": {"chatModel": "a"}}, client_settings=None)
    )
    assert client_overrides(services) == {"ollama": {"chatModel": "a"}}
    services.client_settings = {"completion": {"debounceMs": 5}}
    assert client_overrides(services) == {"completion": {"debounceMs": 5}}
    services.client_settings = {}  # the user removed every setting: defaults, not stale values
    assert client_overrides(services) == {}
