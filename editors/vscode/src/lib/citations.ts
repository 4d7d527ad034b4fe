/**
 * Citations as the user sees them: a `path:start-end` label with 1-based lines, and the place
 * in the file a click opens. LSP ranges are 0-based with an exclusive end.
 */

import type { Citation } from "./protocol";

export interface CitationTarget {
  /** The document to open; only `file:` URIs are accepted. */
  uri: string;
  /** Where to put the selection (LSP positions, 0-based). */
  startLine: number;
  startCharacter: number;
  endLine: number;
  endCharacter: number;
}

/** 1-based inclusive first and last line covered by an LSP range. */
export function lineSpan(citation: Citation): { first: number; last: number } {
  const { start, end } = citation.range;
  const first = start.line + 1;
  // A range ending at column 0 of a later line does not include that line.
  const lastLine = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
  return { first, last: Math.max(first, lastLine + 1) };
}

/** "pkg/mod.py:12-20 (Session.request)", or "pkg/mod.py:12" for one line. */
export function citationLabel(citation: Citation, withSymbol = true): string {
  const { first, last } = lineSpan(citation);
  const lines = first === last ? `${first}` : `${first}-${last}`;
  const symbol = withSymbol && citation.symbol ? ` (${citation.symbol})` : "";
  return `${citation.path}:${lines}${symbol}`;
}

/** Where a click on the citation goes, or undefined if the URI is not a local file. */
export function citationTarget(citation: Citation): CitationTarget | undefined {
  if (!citation.uri.startsWith("file:")) {
    return undefined;
  }
  const { start, end } = citation.range;
  return {
    uri: citation.uri,
    startLine: start.line,
    startCharacter: start.character,
    endLine: end.line,
    endCharacter: end.character,
  };
}

/** A `path:line` or `path:first-last` mention inside answer text that names a cited file. */
export interface Mention {
  index: number;
  length: number;
  target: CitationTarget;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Find mentions of cited files with a line (`src/a.py:12`, `src/a.py:12-20`, `src/a.py#L12`)
 * in `text`, so they can become links. Files are matched only when they are among the citations.
 */
export function findMentions(text: string, citations: readonly Citation[]): Mention[] {
  const byPath = new Map<string, Citation>();
  for (const c of citations) {
    if (citationTarget(c) !== undefined && !byPath.has(c.path)) {
      byPath.set(c.path, c);
    }
  }
  if (byPath.size === 0) {
    return [];
  }
  const paths = [...byPath.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(`(?<![\\w/.-])(${paths.join("|")})(?::|#L)(\\d+)(?:-L?(\\d+))?`, "g");
  const mentions: Mention[] = [];
  for (const match of text.matchAll(pattern)) {
    const cited = byPath.get(match[1]);
    const first = Number(match[2]);
    const last = match[3] === undefined ? first : Number(match[3]);
    if (cited === undefined || first < 1 || last < first) {
      continue;
    }
    mentions.push({
      index: match.index ?? 0,
      length: match[0].length,
      target: {
        uri: cited.uri,
        startLine: first - 1,
        startCharacter: 0,
        endLine: last - 1,
        endCharacter: Number.MAX_SAFE_INTEGER,
      },
    });
  }
  return mentions;
}
