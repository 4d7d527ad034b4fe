"""Where a prompt may go: loopback always, other hosts only when ``trust.allowed_hosts`` lists them.

Shared by the model client (server) and the embedding client (indexer): both send repository text
over HTTP. URLs are shown without the credentials they may carry (``http://user:secret@host``).

- ``allowed_hosts`` entries: a host name or IP address (exact), a network (``10.0.0.0/8``), or a
  name wildcard (``*.corp.example``) that matches DNS names only, never an IP address in any of
  its spellings (``10.0.0.2``, ``10.2``, ``0x0a.0.0.2``).
- Redirects are never followed: an allowed host answering 3xx would send the request, prompt and
  all, to a host nobody checked. :func:`no_redirects` gives the HTTP clients' settings that refuse
  them with one line saying which host redirected where (:class:`RedirectRefused`).
- The rest of the one path to the model servers (host health, headers, faults) is
  :mod:`enclave.modelservers`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from enclave.errors import EnclaveError

if TYPE_CHECKING:
    import httpx

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


_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IP address in any spelling a resolver or URL parser accepts:
    ``10.0.0.2``, ``::1``, and the short and numeric IPv4 forms (``10.2``, ``167772162``,
    ``0x0a.0.0.2``), i.e. whatever ends in a numeric label: no DNS name does."""
    host = host.strip("[]").rstrip(".")
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except (OSError, ValueError):
        pass
    return bool(_NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]))


def _listed(host: str, allowed: Sequence[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    literal = address is not None or is_ip_literal(host)
    for entry in allowed:
        entry = entry.strip().lower()
        if not entry:
            continue
        if "/" in entry:
            if address is None:
                continue
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif entry.startswith("*."):
            # a name wildcard matches DNS names only: "*.2" never matches 10.0.0.2
            if not literal and host.endswith(entry[1:]):
                return True
        elif host == entry.strip("[]"):
            return True
        elif address is not None:
            try:  # the same address written another way (::1 and 0:0::1)
                if address == ipaddress.ip_address(entry.strip("[]")):
                    return True
            except ValueError:
                continue
    return False


def check_host(
    url: str,
    allowed: Sequence[str],
    *,
    what: str = "the model server",
    setting: str = "ollama.host",
) -> None:
    """Raise :class:`HostNotAllowed` unless ``url`` is loopback or listed in ``allowed``
    (``setting``: where ``url`` comes from, for the fix)."""
    if is_loopback(url) or _listed(host_of(url), allowed):
        return
    raise HostNotAllowed(
        f"{what} at {display_url(url)} is not on this machine and not allowed: Enclave sends it "
        "your code",
        f"add {host_of(url) or url!r} to trust.allowed_hosts if your company runs it, or point "
        f"{setting} at a server on this machine",
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


def urls_setting(config: Config, *, embedding: bool = False) -> str:
    """The setting :func:`model_urls` come from, for messages."""
    if embedding and config.embedding.provider == "openai" and config.embedding.url:
        return "embedding.url"
    return "ollama.hosts" if config.ollama.hosts else "ollama.host"


def check_hosts(config: Config, *, embedding: bool = False, what: str = "the model server") -> None:
    """:func:`check_host` for every URL of :func:`model_urls` (a fleet is allowed whole, or not
    used); the fix names the setting they come from."""
    setting = urls_setting(config, embedding=embedding)
    for url in model_urls(config, embedding=embedding):
        check_host(url, config.trust.allowed_hosts, what=what, setting=setting)


def v1_base(url: str) -> str:
    """The ``/v1/`` base of an OpenAI-compatible server's URL (given with or without ``/v1``)."""
    base = url.rstrip("/")
    return (base if base.endswith("/v1") else base + "/v1") + "/"


# -- redirects ------------------------------------------------------------------------------------


class RedirectRefused(EnclaveError):
    """A model or embedding server answered with a redirect, which Enclave did not follow."""


def refused_redirect(
    response: httpx.Response,
    allowed: Sequence[str],
    *,
    setting: str = "ollama.host",
    what: str = "the model server",
) -> tuple[str, str] | None:
    """``(message, fix)`` when ``response`` is a redirect (3xx with a Location), else None."""
    if not (300 <= response.status_code < 400 and "location" in response.headers):
        return None
    origin = str(response.request.url)
    target = urljoin(origin, response.headers["location"])
    message = (
        f"{what} at {display_url(_base(origin))} redirected the request to {display_url(target)} "
        f"(HTTP {response.status_code}); Enclave did not follow it: a redirect could send your "
        "code to a host nobody allowed"
    )
    allow = ""
    try:
        check_host(target, allowed)
    except HostNotAllowed:
        allow = f" and add {host_of(target) or target!r} to trust.allowed_hosts"
    fix = f"point {setting} at the final address ({display_url(_base(target))}){allow}"
    return message, fix


def _base(url: str) -> str:
    """``scheme://host:port`` of ``url``, for messages (the path says nothing to a reader)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    return f"{parts.scheme}://{parts.netloc}"


def no_redirects(
    error: Callable[[str, str], Exception],
    allowed: Sequence[str],
    *,
    asynchronous: bool,
    setting: str = "ollama.host",
    what: str = "the model server",
) -> dict[str, Any]:
    """Keyword arguments for an ``httpx`` client (or ``ollama.Client``, which passes them on) that
    never follows a redirect and raises ``error(message, fix)`` when one comes, before the
    answer's body is read (see :func:`refused_redirect`)."""

    def check(response: httpx.Response) -> None:
        refused = refused_redirect(response, allowed, setting=setting, what=what)
        if refused is not None:
            raise error(*refused)

    async def acheck(response: httpx.Response) -> None:
        check(response)

    hook: Any = acheck if asynchronous else check
    return {"follow_redirects": False, "event_hooks": {"response": [hook]}}
