/**
 * Integration test: a workspace's own files can never run in place of Enclave's. The server runs
 * with the workspace folder as its working directory, and a repository may well have its own
 * `server/`, `indexer/`, `enclave/` or `multiprocessing/` package. Each of those below, if
 * imported, leaves a marker file and exits; the server must start and index anyway, in both ways
 * the extension starts it, and the controls show the same workspace does shadow a careless launch.
 */

import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { findExecutable } from "../../src/lib/executable";
import { Methods, parseStatus, type ServerStatus } from "../../src/lib/protocol";
import { serverCommand, toInitializationOptions } from "../../src/lib/settings";
import { closedPort, makeRepo, pythonCommand, serverEnv, startServer, stopProcess, type Launch } from "./support";

/** Modules a workspace could shadow: the old and new import names, and one the server's children import first. */
const SHADOWS = [
  "server",
  "server.lsp",
  "server.lsp.__main__",
  "indexer",
  "enclave",
  "enclave.server",
  "enclave.server.lsp",
  "enclave.server.lsp.__main__",
  "multiprocessing",
];

const cleanup: string[] = [];
after(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

interface Workspace {
  root: string;
  /** Where shadow modules leave their markers (outside the workspace, so indexing never sees them). */
  markers: string;
}

function shadowModule(name: string, markers: string): string {
  return [
    "# Importing this means the workspace shadowed Enclave's own code.",
    "import os",
    `open(os.path.join(${JSON.stringify(markers)}, ${JSON.stringify(name)}), "w").close()`,
    `raise SystemExit("shadowed: the workspace's ${name} was imported")`,
    "",
  ].join("\n");
}

/** A git workspace with real code and a shadow module for each name in SHADOWS. */
function shadowWorkspace(): Workspace {
  const markers = mkdtempSync(path.join(tmpdir(), "enclave-markers-"));
  const files: Record<string, string> = {
    "main.py": "def main() -> None:\n    print('hello')\n",
    "notes.txt": "Plain text: indexed without any language support.\n",
  };
  for (const name of SHADOWS) {
    const file = name.endsWith(".__main__") ? `${name.replace(/\./g, "/")}.py` : `${name.replace(/\./g, "/")}/__init__.py`;
    files[file] = shadowModule(name, markers);
  }
  const root = makeRepo(files);
  cleanup.push(root, markers);
  return { root, markers };
}

/** The venv's Python (as the other integration tests find it), as an absolute path. */
function venvPython(): string {
  const python = findExecutable(pythonCommand(), process.env.PATH ?? "", process.cwd());
  assert.ok(python, `no Python at ${pythonCommand()} (set ENCLAVE_PYTHON)`);
  return python;
}

/**
 * The launch of the extension's client.ts `start()`: `serverCommand` from the two settings,
 * resolved with `findExecutable` against the workspace folder, plus the `--stdio` that
 * vscode-languageclient appends for `TransportKind.stdio`.
 */
function extensionLaunch(serverPath: string, pythonPath: string, cwd: string): Launch {
  const cmd = serverCommand(serverPath, pythonPath);
  const executable = findExecutable(cmd.command, process.env.PATH ?? "", cwd);
  assert.ok(executable, `${cmd.command} not found`);
  return { command: executable, args: [...cmd.args, "--stdio"], env: cmd.env };
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running ${ms} ms after exit`)), ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

interface Run {
  /** The first status after indexing ended. */
  indexed: ServerStatus;
  exitCode: number | null;
  stderr: string;
}

/** Initialize the server in `workspace`, wait until indexing ends, then shut it down. */
async function runServer(launch: Launch, workspace: Workspace): Promise<Run> {
  const port = await closedPort();
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["ollama.host", `http://127.0.0.1:${port}`],
      ["ollama.connectTimeout", 1],
      ["embedding.provider", "none"],
    ]),
  );
  const server = startServer(workspace.root, launch);
  const { connection, child } = server;
  const statuses: ServerStatus[] = [];
  connection.onNotification(Methods.status, (params: unknown) => {
    const status = parseStatus(params);
    if (status) statuses.push(status);
  });
  connection.onNotification("window/showMessage", () => undefined);
  connection.onNotification("window/logMessage", () => undefined);
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("workspace/configuration", (params: { items: unknown[] }) => params.items.map(() => options));
  connection.listen();
  // A server that dies (a shadow module exits) would leave the requests pending forever.
  const died = new Promise<never>((_, reject) =>
    child.once("exit", (code) => {
      const imported = markersIn(workspace).join(", ") || "none";
      reject(new Error(`the server exited (${code}) early; shadow modules imported: ${imported}; stderr:\n${server.stderr().slice(-3000)}`));
    }),
  );
  died.catch(() => undefined);
  try {
    const rootUri = pathToFileURL(workspace.root).href;
    const initialize = connection.sendRequest("initialize", {
      processId: process.pid,
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: path.basename(workspace.root) }],
      initializationOptions: options,
      capabilities: { window: { workDoneProgress: true }, workspace: { configuration: true } },
    });
    await Promise.race([initialize, died]);
    await connection.sendNotification("initialized", {});
    const indexed = await Promise.race([indexingEnded(statuses, 120_000, server.stderr), died]);
    await connection.sendRequest("shutdown");
    await connection.sendNotification("exit");
    const exitCode = await exited(child, 20_000);
    return { indexed, exitCode, stderr: server.stderr() };
  } finally {
    await stopProcess(child);
    connection.dispose();
  }
}

/** The first status after an `indexing` one that is not `indexing`: the index build has ended. */
async function indexingEnded(statuses: ServerStatus[], ms: number, stderr: () => string): Promise<ServerStatus> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    const first = statuses.findIndex((s) => s.state === "indexing");
    const done = first < 0 ? undefined : statuses.slice(first).find((s) => s.state !== "indexing");
    if (done !== undefined) return done;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`indexing did not end in ${ms} ms; statuses ${JSON.stringify(statuses)}; stderr:\n${stderr().slice(-3000)}`);
}

function markersIn(workspace: Workspace): string[] {
  return readdirSync(workspace.markers).sort();
}

/** The real server ran: it indexed the workspace, shut down cleanly and imported no shadow. */
function assertNotShadowed(run: Run, workspace: Workspace): void {
  assert.deepEqual(markersIn(workspace), [], `workspace modules were imported; stderr:\n${run.stderr.slice(-3000)}`);
  assert.doesNotMatch(run.stderr, /shadowed/);
  assert.notEqual(run.indexed.state, "error", `${run.indexed.message}; stderr:\n${run.stderr.slice(-3000)}`);
  assert.ok((run.indexed.files ?? 0) >= 1, `the workspace was indexed: ${JSON.stringify(run.indexed)}`);
  assert.equal(run.exitCode, 0, "a clean shutdown/exit");
}

test("pythonPath mode: `<python> -P -m enclave.server.lsp` runs Enclave's server, not the workspace's", async () => {
  const workspace = shadowWorkspace();
  const launch = extensionLaunch("enclave", venvPython(), workspace.root);
  assert.deepEqual(launch.args, ["-P", "-m", "enclave.server.lsp", "--stdio"]);
  assertNotShadowed(await runServer(launch, workspace), workspace);
});

test("path mode: the `enclave` console script runs Enclave's server, not the workspace's", async () => {
  const workspace = shadowWorkspace();
  const script = path.join(path.dirname(venvPython()), "enclave");
  const launch = extensionLaunch(script, "", workspace.root);
  assert.deepEqual(launch.args, ["lsp", "--stdio"]);
  assertNotShadowed(await runServer(launch, workspace), workspace);
});

test("control: `<python> -m enclave.server.lsp` without -P runs the workspace's package", () => {
  const workspace = shadowWorkspace();
  const result = spawnSync(venvPython(), ["-m", "enclave.server.lsp", "--stdio"], {
    cwd: workspace.root,
    env: serverEnv(),
    input: "",
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.notEqual(result.status, 0, `exit ${result.status}; stderr:\n${result.stderr}`);
  assert.match(result.stderr, /shadowed: the workspace's enclave was imported/);
  assert.deepEqual(markersIn(workspace), ["enclave"]);
});

test("the server keeps its own indexing processes safe even when the editor sets no PYTHONSAFEPATH", async () => {
  // Indexing workers start as `python -c ...`, which would put the workspace first on sys.path
  // (a workspace `multiprocessing/` package would run in them); the server sets PYTHONSAFEPATH
  // for every process it starts, so another editor's plain `enclave lsp` is safe too.
  const workspace = shadowWorkspace();
  const launch = extensionLaunch(path.join(path.dirname(venvPython()), "enclave"), "", workspace.root);
  assertNotShadowed(await runServer({ ...launch, env: {} }, workspace), workspace);
});
