/**
 * What the status-bar item says: the server's last `enclave/status`, indexing progress, and
 * whether the client could start the server, rendered to text, tooltip and severity.
 */

import type { ServerStatus } from "./protocol";

export type ClientPhase = "starting" | "running" | "stopped" | "failed";

export interface StatusModel {
  client: ClientPhase;
  /** Why the client is stopped or failed (shown with the install hint). */
  clientMessage?: string;
  server?: ServerStatus;
  /** Indexing work-done progress, while it runs. */
  progress?: { percentage?: number; message?: string };
}

export interface StatusView {
  text: string;
  /** Markdown (code spans such as `ollama serve` are kept). */
  tooltip: string;
  severity: "normal" | "warning" | "error";
}

function counts(s: ServerStatus): string | undefined {
  const parts: string[] = [];
  if (s.files !== undefined) parts.push(`${s.files} files`);
  if (s.chunks !== undefined) parts.push(`${s.chunks} chunks`);
  if (s.symbols !== undefined) parts.push(`${s.symbols} symbols`);
  return parts.length > 0 ? parts.join(", ") : undefined;
}

/** The lines that describe the server's state, for the tooltip and the Show Status command. */
export function statusDetails(model: StatusModel): string[] {
  const lines: string[] = [];
  const s = model.server;
  if (model.client === "failed" || model.client === "stopped") {
    lines.push(model.client === "failed" ? "The language server is not running." : "The language server is stopped.");
    if (model.clientMessage) lines.push(model.clientMessage);
    return lines;
  }
  if (s === undefined) {
    lines.push("Starting the language server…");
    return lines;
  }
  const label = { indexing: "Indexing", ready: "Ready", degraded: "Degraded", error: "Error" }[s.state];
  lines.push(s.root ? `${label}: ${s.root}` : label);
  if (model.progress && s.state === "indexing") {
    const pct = model.progress.percentage !== undefined ? `${Math.round(model.progress.percentage)}%` : "";
    lines.push(["Progress:", pct, model.progress.message ?? ""].filter((p) => p !== "").join(" "));
  }
  const c = counts(s);
  if (c) lines.push(`Index: ${c}`);
  if (s.semantic === true) lines.push("Semantic search: on");
  if (s.semantic === false) {
    lines.push(`Semantic search: off${s.semanticReason ? ` (${s.semanticReason})` : ""}`);
  }
  if (s.chatModel) lines.push(`Chat model: ${s.chatModel}`);
  if (s.completionModel) lines.push(`Completion model: ${s.completionModel}`);
  // a team's fleet: each server and its state (one server is the usual case: nothing to add)
  if (s.modelHosts && s.modelHosts.length > 1) {
    for (const h of s.modelHosts) {
      lines.push(`Model server ${h.host}: ${h.state}${h.error ? ` (${h.error})` : ""}`);
    }
  }
  if (s.message) lines.push(s.message);
  if (s.fix) lines.push(`Fix: ${s.fix}`);
  return lines;
}

/** The text, tooltip and severity of the status-bar item. */
export function renderStatus(model: StatusModel): StatusView {
  const tooltip = ["**Enclave**", ...statusDetails(model)].join("\n\n");
  if (model.client === "failed") {
    return { text: "$(error) Enclave: not running", tooltip, severity: "error" };
  }
  if (model.client === "stopped") {
    return { text: "$(circle-slash) Enclave: stopped", tooltip, severity: "warning" };
  }
  const s = model.server;
  if (s === undefined) {
    return { text: "$(loading~spin) Enclave", tooltip, severity: "normal" };
  }
  switch (s.state) {
    case "indexing": {
      const pct = model.progress?.percentage;
      return {
        text: `$(sync~spin) Enclave: indexing${pct !== undefined ? ` ${Math.round(pct)}%` : "…"}`,
        tooltip,
        severity: "normal",
      };
    }
    case "ready":
      return s.semantic === false
        ? { text: "$(check) Enclave (lexical)", tooltip, severity: "normal" }
        : { text: "$(check) Enclave", tooltip, severity: "normal" };
    case "degraded":
      return { text: "$(warning) Enclave: degraded", tooltip, severity: "warning" };
    case "error":
      return { text: "$(error) Enclave: error", tooltip, severity: "error" };
  }
}

/** The first `code span` of a fix ("start it with `ollama serve`" -> "ollama serve"), if any. */
export function fixCommand(fix: string | undefined): string | undefined {
  const match = fix === undefined ? null : /`([^`]+)`/.exec(fix);
  return match ? match[1] : undefined;
}

/** One sentence for the result of `enclave.reindex` (an index summary of counts and seconds). */
export function summarizeReindex(result: unknown): string {
  if (typeof result !== "object" || result === null) {
    return "Enclave: reindexing finished.";
  }
  const raw = result as Record<string, unknown>;
  const parts: string[] = [];
  for (const [key, noun] of [
    ["files", "files"],
    ["chunks", "chunks"],
    ["symbols", "symbols"],
  ] as const) {
    if (typeof raw[key] === "number") parts.push(`${raw[key]} ${noun}`);
  }
  const seconds = typeof raw.seconds === "number" ? ` in ${raw.seconds.toFixed(1)} s` : "";
  return parts.length > 0
    ? `Enclave: index updated (${parts.join(", ")})${seconds}.`
    : `Enclave: reindexing finished${seconds}.`;
}
