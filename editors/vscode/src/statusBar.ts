/** The status-bar item: indexing progress, ready, degraded and error states with their fix. */

import * as vscode from "vscode";
import type { ServerStatus } from "./lib/protocol";
import { renderStatus, type ClientPhase, type StatusModel } from "./lib/status";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("enclave.status", vscode.StatusBarAlignment.Right, 100);
  model: StatusModel = { client: "starting" };

  constructor() {
    this.item.name = "Enclave";
    this.item.command = "enclave.showStatus";
    this.render();
    this.item.show();
  }

  setClient(client: ClientPhase, clientMessage?: string): void {
    this.model = { ...this.model, client, clientMessage };
    if (client !== "running") {
      this.model.server = undefined;
      this.model.progress = undefined;
    }
    this.render();
  }

  setServer(server: ServerStatus): void {
    this.model = { ...this.model, client: "running", server };
    if (server.state !== "indexing") {
      this.model.progress = undefined;
    }
    this.render();
  }

  setProgress(progress: { percentage?: number; message?: string } | undefined): void {
    this.model = { ...this.model, progress };
    this.render();
  }

  private render(): void {
    const view = renderStatus(this.model);
    this.item.text = view.text;
    this.item.tooltip = new vscode.MarkdownString(view.tooltip);
    this.item.backgroundColor =
      view.severity === "normal"
        ? undefined
        : new vscode.ThemeColor(view.severity === "error" ? "statusBarItem.errorBackground" : "statusBarItem.warningBackground");
  }

  dispose(): void {
    this.item.dispose();
  }
}
