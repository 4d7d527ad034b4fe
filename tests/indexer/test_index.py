"""The index end to end on real git repositories and a real LanceDB on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import enclave.indexer.process as process
from enclave.config import Config, EmbeddingConfig, IndexConfig, load_config
from enclave.indexer.api import IndexProblem, open_index
from enclave.indexer.process import FileRows
from enclave.indexer.store import Store
from enclave.indexer.types import Candidate
from tests.support.ollama_fixtures import config_for
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import git, make_repo, write_files

AWS_KEY = "AKIAIOSFODNN7EXAMPL3"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY9"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yH8bHuMnN5fQ5K0tbVVqYB1u1Y6Gz0N1dYn0Rk5b4Nq2bnz2mY2o\n"
    "-----END RSA PRIVATE KEY-----\n"
)

FILES: dict[str, str | bytes] = {
    "app/session.py": (
        "import json\n\n\n"
        "class Session:\n"
        '    """An HTTP session that keeps connections alive."""\n\n'
        "    def request(self, method, url):\n"
        '        """Send a request and retry transient failures with exponential backoff."""\n'
        "        return self._send(method, url)\n\n"
        "    def _send(self, method, url):\n"
        "        return json.dumps([method, url])\n"
    ),
    "app/config.py": (
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'
        f'AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n\n'
        "def load_settings(path):\n"
        '    """Read the settings file and merge environment overrides."""\n'
        "    return {'path': path}\n"
    ),
    "app/key.txt": "deploy key\n" + PRIVATE_KEY,
    "docs/guide.md": "# Guide\n\nIntro text.\n\n## Retries\n\nHow retries are configured.\n",
    "ignored/build.py": "def ignored_function():\n    return 'never indexed'\n",
    ".gitignore": "ignored/\n",
    ".env": "DATABASE_PASSWORD=hunter2-never-indexed\n",
    "assets/blob.dat": b"\x00\x01\x02binary-never-indexed",
    "big.py": "x = 1\n" * 300_000,
}


def lexical_config(**index: object) -> Config:
    return Config(index=IndexConfig(**index), embedding=EmbeddingConfig(provider="none"))  # type: ignore[arg-type]


def all_stored_text(db: Path) -> str:
    """Every string stored in every table, as one text (to prove what is absent)."""
    import lancedb

    conn = lancedb.connect(str(db))
    parts: list[str] = []
    for name in conn.list_tables().tables:
        table = conn.open_table(name).to_arrow()
        for column in table.column_names:
            if table.schema.field(column).type in ("string", "large_string"):
                parts.extend(str(v) for v in table.column(column).to_pylist())
    return "\n".join(parts)


def chunk_rows(db: Path) -> set[tuple[str, int, int, str]]:
    import lancedb

    table = lancedb.connect(str(db)).open_table("chunks").to_arrow().to_pydict()
    return set(
        zip(
            table["path"],
            table["start_line"],
            table["end_line"],
            table["content_hash"],
            strict=True,
        )
    )


def catalog_rows(db: Path) -> set[tuple[str, str, str]]:
    import lancedb

    table = lancedb.connect(str(db)).open_table("files").to_arrow().to_pydict()
    return set(zip(table["path"], table["content_id"], table["state"], strict=True))


def enclave(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "enclave.server.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none", **(env or {})},
        timeout=300,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


def test_index_excludes_and_redacts(repo: Path) -> None:
    summary = open_index(repo, lexical_config()).update()
    assert summary.errors == []
    assert not summary.semantic and "embedding.provider = none" in summary.semantic_reason
    stored = all_stored_text(repo / ".enclave")
    for absent in (
        "never indexed",
        "hunter2",
        "binary-never-indexed",
        AWS_KEY,
        AWS_SECRET,
        "MIIEow",
    ):
        assert absent not in stored
    assert "<redacted:" in stored
    skipped = {s.path: s.reason for s in summary.skipped}
    assert skipped.get("big.py") == "too-large"
    assert skipped.get(".env") == "secret-file"
    indexed = {row[0] for row in catalog_rows(repo / ".enclave") if row[2] == "indexed"}
    assert indexed == {
        "app/session.py",
        "app/config.py",
        "app/key.txt",
        "docs/guide.md",
        ".gitignore",
    }
    # the index directory ignores itself for git
    assert "enclave" not in git(repo, "status", "--porcelain")


def test_search_finds_defining_chunk_and_lines_map_back(repo: Path) -> None:
    index = open_index(repo, lexical_config())
    index.update()
    hits = index.search("retry transient failures exponential backoff", k=5).hits
    assert hits, "no results"
    top = hits[0]
    assert top.path == "app/session.py" and "def request" in top.text
    lines = (repo / top.path).read_text().split("\n")
    assert "\n".join(lines[top.start_line - 1 : top.end_line]) == top.text
    assert index.search("retries", k=5, path_prefix="docs/").hits[0].path == "docs/guide.md"
    # query syntax is never interpreted: quotes, colons and operators are plain words
    assert (
        index.search('"exponential backoff" AND send: OR (', k=3).hits[0].path == "app/session.py"
    )
    assert all(h.language == "markdown" for h in index.search("retries", language="markdown").hits)


def test_a_lexical_search_reads_its_hits_in_the_full_text_query(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full-text query returns the columns a hit shows: no second query fetches the rows by
    id (a scan of the chunks table, most of a search's time, and slow on an object store)."""
    from lancedb.table import LanceTable

    index = open_index(repo, lexical_config())
    index.update()
    queries: list[object] = []
    real = LanceTable.search

    def counted(self: LanceTable, query: Any = None, *args: Any, **kwargs: Any) -> Any:
        queries.append(query)
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(LanceTable, "search", counted)
    hits = index.search("retry transient failures exponential backoff", k=5, mode="lexical").hits
    assert hits[0].path == "app/session.py" and "def request" in hits[0].text
    lines = (repo / hits[0].path).read_text().split("\n")
    assert "\n".join(lines[hits[0].start_line - 1 : hits[0].end_line]) == hits[0].text
    assert len(queries) == 1  # the full-text query, and nothing after it


def test_symbols_definitions_and_chunk_at(repo: Path) -> None:
    index = open_index(repo, lexical_config())
    index.update()
    assert [s.qualified_name for s in index.find_symbols("Session.req")][:1] == ["Session.request"]
    assert "Session" in [s.name for s in index.find_symbols("sess")]
    defs = index.definitions(["load_settings"])
    assert [(d.path, d.kind) for d in defs] == [("app/config.py", "function")]
    assert defs[0].doc.startswith("Read the settings file")
    chunk = index.chunk_at("app/session.py", 8)
    assert chunk is not None and chunk.start_line <= 8 <= chunk.end_line
    assert index.file_imports("app/session.py") == ["json"]


def test_incremental_touches_only_changed_files(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = open_index(repo, lexical_config())
    index.update()
    before = chunk_rows(repo / ".enclave")
    seen: list[str] = []
    real = process.process_file

    def spy(root: Path, candidate: Candidate, pii: bool = False) -> FileRows:
        seen.append(candidate.path)
        return real(root, candidate, pii)

    monkeypatch.setattr(process, "process_file", spy)
    assert index.update().files_indexed == 0 and seen == []
    path = repo / "app" / "session.py"
    path.write_text(path.read_text() + "\n\ndef fresh_helper():\n    return 'added later'\n")
    summary = index.update()
    assert seen == ["app/session.py"] and summary.files_indexed == 1
    after = chunk_rows(repo / ".enclave")
    assert {r for r in before if r[0] != "app/session.py"} == {
        r for r in after if r[0] != "app/session.py"
    }
    assert index.search("fresh_helper added later", k=1).hits[0].path == "app/session.py"


def test_an_index_chunked_by_another_version_is_rechunked(repo: Path) -> None:
    """Rows made by another chunker (older chunk boundaries or search text) do not linger: the
    next update says why and re-indexes every file, then records the chunker it used."""
    from enclave.indexer.chunker import CHUNKER_VERSION
    from enclave.indexer.store import Store

    index = open_index(repo, lexical_config())
    first = index.update()
    store = Store(str(repo / ".enclave"))
    assert store.meta()["chunker_version"] == str(CHUNKER_VERSION)
    assert index.update().files_indexed == 0
    store.set_meta({"chunker_version": "1"})
    summary = index.update()
    assert summary.full and summary.files_indexed == first.files_indexed > 0
    assert any("chunker 1, now" in note for note in summary.notes), summary.notes
    assert store.meta()["chunker_version"] == str(CHUNKER_VERSION)
    assert index.update().files_indexed == 0


def test_delete_and_rename(repo: Path) -> None:
    index = open_index(repo, lexical_config())
    index.update()
    git(repo, "mv", "app/config.py", "app/settings.py")
    (repo / "docs" / "guide.md").unlink()
    summary = index.update()
    assert summary.files_deleted == 2 and summary.files_indexed == 1
    paths = {row[0] for row in chunk_rows(repo / ".enclave")}
    assert (
        "app/settings.py" in paths and "app/config.py" not in paths and "docs/guide.md" not in paths
    )
    assert index.definitions(["load_settings"])[0].path == "app/settings.py"


def test_bad_inputs_are_indexed_around(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "bad",
        {
            "broken.py": "def ok():\n    return 1\n\ndef broken(:\n    pass\n",
            "latin1.py": "name = 'caf\xe9'\n".encode("latin-1"),
            "notes.unknownext": "line\n" * 10,
            "good.go": "package main\n\nfunc Main() {}\n",
        },
    )
    summary = open_index(root, lexical_config()).update()
    assert summary.errors == []
    indexed = {row[0] for row in catalog_rows(root / ".enclave") if row[2] == "indexed"}
    assert indexed == {"broken.py", "latin1.py", "notes.unknownext", "good.go"}
    assert open_index(root, lexical_config()).definitions(["ok"])


def test_empty_repo_and_missing_path(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "empty", {})
    summary = open_index(root, lexical_config()).update()
    assert summary.files_seen == 0 and summary.chunks_total == 0
    with pytest.raises(IndexProblem, match="no such directory"):
        open_index(tmp_path / "missing", lexical_config())
    done = enclave("index", str(tmp_path / "missing"))
    assert done.returncode == 1 and "no such directory" in done.stderr


def test_cli_index_search_status_json(repo: Path) -> None:
    done = enclave("index", str(repo), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files_indexed"] == 5 and summary["semantic"] is False
    done = enclave("search", "exponential backoff", "--json", "--k", "3", cwd=repo / "app")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    first = result["results"][0]
    assert (first["path"], first["symbol"]) == (
        "app/session.py",
        "Session",
    )  # a small class is one chunk
    assert set(first) >= {"path", "start_line", "end_line", "symbol", "kind", "score"}
    done = enclave("status", "--json", cwd=repo)
    status = json.loads(done.stdout)
    assert status["files"] == 5 and status["semantic"] is False
    assert "embedding.provider = none" in status["semantic_reason"]
    done = enclave("status", cwd=repo)
    assert "semantic:  off" in done.stdout


def test_corrupt_index_is_reported_then_rebuilt(repo: Path) -> None:
    open_index(repo, lexical_config()).update()
    for manifest in (repo / ".enclave" / "chunks.lance" / "_versions").iterdir():
        manifest.write_bytes(b"garbage")
    done = enclave("search", "backoff", cwd=repo)
    assert done.returncode == 1 and "enclave index --full" in done.stderr
    summary = open_index(repo, lexical_config()).update()
    assert any("rebuilding" in note for note in summary.notes)
    assert (
        open_index(repo, lexical_config()).search("exponential backoff").hits[0].path
        == "app/session.py"
    )


def _many_files(root: Path, count: int) -> None:
    files = {
        f"pkg/mod_{i:04d}.py": "".join(
            f"def function_{i}_{j}(value):\n    '''Helper {j} of module {i}.'''\n    return value + {j}\n\n"
            for j in range(20)
        )
        for i in range(count)
    }
    make_repo(root, files)


def test_kill_during_indexing_then_rerun_converges(tmp_path: Path) -> None:
    root = tmp_path / "many"
    _many_files(root, 400)
    clean_db = tmp_path / "clean"
    assert enclave("index", str(root), "--db", str(clean_db), "-q").returncode == 0
    victim = subprocess.Popen(
        [sys.executable, "-P", "-m", "enclave.server.cli", "index", str(root), "-q"],
        env={**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    catalog_data = root / ".enclave" / "files.lance" / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if catalog_data.exists() and len(list(catalog_data.iterdir())) >= 1:  # a batch is written
            break
        time.sleep(0.02)
    assert victim.poll() is None, (
        "indexing finished before it could be killed: make the repo bigger"
    )
    workers = subprocess.run(
        ["ps", "--ppid", str(victim.pid), "-o", "pid="], capture_output=True, text=True
    ).stdout.split()
    assert workers, "the indexer runs its parsing in worker processes"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "orphaned workers"
    partial = catalog_rows(root / ".enclave")
    assert 0 < len(partial) < 400
    done = enclave("index", str(root), "-q")
    assert done.returncode == 0, done.stderr
    assert chunk_rows(root / ".enclave") == chunk_rows(clean_db)
    assert catalog_rows(root / ".enclave") == catalog_rows(clean_db)


def test_two_concurrent_indexers_leave_a_consistent_index(tmp_path: Path) -> None:
    root = tmp_path / "many"
    _many_files(root, 120)
    env = {**os.environ, "ENCLAVE_EMBEDDING_PROVIDER": "none"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-P", "-m", "enclave.server.cli", "index", str(root), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    indexed = sorted(json.loads(out)["files_indexed"] for out, _ in results)
    assert indexed == [0, 120]  # the lock serialised them; the second found nothing to do
    clean_db = tmp_path / "clean"
    assert enclave("index", str(root), "--db", str(clean_db), "-q").returncode == 0
    assert chunk_rows(root / ".enclave") == chunk_rows(clean_db)


def test_not_a_git_repository(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_files(
        root,
        {"a.py": "def alpha():\n    return 1\n", ".gitignore": "skip.py\n", "skip.py": "x=1\n"},
    )
    summary = open_index(root, lexical_config()).update()
    assert any("not a git repository" in note for note in summary.notes)
    assert {row[0] for row in catalog_rows(root / ".enclave")} == {"a.py", ".gitignore"}


def test_db_location_from_repo_config_is_relative_to_the_repo(repo: Path) -> None:
    (repo / ".enclave.toml").write_text('[index]\ndb = "custom-db"\n')
    done = enclave("index", str(repo), "-q", cwd=repo.parent)
    assert done.returncode == 0, done.stderr
    assert (repo / "custom-db" / "chunks.lance").is_dir()
    assert not (repo / ".enclave").exists()


def test_only_storage_failures_are_reported_as_damage(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage error means "rebuild"; a bug must surface as itself, not as index damage."""
    index = open_index(repo, lexical_config())
    index.update()
    store = index.store  # type: ignore[attr-defined]  # the engine's, under the Protocol

    # broken for every handle: a reader retries once on a freshly opened store, which fails too
    def broken_storage(self: object, name: str) -> object:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(type(store), "table", broken_storage)
    with pytest.raises(IndexProblem, match="damaged or unreadable") as caught:
        index.search("retries")
    assert "enclave index --full" in caught.value.fix

    def bug(self: object, name: str) -> object:
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(type(store), "table", bug)
    with pytest.raises(TypeError, match="unsupported operand"):
        index.search("retries")
    with pytest.raises(TypeError):
        index.file_symbols("app/session.py")


def test_semantic_off_travels_as_reason_and_fix(repo: Path) -> None:
    index = open_index(repo, lexical_config())
    index.update()
    status = index.status()
    assert status.semantic_reason == "semantic search is turned off (embedding.provider = none)"
    assert status.semantic_fix == "set embedding.provider to ollama, openai or local to turn it on"
    result = index.search("retries", k=3)
    assert result.hits and result.semantic_off is not None
    assert result.semantic_off.fix == status.semantic_fix
    assert index.search("retries", k=3, mode="lexical").semantic_off is None


def test_reading_where_nothing_was_indexed_leaves_no_trace(repo: Path) -> None:
    index = open_index(repo, lexical_config())
    assert index.status().exists is False
    with pytest.raises(IndexProblem, match="no index at"):
        index.search("retries")
    with pytest.raises(IndexProblem, match="no index at"):
        index.find_symbols("Session")
    assert not (repo / ".enclave").exists()  # status and queries created nothing


def test_an_index_location_that_is_not_a_directory(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from enclave.server.cli import main

    for location in ("/dev/null", str(repo / "app" / "session.py")):
        assert main(["index", str(repo), "--db", location]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"enclave: error: the index location {location} is not a directory "
            "(point --db at a directory (it is created when missing))\n"
        )


def test_a_definition_outranks_the_module_text_that_describes_it(tmp_path: Path) -> None:
    """A block of top-level code (a module's docstring and imports) reads like a description
    of the whole file: the definition the words describe ranks first (kind_weight)."""
    root = make_repo(
        tmp_path / "repo",
        {
            "app/settings.py": (
                '"""Parse the settings file into a mapping of options."""\n\n'
                "import json\n\nDEFAULT = {}\n\n\n"
                "def read_options(path):\n"
                "    # parse the settings file: one JSON mapping of options\n"
                "    with open(path) as handle:\n"
                "        return json.load(handle)\n"
            )
        },
    )
    index = open_index(root, lexical_config())
    index.update()
    hits = index.search("parse the settings file into options", k=2, mode="lexical").hits
    assert [(h.symbol, h.start_line) for h in hits][:1] == [("read_options", 8)], hits


SMALL = {
    "billing/invoice.py": "def total_with_tax(amount, rate):\n    return amount * (1 + rate)\n",
    "users/login.py": "def check_password(user, password):\n    return user.hash == password\n",
}


def test_an_excluded_file_leaves_search_at_once_and_the_next_update_removes_it(
    tmp_path: Path,
) -> None:
    """A never_index rule (the administrator's policy) or an exclude added after a file was
    indexed: queries stop answering with it before any update, and the next update removes its
    rows and counts them."""
    root = make_repo(tmp_path / "repo", SMALL)
    open_index(root, lexical_config()).update()
    for rules in ({"never_index": ("users/",)}, {"exclude": ("users/login.py",)}):
        index = open_index(root, lexical_config(**rules))
        assert "users/login.py" not in {h.path for h in index.search("check password").hits}
        assert index.find_symbols("check_password") == []
        assert index.chunk_at("users/login.py", 1) is None
        assert index.paths() == frozenset({"billing/invoice.py"})
    # the administrator's policy, added later (its redact_pii re-indexes every file)
    (tmp_path / "policy.toml").write_text('never_index = ["users/**"]\nredact_pii = true\n')
    env = {"ENCLAVE_POLICY": str(tmp_path / "policy.toml"), "XDG_CONFIG_HOME": str(tmp_path)}
    config, problems = load_config(root, {"embedding": {"provider": "none"}}, env=env)
    assert not problems and config.index.never_index == ("users/**",)
    index = open_index(root, config)
    assert [h.path for h in index.search("check password").hits] == []
    summary = index.update()
    assert summary.files_deleted == 1 and summary.full
    assert "users/login.py" not in {row[0] for row in catalog_rows(root / ".enclave")}
    assert "users/login.py" not in {row[0] for row in chunk_rows(root / ".enclave")}


def test_status_index_and_search_agree_on_vectors_from_what_is_stored(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    """The reported case: an index embedded earlier by a server with other dimensions is
    re-indexed against one whose every batch fails. The vectors of the old size are gone and no
    new one was made: status must not say "semantic: on" with no vector missing."""
    root = make_repo(tmp_path / "repo", SMALL)
    config = config_for(ollama_server, embedding={"batch_size": 1})
    first = open_index(root, config).update()
    assert first.semantic and first.embedded == 2
    Store(str(root / ".enclave")).set_meta({"embedding_dim": "7"})  # the other server's size
    write_files(root, {"users/profile.py": "def display_name(user):\n    return user.name\n"})
    ollama_server.set_fault("error-500", endpoint="/api/embed", after=1)  # the probe passes
    summary = open_index(root, config).update()
    assert not summary.semantic and summary.embedded == 0, summary
    status = open_index(root, config).status()
    assert (status.semantic, status.vectors_missing) == (False, 3), status
    assert status.semantic_reason == "the index has no vectors yet"
    with pytest.raises(IndexProblem, match="no vectors yet"):
        open_index(root, config).search("display name", mode="semantic")
    ollama_server.clear_fault()
    assert open_index(root, config).update().embedded == 3
    status = open_index(root, config).status()
    assert (status.semantic, status.vectors_missing) == (True, 0)


def test_a_complete_index_only_is_never_published_degraded(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    """--fail-on-degraded (complete_only): an embedding server that does not answer at the start
    writes nothing; one that fails after the files were written has the update taken back."""
    root = make_repo(tmp_path / "repo", SMALL)
    config = config_for(ollama_server, embedding={"batch_size": 1})
    assert open_index(root, config).update(complete_only=True).published
    commit = git(root, "rev-parse", "HEAD").strip()
    before = (chunk_rows(root / ".enclave"), catalog_rows(root / ".enclave"))
    write_files(root, {"users/profile.py": "def display_name(user):\n    return user.name\n"})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "profile")

    down = config_for(ollama_server, ollama={"host": "http://127.0.0.1:9"})
    summary = open_index(root, down).update(complete_only=True)
    assert not summary.published and not summary.semantic
    assert any("nothing was written" in note for note in summary.notes)

    ollama_server.set_fault("error-500", endpoint="/api/embed", after=1)  # fails mid-way
    summary = open_index(root, config).update(complete_only=True)
    assert not summary.published and summary.files_indexed == 1
    assert any("taken back" in note for note in summary.notes)
    assert (chunk_rows(root / ".enclave"), catalog_rows(root / ".enclave")) == before
    index = open_index(root, config)
    status = index.status()
    assert status.healthy and status.commit == commit and status.semantic, status
    assert "users/profile.py" not in {h.path for h in index.search("display name").hits}

    ollama_server.clear_fault()
    summary = open_index(root, config).update(complete_only=True)
    assert summary.published and summary.files_indexed == 1 and summary.semantic
