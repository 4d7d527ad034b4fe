/** Integration test: the extension's settings mirror the Python server's configuration model. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { SETTINGS } from "../../src/lib/settings";
import { pythonCommand, REPO_ROOT } from "./support";

test("every server setting and default matches enclave/config.py", () => {
  const script = "import json; from enclave.config import Config, to_wire; print(json.dumps(to_wire(Config())))";
  const result = spawnSync(pythonCommand(), ["-c", script], { cwd: REPO_ROOT, encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  const wire = JSON.parse(result.stdout) as Record<string, Record<string, unknown>>;
  const pythonKeys = Object.entries(wire).flatMap(([section, values]) => Object.keys(values).map((k) => `${section}.${k}`));
  const ours = SETTINGS.filter((s) => !s.clientOnly);
  assert.deepEqual(ours.map((s) => s.key).sort(), pythonKeys.sort());
  for (const spec of ours) {
    const [section, key] = spec.key.split(".");
    assert.deepEqual(spec.default, wire[section][key], `default of enclave.${spec.key}`);
  }
});
