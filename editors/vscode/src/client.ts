/**
 * The language client: starts `enclave lsp`, passes the settings, follows `enclave/status` and
 * indexing progress in the status bar, and streams explanations and answers into the panel.
 */

import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  ProgressType,
  type ResponseError,
  State,
  TransportKind,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
} from "vscode-languageclient/node";
import { AnswerStream, explainTitle } from "./lib/answer";
import { findExecutable } from "./lib/executable";
import { Methods, parseStatus, ServerCommands, type AskParams, type ExplainParams } from "./lib/protocol";
import {
  configurationResponse,
  serverCommand,
  startFailureMessage,
  toInitializationOptions,
  type InitializationOptions,
} from "./lib/settings";
import { eachLine, serverStderr } from "./lib/serverLog";
import { summarizeReindex } from "./lib/status";
import type { AnswerPanel } from "./panel";
import { clientSetting, explicitSettings } from "./settingsReader";
import type { StatusBar } from "./statusBar";

export class EnclaveClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private running: vscode.CancellationTokenSource | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly log: vscode.LogOutputChannel,
    private readonly statusBar: StatusBar,
    private readonly panel: AnswerPanel,
  ) {
    panel.onClosed = () => this.running?.cancel();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => void this.configurationChanged(event)),
    );
  }

  /** The folder the server indexes: the first workspace folder. */
  private folder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  /** Current settings as initializationOptions (the server checks them and reports a bad one). */
  private options(): InitializationOptions {
    return toInitializationOptions(explicitSettings(this.folder()?.uri));
  }

  async start(): Promise<void> {
    if (this.client !== undefined) {
      return;
    }
    const folder = this.folder();
    const cwd = folder?.uri.fsPath ?? process.cwd();
    const cmd = serverCommand(clientSetting("server.path", folder?.uri), clientSetting("server.pythonPath", folder?.uri));
    const executable = findExecutable(cmd.command, process.env.PATH ?? "", cwd);
    if (executable === undefined) {
      const error = Object.assign(new Error(`${cmd.command} not found`), { code: "ENOENT" });
      this.startFailed(startFailureMessage(cmd, error));
      return;
    }
    this.statusBar.setClient("starting");
    this.log.info(`starting ${[executable, ...cmd.args].join(" ")} in ${cwd}`);
    const serverOptions: ServerOptions = {
      command: executable,
      args: cmd.args,
      transport: TransportKind.stdio,
      options: { cwd, env: { ...process.env, ...cmd.env } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }],
      outputChannel: this.log,
      // The server's stderr at each record's level (the client's default shows it all as errors).
      stdioOptions: { stdout: (input, log) => eachLine(input, (line) => log.info(line)), stderr: serverStderr },
      initializationOptions: this.options(),
      middleware: this.middleware(),
    };
    const client = new LanguageClient("enclave", "Enclave", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        this.statusBar.setClient("running");
      } else if (event.newState === State.Stopped && this.client === client) {
        this.statusBar.setClient("stopped", "Run “Enclave: Restart Server” to start it again.");
      }
    });
    client.onNotification(Methods.status, (params: unknown) => {
      const status = parseStatus(params);
      if (status === undefined) {
        this.log.warn(`ignored a malformed ${Methods.status} notification: ${JSON.stringify(params)}`);
        return;
      }
      this.statusBar.setServer(status);
    });
    try {
      await client.start();
    } catch (error) {
      this.client = undefined;
      this.startFailed(startFailureMessage(cmd, error));
    }
  }

  private startFailed(message: string): void {
    this.log.error(message);
    this.statusBar.setClient("failed", message);
    void vscode.window.showErrorMessage(message, "Open Settings", "Show Log").then((choice) => {
      if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "enclave.server");
      } else if (choice === "Show Log") {
        this.log.show();
      }
    });
  }

  private middleware(): Middleware {
    return {
      // The server reads section "enclave" again after didChangeConfiguration: answer with the
      // explicit settings only, as at start, so `.enclave.toml` keeps applying.
      workspace: {
        configuration: async (params, token, next) => {
          const result: unknown = await next(params, token);
          if (!Array.isArray(result)) {
            return result as ResponseError<void>;
          }
          return configurationResponse(params.items, this.options(), result as unknown[]);
        },
      },
      // Code actions carry the server's commands; stream their answers into the panel instead.
      executeCommand: async (command, args, next) => {
        const arg: unknown = args[0];
        const first = typeof arg === "object" && arg !== null ? (arg as Record<string, unknown>) : {};
        if (command === ServerCommands.explain) {
          const params = first as unknown as ExplainParams;
          return this.streamAnswer(Methods.explain, params, `Explain ${describeTarget(params)}`);
        }
        if (command === ServerCommands.ask) {
          const question =
            typeof first.question === "string" && first.question !== "" ? first.question : await askQuestion();
          if (question === undefined) return undefined;
          const params: AskParams = { ...first, question };
          return this.streamAnswer(Methods.ask, params, question);
        }
        const result: unknown = await next(command, args);
        return result;
      },
      handleWorkDoneProgress: (_token, params, next) => {
        if (params.kind === "end") {
          this.statusBar.setProgress(undefined);
        } else {
          this.statusBar.setProgress({ percentage: params.percentage, message: params.message ?? (params.kind === "begin" ? params.title : undefined) });
        }
        next(_token, params);
      },
    };
  }

  private async configurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration("enclave")) {
      return;
    }
    if (event.affectsConfiguration("enclave.server")) {
      const choice = await vscode.window.showInformationMessage(
        "Enclave: the server command changed. Restart the server to use it?",
        "Restart",
      );
      if (choice === "Restart") await this.restart();
      return;
    }
    if (this.client?.isRunning()) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { enclave: this.options() },
      });
    }
  }

  /** The running client, starting it if needed; undefined (and the user told) if it cannot run. */
  async ready(): Promise<LanguageClient | undefined> {
    if (this.client === undefined) {
      await this.start();
    }
    if (this.client === undefined || !this.client.isRunning()) {
      void vscode.window.showErrorMessage(
        "Enclave: the language server is not running. Run “Enclave: Show Status” for the reason.",
      );
      return undefined;
    }
    return this.client;
  }

  /** Send `enclave/explain` or `enclave/ask` and stream the partial results into the panel. */
  async streamAnswer(method: string, params: ExplainParams | AskParams, title: string): Promise<unknown> {
    const client = await this.ready();
    if (client === undefined) return undefined;
    this.running?.cancel();
    const cancel = new vscode.CancellationTokenSource();
    this.running = cancel;
    const answer = new AnswerStream(title);
    this.panel.show(answer);
    const token = randomUUID();
    const subscription = client.onProgress(new ProgressType<unknown>(), token, (value) => {
      answer.applyPartial(value);
      this.panel.update();
    });
    try {
      const result: unknown = await client.sendRequest(method, { ...params, partialResultToken: token }, cancel.token);
      if (cancel.token.isCancellationRequested) {
        answer.cancel();
      } else {
        return answer.finish(result);
      }
    } catch (error) {
      if (cancel.token.isCancellationRequested) {
        answer.cancel();
      } else {
        const message = error instanceof Error ? error.message : String(error);
        answer.fail(message);
        this.log.error(`${method} failed: ${message}`);
        void vscode.window.showErrorMessage(`Enclave: ${message}`);
      }
    } finally {
      subscription.dispose();
      if (this.running === cancel) this.running = undefined;
      this.panel.flush();
    }
    return undefined;
  }

  async explainSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || editor.document.uri.scheme !== "file") {
      void vscode.window.showErrorMessage("Enclave: open a file from the repository and select the code to explain.");
      return;
    }
    const client = await this.ready();
    if (client === undefined) return;
    const selection = editor.selection;
    const path = vscode.workspace.asRelativePath(editor.document.uri);
    const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
    const range = client.code2ProtocolConverter.asRange(selection);
    await this.streamAnswer(
      Methods.explain,
      { textDocument: { uri }, range },
      // The server's answer retitles it with the lines it explained.
      selection.isEmpty
        ? `Explain the definition at ${path}:${selection.start.line + 1}`
        : explainTitle({ uri, path, range }),
    );
  }

  async askRepository(): Promise<void> {
    const question = await askQuestion();
    if (question === undefined) return;
    const client = await this.ready();
    if (client === undefined) return;
    const editor = vscode.window.activeTextEditor;
    const params: AskParams = { question };
    if (editor !== undefined && editor.document.uri.scheme === "file") {
      params.textDocument = { uri: client.code2ProtocolConverter.asUri(editor.document.uri) };
      if (!editor.selection.isEmpty) params.range = client.code2ProtocolConverter.asRange(editor.selection);
    }
    await this.streamAnswer(Methods.ask, params, question);
  }

  async reindex(full: boolean): Promise<void> {
    const client = await this.ready();
    if (client === undefined) return;
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: ServerCommands.reindex,
        arguments: [{ full }],
      });
      void vscode.window.showInformationMessage(summarizeReindex(result));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(`reindex failed: ${message}`);
      void vscode.window.showErrorMessage(`Enclave: reindexing failed: ${message}`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.running?.cancel();
    if (client !== undefined) {
      try {
        await client.stop();
      } catch (error) {
        this.log.warn(`stopping the server: ${String(error)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    this.statusBar.setClient("starting");
    await this.start();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    void this.stop();
  }
}

/** "pkg/mod.py:12" for the panel's title. */
function describeTarget(params: { textDocument?: { uri?: unknown }; range?: { start?: { line?: unknown } } }): string {
  const uri = params.textDocument?.uri;
  if (typeof uri !== "string") return "";
  const line = params.range?.start?.line;
  const where = vscode.workspace.asRelativePath(vscode.Uri.parse(uri));
  return typeof line === "number" ? `${where}:${line + 1}` : where;
}

async function askQuestion(): Promise<string | undefined> {
  const question = await vscode.window.showInputBox({
    title: "Enclave: Ask About the Repository",
    prompt: "Your question is answered from this repository's index by the local model.",
    placeHolder: "Where are HTTP retries configured?",
    ignoreFocusOut: true,
  });
  const trimmed = question?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}
