/** Unit tests: locating the server executable on PATH or by path. */

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { findExecutable } from "../../src/lib/executable";

const dir = mkdtempSync(path.join(tmpdir(), "enclave-exe-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const bin = path.join(dir, "bin");
const other = path.join(dir, "other");
mkdirSync(bin);
mkdirSync(other);
writeFileSync(path.join(bin, "enclave"), "#!/bin/sh\n");
chmodSync(path.join(bin, "enclave"), 0o755);
writeFileSync(path.join(other, "enclave"), "not executable");
chmodSync(path.join(other, "enclave"), 0o644);

test("finds a name on the search path, skipping files that are not executable", () => {
  const searchPath = [other, "", bin].join(path.delimiter);
  assert.equal(findExecutable("enclave", searchPath, dir), path.join(bin, "enclave"));
});

test("a missing name is undefined", () => {
  assert.equal(findExecutable("enclave", other, dir), undefined);
  assert.equal(findExecutable("no-such-program", bin, dir), undefined);
});

test("a path is resolved against the working directory", () => {
  assert.equal(findExecutable("bin/enclave", "", dir), path.join(bin, "enclave"));
  assert.equal(findExecutable(path.join(bin, "enclave"), "", "/"), path.join(bin, "enclave"));
  assert.equal(findExecutable("./bin", "", dir), undefined, "a directory is not a program");
});
