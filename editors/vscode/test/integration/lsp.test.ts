/**
 * Integration test: the real `enclave lsp`, driven by the LSP client packages the extension uses,
 * against the test Ollama server (a real tiny model) and a real git repository. Checks the
 * extension's own logic on real server output: settings -> initializationOptions and the
 * workspace/configuration answer, status rendering, streamed answers and citation links.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ProgressType, type InitializeResult } from "vscode-languageserver-protocol/node";
import { AnswerStream, renderAnswerHtml } from "../../src/lib/answer";
import { citationLabel, citationTarget } from "../../src/lib/citations";
import { Methods, parseStatus, type ServerStatus } from "../../src/lib/protocol";
import { configurationResponse, toInitializationOptions, type InitializationOptions } from "../../src/lib/settings";
import { renderStatus } from "../../src/lib/status";
import { makeRepo, startOllama, startServer, stopProcess, type OllamaServer, type Server } from "./support";

const SESSION_PY = `"""HTTP sessions with retries."""

import time


class Session:
    """Sends requests and retries failed ones."""

    def __init__(self, retries: int = 3, backoff: float = 0.5) -> None:
        self.retries = retries
        self.backoff = backoff

    def request(self, method: str, url: str) -> str:
        """Send one request, retrying with exponential backoff."""
        for attempt in range(self.retries):
            try:
                return self._send(method, url)
            except ConnectionError:
                time.sleep(self.backoff * 2**attempt)
        raise ConnectionError(f"{method} {url} failed after {self.retries} attempts")

    def _send(self, method: str, url: str) -> str:
        return f"{method} {url}"
`;

const APP_PY = `"""The application's use of sessions."""

from pkg.session import Session


def fetch_user(session: Session, user_id: int) -> str:
    return session.request("GET", f"/users/{user_id}")
`;

/** What the user would have set in VS Code (the test Ollama server's models, small budgets). */
function userSettings(ollamaUrl: string): Map<string, unknown> {
  const settings = new Map<string, unknown>([
    ["ollama.host", ollamaUrl],
    ["ollama.chatModel", "deepseek-r1:1.5b"],
    ["embedding.provider", "ollama"],
    ["embedding.model", "nomic-embed-text"],
    ["completion.debounceMs", 0],
    ["completion.maxTokens", 24],
    ["chat.maxTokens", 96],
    ["server.path", "/not/sent/to/the/server"],
  ]);
  // Completions use the chat model (the default); ENCLAVE_TEST_COMPLETION_MODEL picks another
  // of the test server's models, e.g. qwen2.5-coder:1.5b for the fill-in-the-middle path.
  const completionModel = process.env.ENCLAVE_TEST_COMPLETION_MODEL;
  if (completionModel) settings.set("ollama.completionModel", completionModel);
  return settings;
}

function waitFor<T>(what: string, ms: number, poll: () => T | undefined, stderr: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      const value = poll();
      if (value !== undefined) {
        resolve(value);
      } else if (Date.now() - started > ms) {
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; server stderr:\n${stderr().slice(-4000)}`));
      } else {
        setTimeout(tick, 100);
      }
    };
    tick();
  });
}

describe("enclave lsp with the extension's client code", () => {
  let repo = "";
  let ollama: OllamaServer | undefined;
  let server: Server | undefined;
  let options: InitializationOptions = {};
  let init: InitializeResult | undefined;
  const statuses: ServerStatus[] = [];
  const configurationRequests: unknown[] = [];
  const messages: string[] = [];
  const logs: string[] = [];
  const serverLog = (): string => `${logs.join("\n")}\n${server?.stderr() ?? ""}`.slice(-4000);

  before(async () => {
    repo = makeRepo({ "pkg/__init__.py": "", "pkg/session.py": SESSION_PY, "pkg/app.py": APP_PY });
    ollama = await startOllama();
    options = toInitializationOptions(userSettings(ollama.url));

    server = startServer(repo);
    const connection = server.connection;
    connection.onNotification(Methods.status, (params: unknown) => {
      const status = parseStatus(params);
      assert.ok(status, `malformed enclave/status: ${JSON.stringify(params)}`);
      statuses.push(status);
    });
    connection.onNotification("window/showMessage", (params: { message: string }) => {
      messages.push(params.message);
    });
    connection.onNotification("window/logMessage", (params: { message: string }) => {
      logs.push(params.message);
    });
    connection.onRequest("window/workDoneProgress/create", () => null);
    connection.onRequest("client/registerCapability", () => null);
    connection.onRequest("workspace/configuration", (params: { items: { section?: string }[] }) => {
      configurationRequests.push(params);
      // What the extension's middleware answers: the explicit settings, never editor defaults.
      return configurationResponse(params.items, options, params.items.map(() => null));
    });
    connection.listen();

    const rootUri = pathToFileURL(repo).href;
    init = await connection.sendRequest<InitializeResult>("initialize", {
      processId: process.pid,
      clientInfo: { name: "Visual Studio Code", version: "1.91.0" },
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: path.basename(repo) }],
      initializationOptions: options,
      capabilities: {
        window: { workDoneProgress: true, showMessage: {} },
        workspace: { configuration: true, workspaceFolders: true, didChangeConfiguration: { dynamicRegistration: true } },
        textDocument: {
          synchronization: { didSave: true },
          inlineCompletion: { dynamicRegistration: false },
          completion: { completionItem: { snippetSupport: false } },
        },
      },
    });
    await connection.sendNotification("initialized", {});
    const srv = server;
    await waitFor("the index to be ready", 180_000, () => statuses.find((s) => s.state === "ready"), () => srv.stderr());
  });

  after(async () => {
    if (server !== undefined) {
      const { connection, child } = server;
      try {
        await connection.sendRequest("shutdown");
        await connection.sendNotification("exit");
      } finally {
        await stopProcess(child);
        connection.dispose();
      }
    }
    await ollama?.stop();
  });

  test("the server advertises inline completion and the Enclave commands", () => {
    const caps = init?.capabilities as Record<string, unknown> | undefined;
    assert.ok(caps?.inlineCompletionProvider, "inlineCompletionProvider");
    const commands = (caps?.executeCommandProvider as { commands?: string[] } | undefined)?.commands ?? [];
    for (const command of ["enclave.explain", "enclave.ask", "enclave.reindex"]) {
      assert.ok(commands.includes(command), `${command} in ${JSON.stringify(commands)}`);
    }
  });

  test("the server read section `enclave` and got the explicit settings, without client-only keys", () => {
    assert.ok(configurationRequests.length > 0, "workspace/configuration was requested");
    assert.equal(JSON.stringify(options).includes("/not/sent"), false);
    assert.deepEqual(messages.filter((m) => /invalid setting/.test(m)), []);
  });

  test("the ready status renders in the status bar with the index counts and models", () => {
    const ready = statuses.find((s) => s.state === "ready");
    assert.ok(ready);
    assert.ok((ready.files ?? 0) >= 2, `files: ${ready.files}`);
    assert.equal(ready.chatModel, "deepseek-r1:1.5b");
    const view = renderStatus({ client: "running", server: ready });
    assert.match(view.text, /^\$\(check\) Enclave/);
    assert.match(view.tooltip, new RegExp(`Index: ${ready.files} files`));
    assert.match(view.tooltip, /Chat model: deepseek-r1:1\.5b/);
  });

  test("an inline completion arrives for an unsaved buffer", async () => {
    assert.ok(server);
    const uri = pathToFileURL(path.join(repo, "pkg", "app.py")).href;
    const text = `${APP_PY}\n\ndef delete_user(session: Session, user_id: int) -> str:\n    """Delete one user through the session."""\n    `;
    const lines = text.split("\n");
    await server.connection.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId: "python", version: 1, text },
    });
    const position = { line: lines.length - 1, character: lines[lines.length - 1].length };
    type Items = { items: { insertText: string | { value: string }; range?: unknown }[] } | null;
    const result = await server.connection.sendRequest<Items>("textDocument/inlineCompletion", {
      textDocument: { uri },
      position,
      context: { triggerKind: 1 },
    });
    assert.ok(result, "a result");
    const generations = result.items.length === 0 ? await (await fetch(`${ollama?.url}/__admin/state`)).text() : "";
    assert.equal(result.items.length, 1, `model generations: ${generations}\n` + `one item: ${JSON.stringify(result)}; server log:\n${serverLog()}`);
    const insert = result.items[0].insertText;
    const value = typeof insert === "string" ? insert : insert.value;
    assert.ok(value.trim().length > 0, `non-empty insertText: ${JSON.stringify(value)}`);
    assert.doesNotMatch(value, /<think>/);
  });

  test("an explanation streams through partial results and ends with citations that open files", async () => {
    assert.ok(server);
    const uri = pathToFileURL(path.join(repo, "pkg", "session.py")).href;
    const token = "explain-1";
    const answer = new AnswerStream("Explain pkg/session.py:14-21");
    const streamed = { markdown: "", thinking: "" };
    const subscription = server.connection.onProgress(new ProgressType<unknown>(), token, (value) => {
      answer.applyPartial(value);
      streamed.markdown = answer.markdown;
      streamed.thinking = answer.thinking;
    });
    const result: unknown = await server.connection.sendRequest(Methods.explain, {
      textDocument: { uri },
      range: { start: { line: 13, character: 0 }, end: { line: 21, character: 0 } },
      partialResultToken: token,
    });
    subscription.dispose();
    assert.ok(answer.partials > 0, "partial results arrived");
    assert.ok(streamed.markdown.trim().length > 0, "markdown streamed");
    const final = answer.finish(result);
    // Titled with what was explained, as its first citation says (the end at column 0 is no line of it).
    assert.equal(answer.title, `Explain ${citationLabel(final.citations[0])}`);
    assert.match(answer.title, /^Explain pkg\/session\.py:14-\d+$/);
    assert.ok(final.markdown.trim().length > 0, "the final answer has markdown");
    assert.equal(streamed.markdown.trim(), final.markdown.trim(), "the deltas add up to the final markdown");
    assert.ok(streamed.thinking.length > 0, "deepseek-r1's thinking streamed apart from the markdown");
    assert.doesNotMatch(final.markdown, /<think>/);
    const sentNotes = (result as { notes?: unknown }).notes;
    assert.ok(Array.isArray(sentNotes), `the server sends notes: ${JSON.stringify(result)}`);
    assert.deepEqual(final.notes, sentNotes, "the notes are read as the server sent them");

    assert.ok(final.citations.length > 0, "citations");
    for (const citation of final.citations) {
      const target = citationTarget(citation);
      assert.ok(target, `a file target for ${JSON.stringify(citation)}`);
      const file = fileURLToPath(target.uri);
      assert.ok(file.startsWith(repo), `${file} is inside the repository`);
      assert.ok(existsSync(file), `${file} exists`);
      const lineCount = readFileSync(file, "utf8").split("\n").length;
      assert.ok(target.startLine <= target.endLine && target.endLine <= lineCount, citationLabel(citation));
    }
    assert.ok(final.citations.some((c) => c.path === "pkg/session.py"), "the explained file is cited");
    const html = renderAnswerHtml(answer);
    // the thinking streamed a token a part: counted in its folded label
    assert.match(html, /<details class="thinking"><summary>Thinking \(\d+ tokens?, \d+ s\)<\/summary>/);
    assert.match(html, /<h3>Sources<\/h3>/);
    assert.match(html, /class="citation" data-target="[^"]*pkg\/session\.py/);
    assert.equal(html.includes('<section class="notes">'), final.notes.length > 0, `notes shown when there are any: ${JSON.stringify(final.notes)}`);
  });

  test("a changed setting reaches the running server through didChangeConfiguration", async () => {
    assert.ok(server && ollama);
    const srv = server;
    const changed = new Map(userSettings(ollama.url));
    changed.set("ollama.chatModel", "smollm2:135m");
    options = toInitializationOptions(changed);
    const before = statuses.length;
    await srv.connection.sendNotification("workspace/didChangeConfiguration", { settings: { enclave: options } });
    const status = await waitFor(
      "a status with the new chat model",
      60_000,
      () => statuses.slice(before).find((s) => s.chatModel === "smollm2:135m"),
      serverLog,
    );
    assert.equal(status.chatModel, "smollm2:135m");
  });
});
