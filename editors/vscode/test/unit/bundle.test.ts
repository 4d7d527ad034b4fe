/**
 * Unit test of the esbuild bundle (`npm run bundle` first): it needs nothing from node_modules at
 * run time (only Node built-ins and `vscode`), and it loads and exports activate/deactivate.
 */

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";

const bundle = path.resolve(__dirname, "..", "..", "..", "dist", "extension.js");
const dir = mkdtempSync(path.join(tmpdir(), "enclave-bundle-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("the bundle requires only Node built-ins and vscode", () => {
  const text = readFileSync(bundle, "utf8");
  const required = new Set([...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
  const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
  const outside = [...required].filter((name) => name !== "vscode" && !builtins.has(name));
  assert.deepEqual(outside, []);
  assert.ok(required.has("vscode"));
});

test("the bundle loads outside the repository and exports activate and deactivate", () => {
  // A stand-in `vscode` module: the client library subclasses some of its classes at load time,
  // so every name is an empty class; nothing may be called before activate().
  mkdirSync(path.join(dir, "node_modules", "vscode"), { recursive: true });
  writeFileSync(
    path.join(dir, "node_modules", "vscode", "index.js"),
    "const made = new Map();\nmodule.exports = new Proxy({}, { get: (_, name) => made.get(name) ?? made.set(name, class {}).get(name) });\n",
  );
  mkdirSync(path.join(dir, "extension", "dist"), { recursive: true });
  const copy = path.join(dir, "extension", "dist", "extension.js");
  copyFileSync(bundle, copy);
  const loaded = createRequire(copy)(copy) as { activate?: unknown; deactivate?: unknown };
  assert.equal(typeof loaded.activate, "function");
  assert.equal(typeof loaded.deactivate, "function");
});
