/**
 * The answer panel: a webview beside the editor where an explanation or answer streams in,
 * with the thinking folded and citations that open the cited lines when clicked.
 */

import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { decodeTarget, renderAnswerHtml, type AnswerStream } from "./lib/answer";
import type { CitationTarget } from "./lib/citations";

const STYLE = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 1em; }
pre, code { font-family: var(--vscode-editor-font-family); }
pre { background: var(--vscode-textCodeBlock-background); padding: .5em; overflow-x: auto; white-space: pre-wrap; }
details.thinking { color: var(--vscode-descriptionForeground); margin: .5em 0; }
a.citation { color: var(--vscode-textLink-foreground); cursor: pointer; }
.error { color: var(--vscode-errorForeground); }
section.notes { border-left: 3px solid var(--vscode-editorWarning-foreground); padding-left: .75em; }
section.notes h3 { margin: .25em 0; }
section.notes ul { margin: .25em 0; padding-left: 1.25em; }
p.cut { border-left: 3px solid var(--vscode-editorWarning-foreground); padding-left: .75em; }
.model, .note, .waiting { color: var(--vscode-descriptionForeground); font-style: italic; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
const root = document.getElementById("answer");
window.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg.type !== "render") return;
  const wasOpen = root.querySelector("details.thinking")?.open === true;
  root.innerHTML = msg.html;
  const details = root.querySelector("details.thinking");
  if (details && wasOpen) details.open = true;
});
root.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (!link) return;
  event.preventDefault();
  if (link.dataset.target) vscode.postMessage({ type: "open", target: link.dataset.target });
});
`;

export class AnswerPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private current: AnswerStream | undefined;
  private pending: NodeJS.Timeout | undefined;
  /** Called when the user closes the panel (the running request is then cancelled). */
  onClosed: (() => void) | undefined;

  show(answer: AnswerStream): void {
    this.current = answer;
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel(
        "enclave.answer",
        "Enclave",
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, localResourceRoots: [] },
      );
      this.panel.webview.html = this.shell(this.panel.webview);
      this.panel.webview.onDidReceiveMessage((msg: { type?: string; target?: unknown }) => {
        if (msg.type === "open") {
          const target = decodeTarget(msg.target);
          if (target !== undefined) {
            void openTarget(target);
          }
        }
      });
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.onClosed?.();
      });
    } else {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.panel.title = `Enclave: ${answer.title}`;
    this.flush();
  }

  /** Re-render soon (streamed deltas arrive many times a second). */
  update(): void {
    if (this.pending === undefined) {
      this.pending = setTimeout(() => this.flush(), 50);
    }
  }

  flush(): void {
    if (this.pending !== undefined) {
      clearTimeout(this.pending);
      this.pending = undefined;
    }
    if (this.panel !== undefined && this.current !== undefined) {
      this.panel.title = `Enclave: ${this.current.title}`; // an explanation names what it explained
      void this.panel.webview.postMessage({ type: "render", html: renderAnswerHtml(this.current) });
    }
  }

  private shell(webview: vscode.Webview): string {
    const nonce = randomBytes(16).toString("base64");
    const csp = `default-src 'none'; style-src ${webview.cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';`;
    return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<style nonce="${nonce}">${STYLE}</style></head>
<body><main id="answer"></main><script nonce="${nonce}">${SCRIPT}</script></body></html>`;
  }

  dispose(): void {
    if (this.pending !== undefined) {
      clearTimeout(this.pending);
    }
    this.panel?.dispose();
  }
}

/** Open a cited file with the cited lines selected. */
export async function openTarget(target: CitationTarget): Promise<void> {
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(target.uri, true));
  const range = document.validateRange(
    new vscode.Range(target.startLine, target.startCharacter, target.endLine, target.endCharacter),
  );
  await vscode.window.showTextDocument(document, {
    viewColumn: vscode.ViewColumn.One,
    selection: range,
    preserveFocus: false,
  });
}
