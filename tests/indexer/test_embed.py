"""Semantic search for real: the in-process MiniLM provider and Ollama's /api/embed (test server)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from enclave.config import Config, EmbeddingConfig, OllamaConfig, TrustConfig
from enclave.indexer import store as store_module
from enclave.indexer.api import open_index
from enclave.indexer.embed import EMBEDDING_INPUT_VERSION, embedding_input, symbol_words
from enclave.indexer.embedding_pass import INNER_FROM_CHARS
from enclave.server.cli import main
from tests.support.meaning import MEANING as FILES
from tests.support.ollama_server import OllamaTestServer
from tests.support.repos import git, make_repo


def local_config() -> Config:
    return Config(embedding=EmbeddingConfig(provider="local"))


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("sem") / "repo", FILES)
    summary = open_index(root, local_config()).update()
    assert summary.semantic, summary.semantic_reason
    return root


def test_local_provider_records_model_and_finds_by_meaning(local_repo: Path) -> None:
    index = open_index(local_repo, local_config())
    status = index.status()
    assert status.semantic and status.embedding_model == "local:all-MiniLM-L6-v2"
    assert status.embedding_dim == 384
    hits = index.search(
        "retry a network call after waiting longer each time", k=3, mode="semantic"
    ).hits
    assert hits[0].path == "net/backoff.py"
    hits = index.search("turn a headline into a url friendly string", k=3, mode="semantic").hits
    assert hits[0].path == "text/slug.py"
    hybrid = index.search("reuse database connections", k=3)
    assert hybrid.hits[0].path == "db/pool.py" and hybrid.semantic_off is None


def test_local_default_model_embeds_without_another_models_task_prefixes(
    local_repo: Path,
) -> None:
    """embedding.model is left at Ollama's nomic-embed-text, so the local provider runs
    all-MiniLM-L6-v2, which was trained without prefixes: its vectors are those of the texts as
    they are, never after nomic-embed-text's `search_document: ` / `search_query: `."""
    from sentence_transformers import SentenceTransformer

    from enclave.indexer.embed import LocalEmbedder

    index = open_index(local_repo, local_config())
    store = index.store  # type: ignore[attr-defined]
    assert store.meta()["embedding_input"] == str(EMBEDDING_INPUT_VERSION)  # no document prefix
    chunk = store.columns("chunks", ["content_hash", "path", "symbol", "text"]).to_pylist()[0]
    vectors = store.table("embeddings").to_arrow().to_pylist()
    stored = next(
        v["vector"] for v in vectors if v["content_hash"] == chunk["content_hash"] and not v["part"]
    )
    model = SentenceTransformer(
        LocalEmbedder._model_path("all-MiniLM-L6-v2"), device="cpu", local_files_only=True
    )
    text = embedding_input(chunk["path"], chunk["symbol"], chunk["text"])
    plain, prefixed = model.encode(
        [text, "search_document: " + text], normalize_embeddings=True
    ).tolist()
    assert _cosine(stored, plain) > 0.9999 > _cosine(stored, prefixed)
    query = LocalEmbedder(local_config()).embed(["reuse database connections"], query=True)[0]
    raw = model.encode(["reuse database connections"], normalize_embeddings=True)[0].tolist()
    assert _cosine(query, raw) > 0.9999


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_moves_reuse_cached_vectors(local_repo: Path) -> None:
    index = open_index(local_repo, local_config())
    git(local_repo, "mv", "text/slug.py", "text/slugs.py")
    summary = index.update()
    assert summary.files_indexed == 1 and summary.files_deleted == 1
    assert summary.embedded == 0  # same text, same vector: nothing re-embedded
    assert (
        index.search("make a title url safe", k=1, mode="semantic").hits[0].path == "text/slugs.py"
    )


def test_chunks_embedded_in_an_older_form_are_embedded_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The header of what is embedded names the symbol's words (`format_hex` and `formatHex`
    are "format hex"); an index whose vectors were made from the older form (no version in its
    meta) re-embeds every chunk once, as for another model, instead of mixing the two."""
    assert embedding_input("cmp/path.go", "StructField.Name", "func f() {}") == (
        "cmp/path.go StructField.Name: struct field name\nfunc f() {}"
    )
    assert symbol_words("parseURLString") == symbol_words("parse_url_string") == "parse url string"
    root = make_repo(tmp_path / "repo", FILES)
    index = open_index(root, local_config())
    first = index.update()
    assert first.semantic and first.embedded > 0
    again = index.update(full=True)
    assert again.embedded == 0  # same form, same texts: every vector reused
    store = index.store  # type: ignore[attr-defined]
    assert not index.status().vectors_outdated
    store.table("meta").delete("key = 'embedding_input'")  # as an older Enclave left it
    # until the next update, semantic search works on them and status says why it ranks less well
    outdated = index.status()
    assert outdated.semantic and outdated.vectors_outdated
    main(["status", "--root", str(root), "--settings", '{"embedding": {"provider": "local"}}'])
    said = capsys.readouterr().out
    assert "made by an older Enclave and rank less well: run `enclave index`" in said, said
    second = index.update(full=True)
    assert any("what each chunk is embedded as changed" in note for note in second.notes)
    assert second.embedded == first.embedded
    assert index.update(full=True).embedded == 0
    assert not index.status().vectors_outdated
    hits = index.search("turn a headline into a url friendly string", k=3, mode="semantic").hits
    assert hits[0].path == "text/slug.py"


# A class whose last method is past what the model reads of the class's chunk (all-MiniLM-L6-v2
# reads 256 tokens): the class chunk's own vector says "invoices", never "archive".
_INVOICE_METHODS = "".join(
    f"    def {name}(self, invoice):\n"
    f"        amount = invoice.lines[{i}].quantity * invoice.lines[{i}].unit_price\n"
    f"        tax = round(amount * self.rates['{name}'], 2)\n"
    f"        return invoice.customer, amount + tax, self.currency\n\n"
    for i, name in enumerate(
        ["net_total", "gross_total", "vat_due", "discounted", "overdue_fee", "refund_due",
         "credit_note", "deposit", "balance", "rounding"]
    )
)  # fmt: skip
INNER = {
    **FILES,
    "billing/report.py": (
        "import zipfile\n\n\nclass InvoiceReport:\n"
        "    def __init__(self, rates, currency):\n"
        "        self.rates = rates\n        self.currency = currency\n\n"
        + _INVOICE_METHODS
        + "    def archive(self, paths, target):\n"
        "        with zipfile.ZipFile(target, 'w', zipfile.ZIP_DEFLATED) as bundle:\n"
        "            for path in paths:\n"
        "                bundle.write(path)\n"
    ),
    "io/save.py": "def save_text(path, text):\n    with open(path, 'w') as out:\n        out.write(text)\n",
}


@pytest.mark.parametrize("ann", [False, True], ids=["in-memory", "ann-index"])
def test_a_method_deep_in_its_class_chunk_is_found_by_its_own_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ann: bool
) -> None:
    """A class up to the chunk size is one chunk; a method the model never reads of it (past
    its first 256 tokens) has a vector of its own, and the class's chunk scores as its best
    vector: semantic search finds the method, with every vector in memory and through the ANN
    index."""
    if ann:
        monkeypatch.setattr(store_module, "ANN_MIN_ROWS", 1)
    root = make_repo(tmp_path / "repo", INNER)
    index = open_index(root, local_config())
    summary = index.update()
    assert summary.semantic, summary.semantic_reason
    assert index.store.has_vector_index() is ann  # type: ignore[attr-defined]
    store = index.store  # type: ignore[attr-defined]
    rows = store.columns("chunks", ["path", "kind", "start_line", "end_line"]).to_pylist()
    (report,) = [r for r in rows if r["path"] == "billing/report.py" and r["kind"] == "class"]
    assert report["end_line"] >= 50  # one chunk holds the class and every method
    hashes, parts, _ = store.load_vectors()
    assert sorted(parts.tolist()).count(0) == len(set(hashes))  # one whole vector per text
    text = INNER["billing/report.py"][INNER["billing/report.py"].index("class ") :]
    # the methods the class chunk's own vector does not read have a vector each
    past = [m for m in re.finditer(r"^    def ", text, re.M) if m.start() >= INNER_FROM_CHARS]
    assert 3 <= len(past) < 11
    assert int(parts.max()) == len(past) and len(parts) == len(set(hashes)) + len(past)
    query = "pack files into a compressed archive"
    hit = index.search(query, k=3, mode="semantic").hits[0]
    assert (hit.path, hit.start_line) == ("billing/report.py", report["start_line"])
    hybrid = index.search(query, k=3).hits[0]
    assert (hybrid.path, hybrid.start_line) == ("billing/report.py", report["start_line"])


# A TypeScript function whose overload signatures (each with its JSDoc, as rxjs writes them) run
# past what the model reads of its chunk, and a Python function whose nested helper does: the
# chunk's own vector says "invoice totals", never "archive".
_OVERLOADS = "".join(
    f"/** @deprecated Pass the invoice lines as one array: invoices are summed per customer. */\n"
    f"export function bundle<T extends Invoice>(first: T, {', '.join(f'x{j}: T' for j in range(i))}): Totals<T>;\n"
    for i in range(10)
)  # fmt: skip
_NESTED_HEAD = "".join(
    f"    {name} = invoice.lines[{i}].quantity * invoice.lines[{i}].unit_price * rates['{name}']\n"
    for i, name in enumerate(
        ["net", "gross", "vat", "discount", "fee", "refund", "credit", "deposit", "balance",
         "rounding", "surcharge", "levy"]
    )
)  # fmt: skip
DEEP = {
    **FILES,
    "billing/bundle.ts": (
        "import { Invoice, Totals } from './types';\n\n"
        + _OVERLOADS
        + "export function bundle(...paths: string[]): Promise<Blob> {\n"
        "  const archive = new ZipArchive({ compression: 'deflate' });\n"
        "  for (const path of paths) {\n"
        "    archive.addFile(path, readFileSync(path));\n"
        "  }\n"
        "  return archive.toBlob();\n"
        "}\n"
    ),
    "billing/close.py": (
        "import tarfile\n\n\ndef close_month(invoice, rates, folder):\n"
        + _NESTED_HEAD
        + "\n    def write_backup(paths, target):\n"
        "        with tarfile.open(target, 'w:gz') as backup:\n"
        "            for path in paths:\n"
        "                backup.add(path)\n\n"
        "    return write_backup\n"
    ),
}


def test_what_a_function_chunk_holds_past_the_models_reach_has_its_own_vector(
    tmp_path: Path,
) -> None:
    """A function's chunk holds definitions the model never reads of it (past its first 256
    tokens): a TypeScript implementation after its overload signatures, a nested function. Each
    gets a vector of its own, and the chunk scores as its best vector: semantic search finds
    them by what they do."""
    root = make_repo(tmp_path / "repo", DEEP)
    index = open_index(root, local_config())
    summary = index.update()
    assert summary.semantic, summary.semantic_reason
    store = index.store  # type: ignore[attr-defined]
    rows = store.columns("chunks", ["path", "kind", "start_line", "content_hash"]).to_pylist()
    chunk = {r["path"]: r for r in rows if r["kind"] == "function"}
    assert chunk["billing/bundle.ts"]["start_line"] == 3  # the overloads and the implementation
    hashes, parts, _ = store.load_vectors()
    for path, deep in (
        ("billing/bundle.ts", "function bundle("),
        ("billing/close.py", "    def write"),
    ):
        assert DEEP[path].index(deep) > INNER_FROM_CHARS  # the model never reads it in the chunk
        own = chunk[path]["content_hash"]
        mine = sorted(int(p) for h, p in zip(hashes, parts, strict=True) if h == own)
        assert mine == [0, 1], path  # the chunk's vector, then the implementation's or helper's
    for query, path in (
        ("compress these files into a zip archive", "billing/bundle.ts"),
        ("write a gzipped tar backup of the files", "billing/close.py"),
    ):
        hit = index.search(query, k=3, mode="semantic").hits[0]
        assert (hit.path, hit.start_line) == (path, chunk[path]["start_line"]), query


def ollama_embedding_config(server: OllamaTestServer, model: str = "nomic-embed-text") -> Config:
    return Config(
        embedding=EmbeddingConfig(provider="ollama", model=model),
        ollama=OllamaConfig(host=server.url, connect_timeout=2.0, total_timeout=60.0),
    )


def test_model_change_re_embeds_instead_of_mixing(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    first = open_index(root, local_config()).update()
    assert first.semantic and first.embedded > 0
    index = open_index(root, ollama_embedding_config(ollama_server))
    second = index.update()
    assert second.semantic, second.semantic_reason
    assert any("embedding model changed" in note for note in second.notes)
    assert second.embedded == first.embedded  # every chunk again, with the new model
    status = index.status()
    assert status.embedding_model == "ollama:nomic-embed-text" and status.embedding_dim != 384
    assert index.search("connection pool", k=3, mode="semantic").hits
    # querying with a different configured model than the index was built with is refused, loudly
    mixed = open_index(root, local_config())
    result = mixed.search("connection pool", k=3)
    assert result.semantic_off is not None
    assert "was embedded with ollama:nomic-embed-text" in result.semantic_off.message


def test_unreachable_ollama_still_builds_lexical_and_says_why(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    config = Config(ollama=OllamaConfig(host="http://127.0.0.1:9", connect_timeout=1.0))
    index = open_index(root, config)
    summary = index.update()
    assert not summary.semantic
    assert "not reachable at http://127.0.0.1:9" in summary.semantic_reason
    assert "ollama serve" in summary.semantic_fix and "ollama serve" not in summary.semantic_reason
    status = index.status()
    assert (status.semantic_reason, status.semantic_fix) == (
        summary.semantic_reason,
        summary.semantic_fix,
    )
    result = index.search("slugify", k=1)
    assert result.hits[0].path == "text/slug.py"
    assert result.semantic_off is not None
    assert result.semantic_off.message.startswith("semantic search is off")
    assert "ollama serve" in result.semantic_off.fix


def test_embedding_model_not_pulled(tmp_path: Path, ollama_server: OllamaTestServer) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    summary = open_index(root, ollama_embedding_config(ollama_server, "mxbai-embed-large")).update()
    assert not summary.semantic
    assert "'mxbai-embed-large' is not pulled" in summary.semantic_reason
    assert "ollama pull mxbai-embed-large" in summary.semantic_fix


def test_never_send_files_are_not_embedded(tmp_path: Path, ollama_server: OllamaTestServer) -> None:
    files = {**FILES, "internal/pricing.py": "def margin_for(customer):\n    return 0.42\n"}
    root = make_repo(tmp_path / "repo", files)
    base = ollama_embedding_config(ollama_server)
    config = replace(base, trust=TrustConfig(never_send=("internal/",)))
    ollama_server.state.requests.clear()
    summary = open_index(root, config).update()
    assert summary.semantic and summary.embedded > 0
    sent = json.dumps([body for path, body in ollama_server.state.requests if path == "/api/embed"])
    assert "call_with_backoff" in sent  # other files were embedded...
    assert "margin_for" not in sent  # ...this one never left the machine
    hits = open_index(root, config).search("margin_for customer", k=3, mode="lexical").hits
    assert hits and hits[0].path == "internal/pricing.py"  # still found by its words


def test_an_embedding_server_not_allowed_is_never_contacted(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    config = Config(
        embedding=EmbeddingConfig(provider="ollama"),
        ollama=OllamaConfig(host="http://203.0.113.7:11434", connect_timeout=30.0),
    )
    summary = open_index(root, config).update()  # would wait 30 s if it tried to connect
    assert not summary.semantic and summary.seconds < 20
    assert "not on this machine and not allowed" in summary.semantic_reason
    assert "trust.allowed_hosts" in summary.semantic_fix


def test_embedding_progress_is_shown_while_it_runs(
    tmp_path: Path, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Embedding is the slow step on a CPU: a terminal-less run prints chunks, rate and time left."""
    from enclave.server.cli import main

    root = make_repo(tmp_path / "repo", FILES)
    settings = {
        "ollama": {"host": ollama_server.url},
        "embedding": {"provider": "ollama", "model": "nomic-embed-text", "batchSize": 2},
    }
    assert main(["index", str(root), "--settings", json.dumps(settings)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "chunks" in line]
    assert any(line.startswith("enclave: embedding ") for line in lines), err
    progress = [line for line in lines if line.startswith("enclave: embedded ")]
    assert len(progress) >= 2 and "/s, " in progress[0], err
    assert progress[-1].endswith("done)"), progress


def test_semantic_state_follows_the_configuration_now_not_the_last_update(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    """The reason semantic search is off is derived when asked: the index only records which
    model made its vectors, never what an earlier process concluded."""
    root = make_repo(tmp_path / "repo", FILES)
    working = ollama_embedding_config(ollama_server)
    down = Config(ollama=OllamaConfig(host="http://127.0.0.1:9", connect_timeout=1.0))
    turned_off = Config(embedding=EmbeddingConfig(provider="none"))
    open_index(root, turned_off).update()  # e.g. an editor session with provider = none

    def state(config: Config) -> tuple[bool, str, str]:
        status = open_index(root, config).status()
        return status.semantic, status.semantic_reason, status.semantic_fix

    # Ollama works now: what is missing is vectors, and indexing is the fix
    assert state(working) == (False, "the index has no vectors yet", f"run `enclave index {root}`")
    semantic, reason, fix = state(down)  # Ollama at another address, down
    assert not semantic and reason == "Ollama is not reachable at http://127.0.0.1:9"
    assert "ollama serve" in fix
    absent = ollama_embedding_config(ollama_server, "mxbai-embed-large")
    assert state(absent)[1] == "embedding model 'mxbai-embed-large' is not pulled"
    chat_model = ollama_embedding_config(ollama_server, "deepseek-r1")
    assert state(chat_model)[1].startswith("model 'deepseek-r1' cannot make embeddings")
    assert "provider = none" in state(turned_off)[1]

    assert open_index(root, working).update().semantic
    assert state(working) == (True, "", "")
    # the same vectors, judged with other settings and no update in between
    assert state(down)[:2] == (False, "Ollama is not reachable at http://127.0.0.1:9")
    assert "provider = none" in state(turned_off)[1]
    semantic, reason, fix = state(local_config())
    assert reason == (
        "the index was embedded with ollama:nomic-embed-text but local:all-MiniLM-L6-v2 is "
        "configured"
    )
    assert "re-embed" in fix
    assert state(working) == (True, "", "")
    # a search says the same as the status, with the same fix
    result = open_index(root, down).search("connection pool", k=3)
    assert result.hits and result.semantic_off is not None
    assert "not reachable at http://127.0.0.1:9" in result.semantic_off.message
    assert result.semantic_off.fix == state(down)[2]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_batches_overlap_up_to_the_concurrency_and_vectors_land_in_place(
    tmp_path: Path, ollama_server: OllamaTestServer, concurrency: int
) -> None:
    """The next batches are sent while the last one's vectors are stored; each vector still
    lands on its own chunk (the index equals one built a batch at a time)."""
    root = make_repo(tmp_path / "repo", FILES)
    base = ollama_embedding_config(ollama_server)
    config = replace(base, embedding=replace(base.embedding, batch_size=2, concurrency=concurrency))
    ollama_server.set_fault("hang-before-headers", endpoint="/api/embed", delay=0.2)
    try:
        summary = open_index(root, config).update()
    finally:
        ollama_server.clear_fault()
    assert summary.semantic and summary.embedded == summary.chunks_written >= 5
    assert ollama_server.state.most_in_flight["/api/embed"] == concurrency
    index = open_index(root, config)
    assert index.status().vectors_missing == 0
    hits = index.search("retry a network call after waiting longer", k=1, mode="semantic").hits
    assert hits[0].path == "net/backoff.py"


def test_a_batch_failing_in_flight_keeps_the_batches_before_it(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    base = ollama_embedding_config(ollama_server)
    config = replace(base, embedding=replace(base.embedding, batch_size=1, concurrency=2))
    index = open_index(root, config)
    # the probe and two batches are answered, then the server fails every embedding request
    ollama_server.set_fault("error-500", endpoint="/api/embed", after=3)
    try:
        failed = index.update()
    finally:
        ollama_server.clear_fault()
    assert not failed.semantic and "HTTP 500" in failed.semantic_reason
    assert f"({failed.chunks_written - 2} chunks left without vectors)" in failed.semantic_reason
    assert failed.embedded == 2
    status = index.status()  # the vectors made serve now, and the rest is owed
    assert status.semantic and status.vectors_missing == failed.chunks_written - 2
    again = index.update()
    assert again.embedded == status.vectors_missing and index.status().vectors_missing == 0


def test_ollama_embeddings_pass_a_failing_server_of_the_fleet(
    ollama_server: OllamaTestServer,
) -> None:
    from enclave.indexer.embed import make_embedder
    from tests.support.forward_proxy import ForwardProxy
    from tests.support.ollama_fixtures import config_for

    failing = ForwardProxy(ollama_server.url).start()
    live = ForwardProxy(ollama_server.url).start()
    failing.fail_with(502)
    config = config_for(
        ollama_server,
        ollama={"hosts": [failing.url, live.url], "headers": {"X-Team": "ml"}},
        embedding={"provider": "ollama"},
    )
    try:
        embedder = make_embedder(config)  # its probe embeds once
        for _ in range(3):
            assert len(embedder.embed(["def add(a, b): return a + b"])) == 1
    finally:
        failing.stop()
        live.stop()
    # the failing server was asked once, then left alone: not once per batch
    assert len(failing.paths("/api/embed")) == 1
    embeds = [s for s in live.state.seen if s.path == "/api/embed"]
    assert len(embeds) == 4 and all(
        {k.lower(): v for k, v in s.headers.items()}.get("x-team") == "ml" for s in embeds
    )


def _embedded_texts(server: OllamaTestServer) -> list[str]:
    texts: list[str] = []
    for path, body in server.state.requests:
        if path == "/api/embed":
            raw = body.get("input", "")
            texts += [raw] if isinstance(raw, str) else list(raw)
    return texts


def test_nomic_embed_text_gets_its_task_prefixes_and_an_index_without_them_re_embeds_once(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    """nomic-embed-text was trained with `search_document: ` / `search_query: ` before each
    text; without them its retrieval is worse. An index embedded without the document prefix
    (by an older Enclave) is embedded again once, as for another model."""
    root = make_repo(tmp_path / "repo", FILES)
    config = ollama_embedding_config(ollama_server)
    index = open_index(root, config)
    ollama_server.state.requests.clear()
    first = index.update()
    assert first.semantic and first.embedded > 0, first.semantic_reason
    documents = _embedded_texts(ollama_server)
    assert documents and all(text.startswith("search_document: ") for text in documents)
    ollama_server.state.requests.clear()
    assert index.search("connection pool", k=3, mode="semantic").hits
    assert _embedded_texts(ollama_server) == ["search_query: connection pool"]
    store = index.store  # type: ignore[attr-defined]
    store.table("meta").update(where="key = 'embedding_input'", values={"value": "2"})
    again = index.update(full=True)  # as an Enclave without prefixes left it
    assert any("document prefix" in note for note in again.notes)
    assert again.embedded == first.embedded
    assert index.update(full=True).embedded == 0  # once


def test_task_prefixes_follow_the_settings(tmp_path: Path, ollama_server: OllamaTestServer) -> None:
    """`""` turns a prefix off; any other text replaces the model's own; a model Enclave does not
    know gets none unless the settings give one."""
    root = make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
    base = ollama_embedding_config(ollama_server)
    off = replace(base, embedding=replace(base.embedding, document_prefix="", query_prefix="q: "))
    ollama_server.state.requests.clear()
    index = open_index(root, off)
    assert index.update().embedded > 0
    index.search("add numbers", k=1, mode="semantic")
    texts = _embedded_texts(ollama_server)
    assert texts[-1] == "q: add numbers"
    assert not any(text.startswith("search_") for text in texts)
