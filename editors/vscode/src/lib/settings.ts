/**
 * The extension's settings: the conversion of the settings a user set into
 * `initializationOptions`, and the choice of the command that starts the server. The settings
 * themselves (package.json's `contributes.configuration`, and `SERVER_SETTINGS`) are generated
 * from enclave/config.py by `python -m enclave.settings_schema`; values are checked by the server,
 * which reports a bad one by name. No `vscode` import: unit-tested in Node.
 */

import { SERVER_SETTINGS } from "./serverSettings";

export { SERVER_SETTINGS };

export type SettingValue = string | number | boolean | string[] | Record<string, string>;
export type InitializationOptions = Record<string, Record<string, SettingValue>>;

/**
 * Turn the server settings the user set explicitly (dotted key -> value; unset keys absent) into
 * the server's `initializationOptions`, nested by section. Only explicit values are sent so that
 * `.enclave.toml` and the `ENCLAVE_*` environment still apply where the user did not choose. Values
 * are sent as set: the server checks them, keeps its own value for a bad one and says so.
 */
export function toInitializationOptions(explicit: ReadonlyMap<string, unknown>): InitializationOptions {
  const options: InitializationOptions = {};
  for (const key of SERVER_SETTINGS) {
    const value = explicit.get(key);
    if (value === undefined || value === null) {
      continue;
    }
    const [section, name] = key.split(".", 2);
    (options[section] ??= {})[name] = value as SettingValue;
  }
  return options;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Added to the server's environment. */
  env: Record<string, string>;
}

/**
 * Python must never import from the workspace: the server runs with the workspace folder as its
 * working directory, and a workspace with its own `enclave/`, `server/` or even `multiprocessing/`
 * package would otherwise run that code instead of ours. `-P` keeps the working directory off
 * `sys.path` for `-m`; PYTHONSAFEPATH does the same for every Python the server starts, which
 * matters for the console script: its indexing processes are started as `python -c ...`, whose
 * `sys.path[0]` is the working directory unless this is set (Python 3.11+, as Enclave requires).
 */
const SAFE_PATH_ENV: Readonly<Record<string, string>> = { PYTHONSAFEPATH: "1" };

/** The command line that starts `enclave lsp`, from the two client-only settings. */
export function serverCommand(path: string, pythonPath: string): ServerCommand {
  const python = pythonPath.trim();
  if (python !== "") {
    return { command: python, args: ["-P", "-m", "enclave.server.lsp"], env: { ...SAFE_PATH_ENV } };
  }
  // A console script is safe itself: its sys.path[0] is its own bin directory, not the cwd.
  return { command: path.trim() === "" ? "enclave" : path.trim(), args: ["lsp"], env: { ...SAFE_PATH_ENV } };
}

/** How to install the server, shown whenever it cannot be started. */
export const INSTALL_HINT =
  "Install it with `python -m pip install enclave-lsp` (from a checkout of Enclave: `python -m pip install .`), or point `enclave.server.path` or `enclave.server.pythonPath` at an existing installation.";

/** The message shown when the server cannot start; names the command and the fix. */
export function startFailureMessage(cmd: Pick<ServerCommand, "command" | "args">, error: unknown): string {
  const line = [cmd.command, ...cmd.args].join(" ");
  const detail = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || /ENOENT|not found/i.test(detail)) {
    return `Enclave: cannot start the language server: \`${cmd.command}\` was not found. ${INSTALL_HINT}`;
  }
  if (code === "EACCES" || /EACCES/.test(detail)) {
    return `Enclave: cannot start the language server: \`${cmd.command}\` is not executable. ${INSTALL_HINT}`;
  }
  return `Enclave: the language server (\`${line}\`) failed to start: ${detail}. See the "Enclave" output for its log. ${INSTALL_HINT}`;
}

/**
 * The answer to a `workspace/configuration` request: section `enclave` (or `enclave.<section>`)
 * gets the same explicit settings as initializationOptions; other sections keep the editor's value.
 */
export function configurationResponse(
  items: readonly { section?: string }[],
  options: InitializationOptions,
  editorValues: readonly unknown[],
): unknown[] {
  return items.map((item, i): unknown => {
    if (item.section === "enclave") return options;
    if (item.section?.startsWith("enclave.")) return options[item.section.slice("enclave.".length)] ?? {};
    return editorValues[i] ?? null;
  });
}
