/**
 * The server's stderr in the "Enclave" log, each line at its own level. vscode-languageclient
 * writes every stderr line as an error; the server's log records carry their level
 * (`2026-12-06 21:00:00,123 INFO enclave.server...: ...`, and the index library's
 * `[2026-12-06T21:00:00Z WARN lance::...] ...`), so an INFO record is shown as info. Lines that
 * are not a record (a traceback, a message's further lines) belong to the record before them;
 * a traceback after a record below WARNING is a crash, shown as an error.
 *
 * The server sends its records to the client as `window/logMessage` once the client is
 * initialized and then leaves them off stderr, so each record reaches the log once.
 */

import * as readline from "node:readline";
import type { Readable } from "node:stream";

export type Level = "trace" | "debug" | "info" | "warn" | "error";

/** The part of VS Code's LogOutputChannel the server's log is written to. */
export interface LogSink {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const PYTHON_RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) /;
const RUST_RECORD = /^\[\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s/;

const LEVELS: Record<string, Level> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  WARNING: "warn",
  ERROR: "error",
  CRITICAL: "error",
};

/** The level of a record's first line, or undefined for a line that starts no record. */
export function recordLevel(line: string): Level | undefined {
  const match = PYTHON_RECORD.exec(line) ?? RUST_RECORD.exec(line);
  return match ? LEVELS[match[1]] : undefined;
}

/** Writes the server's stderr, line by line, to `sink` at each record's level. */
export class ServerStderr {
  private level: Level = "error"; // text before any record: the server could not start

  constructor(private readonly sink: LogSink) {}

  line(text: string): void {
    const level = recordLevel(text);
    if (level !== undefined) {
      this.level = level;
    } else if (text.startsWith("Traceback (most recent call last)") && this.level !== "warn") {
      this.level = "error";
    }
    this.sink[this.level](text);
  }
}

/** Calls `handle` with each line of `input`. */
export function eachLine(input: Readable, handle: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", handle);
}

/** The server's stderr into `log`, each line at its record's level (the client's `stdioOptions.stderr`). */
export function serverStderr(input: Readable, log: LogSink): void {
  const stderr = new ServerStderr(log);
  eachLine(input, (line) => stderr.line(line));
}
