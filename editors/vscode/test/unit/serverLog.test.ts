/** Unit tests: the server's stderr lines reach the log at their records' levels, not all as errors. */

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { recordLevel, serverStderr, ServerStderr } from "../../src/lib/serverLog";
import { RecordingLog } from "../recordingLog";

test("a record's level is read from the server's and the index library's log formats", () => {
  assert.equal(recordLevel("2026-12-06 21:00:00,123 INFO enclave.server.lsp.app: Enclave 0.1.0 language server starting"), "info");
  assert.equal(recordLevel("2026-12-06 21:00:00,123 WARNING enclave.config: index.k: not a number"), "warn");
  assert.equal(recordLevel("2026-12-06 21:00:00,123 CRITICAL x: y"), "error");
  assert.equal(recordLevel("2026-12-06 21:00:00,123 DEBUG enclave.indexer: 3 files"), "debug");
  assert.equal(recordLevel("[2026-12-06T21:00:00Z WARN  lance::dataset] deprecated"), "warn");
  assert.equal(recordLevel("  File \"x.py\", line 3, in f"), undefined);
  assert.equal(recordLevel("INFO in the middle of a line"), undefined);
});

test("each line at its record's level; a record's further lines and traceback keep it", () => {
  const log = new RecordingLog();
  const stderr = new ServerStderr(log);
  for (const line of [
    "2026-12-06 21:00:00,100 INFO enclave.server.lsp.app: Enclave 0.1.0 language server starting",
    "2026-12-06 21:00:01,100 WARNING enclave.server.lsp.settings: chat.maxTokens: not a number",
    "  using the default",
    "2026-12-06 21:00:02,100 ERROR enclave.server.lsp.answers: explain failed",
    "Traceback (most recent call last):",
    '  File "answers.py", line 3, in explain',
    "2026-12-06 21:00:03,100 INFO enclave.server.lsp.status: status /repo: ready",
  ]) {
    stderr.line(line);
  }
  assert.deepEqual(
    log.lines.map(([level]) => level),
    ["info", "warn", "warn", "error", "error", "error", "info"],
  );
});

test("a crash after INFO records, and text before any record, are errors", () => {
  const log = new RecordingLog();
  const stderr = new ServerStderr(log);
  stderr.line("/usr/bin/python: No module named enclave");
  stderr.line("2026-12-06 21:00:00,100 INFO enclave.server.lsp.app: starting");
  stderr.line("Traceback (most recent call last):");
  stderr.line("MemoryError");
  assert.deepEqual(
    log.lines.map(([level]) => level),
    ["error", "info", "error", "error"],
  );
});

test("serverStderr reads a stream line by line", async () => {
  const log = new RecordingLog();
  const input = new PassThrough();
  serverStderr(input, log);
  input.end("2026-12-06 21:00:00,100 INFO enclave.a: one\n2026-12-06 21:00:00,200 ERROR enclave.b: two\n");
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(log.lines, [
    ["info", "2026-12-06 21:00:00,100 INFO enclave.a: one"],
    ["error", "2026-12-06 21:00:00,200 ERROR enclave.b: two"],
  ]);
});
