/**
 * The extension's settings: the schema that mirrors the server's configuration (docs/protocol.md,
 * enclave/config.py), the conversion of the settings a user set into `initializationOptions`,
 * and the choice of the command that starts the server. No `vscode` import: unit-tested in Node.
 */

export type SettingType = "string" | "integer" | "number" | "boolean" | "string[]" | "headers";

export interface SettingSpec {
  /** Dotted key under `enclave.`, camelCase as on the wire, e.g. "completion.debounceMs". */
  key: string;
  type: SettingType;
  default: string | number | boolean | string[] | Record<string, string>;
  description: string;
  /** VS Code configuration scope. */
  scope: "machine" | "machine-overridable" | "window" | "resource";
  enum?: string[];
  /** Numbers must be at least this (the server rejects non-positive budgets). */
  minimum?: number;
  /** Only for the client (how to start the server); never sent to the server. */
  clientOnly?: boolean;
}

const WINDOW = "window" as const;
const MACHINE = "machine-overridable" as const;
/**
 * User settings only: VS Code ignores a workspace's value (a cloned repository's
 * `.vscode/settings.json` is the repository speaking). For every setting that
 * enclave/config.py's who-may-set table keeps from a repository, and for the command that starts
 * the server; tests/test_config.py holds the two together.
 */
const ONLY_USER = "machine" as const;

/** Every setting, in the order the Settings editor shows them. */
export const SETTINGS: readonly SettingSpec[] = [
  {
    key: "server.path",
    type: "string",
    default: "enclave",
    scope: ONLY_USER,
    clientOnly: true,
    description:
      "The `enclave` executable that runs the language server (`enclave lsp`): a name looked up on PATH or an absolute path. Ignored when `enclave.server.pythonPath` is set.",
  },
  {
    key: "server.pythonPath",
    type: "string",
    default: "",
    scope: ONLY_USER,
    clientOnly: true,
    description:
      "A Python interpreter (3.11+) that has Enclave installed. When set, the server starts as `<python> -P -m enclave.server.lsp` instead of through `enclave.server.path` (`-P`: the workspace's own files are never imported in place of Enclave's).",
  },
  {
    key: "ollama.host",
    type: "string",
    default: "http://127.0.0.1:11434",
    scope: ONLY_USER,
    description:
      "The Ollama server (defaults to `OLLAMA_HOST` when that is set). Keep it on loopback so code never leaves the machine.",
  },
  {
    key: "ollama.hosts",
    type: "string[]",
    default: [],
    scope: ONLY_USER,
    description:
      "A team's fleet of model servers; when set it replaces `enclave.ollama.host`. Each must be this machine or listed in `enclave.trust.allowedHosts`. Requests go to the least busy healthy server (completions stay on the one that served the last, whose prompt cache holds their prefix) and move to the next when one is down or answers 5xx before the answer starts.",
  },
  {
    key: "ollama.api",
    type: "string",
    default: "ollama",
    enum: ["ollama", "openai"],
    scope: MACHINE,
    description:
      "The servers' API: `ollama` (Ollama's `/api/*`) or `openai` (an OpenAI-compatible `/v1/*` server such as vLLM or llama.cpp's server).",
  },
  {
    key: "ollama.headers",
    type: "headers",
    default: {},
    // Only in user settings: a repository must not choose which environment variables (often
    // credentials) are sent in them.
    scope: ONLY_USER,
    description:
      "HTTP headers sent with every request to the model servers, e.g. `{\"Authorization\": \"Bearer ${TEAM_TOKEN}\"}` for a reverse proxy that authenticates. `${NAME}` is replaced by that environment variable, so secrets need not be written here. Values are never logged or shown. User settings only.",
  },
  {
    key: "ollama.openaiFim",
    type: "boolean",
    default: false,
    scope: WINDOW,
    description:
      "With `enclave.ollama.api` = `openai`: the completion model fills in the middle (`suffix` on `/v1/completions`). Off: completions use a chat prompt.",
  },
  {
    key: "ollama.chatModel",
    type: "string",
    default: "deepseek-r1",
    scope: WINDOW,
    description: "The Ollama model that explains code and answers questions.",
  },
  {
    key: "ollama.completionModel",
    type: "string",
    default: "",
    scope: WINDOW,
    description: "The Ollama model for inline completions; empty means the chat model.",
  },
  {
    key: "ollama.keepAlive",
    type: "string",
    default: "30m",
    scope: WINDOW,
    description: "How long Ollama keeps a model loaded after a request (Ollama duration, e.g. `30m`).",
  },
  {
    key: "ollama.connectTimeout",
    type: "number",
    default: 5,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds to wait for a connection to Ollama.",
  },
  {
    key: "ollama.firstTokenTimeout",
    type: "number",
    default: 120,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds to wait for the model's first token (includes loading the model).",
  },
  {
    key: "ollama.idleTimeout",
    type: "number",
    default: 30,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds a model's answer may pause between two parts before it is given up as stuck.",
  },
  {
    key: "ollama.totalTimeout",
    type: "number",
    default: 600,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds one model request may take in total.",
  },
  {
    key: "embedding.provider",
    type: "string",
    default: "ollama",
    enum: ["ollama", "openai", "local", "none"],
    scope: WINDOW,
    description:
      "Where the vectors for semantic search come from: `ollama` (the embedding model in Ollama), `openai` (`/v1/embeddings` of an OpenAI-compatible server: `enclave.embedding.url`, or the model servers), `local` (in-process sentence-transformers, needs the `local` extra) or `none` (lexical search only).",
  },
  {
    key: "embedding.url",
    type: "string",
    default: "",
    scope: ONLY_USER,
    description:
      "With `enclave.embedding.provider` = `openai`: the embedding server's URL; empty for the model servers. It must pass `enclave.trust.allowedHosts`; `enclave.ollama.headers` are sent to it.",
  },
  {
    key: "embedding.model",
    type: "string",
    default: "nomic-embed-text",
    scope: WINDOW,
    description: "The embedding model (an Ollama model, or a sentence-transformers model for `local`).",
  },
  {
    key: "embedding.batchSize",
    type: "integer",
    default: 32,
    minimum: 1,
    scope: WINDOW,
    description: "Chunks embedded per request.",
  },
  {
    key: "embedding.concurrency",
    type: "integer",
    default: 2,
    minimum: 1,
    scope: WINDOW,
    description:
      "Embedding requests to Ollama in flight while indexing (the next batch is sent while the last one's vectors are stored).",
  },
  {
    key: "embedding.timeout",
    type: "number",
    default: 60,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds Ollama may take to embed one batch while indexing; past it, indexing finishes without vectors and says why.",
  },
  {
    key: "embedding.queryTimeout",
    type: "number",
    default: 1,
    minimum: 0.001,
    scope: WINDOW,
    description: "Seconds Ollama may take to embed a search's query; past it, the search returns lexical results and says why.",
  },
  {
    key: "completion.enabled",
    type: "boolean",
    default: true,
    scope: WINDOW,
    description: "Offer inline completions (ghost text) from the model.",
  },
  {
    key: "completion.cacheFriendly",
    type: "boolean",
    default: true,
    scope: WINDOW,
    description:
      "Lay out completion prompts so consecutive requests share their beginning and the model reads only what changed. Turn off only to compare.",
  },
  {
    key: "completion.debounceMs",
    type: "integer",
    default: 120,
    minimum: 0,
    scope: WINDOW,
    description:
      "Milliseconds the server waits after a keystroke before asking the model, until it has measured your typing rhythm (then it waits 1.5 times your usual gap between keys, no less than this, at most 600 ms).",
  },
  {
    key: "completion.maxTokens",
    type: "integer",
    default: 128,
    minimum: 1,
    scope: WINDOW,
    description: "Most tokens one completion may generate (`num_predict`).",
  },
  {
    key: "completion.numCtx",
    type: "integer",
    default: 4096,
    minimum: 1,
    scope: WINDOW,
    description: "The model's context window for completions (`num_ctx`).",
  },
  {
    key: "completion.contextTokens",
    type: "integer",
    default: 1024,
    minimum: 1,
    scope: WINDOW,
    description: "Token budget for repository context (definitions, similar code) in a completion prompt.",
  },
  {
    key: "completion.prefixTokens",
    type: "integer",
    default: 1200,
    minimum: 1,
    scope: WINDOW,
    description: "Token budget for the text before the cursor.",
  },
  {
    key: "completion.suffixTokens",
    type: "integer",
    default: 400,
    minimum: 1,
    scope: WINDOW,
    description: "Token budget for the text after the cursor.",
  },
  {
    key: "chat.numCtx",
    type: "integer",
    default: 8192,
    minimum: 1,
    scope: WINDOW,
    description: "The model's context window for explanations and questions (`num_ctx`).",
  },
  {
    key: "chat.maxTokens",
    type: "integer",
    default: 1024,
    minimum: 1,
    scope: WINDOW,
    description: "Most tokens one explanation or answer may generate.",
  },
  {
    key: "chat.contextTokens",
    type: "integer",
    default: 3000,
    minimum: 1,
    scope: WINDOW,
    description: "Token budget for repository context in an explanation or answer.",
  },
  {
    key: "chat.think",
    type: "boolean",
    default: true,
    scope: WINDOW,
    description: "Ask the model for its thinking; it is shown folded, apart from the answer.",
  },
  {
    key: "index.db",
    type: "string",
    default: "",
    scope: ONLY_USER,
    description:
      "Where the index lives: a directory or an `s3://` URI. Empty means `.enclave/` at the repository root.",
  },
  {
    key: "index.shared",
    type: "string",
    default: "",
    scope: MACHINE,
    description:
      "A team's index built by CI (a directory or an `s3://` URI), read and never written; what differs in the working tree is indexed locally as an overlay.",
  },
  {
    key: "index.sharedCopy",
    type: "boolean",
    default: true,
    scope: MACHINE,
    description:
      "Copy a shared index in an object store into the user cache in the background (only the files not copied yet) and read the copy once it is complete; off: every query reads the store.",
  },
  {
    key: "index.retainMinutes",
    type: "integer",
    default: 10,
    minimum: 0,
    scope: WINDOW,
    description:
      "Minutes old index versions are kept when an update folds new rows into the indexes and compacts the tables; 0 removes them at once, on every update.",
  },
  {
    key: "index.lease",
    type: "boolean",
    default: true,
    scope: ONLY_USER,
    description:
      "Take a write lease (S3 conditional writes) before writing an `s3://` index; turn off only where one writer at a time is guaranteed another way.",
  },
  {
    key: "index.s3Endpoint",
    type: "string",
    default: "",
    scope: ONLY_USER,
    description:
      "Endpoint URL of an S3-compatible store (MinIO, R2), over `AWS_ENDPOINT_URL`. Credentials come from the environment only.",
  },
  {
    key: "index.s3Region",
    type: "string",
    default: "",
    scope: ONLY_USER,
    description: "Region of the S3 store, over `AWS_REGION`.",
  },
  {
    key: "index.maxFileBytes",
    type: "integer",
    default: 1048576,
    minimum: 1,
    scope: ONLY_USER,
    description: "Files larger than this many bytes are not indexed.",
  },
  {
    key: "index.exclude",
    type: "string[]",
    default: [],
    scope: ONLY_USER,
    description: "Extra gitignore-style patterns of files not to index.",
  },
  {
    key: "trust.neverSend",
    type: "string[]",
    default: [],
    scope: ONLY_USER,
    description:
      "Gitignore-style patterns of files that are indexed for search but never put in a prompt (nor sent to an embedding server).",
  },
  {
    key: "trust.allowedHosts",
    type: "string[]",
    default: [],
    // Only in user settings: a repository's own .vscode/settings.json must not be able to send
    // the user's code to a server of its choosing.
    scope: ONLY_USER,
    description:
      "Hosts (names, `*.domain`, IP addresses or CIDR ranges) prompts may be sent to besides this machine. Any other `enclave.ollama.host` is refused. User settings only.",
  },
  {
    key: "trust.redactPii",
    type: "boolean",
    default: false,
    scope: ONLY_USER,
    description:
      "Also replace email addresses and phone numbers, in prompts and in the index (an administrator's policy can turn this on for everyone).",
  },
  {
    key: "audit.enabled",
    type: "boolean",
    default: true,
    scope: ONLY_USER,
    description:
      "Append one JSON line per model request (who, model, purpose, files and lines sent, prompt hash, tokens, duration, outcome) to the audit log.",
  },
  {
    key: "audit.path",
    type: "string",
    default: "",
    scope: ONLY_USER,
    description:
      "The audit log file; empty for `.enclave/audit.jsonl` in the repository. Relative paths are under the repository.",
  },
  {
    key: "audit.includePrompts",
    type: "boolean",
    default: false,
    scope: ONLY_USER,
    description: "Write each prompt's full text into the audit log (otherwise only its sha256).",
  },
  {
    key: "audit.maxBytes",
    type: "integer",
    default: 10485760,
    minimum: 1,
    scope: ONLY_USER,
    description: "Rotate the audit log once it grows past this many bytes.",
  },
  {
    key: "audit.keep",
    type: "integer",
    default: 5,
    minimum: 0,
    scope: ONLY_USER,
    description: "How many rotated audit logs (`audit.jsonl.1` ...) to keep.",
  },
];

export type SettingValue = string | number | boolean | string[] | Record<string, string>;
export type InitializationOptions = Record<string, Record<string, SettingValue>>;

export interface Problem {
  key: string;
  message: string;
}

/** Check one value against its spec; returns the reason it is wrong, or undefined. */
export function checkValue(spec: SettingSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case "boolean":
      return typeof value === "boolean" ? undefined : `expected true or false, got ${JSON.stringify(value)}`;
    case "string":
      if (typeof value !== "string") {
        return `expected a string, got ${JSON.stringify(value)}`;
      }
      if (spec.enum && !spec.enum.includes(value)) {
        return `expected one of ${spec.enum.join(", ")}, got ${JSON.stringify(value)}`;
      }
      return undefined;
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string")
        ? undefined
        : `expected a list of strings, got ${JSON.stringify(value)}`;
    case "headers":
      // never quote the value: header values are credentials
      return typeof value === "object" &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every((v) => typeof v === "string")
        ? undefined
        : "expected an object of header names and text values";
    case "integer":
    case "number": {
      const whole = spec.type === "integer";
      if (typeof value !== "number" || !Number.isFinite(value) || (whole && !Number.isInteger(value))) {
        return `expected ${whole ? "a whole number" : "a number"}, got ${JSON.stringify(value)}`;
      }
      if (spec.minimum !== undefined && value < spec.minimum) {
        return spec.minimum > 0 && spec.minimum < 1
          ? `must be greater than 0, got ${value}`
          : `must be at least ${spec.minimum}, got ${value}`;
      }
      return undefined;
    }
  }
}

/**
 * Turn the settings the user set explicitly (dotted key -> value; unset keys absent) into the
 * server's `initializationOptions`. Only explicit values are sent so that `.enclave.toml` and the
 * `ENCLAVE_*` environment still apply where the user did not choose. Invalid values are left out
 * (the server then uses its own layers) and reported.
 */
export function toInitializationOptions(explicit: ReadonlyMap<string, unknown>): {
  options: InitializationOptions;
  problems: Problem[];
} {
  const options: InitializationOptions = {};
  const problems: Problem[] = [];
  for (const spec of SETTINGS) {
    if (spec.clientOnly || !explicit.has(spec.key)) {
      continue;
    }
    const value = explicit.get(spec.key);
    if (value === undefined || value === null) {
      continue;
    }
    const reason = checkValue(spec, value);
    if (reason !== undefined) {
      problems.push({ key: `enclave.${spec.key}`, message: reason });
      continue;
    }
    const [section, name] = spec.key.split(".", 2);
    (options[section] ??= {})[name] = value as SettingValue;
  }
  return { options, problems };
}

/** A problem as the sentence the user sees. */
export function describeProblem(problem: Problem): string {
  return `Setting ${problem.key} is invalid (${problem.message}); the server's own value is used instead.`;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Added to the server's environment. */
  env: Record<string, string>;
}

/**
 * Python must never import from the workspace: the server runs with the workspace folder as its
 * working directory, and a workspace with its own `enclave/`, `server/` or even `multiprocessing/`
 * package would otherwise run that code instead of ours. `-P` keeps the working directory off
 * `sys.path` for `-m`; PYTHONSAFEPATH does the same for every Python the server starts, which
 * matters for the console script: its indexing processes are started as `python -c ...`, whose
 * `sys.path[0]` is the working directory unless this is set (Python 3.11+, as Enclave requires).
 */
const SAFE_PATH_ENV: Readonly<Record<string, string>> = { PYTHONSAFEPATH: "1" };

/** The command line that starts `enclave lsp`, from the two client-only settings. */
export function serverCommand(path: string, pythonPath: string): ServerCommand {
  const python = pythonPath.trim();
  if (python !== "") {
    return { command: python, args: ["-P", "-m", "enclave.server.lsp"], env: { ...SAFE_PATH_ENV } };
  }
  // A console script is safe itself: its sys.path[0] is its own bin directory, not the cwd.
  return { command: path.trim() === "" ? "enclave" : path.trim(), args: ["lsp"], env: { ...SAFE_PATH_ENV } };
}

/** How to install the server, shown whenever it cannot be started. */
export const INSTALL_HINT =
  "Install it with `python -m pip install enclave-lsp` (from a checkout of Enclave: `python -m pip install .`), or point `enclave.server.path` or `enclave.server.pythonPath` at an existing installation.";

/** The message shown when the server cannot start; names the command and the fix. */
export function startFailureMessage(cmd: Pick<ServerCommand, "command" | "args">, error: unknown): string {
  const line = [cmd.command, ...cmd.args].join(" ");
  const detail = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || /ENOENT|not found/i.test(detail)) {
    return `Enclave: cannot start the language server: \`${cmd.command}\` was not found. ${INSTALL_HINT}`;
  }
  if (code === "EACCES" || /EACCES/.test(detail)) {
    return `Enclave: cannot start the language server: \`${cmd.command}\` is not executable. ${INSTALL_HINT}`;
  }
  return `Enclave: the language server (\`${line}\`) failed to start: ${detail}. See the "Enclave" output for its log. ${INSTALL_HINT}`;
}

/**
 * The answer to a `workspace/configuration` request: section `enclave` (or `enclave.<section>`)
 * gets the same explicit settings as initializationOptions; other sections keep the editor's value.
 */
export function configurationResponse(
  items: readonly { section?: string }[],
  options: InitializationOptions,
  editorValues: readonly unknown[],
): unknown[] {
  return items.map((item, i): unknown => {
    if (item.section === "enclave") return options;
    if (item.section?.startsWith("enclave.")) return options[item.section.slice("enclave.".length)] ?? {};
    return editorValues[i] ?? null;
  });
}
