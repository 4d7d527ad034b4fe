"""`enclave customize`: a model of the project's own, made by Ollama from the configured one.

The Modelfile says FROM the base model (``ollama.chat_model`` unless another is named), a SYSTEM
prompt with the project's conventions (``.enclave/conventions.md`` or a file named) and its
glossary, PARAMETER lines (``num_ctx``, ``temperature``) and, optionally, an ADAPTER: a LoRA
adapter trained elsewhere, as a GGUF file or safetensors (a file, or the directory a trainer
wrote, with its ``adapter_config.json``). The model is created through Ollama's create API
(adapter files uploaded as blobs first), with its progress reported as it comes. Knows nothing of
terminals: the CLI prints.

Before anything is uploaded, the base model is asked for with ``/api/show``: Ollama's create
*pulls* a ``from`` model it does not have (ollama/ollama server/model.go, ``parseFromModel``), a
download from the public registry that must never start from here; a missing base is refused
with the ``ollama pull`` to run instead. Ollama converts safetensors LoRA adapters only for the
``llama`` and ``gemma2`` architectures and reads ``adapter_config.json`` beside them
(convert/convert.go, ``ConvertAdapter``): both are checked here first, so the refusal names the
fix instead of Ollama's "unsupported architecture". GGUF adapters go to any base.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave.config import REPOSITORY_FILE, Config
from enclave.errors import EnclaveError, one_line
from enclave.files import SETTINGS_LIMIT, FileProblem, open_regular, read_regular
from enclave.glossary import load_glossary
from enclave.hosts import check_host, no_redirects
from enclave.modelservers import MissingHeader, ollama_client, server_headers

CONVENTIONS_FILE = ".enclave/conventions.md"
MAX_CONVENTIONS = 16 * 1024  # characters of conventions put in the SYSTEM prompt
MAX_CONVENTIONS_FILE = 1024 * 1024  # bytes a conventions file may weigh (it is cut to the above)
GGUF_MAGIC = b"GGUF"
ADAPTER_CONFIG = "adapter_config.json"
# The architectures Ollama converts safetensors LoRA adapters for (convert.ConvertAdapter).
SAFETENSORS_ADAPTER_ARCHITECTURES = ("llama", "gemma2")


class CustomizeError(EnclaveError):
    """A customization that cannot be made: ``message`` says why, ``fix`` what to do."""


@dataclass(frozen=True)
class Customization:
    name: str
    base: str
    system: str
    parameters: dict[str, Any]
    adapter: Path | None = None
    adapter_files: tuple[Path, ...] = field(default=())  # what is uploaded to Ollama


def default_name(root: Path) -> str:
    """``enclave-<repository folder>``, in the characters Ollama accepts for a model name."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", root.resolve().name.lower()).strip("-._")
    return f"enclave-{slug or 'project'}"


def _safetensors_ok(path: Path) -> bool:
    """A safetensors file starts with its header's length (little-endian u64), then JSON."""
    try:
        with open_regular(path, "adapter file") as handle:
            head = handle.read(8)
            if len(head) != 8:
                return False
            (size,) = struct.unpack("<Q", head)
            if not 2 <= size <= 100 * 1024 * 1024:
                return False
            header = json.loads(handle.read(size))
    except (OSError, ValueError, FileProblem):
        return False
    return isinstance(header, dict)


def adapter_files(path: Path) -> tuple[Path, ...]:
    """The files of the LoRA adapter at ``path``, checked; raises CustomizeError."""
    fix = "pass a GGUF adapter file, or the folder a trainer wrote (.safetensors, adapter_config.json)"
    if not path.exists():
        raise CustomizeError(f"no such adapter: {path}", fix)
    if path.is_dir():
        tensors = sorted(path.glob("*.safetensors"))
        if not tensors:
            raise CustomizeError(f"{path} holds no .safetensors file", fix)
        return _safetensors_adapter(path, tensors, sorted(path.glob("*.json")), fix)
    try:
        with open_regular(path, "adapter") as handle:
            magic = handle.read(4)
    except FileProblem as exc:
        raise CustomizeError(exc.message, fix) from None
    if magic == GGUF_MAGIC:
        return (path,)
    if path.suffix == ".safetensors" and _safetensors_ok(path):
        return _safetensors_adapter(path.parent, [path], [path.parent / ADAPTER_CONFIG], fix)
    raise CustomizeError(
        f"{path} is not a supported adapter format (neither GGUF nor safetensors)", fix
    )


def _safetensors_adapter(
    folder: Path, tensors: list[Path], configs: list[Path], fix: str
) -> tuple[Path, ...]:
    """The tensors and their JSON files, checked; Ollama needs ``adapter_config.json``."""
    bad = [t.name for t in tensors if not _safetensors_ok(t)]
    if bad:
        raise CustomizeError(f"{folder / bad[0]} is not a valid safetensors file", fix)
    if not (folder / ADAPTER_CONFIG).exists():  # (a FIFO or a device is refused below)
        raise CustomizeError(
            f"{tensors[0].name} has no {ADAPTER_CONFIG} beside it in {folder}: Ollama reads the "
            "adapter's rank and target modules from it",
            "pass the directory the trainer wrote (it holds adapter_config.json), or a GGUF adapter",
        )
    for file in configs:  # uploaded as they are: regular files only (a FIFO would hang)
        try:
            open_regular(file, "adapter file").close()
        except FileProblem as exc:
            raise CustomizeError(exc.message, fix) from None
    return tuple(tensors + configs)


def system_prompt(root: Path, conventions: Path | None = None) -> str:
    """The SYSTEM prompt: who the model works for, the conventions, the glossary."""
    parts = [
        f"You are the code assistant of the {root.resolve().name} repository. Answer briefly and "
        "precisely, following the project's conventions and using its terms as defined below."
    ]
    source = conventions or root / CONVENTIONS_FILE
    if source.exists():
        try:
            raw = read_regular(source, MAX_CONVENTIONS_FILE, "conventions file")
        except FileProblem as exc:
            raise CustomizeError(exc.message, "pass a conventions file of plain text") from None
        except FileNotFoundError:
            raise CustomizeError(f"no such conventions file: {source}", "pass a file") from None
        text = raw.decode("utf-8", errors="replace").strip()
        parts.append("Project conventions:\n" + text[:MAX_CONVENTIONS])
    elif conventions is not None:
        raise CustomizeError(f"no such conventions file: {conventions}", "pass an existing file")
    terms = load_glossary(root).terms
    if terms:
        parts.append("Glossary:\n" + "\n".join(f"- {t.render()}" for t in terms))
    return "\n\n".join(parts)


def plan(
    root: Path,
    config: Config,
    *,
    name: str | None = None,
    base: str | None = None,
    adapter: Path | None = None,
    conventions: Path | None = None,
    num_ctx: int | None = None,
    temperature: float | None = None,
) -> Customization:
    """Everything the Modelfile says, checked (the adapter, the policy's allowed models)."""
    base = base or config.ollama.chat_model
    why = config.policy.why_not_model(base)
    if why is not None:
        raise CustomizeError(why, "customize an allowed model (--base)")
    files = adapter_files(adapter.expanduser().resolve()) if adapter else ()
    parameters = {
        "num_ctx": num_ctx or config.chat.num_ctx,
        "temperature": 0.6 if temperature is None else temperature,
    }
    return Customization(
        name or default_name(root),
        base,
        system_prompt(root, conventions),
        parameters,
        adapter.expanduser().resolve() if adapter else None,
        files,
    )


def modelfile(plan: Customization) -> str:
    system = plan.system.replace('"""', "'''")  # the Modelfile's own quotes
    lines = [f"FROM {plan.base}", f'SYSTEM """{system}"""']
    lines += [f"PARAMETER {key} {value}" for key, value in plan.parameters.items()]
    if plan.adapter is not None:
        lines.append(f"ADAPTER {plan.adapter}")
    return "\n".join(lines) + "\n"


def create(config: Config, plan: Customization, on_status: Callable[[str], None]) -> None:
    """Upload the adapter's files, then create the model; ``on_status`` gets each progress line."""
    import httpx
    import ollama

    check_host(config.ollama.host, config.trust.allowed_hosts)  # the prompt holds the glossary
    try:
        headers = server_headers(config)
    except MissingHeader as exc:
        raise CustomizeError(exc.message, exc.fix) from None
    client = ollama_client(
        ollama.Client,
        config.ollama.host,
        headers,
        timeout=httpx.Timeout(config.ollama.total_timeout, connect=config.ollama.connect_timeout),
        # a redirect would send the glossary and the adapter to a host nobody allowed
        **no_redirects(
            CustomizeError, config.trust.allowed_hosts, asynchronous=False, what="Ollama"
        ),
    )
    try:
        _check_base(client, config, plan)
        adapters = {}
        for file in plan.adapter_files:
            on_status(f"uploading {file.name}")
            adapters[file.name] = client.create_blob(file)
        for part in client.create(
            model=plan.name,
            from_=plan.base,
            system=plan.system,
            parameters=plan.parameters,
            adapters=adapters or None,
            stream=True,
        ):
            on_status(str(part.status or ""))
    except ollama.ResponseError as exc:
        raise CustomizeError(
            f"Ollama could not create {plan.name}: {one_line(exc.error)}",
            f"check that {plan.base} is pulled (`ollama pull {plan.base}`) and the adapter "
            "was trained for it",
        ) from None
    except (ConnectionError, httpx.HTTPError) as exc:
        raise CustomizeError(
            f"cannot reach Ollama at {config.ollama.host} ({type(exc).__name__})",
            "start it with `ollama serve`, or set OLLAMA_HOST",
        ) from None
    finally:
        client.close()


def _check_base(client: Any, config: Config, plan: Customization) -> None:
    """The base must already be on the server (its create would pull it from the registry), and
    a safetensors adapter needs a base Ollama can convert it for."""
    import ollama

    try:
        shown = client.show(plan.base)
    except ollama.ResponseError as exc:
        if exc.status_code != 404:
            raise
        raise CustomizeError(
            f"{plan.base} is not on the Ollama server at {config.ollama.host}, and enclave "
            "customize never downloads a model",
            f"pull it there first (`ollama pull {plan.base}`), or choose another --base",
        ) from None
    except ValueError:  # an /api/show the client cannot read (no model_info): Ollama decides
        return
    safetensors = any(f.suffix == ".safetensors" for f in plan.adapter_files)
    architecture = (shown.modelinfo or {}).get("general.architecture")
    if safetensors and architecture and architecture not in SAFETENSORS_ADAPTER_ARCHITECTURES:
        raise CustomizeError(
            f"Ollama converts safetensors adapters only for llama and gemma2 models, and "
            f"{plan.base} is {architecture}",
            "convert the adapter to GGUF (llama.cpp's convert_lora_to_gguf.py) and pass the "
            ".gguf file, or customize a llama-based model (--base)",
        )


def use_as_chat_model(root: Path, name: str) -> Path:
    """Set ``ollama.chat_model = name`` in the repository's .enclave.toml (other lines kept)."""
    path = root / REPOSITORY_FILE
    try:
        text = read_regular(path, SETTINGS_LIMIT, "configuration file").decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (FileProblem, UnicodeDecodeError) as exc:
        why = exc.message if isinstance(exc, FileProblem) else f"{path} is not UTF-8 text"
        raise CustomizeError(why, f"fix {path}, or set ollama.chat_model yourself") from None
    lines = text.splitlines()
    setting = f"chat_model = {json.dumps(name)}"
    section = None
    for number, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header[1].strip()
        elif section == "ollama" and re.match(r"\s*chat_?[mM]odel\s*=", line):
            lines[number] = setting
            break
    else:
        at = next((i for i, line in enumerate(lines) if line.strip() == "[ollama]"), None)
        if at is None:
            lines += ([""] if lines else []) + ["[ollama]", setting]
        else:
            lines.insert(at + 1, setting)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
