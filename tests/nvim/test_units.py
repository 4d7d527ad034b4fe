"""The plugin's pure helpers, run in a real Neovim: status and re-index summaries, citation
labels."""

from __future__ import annotations

import json

from tests.nvim.harness import Nvim


def test_status_lines_name_the_problem_and_the_fix(nvim: Nvim) -> None:
    status = {
        "state": "degraded",
        "root": "/src/app",
        "files": 120,
        "chunks": 950,
        "symbols": 700,
        "semantic": False,
        "semanticReason": "embedding model 'nomic-embed-text' is not pulled",
        "chatModel": "deepseek-r1",
        "completionModel": "qwen2.5-coder:1.5b",
        "message": "Ollama is not running at http://127.0.0.1:11434",
        "fix": "start it with `ollama serve`",
    }
    assert nvim.lua("return require('enclave.status').describe(...)", status) == [
        "state: degraded",
        "repository: /src/app",
        "index: 120 files, 950 chunks, 700 symbols",
        "semantic search: off (embedding model 'nomic-embed-text' is not pulled)",
        "models: chat deepseek-r1, completion qwen2.5-coder:1.5b",
        "problem: Ollama is not running at http://127.0.0.1:11434",
        "fix: start it with `ollama serve`",
    ]


def test_status_lines_list_each_server_of_a_fleet(nvim: Nvim) -> None:
    status = {
        "state": "ready",
        "modelHosts": [
            {"host": "https://gpu1.corp:443", "state": "down", "inFlight": 0, "error": "refused"},
            {"host": "https://gpu2.corp:443", "state": "up", "inFlight": 1, "error": ""},
        ],
    }
    lines = nvim.lua("return require('enclave.status').describe(...)", status)
    assert lines[-2:] == [
        "model server https://gpu1.corp:443: down (refused)",
        "model server https://gpu2.corp:443: up",
    ]


def test_reindex_summary_per_repository(nvim: Nvim) -> None:
    result = {
        "roots": [
            {
                "root": "/src/app",
                "files_seen": 12,
                "files_indexed": 2,
                "files_deleted": 1,
                "chunks_total": 40,
                "seconds": 1.3,
                "cancelled": True,
                "errors": ["bad.py: cannot parse"],
                "semantic": True,
            },
            {"root": "/src/lib", "error": "the index at /src/lib/.enclave is locked"},
        ]
    }
    assert nvim.lua("return require('enclave.status').reindex_summary(...)", result) == (
        "app: 12 files (2 re-indexed, 1 deleted), 40 chunks in 1.3 s (cancelled); "
        "1 file(s) failed: bad.py: cannot parse\n"
        "lib: failed: the index at /src/lib/.enclave is locked"
    )


def test_citation_labels_are_one_based_and_inclusive(nvim: Nvim) -> None:
    label = "return require('enclave.answer').citation_label(...)"
    whole_lines = {
        "path": "pkg/mod.py",
        "symbol": "Session.request",
        "range": {"start": {"line": 9, "character": 0}, "end": {"line": 20, "character": 0}},
    }
    assert nvim.lua(label, 1, whole_lines) == "[1] pkg/mod.py:10-20  Session.request"
    inside = {
        "uri": "file:///src/pkg/util.py",
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 7}},
    }
    assert nvim.lua(label, 2, inside) == "[2] /src/pkg/util.py:1-3"


def test_empty_settings_are_sent_as_the_list_or_object_their_type_names(nvim: Nvim) -> None:
    """Lua has one empty table: the generated types (require('enclave.settings')) choose."""
    settings = "{ index = { exclude = {} }, ollama = { headers = {}, hosts = {} }, chat = {} }"
    sent = nvim.lua(f"return vim.json.encode(require('enclave.config').as_object({settings}))")
    assert json.loads(sent) == {
        "index": {"exclude": []},
        "ollama": {"headers": {}, "hosts": []},
        "chat": {},
    }
    assert nvim.lua("return require('enclave.settings').chat.maxTokens") == {
        "type": "integer",
        "default": 1024,
    }


def test_an_answer_still_thinking_shows_how_long(nvim: Nvim) -> None:
    """While the model thinks, the answer window's status counts its tokens and seconds."""
    progress = "return require('enclave.answer').progress(...)"
    assert nvim.lua(progress, 120, 11900, False) == "thinking… 120 tokens · 12 s"
    assert nvim.lua(progress, 1, 0, False) == "thinking… 1 token · 0 s"
    assert nvim.lua(progress, 120, 11900, True) == "streaming…"  # the answer has begun
    assert nvim.lua(progress, 0, 0, False) == "streaming…"  # no thinking (yet)
