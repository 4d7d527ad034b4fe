"""`enclave doctor`: is everything Enclave needs in place, and what to do when it is not.

Checks, in order: OLLAMA_HOST on loopback; Ollama reachable and its version (thinking needs
0.9, older versions have known CVEs); each configured model pulled, with its capabilities and
whether the completion model can fill in the middle; memory against model sizes; index health.
Each check is ``ok``, ``warn`` or ``error`` with a message and a fix. Never pulls anything.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from enclave import hosts
from enclave.config import Config
from enclave.hosts import HostNotAllowed, display_url, host_of, is_loopback
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import ModelError, ModelNotFound

log = logging.getLogger(__name__)

THINKING_VERSION = (0, 9, 0)
# Ollama releases that fixed published vulnerabilities: running anything older is exposed.
CVE_FIXES: tuple[tuple[tuple[int, int, int], str], ...] = (
    ((0, 1, 34), "CVE-2024-37032 (path traversal leading to remote code execution)"),
    ((0, 1, 47), "CVE-2024-39722, CVE-2024-45436 (file disclosure / path traversal)"),
)
SMALL_CHAT = "deepseek-r1:1.5b"
SMALL_CODER = "qwen2.5-coder:1.5b"
GB = 1024**3


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "error" | "skipped"
    message: str
    fix: str = ""


@dataclass
class ModelReport:
    name: str
    roles: list[str]
    pulled: bool
    capabilities: list[str] = field(default_factory=list)
    fim: bool = False
    size_bytes: int | None = None
    context_length: int | None = None


@dataclass
class DoctorReport:
    ok: bool
    host: str
    version: str | None
    checks: list[Check]
    models: list[ModelReport]
    memory: dict[str, int]
    index: dict[str, Any] | None
    # each server of a fleet (ollama.hosts) and its state; empty for a single server
    hosts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_version(text: str) -> tuple[int, int, int]:
    numbers = []
    for part in text.strip().lstrip("v").split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


def read_memory(meminfo: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """Total and available RAM in bytes ({} where the system does not say)."""
    out: dict[str, int] = {}
    try:
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                value = int(rest.split()[0]) * 1024
                out["total_bytes" if key == "MemTotal" else "available_bytes"] = value
    except (OSError, ValueError, IndexError):
        pass
    return out


def check_host(url: str, allowed: tuple[str, ...] = ()) -> Check:
    host = display_url(url)  # never the credentials a URL may carry
    name = host_of(url)
    if name in ("0.0.0.0", "::"):
        return Check(
            "loopback",
            "warn",
            f"OLLAMA_HOST is {host}: an Ollama set up like this listens on every network "
            "interface, so anyone who can reach this machine can use it and read prompts",
            "set OLLAMA_HOST=127.0.0.1:11434 for both Ollama and Enclave",
        )
    if is_loopback(url):
        return Check("loopback", "ok", f"Ollama at {host} is on this machine (loopback)")
    try:
        hosts.check_host(url, allowed)
    except HostNotAllowed as exc:
        return Check("loopback", "error", exc.message, exc.fix)
    return Check(
        "loopback",
        "warn",
        f"!!! OLLAMA_HOST is {host}, NOT this machine: every prompt, including your code, "
        "travels over the network to it",
        "use http://127.0.0.1:11434 unless that machine is yours and the link is trusted",
    )


def _human(size: int | None) -> str:
    return f"{size / GB:.1f} GB" if size else "unknown size"


async def run_doctor(config: Config, root: Path | None) -> DoctorReport:
    """Run every check; never raises for a failing check (it is reported instead)."""
    o = config.ollama
    host = ", ".join(display_url(u) for u in o.effective_hosts)
    checks = [check_host(u, config.trust.allowed_hosts) for u in o.effective_hosts]
    checks += _policy_checks(config)
    models: list[ModelReport] = []
    servers: list[dict[str, Any]] = []
    memory = read_memory()
    client = ModelClient(config)
    version: str | None = None
    kind = "the OpenAI-compatible server" if o.api == "openai" else "Ollama"
    try:
        try:
            if len(o.effective_hosts) > 1:
                for state in await client.check_hosts():  # each server of the fleet
                    servers.append(asdict(state))
                    if state.state == "up":
                        checks.append(
                            Check(f"host:{state.name}", "ok", f"{kind} answers at {state.name}")
                        )
                    else:
                        checks.append(
                            Check(
                                f"host:{state.name}",
                                "error",
                                f"model server {state.name} is down: {state.error}",
                                "start it or check the network to it; requests go to the "
                                "other servers of ollama.hosts meanwhile",
                            )
                        )
            version = await client.version()
        except ModelError as exc:
            checks.append(Check("ollama", "error", exc.message, exc.fix))
        else:
            if o.api == "openai":
                checks.append(Check("ollama", "ok", f"{kind} answers at {host}"))
            else:
                checks.append(Check("ollama", "ok", f"Ollama {version} answers at {host}"))
                checks.extend(_version_checks(version))
            models = await _model_checks(client, config, checks)
            checks.extend(_memory_checks(models, memory, config))
    finally:
        await client.aclose()
    index = _index_check(config, root, checks)
    ok = not any(c.status == "error" for c in checks)
    return DoctorReport(ok, host, version, checks, models, memory, index, servers)


def _version_checks(version: str) -> list[Check]:
    found = parse_version(version)
    out = []
    exposed = [cves for fixed, cves in CVE_FIXES if found < fixed]
    if exposed:
        out.append(
            Check(
                "ollama-security",
                "warn",
                f"Ollama {version} has known vulnerabilities: {'; '.join(exposed)}",
                "upgrade Ollama to the latest release (https://ollama.com/download)",
            )
        )
    if found < THINKING_VERSION:
        out.append(
            Check(
                "ollama-thinking",
                "warn",
                f"Ollama {version} predates 0.9: it cannot return thinking apart, so Enclave "
                "strips <think> text from answers instead",
                "upgrade Ollama to 0.9 or later",
            )
        )
    if not out:
        out.append(Check("ollama-version", "ok", f"Ollama {version} is recent enough"))
    return out


def _policy_checks(config: Config) -> list[Check]:
    """The administrator's policy: which file, and a configured model it does not allow."""
    policy = config.policy
    if not policy.path:
        return []
    checks = [Check("policy", "ok", f"administrator's policy {policy.path} in force")]
    for model, roles in _roles(config).items():
        why = policy.why_not_model(model)
        if why is not None:
            fix = f"set the {' and '.join(roles)} model to one the policy allows"
            checks.append(Check(f"policy:{model}", "error", why, fix))
    return checks


def _roles(config: Config) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    roles.setdefault(config.ollama.chat_model, []).append("chat")
    roles.setdefault(config.ollama.effective_completion_model, []).append("completion")
    if config.embedding.provider == "ollama" or (
        config.embedding.provider == "openai" and not config.embedding.url
    ):
        roles.setdefault(config.embedding.model, []).append("embedding")
    return roles


async def _model_checks(
    client: ModelClient, config: Config, checks: list[Check]
) -> list[ModelReport]:
    reports = []
    for name, roles in _roles(config).items():
        label = f"model {name} ({', '.join(roles)})"
        try:
            info = await client.model_info(name)
        except ModelNotFound as exc:
            checks.append(Check(f"model:{name}", "error", f"{label} is not pulled", exc.fix))
            reports.append(ModelReport(name, roles, pulled=False))
            continue
        except ModelError as exc:
            checks.append(Check(f"model:{name}", "error", f"{label}: {exc.message}", exc.fix))
            reports.append(ModelReport(name, roles, pulled=False))
            continue
        caps = sorted(info.capabilities)
        fim = "insert" in info.capabilities
        reports.append(
            ModelReport(name, roles, True, caps, fim, info.size_bytes, info.context_length)
        )
        window = _window_check(config, name, info.context_length)
        if window is not None:
            checks.append(window)
        if not caps:  # Ollama before 0.6.4 lists none: nothing to check them against
            checks.append(
                Check(
                    f"model:{name}",
                    "warn",
                    f"{label} is pulled; the server reports no capabilities (Ollama before "
                    "0.6.4), so Enclave assumes it generates text and does not fill in the middle",
                    "upgrade Ollama (https://ollama.com/download) so Enclave can see what the "
                    "model can do",
                )
            )
            continue
        checks.append(
            Check(f"model:{name}", "ok", f"{label} is pulled; capabilities: {', '.join(caps)}")
        )
        if ("chat" in roles or "completion" in roles) and "completion" not in info.capabilities:
            checks.append(
                Check(
                    f"model:{name}:generate",
                    "error",
                    f"{name} cannot generate text (capabilities: {', '.join(caps)})",
                    f"set ollama.chat_model to a chat model, e.g. {SMALL_CHAT}",
                )
            )
        if "completion" in roles:
            if fim:
                checks.append(
                    Check("fim", "ok", f"{name} fills in the middle: completions use `suffix`")
                )
            else:
                checks.append(
                    Check(
                        "fim",
                        "warn",
                        f"{name} has no `insert` capability: completions use a chat prompt, "
                        "slower and less exact",
                        f"set ollama.completion_model to a coder model with FIM, e.g. {SMALL_CODER}",
                    )
                )
        if "embedding" in roles and "embedding" not in info.capabilities:
            checks.append(
                Check(
                    f"model:{name}:embedding",
                    "warn",
                    f"{name} is not an embedding model: semantic search may be poor",
                    "set embedding.model to an embedding model, e.g. nomic-embed-text",
                )
            )
    return reports


def _window_check(config: Config, name: str, served: int | None) -> Check | None:
    """With ``ollama.api = "openai"``: the window the server says it runs ``name`` at (vLLM's
    ``max_model_len``) against ``ollama.openai_context_length``, which prompts are fitted to."""
    said = config.ollama.openai_context_length
    if config.ollama.api != "openai" or not served or served == said:
        return None
    if served < said:
        return Check(
            f"window:{name}", "error",
            f"the server runs {name} with a {served}-token window, but prompts are fitted to "
            f"ollama.openaiContextLength ({said}): it would cut longer ones from the front",
            f"set ollama.openaiContextLength = {served}",
        )  # fmt: skip
    return Check(
        f"window:{name}", "warn",
        f"the server runs {name} with a {served}-token window; prompts use "
        f"ollama.openaiContextLength ({said})",
        f"set ollama.openaiContextLength = {served} to give prompts and thinking more room",
    )  # fmt: skip


def _memory_checks(
    models: list[ModelReport], memory: dict[str, int], config: Config
) -> list[Check]:
    available = memory.get("available_bytes") or memory.get("total_bytes")
    if not available:
        return [Check("memory", "skipped", "could not read this machine's memory")]
    out = []
    for model in models:
        if not model.size_bytes:
            continue
        if model.size_bytes * 1.2 > available:
            better = SMALL_CODER if model.roles == ["completion"] else SMALL_CHAT
            out.append(
                Check(
                    f"memory:{model.name}",
                    "warn",
                    f"{model.name} needs about {_human(int(model.size_bytes * 1.2))} with its "
                    f"context; {_human(available)} is available: it may not load or swap heavily",
                    f"use a smaller model such as {better}",
                )
            )
    completion = next((m for m in models if "completion" in m.roles and m.pulled), None)
    if completion and completion.size_bytes and completion.size_bytes > 2 * GB:
        out.append(
            Check(
                "memory:completion-speed",
                "warn",
                f"{completion.name} ({_human(completion.size_bytes)}) is large for inline "
                "completions on a CPU: expect seconds per suggestion",
                f"for completions on CPU use a small coder model, e.g. {SMALL_CODER}",
            )
        )
    if not out:
        out.append(Check("memory", "ok", f"{_human(available)} available fits the models"))
    return out


def _index_check(config: Config, root: Path | None, checks: list[Check]) -> dict[str, Any] | None:
    if root is None:
        checks.append(Check("index", "skipped", "not inside a repository"))
        return None
    from enclave.indexer.api import IndexProblem, open_index

    try:
        index = open_index(root, config)
        try:
            status = index.status()
        finally:
            index.close()
    except IndexProblem as exc:
        log.debug("index status failed", exc_info=True)
        checks.append(Check("index", "error", exc.message, exc.fix))
        return None
    data = asdict(status)
    if not status.exists:
        checks.append(
            Check("index", "warn", f"{root} has no index yet", "run `enclave index` in it")
        )
    elif not status.healthy:
        checks.append(Check("index", "error", status.problem, status.fix))
    elif not status.semantic:
        checks.append(
            Check(
                "index",
                "warn",
                f"index: {status.files} files, {status.chunks} chunks; semantic search is off "
                f"({status.semantic_reason or 'no embeddings'})",
                status.semantic_fix or "run `enclave index` once semantic search can work",
            )
        )
    else:
        checks.append(
            Check(
                "index",
                "ok",
                f"index: {status.files} files, {status.chunks} chunks at commit "
                f"{(status.commit or 'none')[:12]}, semantic search on ({status.embedding_model})",
            )
        )
    return data


def render(report: DoctorReport) -> str:
    marks = {"ok": "ok  ", "warn": "WARN", "error": "FAIL", "skipped": "--  "}
    lines = []
    for check in report.checks:
        line = f"[{marks.get(check.status, check.status)}] {check.message}"
        if check.fix and check.status != "ok":
            line += f"\n       fix: {check.fix}"
        lines.append(line)
    verdict = "ready" if report.ok else "not ready: fix the FAIL lines above"
    lines.append(f"enclave doctor: {verdict}")
    return "\n".join(lines)
