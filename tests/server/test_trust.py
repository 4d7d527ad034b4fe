"""The trust boundary (enclave.server.trust, enclave.hosts): what may reach a model, and where.

Every end-to-end check reads what the test model server received, never Enclave's own report.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from enclave.config import AuditConfig, Config, IndexConfig, TrustConfig
from enclave.hosts import HostNotAllowed, check_host, display_url, is_loopback
from enclave.indexer.redact import redact
from enclave.policy import Policy
from enclave.server.answer import ask
from enclave.server.cli import main
from enclave.server.cli.common import EXIT_DEGRADED, EXIT_OK
from enclave.server.completion.pipeline import complete, complete_text, prepare_completion
from enclave.server.model.client import ModelClient
from enclave.server.model.errors import HostRefused
from enclave.server.trust import Admitted, Boundary, Material, Prompt, Refused
from enclave.server.types import ContextPiece
from tests.server import secrets
from tests.support.ollama_fixtures import config_for, env_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import make_repo

FILES = {
    "app/settings.py": secrets.SETTINGS_PY,
    "app/calc.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
    ".env": f"AWS_SECRET_ACCESS_KEY={secrets.AWS_SECRET}\n",
    "keys/id_rsa": f"-----BEGIN RSA PRIVATE KEY-----\n{secrets.KEY_BODY}\n-----END RSA PRIVATE KEY-----\n",
    "deploy.pem": f"-----BEGIN PRIVATE KEY-----\n{secrets.KEY_BODY}\n-----END PRIVATE KEY-----\n",
    "internal/pricing.py": "MARGIN = 0.42  # company confidential\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    (root / ".enclave.toml").write_text('[trust]\nnever_send = ["internal/"]\n')
    os.symlink("/etc/passwd", root / "app" / "passwd_link.py")
    return root


def boundary(root: Path, **trust: object) -> Boundary:
    config = Config(trust=TrustConfig(**trust))  # type: ignore[arg-type]
    return Boundary(config, [root])


# -- reading files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/etc/passwd", "outside the workspace"),
        ("../../../../../../etc/passwd", "outside the workspace"),
        ("app/passwd_link.py", "outside the workspace"),  # a link leading out
        ("/proc/self/environ", "system file"),
        ("/dev/zero", "system file"),
        (".env", "secret-bearing file"),
        ("keys/id_rsa", "secret-bearing file"),
        ("deploy.pem", "secret-bearing file"),
        ("app", "not a regular file"),
        ("missing.py", "no such file"),
    ],
)
def test_files_that_are_never_read(repo: Path, target: str, why: str) -> None:
    path = Path(target) if target.startswith("/") else repo / target
    with pytest.raises(Refused, match=why) as caught:
        boundary(repo).read_file(path)
    assert caught.value.fix


def test_never_send_fifo_size_cap_and_binary(repo: Path) -> None:
    with pytest.raises(Refused, match=r"trust\.never_send") as caught:
        boundary(repo, never_send=("internal/",)).read_file(repo / "internal" / "pricing.py")
    assert "never_send" in caught.value.fix
    os.mkfifo(repo / "app" / "pipe.py")
    with pytest.raises(Refused, match="not a regular file"):
        boundary(repo).read_file(repo / "app" / "pipe.py")
    (repo / "app" / "big.py").write_text("x = 1\n" * 300_000)
    with pytest.raises(Refused, match="over the 1,048,576 byte cap"):
        boundary(repo).read_file(repo / "app" / "big.py")
    (repo / "app" / "blob.py").write_bytes(b"abc\0def")
    with pytest.raises(Refused, match="binary"):
        boundary(repo).read_file(repo / "app" / "blob.py")
    found = boundary(repo).read_file(repo / "app" / "calc.py")
    assert (found.root, found.path) == (repo.resolve(), "app/calc.py")


# -- the one function every prompt passes through ------------------------------------------------


def test_admit_redacts_every_text_and_piece_and_keeps_lines() -> None:
    gate = Boundary(Config(trust=TrustConfig(never_send=("internal/",))))
    pieces = (
        ContextPiece("app/settings.py", 1, 17, secrets.SETTINGS_PY, "similar code"),
        ContextPiece(".env.production", 1, 1, f"KEY={secrets.AWS_SECRET}\n", "recently edited"),
        ContextPiece("internal/pricing.py", 1, 1, "MARGIN = 0.42\n", "definition"),
        ContextPiece("app/calc.py", 1, 2, FILES["app/calc.py"], "definition"),
    )
    prefix, suffix = secrets.SETTINGS_PY[:400], secrets.SETTINGS_PY[400:]
    sealed = gate.admit(Material("app/views.py", (prefix, suffix, secrets.SETTINGS_PY), pieces))
    everything = "".join(sealed.texts) + "".join(p.text for p in sealed.pieces)
    assert secrets.leaked(everything) == []
    assert [t.count("\n") for t in sealed.texts] == [prefix.count("\n"), suffix.count("\n"),
                                                      secrets.SETTINGS_PY.count("\n")]  # fmt: skip
    assert [p.path for p in sealed.pieces] == ["app/settings.py", "app/calc.py"]
    assert sealed.pieces[1] == pieces[3]  # nothing to redact: the same piece
    assert [(p.path, why.split(" (")[0]) for p, why in sealed.dropped] == [
        (".env.production", "it is a secret-bearing file"),
        ("internal/pricing.py", "it matches trust.never_send"),
    ]
    assert sealed.redactions >= 10
    assert gate.admit(Material("app/views.py", sealed.texts, sealed.pieces)).texts == sealed.texts


@pytest.mark.parametrize("path", [".env", "config/prod.env", "certs/server.key", "internal/x.py",
                                  "/etc/passwd", "../secrets.py"])  # fmt: skip
def test_admit_refuses_a_request_about_a_file_never_sent(path: str) -> None:
    gate = Boundary(Config(trust=TrustConfig(never_send=("internal/",))))
    with pytest.raises(Refused, match="is never sent to a model"):
        gate.admit(Material(path, ("x = 1\n",)))


def test_admit_caps_the_size_of_any_text() -> None:
    gate = Boundary(Config(index=IndexConfig(max_file_bytes=1000)))
    with pytest.raises(Refused, match="over the 1,000 cap"):
        gate.admit(Material(None, ("q" * 1001,)))


def test_redaction_is_stable_on_redacted_text() -> None:
    once = redact(secrets.SETTINGS_PY, "settings.py").text
    assert redact(once, "settings.py").text == once


# -- where prompts may go ------------------------------------------------------------------------


def test_hosts() -> None:
    for local in (
        "http://127.0.0.1:11434",
        "http://localhost:1",
        "http://[::1]:2",
        "http://0.0.0.0:3",
    ):
        assert is_loopback(local), local
        check_host(local, ())
    with pytest.raises(HostNotAllowed, match=r"trust\.allowed_hosts") as caught:
        check_host("http://gpu.corp.example:11434", ())
    assert "'gpu.corp.example'" in caught.value.fix
    check_host("http://gpu.corp.example:11434", ["gpu.corp.example"])
    check_host("http://10.20.30.40:11434", ["10.20.0.0/16"])
    check_host("https://a.models.example", ["*.models.example"])
    with pytest.raises(HostNotAllowed):
        check_host("http://10.21.30.40:11434", ["10.20.0.0/16"])
    shown = display_url("https://admin:s3cr3t@proxy.example:8443/ollama")
    assert shown == "https://***@proxy.example:8443/ollama" and "s3cr3t" not in shown


async def test_a_host_not_allowed_is_refused_before_any_request() -> None:
    config = Config()
    config = Config(ollama=type(config.ollama)(host="http://user:pw@203.0.113.9:11434"))
    client = ModelClient(config)
    try:
        with pytest.raises(HostRefused, match="not on this machine") as caught:
            await client.version()
        assert "trust.allowed_hosts" in caught.value.fix and "pw" not in str(caught.value)
        with pytest.raises(HostRefused):
            await complete_text(client, prefix="x", suffix="", language="python", path="a.py",
                                  context=[], multiline=False)  # fmt: skip
    finally:
        await client.aclose()


# -- end to end: what the model server received --------------------------------------------------


def _bodies(server: OllamaTestServer) -> str:
    return json.dumps([body for _, body in server.state.requests])


@pytest.fixture
def cli(repo: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in env_for(ollama_server, repo.parent / "xdg").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo)
    assert main(["index", ".", "-q", "--settings", '{"embedding": {"provider": "none"}}']) == 0
    return repo


def test_explain_sends_no_secret(
    cli: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.state.requests.clear()
    assert main(["explain", "app/settings.py:2-14", "--no-thinking"]) == 0
    sent = _bodies(ollama_server)
    assert "AWS_ACCESS_KEY_ID" in sent  # the selection was sent...
    assert secrets.leaked(sent) == []  # ...without any of its secrets
    assert secrets.leaked(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    "target",
    [".env", "keys/id_rsa", "deploy.pem", "internal/pricing.py", "/etc/passwd",
     "../../../../../../etc/passwd:1-3", "/proc/self/environ", "/dev/zero", "app/passwd_link.py"],
)  # fmt: skip
def test_explain_refuses_files_never_sent(
    target: str, cli: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.state.requests.clear()
    assert main(["explain", target]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert ollama_server.state.requests == []  # nothing reached the model server


def test_context_shows_what_would_be_sent_redacted(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["context", "app/settings.py", "--line", "9", "--character", "4", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert "AWS_ACCESS_KEY_ID" in report["prefix"] and "PRIVATE_KEY" in report["suffix"]
    assert secrets.leaked(out) == []
    assert any("redacted before sending" in note for note in report["notes"])


@pytest.mark.parametrize("target", [".env", "/etc/passwd", "internal/pricing.py"])
def test_context_refuses_files_never_sent(
    target: str, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["context", target, "--line", "1", "--character", "0", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("enclave: error: ")


def test_doctor_never_prints_credentials_from_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = json.dumps({"ollama": {"host": "http://admin:pa55word@127.0.0.1:9"}})
    main(["doctor", "--root", str(tmp_path), "--settings", settings])
    human = capsys.readouterr()
    main(["doctor", "--json", "--root", str(tmp_path), "--settings", settings])
    machine = capsys.readouterr()
    for text in (human.out, human.err, machine.out, machine.err):
        assert "pa55word" not in text
    assert "***@127.0.0.1:9" in machine.out


def test_ask_about_a_remote_allowed_host_says_so(
    cli: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host other than loopback is refused unless allowed, and warned about when it is."""
    remote = ollama_server.url.replace("127.0.0.1", "localhost.invalid")
    settings = json.dumps({"ollama": {"host": remote}})
    capsys.readouterr()
    assert main(["ask", "what does add do?", "--settings", settings]) == 1
    err = capsys.readouterr().err
    assert "not on this machine and not allowed" in err and "trust.allowed_hosts" in err
    allowed = json.dumps(
        {"ollama": {"host": remote}, "trust": {"allowedHosts": ["localhost.invalid"]}}
    )
    main(["ask", "what does add do?", "--settings", allowed])
    assert "which is not this machine" in capsys.readouterr().err
    # embeddings go there too; where that name does not resolve the index is built lexical-only,
    # which `enclave index` reports as degraded (exit 2)
    assert main(["index", ".", "-q", "--settings", allowed]) in (EXIT_OK, EXIT_DEGRADED)
    assert "which is not this machine" in capsys.readouterr().err


def test_no_traceback_for_refusals_from_the_console_script(cli: Path) -> None:
    enclave = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "enclave"
    if not enclave.exists():
        import sys

        enclave = Path(sys.executable).with_name("enclave")
    done = subprocess.run([str(enclave), "explain", "/etc/passwd"], cwd=cli, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "outside the workspace" in done.stderr


def test_config_for_is_loopback(ollama_server: OllamaTestServer) -> None:
    assert is_loopback(config_for(ollama_server).ollama.host)


def test_admit_refuses_everything_while_a_required_audit_log_cannot_be_written(
    tmp_path: Path,
) -> None:
    """The policy's require_audit: the boundary checks the log before anything is sent (the
    model client admits before its first request, `/api/show` included)."""
    log = tmp_path / "audit.jsonl"
    log.mkdir()  # nobody can append to a directory, root included
    config = replace(
        Config(),
        root=str(tmp_path),
        audit=AuditConfig(path=str(log)),
        policy=Policy(path="policy.toml", require_audit=True),
    )
    with pytest.raises(Refused) as caught:
        Boundary(config).admit(Material("app/calc.py", ("def add(",)))
    assert f"the audit log {log} cannot be written" in caught.value.message
    assert "require_audit" in caught.value.message and caught.value.fix
    log.rmdir()  # writable again: admitted
    assert Boundary(config).admit(Material("app/calc.py", ("def add(",))).texts == ("def add(",)
    # not required: a log that cannot be written never stops a request
    log.unlink()  # (the check made the log, empty)
    log.mkdir()
    assert Boundary(replace(config, policy=Policy())).admit(Material(None, ("q",))).texts == ("q",)


# -- admitted once: the model client sends only what the boundary made ---------------------------


def test_only_the_boundary_makes_what_a_model_client_sends() -> None:
    sealed = Boundary(Config()).admit(Material("app/calc.py", (f"key = '{secrets.AWS_SECRET}'",)))
    assert secrets.AWS_SECRET not in sealed.texts[0]
    prompt = sealed.prompt(purpose="completion", sources=[], prompt=sealed.texts[0])
    assert prompt.admitted is sealed and prompt.prompt == sealed.texts[0]
    with pytest.raises(TypeError, match=r"only Boundary\.admit makes a Admitted"):
        Admitted(object(), path=None, texts=("x",), pieces=(), dropped=(), redactions=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"only Boundary\.admit makes a Prompt"):
        Prompt(object(), admitted=sealed, prompt="unadmitted")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="not changed once admitted"):
        sealed.texts = (secrets.AWS_SECRET,)
    with pytest.raises(AttributeError, match="not changed once admitted"):
        prompt.prompt = secrets.AWS_SECRET


@pytest.fixture
def admissions(monkeypatch: pytest.MonkeyPatch) -> list[Material]:
    """Every material the trust boundary admits (the real boundary, counted)."""
    seen: list[Material] = []
    admit = Boundary.admit

    def counted(self: Boundary, material: Material) -> Admitted:
        seen.append(material)
        return admit(self, material)

    monkeypatch.setattr(Boundary, "admit", counted)
    return seen


async def test_a_completion_passes_the_boundary_once(
    ollama_server: OllamaTestServer, admissions: list[Material]
) -> None:
    """What prepare_completion admits is what the model client sends: nothing is admitted
    twice (it was three times: before preparing, when sealing, and in the client)."""
    config = config_for(ollama_server)
    text = f"TOKEN = '{secrets.AWS_SECRET}'\n\ndef add(a, b):\n    return \n"
    prepared = prepare_completion(None, "app/calc.py", text, 3, 11, config)
    client = ModelClient(config)
    try:
        language, multiline = prepared.language, prepared.multiline
        await complete(client, prepared.admitted, language=language, multiline=multiline)
    finally:
        await client.aclose()
    assert len(admissions) == 1 and admissions[0].texts[0].startswith("TOKEN")
    assert secrets.AWS_SECRET not in _bodies(ollama_server) and "def add" in _bodies(ollama_server)


async def test_an_answer_passes_the_boundary_once(
    ollama_server: OllamaTestServer, admissions: list[Material]
) -> None:
    """A question, its pieces and the glossary's terms pass the boundary together, once; the
    model client admits nothing again (it admitted the rendered messages a second time)."""
    client = ModelClient(config_for(ollama_server))
    try:
        answer = await ask(None, client, f"what is AWS_SECRET_ACCESS_KEY={secrets.AWS_SECRET} for?")
    finally:
        await client.aclose()
    assert answer.markdown and len(admissions) == 1
    assert secrets.AWS_SECRET not in _bodies(ollama_server)
