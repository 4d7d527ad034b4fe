/**
 * Support for the integration tests: a temporary git repository, the test Ollama server
 * (`python -m tests.support.ollama_server --port 0`) and the real `enclave lsp` driven over stdio
 * with the LSP client packages the extension uses (vscode-languageserver-protocol / vscode-jsonrpc).
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from "vscode-languageserver-protocol/node";
import { findExecutable } from "../../src/lib/executable";

/** editors/vscode (the compiled tests live in out/test/integration). */
export const EXTENSION_ROOT = path.resolve(__dirname, "..", "..", "..");
/** The Enclave repository. */
export const REPO_ROOT = path.resolve(EXTENSION_ROOT, "..", "..");

/** The Python that runs the test Ollama server: ENCLAVE_PYTHON, else the repository's .venv. */
export function pythonCommand(): string {
  return process.env.ENCLAVE_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");
}

/** The command that starts the server: ENCLAVE_LSP_COMMAND, else `enclave` on PATH, else the .venv's. */
export function lspCommand(): string[] {
  const configured = process.env.ENCLAVE_LSP_COMMAND?.trim();
  if (configured) {
    return configured.split(/\s+/);
  }
  const found =
    findExecutable("enclave", process.env.PATH ?? "", process.cwd()) ??
    findExecutable(path.join(REPO_ROOT, ".venv", "bin", "enclave"), "", "/");
  if (found === undefined) {
    throw new Error(
      "cannot find `enclave`: install the server (`python -m pip install -e .` in the repository) or set ENCLAVE_LSP_COMMAND",
    );
  }
  return [found, "lsp"];
}

function git(cwd: string, ...args: string[]): void {
  const result = spawnSync("git", args, { cwd, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`git ${args.join(" ")} failed: ${result.stderr}`);
  }
}

/** A committed git repository with the given files; returns its path. */
export function makeRepo(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), "enclave-vscode-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  git(root, "init", "-q", "-b", "main");
  git(root, "-c", "user.name=Test", "-c", "user.email=test@example.com", "add", "-A");
  git(root, "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "initial");
  return root;
}

/** Resolve when `predicate` matches a line of the child's output; reject on exit or timeout. */
function waitForLine(child: ChildProcess, predicate: (line: string) => string | undefined, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    let stderr = "";
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms; stderr:\n${stderr}`)), ms);
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split("\n")) {
        const value = predicate(line);
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
          return;
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before it was ready; stderr:\n${stderr}`));
    });
  });
}

export interface OllamaServer {
  url: string;
  stop(): Promise<void>;
}

/** Start the test Ollama server on a free port; resolves with its URL once it listens. */
export async function startOllama(): Promise<OllamaServer> {
  const child = spawn(pythonCommand(), ["-m", "tests.support.ollama_server", "--port", "0"], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await waitForLine(child, (line) => /(https?:\/\/[\w.:[\]-]+)/.exec(line)?.[1], 120_000);
  return { url, stop: () => stopProcess(child) };
}

export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export interface Server {
  child: ChildProcess;
  connection: MessageConnection;
  stderr: () => string;
}

/** A command line and what it adds to the environment, like the extension's `serverCommand`. */
export interface Launch {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/**
 * The environment the server gets: no user config, no OLLAMA_HOST, no ENCLAVE_* and no
 * PYTHONSAFEPATH from the shell running the tests (a launch that needs it says so in its env).
 */
export function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const home = mkdtempSync(path.join(tmpdir(), "enclave-home-"));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: home, ENCLAVE_LOG_LEVEL: "INFO" };
  delete env.OLLAMA_HOST;
  delete env.PYTHONSAFEPATH;
  for (const name of Object.keys(env)) {
    if (name.startsWith("ENCLAVE_") && name !== "ENCLAVE_LOG_LEVEL") delete env[name];
  }
  return { ...env, ...extra };
}

function defaultLaunch(): Launch {
  const [command, ...args] = lspCommand();
  return { command, args };
}

/** Start the server (by default `enclave lsp`) in `cwd` with a clean environment (`serverEnv`). */
export function startServer(cwd: string, launch: Launch = defaultLaunch()): Server {
  const env = serverEnv(launch.env);
  const child = spawn(launch.command, launch.args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  if (child.stdout === null || child.stdin === null) {
    throw new Error("the server has no stdio pipes");
  }
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  return { child, connection, stderr: () => stderr };
}

/** A loopback port nothing listens on. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/**
 * The client's side of a start, as VS Code does it: answer the server's requests (progress,
 * registrations, `workspace/configuration` with `options`), listen, `initialize` for `repo` with
 * `options`, then `initialized`. Handlers for notifications are the caller's, set before this.
 */
export async function initialize(connection: MessageConnection, repo: string, options: unknown): Promise<void> {
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("workspace/configuration", (params: { items: unknown[] }) => params.items.map(() => options));
  connection.listen();
  const rootUri = pathToFileURL(repo).href;
  await connection.sendRequest("initialize", {
    processId: process.pid,
    rootUri,
    workspaceFolders: [{ uri: rootUri, name: path.basename(repo) }],
    initializationOptions: options,
    capabilities: { window: { workDoneProgress: true }, workspace: { configuration: true } },
  });
  await connection.sendNotification("initialized", {});
}
