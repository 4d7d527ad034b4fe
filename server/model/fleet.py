"""Which model server a request goes to, when ``ollama.hosts`` lists several (a team's fleet).

Pure bookkeeping, no I/O: the model client asks :meth:`Fleet.order` for the hosts to try, in
order, and reports back what happened (:meth:`Fleet.failed`, :meth:`Fleet.answered`).

- Health: a host that refused a connection, broke one, or answered 5xx is *down* for a back-off
  (``DOWN_FIRST`` seconds, doubled per failure in a row up to ``DOWN_MOST``); once it has passed the
  host is *due*: the client probes it (``GET /api/version``) before sending it a prompt. When
  every host is down they are still tried, soonest-back first: the request itself is the probe.
- Least busy: among healthy hosts, the one with the fewest requests in flight from this process
  goes first (ties keep the configured order, so a fleet of one idle host behaves like one host).
- Sticky completions: a completion goes back to the host that served this session's previous one
  while it is healthy and not clearly busier (at most ``STICKY_SLACK`` more requests in flight than
  the least busy host). Completion prompts start with the same long, stable prefix (the
  repository context, see ``completion.cache_friendly``), which that host's prompt cache already
  holds: another host would evaluate the whole prompt again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DOWN_FIRST = 2.0  # seconds a failed host is left alone before it is probed again
DOWN_MOST = 30.0
STICKY_SLACK = 1  # in-flight requests a sticky host may have beyond the least busy one


@dataclass
class Host:
    """One model server of the fleet, and what this process knows of it."""

    url: str  # as configured (may carry credentials: never print it)
    name: str  # for messages: the URL without credentials
    backend: Any = None  # the API client for this host (ollama.AsyncClient or OpenAIBackend)
    in_flight: int = 0
    down_until: float = 0.0  # clock time; 0: up
    failures: int = 0  # in a row
    last_error: str = ""  # why it is down (never a header value)
    version: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # model name -> ModelInfo

    @property
    def down(self) -> bool:
        return self.down_until > 0


class Fleet:
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
        """``host`` refused, broke or answered 5xx: leave it alone for a while."""
        host.failures += 1
        backoff = min(DOWN_MOST, DOWN_FIRST * 2 ** (host.failures - 1))
        host.down_until = self.clock() + backoff
        host.last_error = reason

    def answered(self, host: Host) -> None:
        """``host`` answered: it is up again."""
        host.failures = 0
        host.down_until = 0.0
        host.last_error = ""
