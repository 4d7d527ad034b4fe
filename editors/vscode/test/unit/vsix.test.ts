/** Unit test of the packaging rules: the .vsix holds the manifest, the README and the bundle only. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";

const root = path.resolve(__dirname, "..", "..", "..");

test("vsce would package package.json, README.md and dist/extension.js, nothing else", () => {
  const vsce = path.join(root, "node_modules", ".bin", "vsce");
  const result = spawnSync(vsce, ["ls", "--no-dependencies"], { cwd: root, encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  const files = result.stdout.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  assert.deepEqual(files.sort(), ["README.md", "dist/extension.js", "package.json"]);
});
