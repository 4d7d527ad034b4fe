"""The administrator's policy: a system-level file whose rules no user or repository setting can
loosen (``/etc/enclave/policy.toml``; ``ENCLAVE_POLICY`` names another file).

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
every index update is refused with it until the administrator fixes the file.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def policy_path(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The policy file to read, and whether it was named explicitly (``ENCLAVE_POLICY``)."""
    env = os.environ if env is None else env
    named = env.get(POLICY_ENV, "").strip()
    return (Path(named).expanduser(), True) if named else (DEFAULT_POLICY_PATH, False)


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
    """The policy in force: none when the default file does not exist; a broken one (with
    ``error``) when it, or a file named by ``ENCLAVE_POLICY``, cannot be used."""
    path, named = policy_path(env)
    shown = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if named:
            return Policy(shown, f"{POLICY_ENV} names a file that does not exist")
        return Policy()
    except OSError as exc:
        return Policy(shown, f"cannot read it: {exc.strerror or exc}")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return parse_policy(data, shown)
    except UnicodeDecodeError as exc:
        return Policy(shown, f"it is not UTF-8 text (byte {exc.start})")
    except tomllib.TOMLDecodeError as exc:
        return Policy(shown, f"it is not valid TOML: {exc}")
    except PolicyProblem as exc:
        return Policy(shown, str(exc))
