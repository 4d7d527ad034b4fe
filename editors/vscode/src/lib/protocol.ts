/**
 * The Enclave-specific parts of the LSP contract (docs/protocol.md) as TypeScript types and
 * method names. Plain data only: this module is shared by the extension and the Node tests.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** One source the answer relies on; `range` is LSP's (0-based lines, UTF-16 characters). */
export interface Citation {
  uri: string;
  path: string;
  range: Range;
  symbol?: string;
}

/** The complete result of `enclave/explain` and `enclave/ask`. */
export interface Answer {
  markdown: string;
  thinking?: string;
  model?: string;
  citations: Citation[];
  /**
   * What limited the answer's repository context (no index, semantic search off, nothing
   * matched, ...), one short sentence each; empty when retrieval worked fully.
   */
  notes: string[];
  /** Why the model stopped (Ollama's `done_reason`: "stop", "length"); "" if unknown. */
  doneReason: string;
  /** When chat.maxTokens cut the answer: one line saying so and how to raise it; "" otherwise. */
  cut: string;
  /** What an explanation explained (the definition around the cursor when no range was given). */
  target?: Citation;
}

/** The `value` of a `$/progress` notification on an answer's partialResultToken: deltas. */
export interface AnswerDelta {
  thinking?: string;
  markdown?: string;
}

export interface ExplainParams {
  textDocument: { uri: string };
  range?: Range;
  partialResultToken?: string | number;
}

export interface AskParams {
  question: string;
  textDocument?: { uri: string };
  range?: Range;
  partialResultToken?: string | number;
}

export type ServerState = "indexing" | "ready" | "degraded" | "error";

/** The `enclave/status` notification. Every field but `state` may be missing. */
export interface ServerStatus {
  state: ServerState;
  root?: string;
  files?: number;
  chunks?: number;
  symbols?: number;
  semantic?: boolean;
  semanticReason?: string;
  chatModel?: string;
  completionModel?: string;
  /** Each model server and its state (`up`, `down`, `due`), as the server last saw it. */
  modelHosts?: ModelHost[];
  message?: string;
  fix?: string;
}

export interface ModelHost {
  host: string;
  state: string;
  inFlight: number;
  error: string;
}

export const Methods = {
  explain: "enclave/explain",
  ask: "enclave/ask",
  status: "enclave/status",
} as const;

/** Commands the server offers through workspace/executeCommand (and code actions). */
export const ServerCommands = {
  explain: "enclave.explain",
  ask: "enclave.ask",
  reindex: "enclave.reindex",
} as const;

const STATES: readonly string[] = ["indexing", "ready", "degraded", "error"];

function optional<T>(value: unknown, kind: "string" | "number" | "boolean"): T | undefined {
  return typeof value === kind ? (value as T) : undefined;
}

function parseHosts(value: unknown): ModelHost[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const hosts: ModelHost[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) continue;
    const raw = item as Record<string, unknown>;
    if (typeof raw.host !== "string" || typeof raw.state !== "string") continue;
    hosts.push({
      host: raw.host,
      state: raw.state,
      inFlight: typeof raw.inFlight === "number" ? raw.inFlight : 0,
      error: typeof raw.error === "string" ? raw.error : "",
    });
  }
  return hosts;
}

/** Read an `enclave/status` payload defensively; returns undefined when it is not one. */
export function parseStatus(value: unknown): ServerStatus | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const raw = value as Record<string, unknown>;
  if (typeof raw.state !== "string" || !STATES.includes(raw.state)) {
    return undefined;
  }
  return {
    state: raw.state as ServerState,
    root: optional(raw.root, "string"),
    files: optional(raw.files, "number"),
    chunks: optional(raw.chunks, "number"),
    symbols: optional(raw.symbols, "number"),
    semantic: optional(raw.semantic, "boolean"),
    semanticReason: optional(raw.semanticReason, "string"),
    chatModel: optional(raw.chatModel, "string"),
    completionModel: optional(raw.completionModel, "string"),
    modelHosts: parseHosts(raw.modelHosts),
    message: optional(raw.message, "string"),
    fix: optional(raw.fix, "string"),
  };
}

/** Read a partial-result value; anything that is not a delta yields an empty delta. */
export function parseDelta(value: unknown): AnswerDelta {
  if (typeof value !== "object" || value === null) {
    return {};
  }
  const raw = value as Record<string, unknown>;
  return {
    thinking: optional(raw.thinking, "string"),
    markdown: optional(raw.markdown, "string"),
  };
}

function isRange(value: unknown): value is Range {
  const r = value as Range | undefined;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.start?.line === "number" &&
    typeof r.start.character === "number" &&
    typeof r.end?.line === "number" &&
    typeof r.end.character === "number"
  );
}

/**
 * Read an `Answer` result; citations that are malformed and notes that are not strings are
 * dropped, not trusted (a server without `notes` yields none).
 */
export function parseAnswer(value: unknown): Answer {
  if (typeof value !== "object" || value === null) {
    throw new Error(`the server's answer is not an object: ${JSON.stringify(value)}`);
  }
  const raw = value as Record<string, unknown>;
  const citations: Citation[] = [];
  for (const item of Array.isArray(raw.citations) ? raw.citations : []) {
    const c = parseCitation(item);
    if (c !== undefined) citations.push(c);
  }
  return {
    markdown: typeof raw.markdown === "string" ? raw.markdown : "",
    thinking: optional(raw.thinking, "string"),
    model: optional(raw.model, "string"),
    citations,
    notes: (Array.isArray(raw.notes) ? raw.notes : []).filter((n): n is string => typeof n === "string"),
    doneReason: optional<string>(raw.doneReason, "string") ?? "",
    cut: optional<string>(raw.cut, "string") ?? "",
    target: parseCitation(raw.target),
  };
}

function parseCitation(item: unknown): Citation | undefined {
  const c = (typeof item === "object" && item !== null ? item : {}) as Record<string, unknown>;
  if (typeof c.uri !== "string" || !isRange(c.range)) return undefined;
  return {
    uri: c.uri,
    path: typeof c.path === "string" ? c.path : c.uri,
    range: c.range,
    symbol: optional(c.symbol, "string"),
  };
}
