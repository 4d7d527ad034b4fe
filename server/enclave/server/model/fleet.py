"""Which model server a request goes to, when ``ollama.hosts`` lists several (a team's fleet).

The bookkeeping (:class:`Fleet`, :class:`Host`) lives in :mod:`enclave.hosts`, shared with the
embedders of the indexer, which try the same servers; see there for the rules. For the model
client:

- Health: a host that refused a connection, broke one, or answered 5xx is *down* for a back-off;
  once it has passed the host is *due*: the client probes it (``GET /api/version``) before sending
  it a prompt.
- Sticky completions: a completion goes back to the host that served this session's previous one
  while it is healthy and not clearly busier. Completion prompts start with the same long, stable
  prefix (the repository context, see ``completion.cache_friendly``), which that host's prompt
  cache already holds: another host would evaluate the whole prompt again.
"""

from __future__ import annotations

from enclave.hosts import DOWN_FIRST, DOWN_MOST, STICKY_SLACK, Fleet, Host

__all__ = ["DOWN_FIRST", "DOWN_MOST", "STICKY_SLACK", "Fleet", "Host"]
