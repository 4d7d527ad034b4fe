/**
 * Integration test: with no Ollama at the configured address, the real server reports a
 * degraded state, and the status bar renders it as a warning that names the problem and the fix.
 */

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Methods, parseStatus, type ServerStatus } from "../../src/lib/protocol";
import { toInitializationOptions } from "../../src/lib/settings";
import { fixCommand, renderStatus } from "../../src/lib/status";
import { closedPort, initialize, makeRepo, startServer, stopProcess, type Server } from "./support";

let server: Server | undefined;
after(async () => {
  if (server !== undefined) {
    await server.connection.sendRequest("shutdown").catch(() => undefined);
    await server.connection.sendNotification("exit").catch(() => undefined);
    await stopProcess(server.child);
    server.connection.dispose();
  }
});

test("Ollama not running: a degraded status with the fix, shown as a warning", async () => {
  const repo = makeRepo({ "main.py": "def main() -> None:\n    print('hello')\n" });
  const port = await closedPort();
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["ollama.host", `http://127.0.0.1:${port}`],
      ["ollama.connectTimeout", 1],
    ]),
  );
  server = startServer(repo);
  const statuses: ServerStatus[] = [];
  const connection = server.connection;
  connection.onNotification(Methods.status, (params: unknown) => {
    const status = parseStatus(params);
    if (status) statuses.push(status);
  });
  connection.onNotification("window/showMessage", () => undefined);
  connection.onNotification("window/logMessage", () => undefined);
  await initialize(connection, repo, options);

  const started = Date.now();
  let degraded: ServerStatus | undefined;
  while (degraded === undefined && Date.now() - started < 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    degraded = statuses.find((s) => s.state === "degraded");
  }
  assert.ok(degraded, `a degraded status; got ${JSON.stringify(statuses)}; stderr:\n${server.stderr().slice(-3000)}`);
  assert.match(degraded.message ?? "", new RegExp(`127\\.0\\.0\\.1:${port}`), "the message names the address");
  assert.ok(fixCommand(degraded.fix), `the fix carries a command: ${degraded.fix}`);
  const view = renderStatus({ client: "running", server: degraded });
  assert.equal(view.text, "$(warning) Enclave: degraded");
  assert.equal(view.severity, "warning");
  assert.ok(view.tooltip.includes(`Fix: ${degraded.fix}`));
});
