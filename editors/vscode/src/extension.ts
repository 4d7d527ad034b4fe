/**
 * Entry point of the Enclave extension: creates the server log, the status bar, the answer
 * panel and the language client, and registers the commands.
 */

import * as vscode from "vscode";
import { EnclaveClient } from "./client";
import { fixCommand, statusDetails } from "./lib/status";
import { AnswerPanel } from "./panel";
import { StatusBar } from "./statusBar";

let enclave: EnclaveClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("Enclave", { log: true });
  const statusBar = new StatusBar();
  const panel = new AnswerPanel();
  enclave = new EnclaveClient(log, statusBar, panel);
  const client = enclave;
  context.subscriptions.push(
    log,
    statusBar,
    panel,
    vscode.commands.registerCommand("enclave.explainSelection", () => client.explainSelection()),
    vscode.commands.registerCommand("enclave.askRepository", () => client.askRepository()),
    vscode.commands.registerCommand("enclave.reindexWorkspace", () => client.reindex(false)),
    vscode.commands.registerCommand("enclave.reindexWorkspaceFull", () => client.reindex(true)),
    vscode.commands.registerCommand("enclave.restartServer", () => client.restart()),
    vscode.commands.registerCommand("enclave.showLog", () => log.show()),
    vscode.commands.registerCommand("enclave.showStatus", () => showStatus(client, statusBar, log)),
  );
  await client.start();
}

export async function deactivate(): Promise<void> {
  await enclave?.stop();
  enclave = undefined;
}

async function showStatus(client: EnclaveClient, statusBar: StatusBar, log: vscode.LogOutputChannel): Promise<void> {
  const model = statusBar.model;
  const [headline, ...rest] = statusDetails(model);
  const fix = fixCommand(model.server?.fix);
  const actions = [
    ...(fix !== undefined ? [`Run \`${fix}\``] : []),
    ...(model.client === "running" ? ["Reindex Workspace"] : []),
    "Restart Server",
    "Show Log",
  ];
  const choice = await vscode.window.showInformationMessage(
    `Enclave: ${headline}`,
    { modal: true, detail: rest.join("\n") },
    ...actions,
  );
  if (choice === undefined) {
    return;
  }
  if (fix !== undefined && choice === actions[0]) {
    // Typed into a terminal but not run: the user presses Enter.
    const terminal = vscode.window.createTerminal("Enclave");
    terminal.show();
    terminal.sendText(fix, false);
  } else if (choice === "Reindex Workspace") {
    await client.reindex(false);
  } else if (choice === "Restart Server") {
    await client.restart();
  } else if (choice === "Show Log") {
    log.show();
  }
}
