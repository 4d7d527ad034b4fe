"""`enclave customize`: the Modelfile it writes, and a real create call (adapter blobs uploaded
first) against the test Ollama server, which then serves the new model."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import ollama
import pytest

from enclave.server.cli import main
from tests.support.ollama_fixtures import env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo


@pytest.fixture
def repo(tmp_path: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "Brake Control", {"brakes.py": "def ebd():\n    return 1\n"})
    (root / ".enclave").mkdir()
    (root / ".enclave" / "glossary.md").write_text("EBD: electronic brake-force distribution\n")
    (root / ".enclave" / "conventions.md").write_text("Use SI units. Never use floats for money.\n")
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    for name, value in env_for(ollama_server, tmp_path / "xdg").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    return root


def _safetensors(path: Path) -> Path:
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


def test_dry_run_prints_the_modelfile_and_sends_nothing(
    repo: Path, tmp_path: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = tmp_path / "lora.gguf"
    adapter.write_bytes(b"GGUF" + bytes(60))
    argv = ["customize", "--dry-run", "--adapter", str(adapter), "--temperature", "0.2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "FROM deepseek-r1"
    assert lines[1].startswith('SYSTEM """You are the code assistant of the Brake Control')
    assert "Use SI units. Never use floats for money." in out
    assert "- EBD: electronic brake-force distribution" in out
    assert lines[-3:] == [
        "PARAMETER num_ctx 8192",
        "PARAMETER temperature 0.2",
        f"ADAPTER {adapter}",
    ]
    assert ollama_server.state.requests == []
    assert not (repo / ".enclave" / "Modelfile").exists()


def test_create_uploads_the_adapter_and_the_model_is_served(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    _safetensors(adapter / "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    assert main(["customize", "--base", "smollm2:135m", "--adapter", str(adapter), "--use"]) == 0
    captured = capsys.readouterr()
    progress = [line.removeprefix("enclave: ") for line in captured.err.splitlines()]
    assert progress[:2] == ["uploading adapter_model.safetensors", "uploading adapter_config.json"]
    assert progress[2] == "reading model metadata" and progress[-1] == "success"
    assert "created enclave-brake-control from smollm2:135m" in captured.out

    made = ollama_server.state.created["enclave-brake-control:latest"]
    assert made["from"] == "smollm2:135m" and made["parameters"] == {
        "num_ctx": 8192,
        "temperature": 0.6,
    }
    assert "EBD: electronic brake-force distribution" in made["system"]
    digest = "sha256:" + hashlib.sha256((adapter / "adapter_config.json").read_bytes()).hexdigest()
    assert made["adapters"]["adapter_config.json"] == digest
    assert (repo / ".enclave" / "Modelfile").read_text().startswith("FROM smollm2:135m\n")
    assert 'chat_model = "enclave-brake-control"' in (repo / ".enclave.toml").read_text()

    # The new model is listed, shown, and is the one `enclave ask` now talks to.
    monkeypatch.delenv("ENCLAVE_OLLAMA_CHAT_MODEL")  # let .enclave.toml decide
    ollama_server.state.requests.clear()
    assert main(["ask", "what", "is", "EBD?"]) == 0
    chats = [b for p, b in ollama_server.state.requests if p == "/api/chat"]
    assert chats and chats[-1]["model"] == "enclave-brake-control"


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        ("missing.gguf", "no such adapter"),
        ("weights.bin", "not a supported adapter format"),
        ("empty-dir", "holds no .safetensors file"),
        ("bad.safetensors", "not a supported adapter format"),
    ],
)
def test_bad_adapters_are_refused_before_any_request(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
    adapter: str,
    message: str,
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"PK\x03\x04 a zip, not an adapter")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    assert main(["customize", "--adapter", str(tmp_path / adapter)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: ") and message in err and len(err.splitlines()) == 1
    assert ollama_server.state.requests == []


def test_a_base_model_the_server_lacks_is_refused_and_never_pulled(
    repo: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["customize", "--base", "llama3:70b", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: llama3:70b is not on the Ollama server")
    assert "never downloads" in err and "`ollama pull llama3:70b`" in err
    assert len(err.splitlines()) == 1
    # asked for with /api/show, then nothing more: no create, so no pull from the registry
    assert [path for path, _ in ollama_server.state.requests] == ["/api/show"]
    assert ollama_server.state.pulls == []


def test_the_test_server_pulls_a_missing_base_as_ollama_does(
    ollama_server: OllamaTestServer,
) -> None:
    """The stand-in's side of the test above: Ollama's create pulls a missing ``from``, so the
    refusal before it is what keeps the download from happening."""
    client = ollama.Client(host=ollama_server.url)
    with pytest.raises(ollama.ResponseError, match=r"registry\.ollama\.ai"):
        list(client.create(model="x", from_="llama3:70b", stream=True))
    assert ollama_server.state.pulls == ["llama3:70b"]


def test_a_lone_safetensors_file_without_its_config_is_refused_before_any_request(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "lone").mkdir()
    lone = _safetensors(tmp_path / "lone" / "adapter_model.safetensors")
    assert main(["customize", "--base", "smollm2:135m", "--adapter", str(lone), "-q"]) == 1
    err = capsys.readouterr().err
    assert "has no adapter_config.json beside it" in err and len(err.splitlines()) == 1
    assert ollama_server.state.requests == []


def test_a_lone_safetensors_file_takes_the_config_beside_it(
    repo: Path, tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    folder = tmp_path / "trained"
    folder.mkdir()
    lone = _safetensors(folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "tokenizer.json").write_text("{}")  # not the adapter's: not uploaded
    assert main(["customize", "--base", "smollm2:135m", "--adapter", str(lone), "-q"]) == 0
    made = ollama_server.state.created["enclave-brake-control:latest"]
    assert sorted(made["adapters"]) == ["adapter_config.json", "adapter_model.safetensors"]


def test_a_safetensors_adapter_on_a_base_ollama_cannot_convert_for_is_refused(
    repo: Path,
    tmp_path: Path,
    ollama_server: OllamaTestServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """deepseek-r1 (the default chat model) is a qwen3 model: Ollama converts safetensors
    adapters only for llama and gemma2."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    _safetensors(adapter / "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    assert main(["customize", "--adapter", str(adapter), "-q"]) == 1
    err = capsys.readouterr().err
    assert "only for llama and gemma2 models, and deepseek-r1 is qwen3" in err
    assert "convert_lora_to_gguf.py" in err and len(err.splitlines()) == 1
    assert [path for path, _ in ollama_server.state.requests] == ["/api/show"]
    # a GGUF adapter goes to the same base
    gguf = tmp_path / "lora.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    assert main(["customize", "--adapter", str(gguf), "-q"]) == 0
    assert "enclave-brake-control:latest" in ollama_server.state.created
