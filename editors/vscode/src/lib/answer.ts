/**
 * An explanation or answer as it streams in, and its rendering to HTML for the answer panel:
 * the model's thinking folded in a <details> block, the markdown rendered with raw HTML disabled,
 * mentions of cited files turned into links, the notes on what limited the repository context,
 * and the citations listed as links.
 */

import MarkdownIt from "markdown-it";
import { citationLabel, citationTarget, findMentions, type CitationTarget } from "./citations";
import { parseAnswer, parseDelta, type Answer, type Citation } from "./protocol";

export type AnswerPhase = "streaming" | "done" | "failed" | "cancelled";

/** The state of one request: what has arrived so far, and how it ended. */
export class AnswerStream {
  thinking = "";
  markdown = "";
  citations: Citation[] = [];
  /** What limited the answer's repository context (from the final answer); empty otherwise. */
  notes: string[] = [];
  /** The line saying chat.maxTokens cut the answer, with how to raise it; "" when it was not. */
  cut = "";
  model: string | undefined;
  phase: AnswerPhase = "streaming";
  error: string | undefined;
  /** Number of partial results received (the integration test checks streaming happened). */
  partials = 0;
  /** Partial results that carried thinking (the server streams it a token a part), and the
   * milliseconds from the first to the last of them: how long the model has been thinking. */
  thinkingTokens = 0;
  thinkingMs = 0;
  private thinkingSince: number | undefined;

  constructor(
    public title: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Append one `$/progress` value ({thinking?, markdown?} deltas). Ignored once finished. */
  applyPartial(value: unknown): void {
    if (this.phase !== "streaming") {
      return;
    }
    const delta = parseDelta(value);
    this.partials += 1;
    if (delta.thinking) {
      const now = this.now();
      this.thinkingSince ??= now;
      this.thinkingTokens += 1;
      this.thinkingMs = now - this.thinkingSince;
    }
    this.thinking += delta.thinking ?? "";
    this.markdown += delta.markdown ?? "";
  }

  /** The final response: it carries the complete answer, which replaces what was streamed. */
  finish(result: unknown): Answer {
    const answer = parseAnswer(result);
    this.markdown = answer.markdown;
    this.thinking = answer.thinking ?? this.thinking;
    this.citations = answer.citations;
    this.notes = answer.notes;
    this.model = answer.model;
    this.cut = answer.cut;
    if (answer.target !== undefined) {
      this.title = explainTitle(answer.target);
    }
    this.phase = "done";
    return answer;
  }

  fail(message: string): void {
    this.phase = "failed";
    this.error = message;
  }

  cancel(): void {
    if (this.phase === "streaming") {
      this.phase = "cancelled";
    }
  }
}

/** "Explain pkg/mod.py:4-7 (Circle.__init__)": the lines explained, 1-based and inclusive (a
 * selection that ends at column 0 of a line does not include that line). */
export function explainTitle(target: Citation): string {
  return `Explain ${citationLabel(target)}`;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** The `data-target` attribute value a link carries; the panel's script posts it back. */
export function encodeTarget(target: CitationTarget): string {
  return escapeHtml(JSON.stringify(target));
}

/** Decode what the webview posts back; undefined unless it is a well-formed file target. */
export function decodeTarget(raw: unknown): CitationTarget | undefined {
  if (typeof raw !== "string") {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const t = value as Partial<CitationTarget> | null;
  if (
    typeof t !== "object" ||
    t === null ||
    typeof t.uri !== "string" ||
    !t.uri.startsWith("file:") ||
    ![t.startLine, t.startCharacter, t.endLine, t.endCharacter].every(
      (n) => typeof n === "number" && Number.isInteger(n) && n >= 0,
    )
  ) {
    return undefined;
  }
  return t as CitationTarget;
}

function citationMentions(md: MarkdownIt, citations: readonly Citation[]): void {
  md.core.ruler.push("enclave_citations", (state) => {
    for (const block of state.tokens) {
      if (block.type !== "inline" || !block.children) {
        continue;
      }
      const out: MarkdownIt.Token[] = [];
      let insideLink = 0;
      for (const child of block.children) {
        if (child.type === "link_open") insideLink += 1;
        if (child.type === "link_close") insideLink -= 1;
        const mentions = child.type === "text" && insideLink === 0 ? findMentions(child.content, citations) : [];
        if (mentions.length === 0) {
          out.push(child);
          continue;
        }
        let at = 0;
        for (const mention of mentions) {
          if (mention.index > at) {
            const text = new state.Token("text", "", 0);
            text.content = child.content.slice(at, mention.index);
            out.push(text);
          }
          const open = new state.Token("link_open", "a", 1);
          open.attrSet("href", "#");
          open.attrSet("class", "citation");
          open.attrSet("data-target", JSON.stringify(mention.target));
          const label = new state.Token("text", "", 0);
          label.content = child.content.slice(mention.index, mention.index + mention.length);
          out.push(open, label, new state.Token("link_close", "a", -1));
          at = mention.index + mention.length;
        }
        if (at < child.content.length) {
          const text = new state.Token("text", "", 0);
          text.content = child.content.slice(at);
          out.push(text);
        }
      }
      block.children = out;
    }
  });
}

/** Render markdown from the model: no raw HTML, cited `path:line` mentions as links. */
export function renderMarkdown(markdown: string, citations: readonly Citation[]): string {
  const md = new MarkdownIt({ html: false, linkify: false, breaks: false });
  citationMentions(md, citations);
  return md.render(markdown);
}

/** The server's notes on what limited the repository context; nothing when there are none. */
function noteList(notes: readonly string[]): string {
  if (notes.length === 0) {
    return "";
  }
  const items = notes.map((note) => `<li>${escapeHtml(note)}</li>`);
  return `<section class="notes"><h3>Notes</h3><ul>${items.join("")}</ul></section>`;
}

function citationList(citations: readonly Citation[]): string {
  if (citations.length === 0) {
    return "";
  }
  const items = citations.map((c) => {
    const target = citationTarget(c);
    const label = escapeHtml(citationLabel(c));
    return target === undefined
      ? `<li>${label}</li>`
      : `<li><a href="#" class="citation" data-target="${encodeTarget(target)}">${label}</a></li>`;
  });
  return `<section class="citations"><h3>Sources</h3><ol>${items.join("")}</ol></section>`;
}

/** "Thinking… 120 tokens · 14 s" while the model thinks, "Thinking (120 tokens, 14 s)" after. */
export function thinkingLabel(answer: AnswerStream): string {
  const thinking = answer.phase === "streaming" && answer.markdown === "";
  if (answer.thinkingTokens === 0) {
    return thinking ? "Thinking…" : "Thinking";
  }
  const tokens = `${answer.thinkingTokens} token${answer.thinkingTokens === 1 ? "" : "s"}`;
  const seconds = `${Math.round(answer.thinkingMs / 1000)} s`;
  return thinking ? `Thinking… ${tokens} · ${seconds}` : `Thinking (${tokens}, ${seconds})`;
}

/**
 * The body of the answer panel. Thinking is folded (`<details>` without `open`; the panel's
 * script keeps it open if the user opened it).
 */
export function renderAnswerHtml(answer: AnswerStream): string {
  const parts: string[] = [`<h2>${escapeHtml(answer.title)}</h2>`];
  if (answer.thinking !== "") {
    const label = thinkingLabel(answer);
    parts.push(
      `<details class="thinking"><summary>${label}</summary><pre>${escapeHtml(answer.thinking)}</pre></details>`,
    );
  }
  if (answer.markdown !== "") {
    parts.push(`<div class="markdown">${renderMarkdown(answer.markdown, answer.citations)}</div>`);
  } else if (answer.phase === "streaming" && answer.thinking === "") {
    parts.push(`<p class="waiting">Waiting for the model…</p>`);
  }
  if (answer.phase === "failed") {
    parts.push(`<p class="error">${escapeHtml(answer.error ?? "The request failed.")}</p>`);
  } else if (answer.phase === "cancelled") {
    parts.push(`<p class="note">Cancelled.</p>`);
  }
  if (answer.cut !== "") {
    parts.push(`<p class="cut">${escapeHtml(answer.cut)}</p>`);
  }
  parts.push(noteList(answer.notes));
  parts.push(citationList(answer.citations));
  if (answer.phase === "done" && answer.model) {
    parts.push(`<p class="model">${escapeHtml(answer.model)}</p>`);
  }
  return parts.join("\n");
}
