/** Test support shared by the unit and integration tests. */

import type { Level, LogSink } from "../src/lib/serverLog";

/** A LogOutputChannel stand-in that keeps each line with the level it was written at. */
export class RecordingLog implements LogSink {
  readonly lines: [Level, string][] = [];
  trace(message: string): void {
    this.lines.push(["trace", message]);
  }
  debug(message: string): void {
    this.lines.push(["debug", message]);
  }
  info(message: string): void {
    this.lines.push(["info", message]);
  }
  warn(message: string): void {
    this.lines.push(["warn", message]);
  }
  error(message: string): void {
    this.lines.push(["error", message]);
  }
}
