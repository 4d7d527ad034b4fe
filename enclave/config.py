"""Enclave's one configuration model: typed sections, loaded once and passed down explicitly.

Every setting is one field below, and its metadata is the one settings schema: the description,
the bounds and choices the loader enforces, and who may set it. ``python -m
enclave.settings_schema`` generates from it the JSON schema, VS Code's settings, the Neovim
plugin's table and the settings table in docs/protocol.md; adding a setting is one field here and
that command.

Precedence, highest first: explicit overrides (LSP initializationOptions / workspace
configuration, CLI flags) > ``ENCLAVE_*`` environment (and ``OLLAMA_HOST``) > ``.enclave.toml`` in
the repository > the user config (``$XDG_CONFIG_HOME/enclave/config.toml``) > defaults.

Who may set what is one table, the metadata of each field below (:func:`who_may_set`; the table in
docs/security.md is checked against it): the administrator's policy only tightens; the user (the
user config, the environment, the editor or the command line) sets everything but the policy's
own rules; a repository's ``.enclave.toml`` sets what cannot send or write anything elsewhere,
may only *add* to what is never read or sent and turn protections on, and never chooses where
data is written (outside itself) or sent. Those rules are enforced here, in :func:`load_config`,
and nowhere else.

An invalid value never stops the program: the loader records a :class:`ConfigIssue` naming the
key and the reason, keeps the default (or the value from a lower layer), and carries on. Callers
show the issues to the user (CLI: stderr; server: showMessage + log).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from enclave.files import SETTINGS_LIMIT, FileProblem, read_regular
from enclave.policy import Policy, load_policy

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"

# What a repository's .enclave.toml may do with a setting (the field's metadata "repository"):
REPO_SETS = "sets it"  # harmless: a model, a timeout, a budget
REPO_ADDS = "adds to it"  # a list of what is never read or sent: joined with the user's
REPO_TURNS_ON = "turns it on only"  # a protection: `false` from a repository is ignored
REPO_LOWERS = "lowers it only"  # a cap: a larger value from a repository is ignored
REPO_INSIDE = "a folder inside itself only"  # a path: relative, inside the repository
REPO_NO = "no"


def _setting(
    default: Any,
    description: str,
    repository: str = REPO_SETS,
    why: str = "",
    *,
    policy: str = "",
    user: bool = True,
    positive: bool = False,
    choices: tuple[str, ...] = (),
    per_machine: bool = False,
) -> Any:
    """A setting: its default and the schema's metadata.

    ``description``: what it does, as the user reads it (Markdown; other settings named as
    `section.camelKey`). ``repository``: what a repository's .enclave.toml may do with it (one of
    REPO_*) and, for REPO_NO, ``why`` it may not; ``policy``: what the administrator's policy
    does to it (empty: nothing); ``user`` False: only the policy sets it (not the user, the
    editor or the environment). ``positive``: a number that must be above zero (every number is
    at least zero); ``choices``: the only strings allowed; ``per_machine``: usually one value per
    machine, which a workspace may still override (an editor's scope)."""
    return field(
        default=default,
        metadata={
            "description": description,
            "repository": repository,
            "why": why,
            "policy": policy,
            "user": user,
            "positive": positive,
            "choices": choices,
            "per_machine": per_machine,
        },
    )


_SENDS = "a repository cannot set it: it chooses where data is sent"
_WRITES = "a repository cannot set it: it chooses where data is written"
_DELETES = "a repository cannot set it: it chooses which files are deleted"


@dataclass(frozen=True, slots=True)
class IndexConfig:
    db: str = _setting(
        "",
        "Where the index lives: a directory or an `s3://` URI. Empty: `.enclave/` at the "
        "repository root.",
        REPO_INSIDE,
    )
    shared: str = _setting(
        "",
        "A team's index built by CI (a directory or an `s3://` URI), read and never written; "
        "what differs in the working tree is indexed into the local store (`index.db`) as an "
        "overlay that shadows it (docs/team.md).",
        per_machine=True,
    )
    shared_copy: bool = _setting(
        True,
        "Copy a shared index in an object store into the user cache "
        "(`~/.cache/enclave/shared/`) in the background, only the files not copied yet, and read "
        "the copy once it is complete and verified; off: every query reads the store "
        "(docs/team.md).",
        per_machine=True,
    )
    retain_minutes: int = _setting(
        10,
        "Minutes old table versions are kept when an update folds new rows into the indexes and "
        "compacts the tables (readers that opened one finish on it); 0 removes them at once, on "
        "every update.",
    )
    lease: bool = _setting(
        True,
        "Take a write lease (an object written with S3 conditional writes) before writing an "
        "`s3://` index; off only where one writer at a time is guaranteed another way (a CI "
        "concurrency group; docs/team.md).",
        REPO_TURNS_ON,
    )
    s3_endpoint: str = _setting(
        "",
        "Endpoint URL of an S3-compatible store (MinIO, R2), over `AWS_ENDPOINT_URL`. "
        "Credentials come from the environment only (`AWS_ACCESS_KEY_ID`, ...).",
        REPO_NO,
        _SENDS,
    )
    s3_region: str = _setting("", "Region of the S3 store, over `AWS_REGION`.", REPO_NO, _SENDS)
    max_file_bytes: int = _setting(
        1024 * 1024,
        "Files larger than this many bytes are not indexed.",
        REPO_LOWERS,
        positive=True,
    )
    exclude: tuple[str, ...] = _setting(
        (), "Extra gitignore-style patterns of files not to index.", REPO_ADDS
    )
    never_index: tuple[str, ...] = _setting(
        (),
        "Gitignore-style patterns from the administrator's policy (never set by a user or a "
        "repository).",
        REPO_NO,
        "only the administrator's policy sets it (never_index); use index.exclude for your own "
        "patterns",
        policy="sets it",
        user=False,
    )


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    provider: str = _setting(
        "ollama",
        "Where the vectors for semantic search come from: `ollama` (Ollama's `/api/embed`), "
        "`openai` (`/v1/embeddings` of an OpenAI-compatible server: `embedding.url`, or the "
        "model servers; model id `openai:<model>` in the index), `local` (in-process "
        "sentence-transformers, needs the `local` extra) or `none` (lexical search only).",
        choices=("ollama", "openai", "local", "none"),
    )
    url: str = _setting(
        "",
        "With `embedding.provider` = `openai`: the embedding server's URL (with or without "
        "`/v1`); empty: the model servers (`ollama.hosts` / `ollama.host`). It must pass "
        "`trust.allowedHosts`, and `ollama.headers` are sent to it.",
        REPO_NO,
        _SENDS,
    )
    model: str = _setting(
        "nomic-embed-text",
        "The embedding model (an Ollama model, or a sentence-transformers model for `local`).",
    )
    batch_size: int = _setting(32, "Chunks embedded per request.", positive=True)
    concurrency: int = _setting(
        2,
        "Embedding requests to Ollama in flight while indexing (the next batch is sent while the "
        "last one's vectors are stored); the in-process `local` provider embeds one batch at a "
        "time.",
        positive=True,
    )
    timeout: float = _setting(
        60.0,
        "Seconds Ollama may take to embed one batch while indexing; past it, indexing finishes "
        "without vectors and says why.",
        positive=True,
    )
    query_timeout: float = _setting(
        1.0,
        "Seconds Ollama may take to embed a search's query; past it, the search returns lexical "
        "results and says why.",
        positive=True,
    )
    document_prefix: str = _setting(
        "auto",
        "Text put before each chunk when it is embedded. `auto`: the task prefix the model was "
        "trained with, for the models Enclave knows (`search_document: ` for nomic-embed-text; "
        'none for the others); `""`: none. A change re-embeds the index once.',
    )
    query_prefix: str = _setting(
        "auto",
        "Text put before a search's query when it is embedded. `auto`: the model's own "
        "(`search_query: ` for nomic-embed-text, `Represent this sentence for searching "
        'relevant passages: ` for mxbai-embed-large and snowflake-arctic-embed); `""`: none.',
    )


@dataclass(frozen=True, slots=True)
class OllamaConfig:
    host: str = _setting(
        DEFAULT_OLLAMA_HOST,
        "The Ollama server (`OLLAMA_HOST` when that is set). Keep it on loopback so code never "
        "leaves the machine.",
        REPO_NO,
        _SENDS,
    )
    hosts: tuple[str, ...] = _setting(
        (),
        "A team's fleet of model servers; when set it replaces `ollama.host`. Each must be this "
        "machine or pass `trust.allowedHosts`. Requests go to the least busy healthy server "
        "(completions stay on the one that served the last, whose prompt cache holds their "
        "prefix) and move to the next when one is down or answers 5xx before the answer starts "
        "(docs/team.md). `ENCLAVE_OLLAMA_HOSTS` takes them comma-separated.",
        REPO_NO,
        _SENDS,
    )
    api: str = _setting(
        "ollama",
        "The servers' API: `ollama` (Ollama's `/api/*`) or `openai` (an OpenAI-compatible "
        "`/v1/*` server such as vLLM, llama.cpp's server or Ollama's own `/v1`; docs/team.md).",
        choices=("ollama", "openai"),
        per_machine=True,
    )
    headers: tuple[tuple[str, str], ...] = _setting(
        (),
        "HTTP headers sent with every request to the model servers (chat, completion, model "
        "information, warm-up, health probes, embeddings), e.g. "
        '`{"Authorization": "Bearer ${TEAM_TOKEN}"}` for a reverse proxy that authenticates. '
        "`${NAME}` is replaced by that environment variable (unset: every request is refused, "
        "naming the variable), so secrets need not be written here. Values are never logged or "
        'shown (`"***"`). `ENCLAVE_OLLAMA_HEADERS` takes `Name: value` lines or a JSON object.',
        REPO_NO,
        "a repository cannot set request headers (they may carry credentials)",
    )
    openai_context_length: int = _setting(
        4096,
        "With `ollama.api` = `openai`: the context window the server runs its models at (vLLM "
        "`--max-model-len`, llama.cpp's server `-c`, `OLLAMA_CONTEXT_LENGTH` for Ollama's `/v1`; "
        "the API cannot ask for one per request). `completion.numCtx` and `chat.numCtx` are held "
        "to it, so prompts are fitted to the window the server really has instead of being cut "
        "from the front by it.",
        positive=True,
    )
    openai_fim: bool = _setting(
        False,
        "With `ollama.api` = `openai`: the completion model fills in the middle (`suffix` on "
        "`/v1/completions`); off: completions use the chat prompt and the extractor.",
    )
    chat_model: str = _setting("deepseek-r1", "The model that explains code and answers questions.")
    completion_model: str = _setting("", "The model for inline completions; empty: the chat model.")
    keep_alive: str = _setting(
        "30m",
        "How long Ollama keeps a model loaded after a request (an Ollama duration, e.g. `30m`); "
        "the server loads the completion model as soon as its model check passes.",
    )
    connect_timeout: float = _setting(
        5.0, "Seconds to wait for a connection to a model server.", positive=True
    )
    first_token_timeout: float = _setting(
        120.0,
        "Seconds to wait for the first part of an answer (headers included, and the loading of "
        "the model; also bounds `/api/show` and `/api/version`).",
        positive=True,
    )
    idle_timeout: float = _setting(
        30.0,
        "Seconds an answer may pause between two parts before it is given up as stuck.",
        positive=True,
    )
    total_timeout: float = _setting(
        600.0, "Seconds one model request may take in total.", positive=True
    )

    @property
    def effective_completion_model(self) -> str:
        return self.completion_model or self.chat_model

    @property
    def effective_hosts(self) -> tuple[str, ...]:
        """The servers requests go to, in the configured order (hosts, else host)."""
        return self.hosts or (self.host,)


@dataclass(frozen=True, slots=True)
class CompletionConfig:
    enabled: bool = _setting(True, "Offer inline completions (ghost text) from the model.")
    cache_friendly: bool = _setting(
        True,
        "Lay out completion prompts so consecutive requests share their beginning (the model's "
        "prompt cache then reads only what changed); off only to compare "
        "(`bench/bench_typing.py`).",
    )
    debounce_ms: int = _setting(
        120,
        "Milliseconds the server waits after a keystroke before asking the model, until it has "
        "measured your typing rhythm (then it waits 1.5 times your usual gap between keys, no "
        "less than this, at most 600 ms); also the shortest wait while the model is slower than "
        "that rhythm.",
    )
    max_tokens: int = _setting(
        128, "Most tokens one completion may generate (`num_predict`).", positive=True
    )
    num_ctx: int = _setting(
        4096, "The model's context window for completions (`num_ctx`).", positive=True
    )
    context_tokens: int = _setting(
        1024,
        "Token budget for repository context (definitions, similar code) in a completion prompt.",
        positive=True,
    )
    prefix_tokens: int = _setting(
        1200, "Token budget for the text before the cursor.", positive=True
    )
    suffix_tokens: int = _setting(400, "Token budget for the text after the cursor.", positive=True)


@dataclass(frozen=True, slots=True)
class ChatConfig:
    num_ctx: int = _setting(
        8192,
        "The model's context window for explanations and questions (`num_ctx`).",
        positive=True,
    )
    max_tokens: int = _setting(
        1024, "Most tokens one explanation or answer may generate.", positive=True
    )
    context_tokens: int = _setting(
        3000,
        "Token budget for repository context in an explanation or answer.",
        positive=True,
    )
    think: bool = _setting(
        True, "Ask the model for its thinking; it is returned apart from the answer."
    )
    think_tokens: int = _setting(
        2048,
        "Most tokens a thinking model may think before it answers, apart from "
        "`chat.maxTokens` (less when the prompt leaves less of `chat.numCtx`): at this budget the "
        "thinking stops and the model answers from what it thought so far, with thinking off. "
        "0: no budget of its own (thinking and answer share `chat.maxTokens`, and a long think "
        "can leave no answer).",
    )


@dataclass(frozen=True, slots=True)
class TrustConfig:
    """What may reach a model, and where (enforced by the trust boundary, enclave.server.trust)."""

    never_send: tuple[str, ...] = _setting(
        (),
        "Gitignore-style patterns of files that are indexed for search but never put in a "
        "prompt (nor sent to an embedding server); see docs/security.md.",
        REPO_ADDS,
        policy="adds to it",
    )
    allowed_hosts: tuple[str, ...] = _setting(
        (),
        "Hosts (names, `*.domain`, IP addresses or CIDR ranges) prompts may be sent to besides "
        "this machine (loopback is always allowed); any other `ollama.host` is refused with a "
        "message naming this setting.",
        REPO_NO,
        "a repository cannot allow hosts for itself",
        policy="limits it",
    )
    redact_pii: bool = _setting(
        False,
        "Also replace email addresses and phone numbers (`<redacted:email>`, "
        "`<redacted:phone>`), as well as secrets, in prompts and in the index; a change "
        "re-indexes every file (an administrator's policy can turn this on for everyone).",
        REPO_TURNS_ON,
        policy="turns it on",
    )


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """The audit log of model requests (enclave.audit): one JSON line per request."""

    enabled: bool = _setting(
        True,
        "Append one JSON line per model request (who, model, purpose, files and lines sent, "
        "prompt hash, tokens, duration, outcome) to the audit log (docs/enterprise.md).",
        REPO_TURNS_ON,
        policy="turns it on (require_audit)",
    )
    path: str = _setting(
        "",
        "The audit log file; empty: `.enclave/audit.jsonl` in the repository. Relative paths "
        "are under the repository.",
        REPO_NO,
        _WRITES,
    )
    include_prompts: bool = _setting(
        False,
        "Write each prompt's full text into the audit log (otherwise only its sha256).",
        REPO_NO,
        _WRITES.replace("where", "what"),
    )
    max_bytes: int = _setting(
        10 * 1024 * 1024,
        "Rotate the audit log once it grows past this many bytes.",
        REPO_NO,
        _DELETES,
        positive=True,
    )
    keep: int = _setting(
        5, "How many rotated audit logs (`audit.jsonl.1` ...) to keep.", REPO_NO, _DELETES
    )


@dataclass(frozen=True, slots=True)
class Config:
    index: IndexConfig = field(default_factory=IndexConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    ollama: OllamaConfig = field(default_factory=OllamaConfig)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    # Not settings: the administrator's policy in force, the repository the configuration was
    # loaded for ("" when none), and where each setting's value came from (dotted key -> layer).
    policy: Policy = field(default_factory=Policy)
    root: str = field(default="", compare=False)
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def origin(self, key: str) -> str:
        return dict(self.origins).get(key, "default")


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One invalid setting the loader skipped (a record, shown to the user; never raised)."""

    key: str  # dotted, e.g. "completion.debounce_ms"
    source: str  # ".enclave.toml", "ENCLAVE_COMPLETION_DEBOUNCE_MS", "initializationOptions", ...
    message: str

    def __str__(self) -> str:
        return f"invalid setting {self.key} (from {self.source}): {self.message}; using the default"


def sections(config_type: type = Config) -> dict[str, type]:
    """The settings sections of ``config_type`` (the fields whose default is a dataclass of
    settings), in declaration order: {"index": IndexConfig, ...}."""
    out: dict[str, type] = {}
    for f in fields(config_type):
        kind = f.default_factory
        if not (isinstance(kind, type) and is_dataclass(kind)):
            continue
        if all("description" in g.metadata for g in fields(kind)):
            out[f.name] = kind
    return out


_SECTIONS: dict[str, type] = sections()


# Every setting's field by dotted key ("completion.debounce_ms"): its metadata is the schema.
_FIELDS: dict[str, Field[Any]] = {
    f"{section}.{f.name}": f for section, kind in _SECTIONS.items() for f in fields(kind)
}


REPOSITORY_FILE = ".enclave.toml"
_ELSEWHERE = "set it in the user configuration, the environment or the editor's settings"


@dataclass(frozen=True, slots=True)
class SettingRule:
    """Who may set one setting: the row of docs/security.md's table."""

    key: str  # dotted, snake_case: "trust.never_send"
    policy: str  # what the administrator's policy does to it ("" = nothing)
    user: str  # the user configuration file
    editor: str  # LSP initializationOptions / workspace configuration, CLI --settings and flags
    environment: str  # ENCLAVE_* (and OLLAMA_HOST)
    repository: str  # the repository's .enclave.toml: one of REPO_*
    why: str  # why a repository may not set it (REPO_NO)


def who_may_set(config_type: type = Config) -> list[SettingRule]:
    """Every setting and who may set it, from the fields' metadata (the one table)."""
    rules = []
    for section, kind in (_SECTIONS if config_type is Config else sections(config_type)).items():
        for f in fields(kind):
            meta = f.metadata
            user = "sets it" if meta.get("user", True) else "no"
            rules.append(
                SettingRule(
                    f"{section}.{f.name}",
                    meta.get("policy", ""),
                    user,
                    user,
                    user,
                    meta.get("repository", REPO_SETS),
                    meta.get("why", ""),
                )
            )
    return rules


_RULES: dict[str, SettingRule] = {rule.key: rule for rule in who_may_set()}


_Number = TypeVar("_Number", int, float)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _in_range(key: str, number: _Number) -> _Number:
    """Numbers are never negative; the settings marked ``positive`` must be above zero."""
    if _FIELDS[key].metadata["positive"] and number <= 0:
        raise ValueError(f"must be greater than 0, got {number:g}")
    if number < 0:
        raise ValueError(f"must not be negative, got {number:g}")
    return number


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default`` or raise ValueError with a readable reason."""
    if key == "ollama.headers":
        return parse_headers(value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"expected a whole number, got {value!r}")
        return _in_range(key, number)
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number_f = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a huge JSON integer
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number_f):  # nan compares false with everything: check it first
            raise ValueError(f"expected a finite number, got {value!r}")
        return _in_range(key, number_f)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        if key == "ollama.hosts":
            return tuple(dict.fromkeys(normalize_host(v) for v in value if v.strip()))
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    choices = _FIELDS[key].metadata["choices"]
    if choices and value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    if key in ("ollama.host", "embedding.url") and value:
        value = normalize_host(value) if key == "ollama.host" else value.strip().rstrip("/")
    return value


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_headers(value: Any) -> tuple[tuple[str, str], ...]:
    """``ollama.headers`` from a table ({name: value}), a list of "Name: value" strings, or one
    string of such lines (the environment). Errors never repeat a header's value."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            import json

            try:
                value = json.loads(stripped)
            except ValueError:
                raise ValueError("expected a JSON object of header names and values") from None
        else:
            value = [line for line in stripped.splitlines() if line.strip()]
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = []
        for entry in value:
            if isinstance(entry, list | tuple) and len(entry) == 2:
                items.append((entry[0], entry[1]))
            elif isinstance(entry, str) and ":" in entry:
                name, _, text = entry.partition(":")
                items.append((name.strip(), text.strip()))
            else:
                raise ValueError('expected "Name: value" entries (the value is not shown)')
    else:
        raise ValueError("expected a table of header names and values")
    for name, text in items:
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if not isinstance(text, str) or any(c in text for c in "\r\n\0"):
            raise ValueError(f"the value of header {name} must be one line of text (not shown)")
        pairs.append((name, text))
    return tuple(pairs)


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingHeaderVariable(ValueError):
    """A header value names an environment variable that is not set."""

    def __init__(self, header: str, variable: str) -> None:
        super().__init__(
            f"header {header} of ollama.headers uses ${{{variable}}}, which is not set"
        )
        self.header = header
        self.variable = variable


def resolve_headers(
    headers: tuple[tuple[str, str], ...], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The headers to send: each ``${NAME}`` replaced by that environment variable's value.
    Raises :class:`MissingHeaderVariable` (naming the variable, never a value)."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for name, value in headers:

        def expand(match: re.Match[str], name: str = name) -> str:
            variable = match.group(1)
            if variable not in env:
                raise MissingHeaderVariable(name, variable)
            return env[variable]

        out[name] = _ENV_REFERENCE.sub(expand, value)
    return out


def normalize_host(host: str) -> str:
    """Accept the forms Ollama accepts for OLLAMA_HOST ("0.0.0.0", "host:port", URLs)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    netloc, slash, path = rest.partition("/")  # a path (an OpenAI server's /v1) stays after it
    if ":" not in netloc.rsplit("]", 1)[-1]:
        netloc += ":11434"
    return f"{scheme}://{netloc}{slash}{path}"


def _apply(
    config: Config,
    data: Mapping[str, Any],
    source: str,
    problems: list[ConfigIssue],
    origins: dict[str, str] | None = None,
) -> Config:
    """Layer a nested mapping ({section: {key: value}}) on top of ``config``; ``origins``
    records the layer each applied value came from."""
    sections = {}
    for raw_section, values in data.items():
        section = _snake(raw_section)
        if section not in _SECTIONS:
            problems.append(ConfigIssue(raw_section, source, "unknown section"))
            continue
        if not isinstance(values, Mapping):
            problems.append(ConfigIssue(section, source, "expected a table of settings"))
            continue
        current = getattr(config, section)
        known = {f.name: f for f in fields(current)}
        changes: dict[str, Any] = {}
        for raw_key, value in values.items():
            key = _snake(raw_key)
            dotted = f"{section}.{key}"
            if key not in known:
                problems.append(ConfigIssue(dotted, source, "unknown setting"))
                continue
            if value is None:
                continue
            rule = _RULES[dotted]
            if rule.user == "no":  # only the administrator's policy sets it
                problems.append(ConfigIssue(dotted, source, rule.why))
                continue
            try:
                changes[key] = _coerce(dotted, value, getattr(_SECTIONS[section](), key))
                if origins is not None:
                    origins[dotted] = source
            except ValueError as exc:
                problems.append(ConfigIssue(dotted, source, str(exc)))
        sections[section] = replace(current, **changes)
    return replace(config, **sections)


def _split_repository(
    data: Mapping[str, Any], root: Path, problems: list[ConfigIssue]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A repository file's settings: those it sets as any layer does, and those it may only
    tighten (applied by :func:`_tighten` after every other layer); the rest is refused here."""
    plain: dict[str, Any] = {}
    tightening: dict[str, Any] = {}
    for raw_section, values in data.items():
        section = _snake(raw_section)
        if section not in _SECTIONS or not isinstance(values, Mapping):
            plain[raw_section] = values  # _apply names the problem
            continue
        for raw_key, value in values.items():
            dotted = f"{section}.{_snake(raw_key)}"
            rule = _RULES.get(dotted)
            if rule is None or rule.user == "no" or value is None:
                plain.setdefault(section, {})[raw_key] = value  # _apply names the problem
            elif rule.repository == REPO_NO:
                problems.append(ConfigIssue(dotted, REPOSITORY_FILE, f"{rule.why}; {_ELSEWHERE}"))
            elif rule.repository == REPO_INSIDE and not _inside(value, root):
                problems.append(
                    ConfigIssue(
                        dotted,
                        REPOSITORY_FILE,
                        "a repository may only name a folder inside itself (a relative path); "
                        + _ELSEWHERE,
                    )
                )
            elif rule.repository in (REPO_ADDS, REPO_TURNS_ON, REPO_LOWERS):
                tightening.setdefault(section, {})[raw_key] = value
            else:
                plain.setdefault(section, {})[raw_key] = value
    return plain, tightening


def _inside(value: Any, root: Path) -> bool:
    """``value`` (a repository's path setting) names a place inside ``root``, links resolved."""
    if not isinstance(value, str) or not value.strip():
        return True  # "" is the default; a wrong type is _apply's problem
    if "://" in value or value.strip().startswith("~") or Path(value).is_absolute():
        return False
    base = root.resolve()
    target = (base / value.strip()).resolve()
    return target == base or base in target.parents


def _tighten(
    config: Config,
    data: Mapping[str, Any],
    problems: list[ConfigIssue],
    origins: dict[str, str],
) -> Config:
    """Apply a repository's additions and protections on top of every other layer: lists are
    joined, switches only turned on, caps only lowered."""
    wanted_origins: dict[str, str] = {}
    wanted = _apply(Config(), data, REPOSITORY_FILE, problems, wanted_origins)
    for dotted in wanted_origins:
        section, key = dotted.split(".")
        rule = _RULES[dotted]
        mine = getattr(getattr(wanted, section), key)
        current = getattr(getattr(config, section), key)
        if rule.repository == REPO_ADDS:
            value = _union(current, mine)
        elif rule.repository == REPO_TURNS_ON:
            value = current or mine
            if current and not mine:
                problems.append(
                    ConfigIssue(
                        dotted, REPOSITORY_FILE, "a repository can only turn it on; kept on"
                    )
                )
        else:  # REPO_LOWERS
            value = min(current, mine)
            if mine > current:
                problems.append(
                    ConfigIssue(
                        dotted,
                        REPOSITORY_FILE,
                        f"a repository can only lower it; kept at {current}",
                    )
                )
        if value != current:
            origins[dotted] = (
                f"{origins[dotted]} + {REPOSITORY_FILE}" if dotted in origins else REPOSITORY_FILE
            )
            config = replace(config, **{section: replace(getattr(config, section), **{key: value})})
    return config


def _read_toml(path: Path, problems: list[ConfigIssue]) -> dict[str, Any]:
    try:
        return tomllib.loads(read_regular(path, SETTINGS_LIMIT, "configuration file").decode())
    except FileNotFoundError:
        return {}
    except FileProblem as exc:
        problems.append(ConfigIssue(str(path), str(path), f"{exc.message}; ignored"))
        return {}
    except tomllib.TOMLDecodeError as exc:
        problems.append(ConfigIssue(str(path), str(path), f"cannot read the file ({exc}); ignored"))
        return {}
    except UnicodeDecodeError as exc:
        problems.append(
            ConfigIssue(
                str(path),
                str(path),
                f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8. Ignored",
            )
        )
        return {}


def _env_layer(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    layer: dict[str, dict[str, str]] = {}
    if env.get("OLLAMA_HOST"):
        layer.setdefault("ollama", {})["host"] = env["OLLAMA_HOST"]
    for name, value in env.items():
        if not name.startswith("ENCLAVE_"):
            continue
        rest = name[len("ENCLAVE_") :].lower()
        for section in _SECTIONS:
            if rest.startswith(section + "_"):
                layer.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    return layer


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "enclave" / "config.toml"


def load_config(
    root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    override_source: str = "command line",
) -> tuple[Config, list[ConfigIssue]]:
    """Build the configuration from every layer; returns it with the problems found."""
    env = os.environ if env is None else env
    problems: list[ConfigIssue] = []
    origins: dict[str, str] = {}
    config = Config()
    tightening: dict[str, Any] = {}
    user = user_config_path(env)
    config = _apply(config, _read_toml(user, problems), str(user), problems, origins)
    if root is not None:
        repo_file = root / REPOSITORY_FILE
        plain, tightening = _split_repository(_read_toml(repo_file, problems), root, problems)
        config = _apply(config, plain, REPOSITORY_FILE, problems, origins)
    for section, values in _env_layer(env).items():
        source = (
            "OLLAMA_HOST" if section == "ollama" and "host" in values else "ENCLAVE_* environment"
        )
        config = _apply(config, {section: values}, source, problems, origins)
    if overrides:
        config = _apply(config, overrides, override_source, problems, origins)
    if root is not None:  # what the repository adds stands whatever the layers above say
        config = _tighten(config, tightening, problems, origins)
    # A broken policy is not a problem to skip: it is carried in config.policy and refuses
    # every model request and index update (enclave.policy).
    config = within_server_window(apply_policy(config, load_policy(env), origins))
    return replace(
        config, root=str(root) if root is not None else "", origins=tuple(sorted(origins.items()))
    ), problems


def _union(mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*mine, *theirs)))


def within_server_window(config: Config) -> Config:
    """``config`` with its context windows held to what the model server really runs: with
    ``ollama.api = "openai"`` no request can set ``num_ctx``, so ``completion.num_ctx`` and
    ``chat.num_ctx`` are at most ``ollama.openai_context_length``."""
    window = config.ollama.openai_context_length
    if config.ollama.api != "openai":
        return config
    completion, chat = config.completion, config.chat
    if completion.num_ctx > window:
        completion = replace(completion, num_ctx=window)
    if chat.num_ctx > window:
        chat = replace(chat, num_ctx=window)
    return replace(config, completion=completion, chat=chat)


def apply_policy(config: Config, policy: Policy, origins: dict[str, str]) -> Config:
    """Tighten ``config`` with the administrator's ``policy``; never loosens anything.

    ``never_*``: the union; ``allowed_hosts``: the policy's list, intersected with the user's
    when the user lists some; ``redact_pii`` / ``require_audit``: on when the policy says so.
    ``origins`` says, for each governed key, which layers the value came from.
    """
    if not policy.path:
        return replace(config, policy=policy)
    source = policy.source
    trust, index, audit = config.trust, config.index, config.audit

    def both(key: str) -> str:
        return f"{origins[key]} + {source}" if key in origins else source

    if policy.never_send:
        origins["trust.never_send"] = both("trust.never_send")
        trust = replace(trust, never_send=_union(trust.never_send, policy.never_send))
    if policy.allowed_hosts is not None:
        hosts = policy.allowed_hosts
        if trust.allowed_hosts:
            wanted = {h.strip().lower() for h in trust.allowed_hosts}
            hosts = tuple(h for h in hosts if h.strip().lower() in wanted)
            origins["trust.allowed_hosts"] = f"{origins['trust.allowed_hosts']} within {source}"
        else:
            origins["trust.allowed_hosts"] = source
        trust = replace(trust, allowed_hosts=hosts)
    if policy.redact_pii:
        origins["trust.redact_pii"] = source
        trust = replace(trust, redact_pii=True)
    if policy.never_index:
        origins["index.never_index"] = source
        index = replace(index, never_index=policy.never_index)
    if policy.require_audit:
        origins["audit.enabled"] = source
        audit = replace(audit, enabled=True)
    if policy.allowed_models is not None:
        origins["policy.allowed_models"] = source
    return replace(config, trust=trust, index=index, audit=audit, policy=policy)


def policy_rules(config: Config) -> list[dict[str, Any]]:
    """The effective value of each rule the policy governs and where it came from (for
    `enclave status`)."""
    policy = config.policy
    models: list[str] | None = (
        list(policy.allowed_models) if policy.allowed_models is not None else None
    )
    rules: list[tuple[str, Any]] = [
        ("allowed_models", models),
        ("never_index", list(config.index.never_index)),
        ("index.exclude", list(config.index.exclude)),
        ("trust.never_send", list(config.trust.never_send)),
        ("trust.allowed_hosts", list(config.trust.allowed_hosts)),
        ("trust.redact_pii", config.trust.redact_pii),
        ("audit.enabled", config.audit.enabled),
        ("audit.include_prompts", config.audit.include_prompts),
    ]
    key_of = {"allowed_models": "policy.allowed_models", "never_index": "index.never_index"}
    return [
        {"key": key, "value": value, "source": config.origin(key_of.get(key, key))}
        for key, value in rules
    ]


def to_wire(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as camelCase JSON (what `enclave status --json` and editors show)."""

    def camel(name: str) -> str:
        head, *tail = name.split("_")
        return head + "".join(part.title() for part in tail)

    out: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        value = getattr(config, section)
        out[section] = {
            camel(f.name): list(v) if isinstance(v := getattr(value, f.name), tuple) else v
            for f in fields(value)
            if _RULES[f"{section}.{f.name}"].user != "no"  # not a setting: the policy's own
        }
    # Header values hold credentials: only their names are ever shown.
    out["ollama"]["headers"] = {name: "***" for name, _ in config.ollama.headers}
    return out
