/** Reads the `enclave.*` settings the user set explicitly (not defaults) from VS Code. */

import * as vscode from "vscode";
import { SERVER_SETTINGS } from "./lib/settings";

/** Dotted key -> value for every server setting set in user, workspace or folder settings. */
export function explicitSettings(scope?: vscode.Uri): Map<string, unknown> {
  const config = vscode.workspace.getConfiguration("enclave", scope);
  const explicit = new Map<string, unknown>();
  for (const key of SERVER_SETTINGS) {
    const inspected = config.inspect(key);
    const value = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    if (value !== undefined) {
      explicit.set(key, value);
    }
  }
  return explicit;
}

/** The effective value of a client-only string setting (defaults included). */
export function clientSetting(key: string, scope?: vscode.Uri): string {
  return vscode.workspace.getConfiguration("enclave", scope).get<string>(key, "");
}
