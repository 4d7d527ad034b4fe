"""The administrator's policy: a system-level file whose rules no user or repository setting can
loosen (``/etc/enclave/policy.toml``).

``ENCLAVE_POLICY`` names a second policy file that applies *beside* the system one: both apply and
the stricter rule wins (lists of what is never read or sent are joined, the models and hosts
allowed must be allowed by both, a switch that either turns on stays on). Where no system policy
exists it applies alone. An environment variable can therefore only add rules, never replace the
administrator's file.

Keys (all optional; a key that is absent leaves that rule to the user's settings)::

    allowed_models = ["deepseek-r1:*", "enclave-*"]   # every other model is refused
    never_index    = ["hr/**", "*.sql"]               # never read by the indexer
    redact_pii     = true                             # emails and phone numbers in prompts and index
    never_send     = ["payroll/**"]                   # indexed, never put in a prompt
    allowed_hosts  = ["ollama.corp.example"]          # the only hosts besides this machine
    require_audit  = true                             # the audit log cannot be turned off

Merging (``enclave.config.load_config``) only tightens: ``never_*`` lists are joined with the
user's; ``allowed_*`` lists are the policy's (intersected with the user's when the user lists
some); a ``true`` switch stays on. A file that cannot be read, is not TOML, has an unknown key or
a value of the wrong type fails closed: :attr:`Policy.error` is set and every model request and
every index update is refused with it until the administrator fixes the file. The file is read as
a regular file of at most :data:`enclave.files.SETTINGS_LIMIT` bytes (``/dev/zero`` and FIFOs are
refused, never read).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.files import SETTINGS_LIMIT, FileProblem, read_regular

# The system policy; tests replace this attribute (nothing a user sets can change it).
DEFAULT_POLICY_PATH = Path("/etc/enclave/policy.toml")
POLICY_ENV = "ENCLAVE_POLICY"

_LISTS = ("allowed_models", "never_index", "never_send", "allowed_hosts")
_SWITCHES = ("redact_pii", "require_audit")
KEYS = _LISTS + _SWITCHES


@dataclass(frozen=True, slots=True)
class Policy:
    """What the policy file says; an empty ``path`` means there is none."""

    path: str = ""
    error: str = ""  # the file is broken: everything that sends or reads code is refused
    allowed_models: tuple[str, ...] | None = None
    never_index: tuple[str, ...] = ()
    redact_pii: bool | None = None
    never_send: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None
    require_audit: bool | None = None
    # Policies whose ``allowed_models`` apply as well (the ENCLAVE_POLICY file beside the system
    # one): a model must be allowed by every list.
    also: tuple[Policy, ...] = ()

    @property
    def source(self) -> str:
        return f"policy {self.path}"

    def broken(self) -> str | None:
        """The one-line refusal for a broken policy file (None when it is fine or absent)."""
        if not self.error:
            return None
        return (
            f"the administrator's policy {self.path} cannot be used ({self.error}), so Enclave "
            "sends nothing to a model and indexes nothing"
        )

    def why_not_model(self, model: str) -> str | None:
        """Why ``model`` may not be used (None if it may)."""
        broken = self.broken()
        if broken is not None:
            return broken
        for other in self.also:
            why = other.why_not_model(model)
            if why is not None:
                return why
        if self.allowed_models is None or any(
            _model_matches(model, pattern) for pattern in self.allowed_models
        ):
            return None
        allowed = ", ".join(self.allowed_models) or "none"
        return f"the model {model} is not allowed by the policy {self.path} (allowed: {allowed})"


class PolicyProblem(ValueError):
    """A reason the policy file cannot be used (becomes :attr:`Policy.error`)."""


def _full(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _model_matches(model: str, pattern: str) -> bool:
    """``deepseek-r1`` matches ``deepseek-r1:latest``; patterns may use ``*`` and ``?``."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(model, pattern) or fnmatch.fnmatchcase(_full(model), pattern)
    return _full(model) == _full(pattern)


def policy_paths(env: Mapping[str, str] | None = None) -> tuple[Path, Path | None]:
    """The system policy file, and the file ``ENCLAVE_POLICY`` adds beside it (None if unset)."""
    env = os.environ if env is None else env
    named = env.get(POLICY_ENV, "").strip()
    return DEFAULT_POLICY_PATH, Path(named).expanduser() if named else None


def _list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyProblem(f"{key} must be a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def parse_policy(data: Mapping[str, Any], path: str) -> Policy:
    """Check every key and value; raises :class:`PolicyProblem` naming the first bad one."""
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise PolicyProblem(
            f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)}); a misspelt rule must not "
            "leave everything allowed"
        )
    values: dict[str, Any] = {}
    for key in _LISTS:
        if key in data:
            values[key] = _list(key, data[key])
    for key in _SWITCHES:
        if key in data:
            if not isinstance(data[key], bool):
                raise PolicyProblem(f"{key} must be true or false, got {data[key]!r}")
            values[key] = data[key]
    return Policy(path=path, **values)


def load_policy(env: Mapping[str, str] | None = None) -> Policy:
    """The policy in force: the system file's (none when it does not exist), tightened by the
    file ``ENCLAVE_POLICY`` names; broken (with ``error``) when either cannot be used."""
    system_path, added_path = policy_paths(env)
    system = _read_policy(system_path, named=False)
    if added_path is None:
        return system
    added = _read_policy(added_path, named=True)
    return combine(system, added) if system.path else added


def _read_policy(path: Path, *, named: bool) -> Policy:
    shown = str(path)
    try:
        raw = read_regular(path, SETTINGS_LIMIT, "policy file")
    except FileNotFoundError:
        if named:
            return Policy(shown, f"{POLICY_ENV} names a file that does not exist")
        return Policy()
    except FileProblem as exc:
        return Policy(shown, exc.message.replace(f"the policy file {shown} ", "it "))
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return parse_policy(data, shown)
    except UnicodeDecodeError as exc:
        return Policy(shown, f"it is not UTF-8 text (byte {exc.start})")
    except tomllib.TOMLDecodeError as exc:
        return Policy(shown, f"it is not valid TOML: {exc}")
    except PolicyProblem as exc:
        return Policy(shown, str(exc))


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))


def _switch(a: bool | None, b: bool | None) -> bool | None:
    return True if a or b else (a if a is not None else b)


def combine(system: Policy, added: Policy) -> Policy:
    """Both policies at once, the stricter rule winning; a broken one breaks the whole."""
    for policy in (system, added):
        if policy.error:
            return policy
    hosts = system.allowed_hosts
    if added.allowed_hosts is not None:
        if hosts is None:
            hosts = added.allowed_hosts
        else:
            wanted = {h.lower() for h in added.allowed_hosts}
            hosts = tuple(h for h in hosts if h.lower() in wanted)
    models = system.allowed_models
    also: tuple[Policy, ...] = ()
    if added.allowed_models is not None:
        if models is None:
            models = added.allowed_models
        else:
            also = (added,)
    return Policy(
        path=f"{system.path} + {added.path}",
        allowed_models=models,
        never_index=_union(system.never_index, added.never_index),
        redact_pii=_switch(system.redact_pii, added.redact_pii),
        never_send=_union(system.never_send, added.never_send),
        allowed_hosts=hosts,
        require_audit=_switch(system.require_audit, added.require_audit),
        also=also,
    )
