"""Where a prompt may go: loopback always, other hosts only when ``trust.allowed_hosts`` lists them.

Shared by the model client (server) and the embedding client (indexer): both send repository text
over HTTP. URLs are shown without the credentials they may carry (``http://user:secret@host``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from enclave.errors import EnclaveError

if TYPE_CHECKING:
    from enclave.config import Config

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class HostNotAllowed(EnclaveError):
    """A model or embedding server that the configuration does not allow prompts to reach."""


def host_of(url: str) -> str:
    """The host name or address of ``url`` (lower case, no brackets), "" if it has none."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def display_url(url: str) -> str:
    """``url`` with any user name and password hidden, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    netloc = "***@" + parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc).geturl()


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1, localhost; 0.0.0.0 and :: as
    Ollama's own OLLAMA_HOST default, which a client reaches on loopback)."""
    host = host_of(url)
    if host in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _listed(host: str, allowed: Sequence[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in allowed:
        entry = entry.strip().lower()
        if not entry:
            continue
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif (entry.startswith("*.") and host.endswith(entry[1:])) or host == entry.strip("[]"):
            return True
    return False


def check_host(url: str, allowed: Sequence[str], *, what: str = "the model server") -> None:
    """Raise :class:`HostNotAllowed` unless ``url`` is loopback or listed in ``allowed``."""
    if is_loopback(url) or _listed(host_of(url), allowed):
        return
    raise HostNotAllowed(
        f"{what} at {display_url(url)} is not on this machine and not allowed: Enclave sends it "
        "your code",
        f"add {host_of(url) or url!r} to trust.allowed_hosts if your company runs it, or point "
        "ollama.host at a server on this machine",
    )


def remote_note(url: str) -> str:
    """A one-line warning for an allowed host that is not this machine ("" for loopback)."""
    if is_loopback(url):
        return ""
    return (
        f"prompts and code are sent to {display_url(url)}, which is not this machine "
        "(allowed by trust.allowed_hosts)"
    )


def model_urls(config: Config, *, embedding: bool = False) -> tuple[str, ...]:
    """Where this configuration sends prompts (``embedding``: where it sends chunk text)."""
    if embedding and config.embedding.provider == "openai" and config.embedding.url:
        return (config.embedding.url,)
    return config.ollama.effective_hosts


def v1_base(url: str) -> str:
    """The ``/v1/`` base of an OpenAI-compatible server's URL (given with or without ``/v1``)."""
    base = url.rstrip("/")
    return (base if base.endswith("/v1") else base + "/v1") + "/"
