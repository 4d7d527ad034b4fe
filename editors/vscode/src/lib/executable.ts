/**
 * Find the program that starts the server before launching it, so a missing installation gives
 * a clear message instead of a bare `spawn ENOENT`.
 */

import * as fs from "node:fs";
import * as path from "node:path";

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (process.platform !== "win32") {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The absolute path of `command`: as given when it contains a path separator (relative to `cwd`),
 * otherwise the first match on `searchPath` (PATH syntax). Undefined when nothing executable is found.
 */
export function findExecutable(
  command: string,
  searchPath: string,
  cwd: string,
  extensions: readonly string[] = process.platform === "win32" ? [".exe", ".cmd", ".bat", ""] : [""],
): string | undefined {
  if (command.includes("/") || command.includes("\\")) {
    const full = path.resolve(cwd, command);
    return extensions.map((ext) => full + ext).find(isExecutableFile);
  }
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") {
      continue;
    }
    for (const ext of extensions) {
      const candidate = path.join(dir, command + ext);
      if (isExecutableFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}
