/**
 * Integration test: the "Enclave" log as the extension fills it from the real server: its stderr
 * through `serverStderr` (the client's `stdioOptions.stderr`) and its `window/logMessage`
 * notifications at their types (as vscode-languageclient writes them). Each record shows once,
 * at its level: an INFO record is never an error, and none arrives both ways.
 */

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Methods, parseStatus, type ServerStatus } from "../../src/lib/protocol";
import { serverStderr, type Level, type LogSink } from "../../src/lib/serverLog";
import { RecordingLog } from "../recordingLog";
import { toInitializationOptions } from "../../src/lib/settings";
import { closedPort, initialize, makeRepo, startServer, stopProcess, type Server } from "./support";

/** vscode-languageclient's handling of `window/logMessage` (MessageType 1..4, 5 = Debug). */
function logMessage(log: LogSink, params: { type: number; message: string }): void {
  const level = ({ 1: "error", 2: "warn", 3: "info", 5: "debug" } as Record<number, Level>)[params.type] ?? "info";
  log[level](params.message);
}

/** A record's text without the time stderr lines start with. */
function record(line: string): string {
  return line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} /, "");
}

let server: Server | undefined;
after(async () => {
  if (server !== undefined) {
    await stopProcess(server.child);
    server.connection.dispose();
  }
});

test("each server log record reaches the log once, at its level", async () => {
  const repo = makeRepo({ "main.py": "def main() -> None:\n    print('hello')\n" });
  const port = await closedPort();
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["ollama.host", `http://127.0.0.1:${port}`],
      ["ollama.connectTimeout", 1],
      ["embedding.provider", "none"],
    ]),
  );
  server = startServer(repo);
  const log = new RecordingLog();
  const { child, connection } = server;
  if (child.stderr === null) throw new Error("the server has no stderr pipe");
  serverStderr(child.stderr, log);
  const statuses: ServerStatus[] = [];
  connection.onNotification(Methods.status, (params: unknown) => {
    const status = parseStatus(params);
    if (status) statuses.push(status);
  });
  connection.onNotification("window/logMessage", (params: { type: number; message: string }) => logMessage(log, params));
  connection.onNotification("window/showMessage", () => undefined);
  await initialize(connection, repo, options);
  const started = Date.now();
  while (!statuses.some((s) => s.state === "degraded") && Date.now() - started < 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(statuses.some((s) => s.state === "degraded"), `no degraded status; stderr:\n${server.stderr().slice(-3000)}`);
  await connection.sendRequest("shutdown");
  await connection.sendNotification("exit");
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", () => resolve())));
  await new Promise((resolve) => setImmediate(resolve)); // the last stderr lines

  const shown = log.lines.map(([level, line]) => `[${level}] ${line}`).join("\n");
  const infos = log.lines.filter(([, line]) => record(line).startsWith("INFO enclave."));
  assert.ok(infos.some(([, line]) => line.includes("language server starting")), shown); // stderr, before initialize
  assert.ok(infos.some(([, line]) => line.includes(": degraded ")), shown); // logMessage, after it
  assert.deepEqual(infos.filter(([level]) => level !== "info"), [], `INFO records shown at another level:\n${shown}`);
  // A record arrives one way: stderr lines start with the time, `window/logMessage` ones do not.
  const fromStderr = new Set(log.lines.map(([, line]) => line).filter((line) => record(line) !== line).map(record));
  const both = log.lines.map(([, line]) => line).filter((line) => record(line) === line && fromStderr.has(line));
  assert.deepEqual(both, [], `records shown twice, from stderr and as window/logMessage:\n${shown}`);
});
