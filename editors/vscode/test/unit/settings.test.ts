/** Unit tests: settings -> initializationOptions, the server command, the start-failure message. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { configurationContribution } from "../../src/lib/manifest";
import {
  SETTINGS,
  checkValue,
  configurationResponse,
  describeProblem,
  serverCommand,
  startFailureMessage,
  toInitializationOptions,
} from "../../src/lib/settings";

const root = path.resolve(__dirname, "..", "..", "..");

test("only explicitly set settings are sent, nested by section", () => {
  const { options, problems } = toInitializationOptions(
    new Map<string, unknown>([
      ["ollama.chatModel", "deepseek-r1:1.5b"],
      ["ollama.completionModel", "qwen2.5-coder:1.5b"],
      ["completion.debounceMs", 150],
      ["index.exclude", ["vendor/**"]],
      ["chat.think", false],
    ]),
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(options, {
    ollama: { chatModel: "deepseek-r1:1.5b", completionModel: "qwen2.5-coder:1.5b" },
    completion: { debounceMs: 150 },
    index: { exclude: ["vendor/**"] },
    chat: { think: false },
  });
});

test("nothing set sends nothing, so .enclave.toml and ENCLAVE_* still apply", () => {
  assert.deepEqual(toInitializationOptions(new Map()).options, {});
});

test("client-only settings never reach the server", () => {
  const { options } = toInitializationOptions(
    new Map<string, unknown>([
      ["server.path", "/opt/enclave/bin/enclave"],
      ["server.pythonPath", "/usr/bin/python3"],
    ]),
  );
  assert.deepEqual(options, {});
});

test("invalid values are left out and reported by name", () => {
  const { options, problems } = toInitializationOptions(
    new Map<string, unknown>([
      ["completion.debounceMs", 1.5],
      ["completion.maxTokens", 0],
      ["embedding.provider", "cloud"],
      ["index.exclude", "vendor"],
      ["ollama.connectTimeout", 0],
      ["ollama.totalTimeout", 30.5],
    ]),
  );
  assert.deepEqual(options, { ollama: { totalTimeout: 30.5 } });
  assert.deepEqual(
    problems.map((p) => p.key),
    ["enclave.ollama.connectTimeout", "enclave.embedding.provider", "enclave.completion.debounceMs", "enclave.completion.maxTokens", "enclave.index.exclude"],
  );
  const provider = problems.find((p) => p.key === "enclave.embedding.provider");
  assert.ok(provider);
  assert.match(describeProblem(provider), /enclave\.embedding\.provider.*ollama, openai, local, none.*"cloud"/);
});

test("checkValue accepts every default", () => {
  for (const spec of SETTINGS) {
    assert.equal(checkValue(spec, spec.default), undefined, spec.key);
  }
});

test("package.json contributes exactly the settings of SETTINGS (run `npm run sync-settings`)", () => {
  const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
    contributes: { configuration: unknown };
  };
  assert.deepEqual(manifest.contributes.configuration, configurationContribution());
  const properties = (configurationContribution() as { properties: Record<string, { scope?: string; markdownDescription?: string }> }).properties;
  for (const [key, value] of Object.entries(properties)) {
    assert.ok(value.scope, `${key} has a scope`);
    assert.ok((value.markdownDescription ?? "").length > 10, `${key} has a description`);
  }
});

test("every server setting in docs/protocol.md has a VS Code setting", () => {
  const doc = readFileSync(path.join(root, "..", "..", "docs", "protocol.md"), "utf8");
  const documented: string[] = [];
  for (const line of doc.split("\n")) {
    const row = /^\| `(\w+)\.(\w+)`((?: \/ `\w+`)*) \|/.exec(line);
    if (row === null) continue;
    const [, section, first, more] = row;
    documented.push(`${section}.${first}`);
    for (const m of more.matchAll(/`(\w+)`/g)) documented.push(`${section}.${m[1]}`);
  }
  assert.ok(documented.length >= 20, `parsed ${documented.length} keys from the table`);
  const ours = new Set(SETTINGS.filter((s) => !s.clientOnly).map((s) => s.key));
  assert.deepEqual(documented.filter((key) => !ours.has(key)), []);
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

test("headers: an object of strings, and a wrong value is never quoted back", () => {
  const spec = SETTINGS.find((s) => s.key === "ollama.headers");
  assert.ok(spec && spec.scope === "machine");
  assert.equal(checkValue(spec, { Authorization: "Bearer ${TEAM_TOKEN}" }), undefined);
  const reason = checkValue(spec, { Authorization: ["s3cret"] });
  assert.ok(reason !== undefined && !reason.includes("s3cret"));
});
