/** Unit tests: the status-bar text, tooltip and severity for each server and client state. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseStatus } from "../../src/lib/protocol";
import { fixCommand, renderStatus, statusDetails, summarizeReindex } from "../../src/lib/status";

test("starting, before the first enclave/status", () => {
  const view = renderStatus({ client: "starting" });
  assert.equal(view.text, "$(loading~spin) Enclave");
  assert.equal(view.severity, "normal");
  assert.match(view.tooltip, /Starting the language server/);
});

test("indexing shows the percentage and the file count from $/progress", () => {
  const view = renderStatus({
    client: "running",
    server: { state: "indexing", root: "/repo" },
    progress: { percentage: 41.6, message: "120/950 files" },
  });
  assert.equal(view.text, "$(sync~spin) Enclave: indexing 42%");
  assert.match(view.tooltip, /Indexing: \/repo/);
  assert.match(view.tooltip, /Progress: 42% 120\/950 files/);
  assert.equal(renderStatus({ client: "running", server: { state: "indexing" } }).text, "$(sync~spin) Enclave: indexing…");
});

test("ready lists counts, models and whether semantic search is on", () => {
  const status = parseStatus({
    state: "ready",
    root: "/repo",
    files: 120,
    chunks: 950,
    symbols: 700,
    semantic: false,
    semanticReason: "embedding model 'nomic-embed-text' is not pulled: run `ollama pull nomic-embed-text`",
    chatModel: "deepseek-r1",
    completionModel: "qwen2.5-coder:1.5b",
  });
  assert.ok(status);
  const model = { client: "running" as const, server: status };
  const view = renderStatus(model);
  assert.equal(view.text, "$(check) Enclave (lexical)");
  assert.equal(view.severity, "normal");
  assert.deepEqual(statusDetails(model), [
    "Ready: /repo",
    "Index: 120 files, 950 chunks, 700 symbols",
    "Semantic search: off (embedding model 'nomic-embed-text' is not pulled: run `ollama pull nomic-embed-text`)",
    "Chat model: deepseek-r1",
    "Completion model: qwen2.5-coder:1.5b",
  ]);
  assert.equal(renderStatus({ client: "running", server: { state: "ready", semantic: true } }).text, "$(check) Enclave");
});

test("degraded and error show the message and the fix, with a warning or error colour", () => {
  const degraded = renderStatus({
    client: "running",
    server: { state: "degraded", message: "Ollama is not running at http://127.0.0.1:11434", fix: "start it with `ollama serve`" },
  });
  assert.equal(degraded.text, "$(warning) Enclave: degraded");
  assert.equal(degraded.severity, "warning");
  assert.match(degraded.tooltip, /Ollama is not running at http:\/\/127\.0\.0\.1:11434/);
  assert.match(degraded.tooltip, /Fix: start it with `ollama serve`/);
  const error = renderStatus({ client: "running", server: { state: "error", message: "not a git repository" } });
  assert.equal(error.severity, "error");
  assert.equal(error.text, "$(error) Enclave: error");
});

test("a server that cannot start is an error with the reason", () => {
  const view = renderStatus({ client: "failed", clientMessage: "`enclave` was not found. Install it with ..." });
  assert.equal(view.text, "$(error) Enclave: not running");
  assert.equal(view.severity, "error");
  assert.match(view.tooltip, /`enclave` was not found/);
  assert.equal(renderStatus({ client: "stopped" }).severity, "warning");
});

test("fixCommand takes the first code span of a fix", () => {
  assert.equal(fixCommand("start it with `ollama serve`"), "ollama serve");
  assert.equal(fixCommand("run `ollama pull deepseek-r1` then `x`"), "ollama pull deepseek-r1");
  assert.equal(fixCommand("restart the machine"), undefined);
  assert.equal(fixCommand(undefined), undefined);
});

test("parseStatus rejects what is not a status", () => {
  assert.equal(parseStatus({ state: "sleeping" }), undefined);
  assert.equal(parseStatus(null), undefined);
  assert.deepEqual(parseStatus({ state: "ready", files: "many" }), {
    state: "ready", root: undefined, files: undefined, chunks: undefined, symbols: undefined, semantic: undefined,
    semanticReason: undefined, chatModel: undefined, completionModel: undefined, modelHosts: undefined,
    message: undefined, fix: undefined,
  });
});

test("a fleet of model servers: one line per server with its state", () => {
  const status = parseStatus({
    state: "ready",
    modelHosts: [
      { host: "https://gpu1.corp:443", state: "down", inFlight: 0, error: "Ollama is not running at https://gpu1.corp:443" },
      { host: "https://gpu2.corp:443", state: "up", inFlight: 1, error: "" },
      { host: 42 },
    ],
  });
  assert.ok(status);
  const lines = statusDetails({ client: "running", server: status });
  assert.deepEqual(lines.slice(-2), [
    "Model server https://gpu1.corp:443: down (Ollama is not running at https://gpu1.corp:443)",
    "Model server https://gpu2.corp:443: up",
  ]);
});

test("summarizeReindex", () => {
  assert.equal(summarizeReindex({ files: 12, chunks: 80, seconds: 1.234 }), "Enclave: index updated (12 files, 80 chunks) in 1.2 s.");
  assert.equal(summarizeReindex(null), "Enclave: reindexing finished.");
});
