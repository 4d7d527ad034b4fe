/** Unit tests: settings -> initializationOptions, the server command, the start-failure message. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  SERVER_SETTINGS,
  configurationResponse,
  serverCommand,
  startFailureMessage,
  toInitializationOptions,
} from "../../src/lib/settings";

const root = path.resolve(__dirname, "..", "..", "..");

test("only explicitly set settings are sent, nested by section", () => {
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["ollama.chatModel", "deepseek-r1:1.5b"],
      ["ollama.completionModel", "qwen2.5-coder:1.5b"],
      ["completion.debounceMs", 150],
      ["index.exclude", ["vendor/**"]],
      ["chat.think", false],
    ]),
  );
  assert.deepEqual(options, {
    ollama: { chatModel: "deepseek-r1:1.5b", completionModel: "qwen2.5-coder:1.5b" },
    completion: { debounceMs: 150 },
    index: { exclude: ["vendor/**"] },
    chat: { think: false },
  });
});

test("nothing set sends nothing, so .enclave.toml and ENCLAVE_* still apply", () => {
  assert.deepEqual(toInitializationOptions(new Map()), {});
});

test("client-only settings never reach the server", () => {
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["server.path", "/opt/enclave/bin/enclave"],
      ["server.pythonPath", "/usr/bin/python3"],
    ]),
  );
  assert.deepEqual(options, {});
});

test("values are sent as set: the server checks them and reports a bad one by name", () => {
  const options = toInitializationOptions(
    new Map<string, unknown>([
      ["completion.debounceMs", 1.5],
      ["embedding.provider", "cloud"],
      ["index.exclude", "vendor"],
    ]),
  );
  assert.deepEqual(options, {
    completion: { debounceMs: 1.5 },
    embedding: { provider: "cloud" },
    index: { exclude: "vendor" },
  });
});

test("package.json declares every server setting with a scope and a description", () => {
  // Both are generated from enclave/config.py (`python -m enclave.settings_schema`).
  const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
    contributes: { configuration: { properties: Record<string, { scope?: string; markdownDescription?: string }> } };
  };
  const properties = manifest.contributes.configuration.properties;
  for (const key of SERVER_SETTINGS) {
    const value = properties[`enclave.${key}`];
    assert.ok(value, `enclave.${key} is in package.json`);
    assert.ok(value.scope, `${key} has a scope`);
    assert.ok((value.markdownDescription ?? "").length > 10, `${key} has a description`);
  }
  assert.equal(properties["enclave.ollama.headers"]?.scope, "machine");
});

test("serverCommand: the enclave executable, or a Python interpreter", () => {
  const safe = { PYTHONSAFEPATH: "1" };
  assert.deepEqual(serverCommand("enclave", ""), { command: "enclave", args: ["lsp"], env: safe });
  assert.deepEqual(serverCommand("  ", ""), { command: "enclave", args: ["lsp"], env: safe });
  assert.deepEqual(serverCommand("enclave", " /venv/bin/python "), {
    command: "/venv/bin/python",
    args: ["-P", "-m", "enclave.server.lsp"],
    env: safe,
  });
});

test("serverCommand never lets Python import from the working directory (the workspace)", () => {
  // -P before -m: the interpreter reads its options only up to the module name.
  const python = serverCommand("", "/venv/bin/python").args;
  assert.ok(python.indexOf("-P") >= 0 && python.indexOf("-P") < python.indexOf("-m"), python.join(" "));
  // The console script's own processes (indexing runs in `python -c` children) need the env.
  for (const cmd of [serverCommand("enclave", ""), serverCommand("", "python3")]) {
    assert.equal(cmd.env.PYTHONSAFEPATH, "1", cmd.command);
  }
});

test("a missing server names the command and how to install it", () => {
  const error = Object.assign(new Error("spawn enclave ENOENT"), { code: "ENOENT" });
  const message = startFailureMessage({ command: "enclave", args: ["lsp"] }, error);
  assert.match(message, /`enclave` was not found/);
  assert.match(message, /python -m pip install enclave-lsp/);
  assert.match(message, /enclave\.server\.path/);
  const other = startFailureMessage(serverCommand("", "/venv/bin/python"), new Error("exit code 1"));
  assert.match(other, /\(`\/venv\/bin\/python -P -m enclave\.server\.lsp`\) failed to start: exit code 1/);
  assert.match(other, /"Enclave" output/);
});

test("workspace/configuration for enclave answers the explicit settings, not the editor defaults", () => {
  const options = { ollama: { chatModel: "deepseek-r1:1.5b" } };
  const answer = configurationResponse(
    [{ section: "enclave" }, { section: "enclave.ollama" }, { section: "enclave.chat" }, { section: "editor" }, {}],
    options,
    [{ ollama: { chatModel: "deepseek-r1", host: "http://127.0.0.1:11434" } }, {}, {}, { tabSize: 4 }],
  );
  assert.deepEqual(answer, [options, options.ollama, {}, { tabSize: 4 }, null]);
});
