/**
 * Unit tests: streaming an answer, rendering it with thinking folded, the notes on what limited
 * the repository context, and citations as links.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { AnswerStream, decodeTarget, explainTitle, renderAnswerHtml, renderMarkdown, thinkingLabel } from "../../src/lib/answer";
import { citationLabel, citationTarget, findMentions, lineSpan } from "../../src/lib/citations";
import { parseAnswer, type Citation } from "../../src/lib/protocol";

const cite: Citation = {
  uri: "file:///repo/pkg/mod.py",
  path: "pkg/mod.py",
  range: { start: { line: 11, character: 0 }, end: { line: 20, character: 0 } },
  symbol: "Session.request",
};

function targets(html: string): unknown[] {
  return [...html.matchAll(/data-target="([^"]*)"/g)].map((m) =>
    decodeTarget(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&")),
  );
}

test("citation labels use 1-based inclusive lines", () => {
  assert.deepEqual(lineSpan(cite), { first: 12, last: 20 });
  assert.equal(citationLabel(cite), "pkg/mod.py:12-20 (Session.request)");
  const oneLine: Citation = { ...cite, symbol: undefined, range: { start: { line: 4, character: 2 }, end: { line: 4, character: 9 } } };
  assert.equal(citationLabel(oneLine), "pkg/mod.py:5");
  const toEndOfLine: Citation = { ...cite, range: { start: { line: 4, character: 0 }, end: { line: 6, character: 3 } } };
  assert.deepEqual(lineSpan(toEndOfLine), { first: 5, last: 7 });
});

test("citation targets open local files only", () => {
  assert.deepEqual(citationTarget(cite), { uri: cite.uri, startLine: 11, startCharacter: 0, endLine: 20, endCharacter: 0 });
  assert.equal(citationTarget({ ...cite, uri: "https://example.com/x.py" }), undefined);
});

test("mentions of cited files with lines are found; other files are not", () => {
  const text = "See pkg/mod.py:14-16 and pkg/mod.py#L3, not other.py:4 nor xpkg/mod.py:2.";
  const mentions = findMentions(text, [cite]);
  assert.deepEqual(
    mentions.map((m) => [text.slice(m.index, m.index + m.length), m.target.startLine, m.target.endLine]),
    [["pkg/mod.py:14-16", 13, 15], ["pkg/mod.py#L3", 2, 2]],
  );
});

test("partials accumulate in order; the final answer replaces them", () => {
  const answer = new AnswerStream("Explain pkg/mod.py:12");
  answer.applyPartial({ thinking: "The user " });
  answer.applyPartial({ thinking: "asks." });
  answer.applyPartial({ markdown: "It sends " });
  answer.applyPartial("garbage");
  answer.applyPartial({ markdown: "a request." });
  assert.equal(answer.thinking, "The user asks.");
  assert.equal(answer.markdown, "It sends a request.");
  assert.equal(answer.partials, 5);
  const final = answer.finish({ markdown: "It sends a request.\n", thinking: "The user asks.", model: "deepseek-r1", citations: [cite, { bad: true }] });
  assert.equal(answer.phase, "done");
  assert.equal(answer.markdown, "It sends a request.\n");
  assert.deepEqual(final.citations, [cite]);
  answer.applyPartial({ markdown: "late" });
  assert.equal(answer.markdown, "It sends a request.\n", "partials after the end are ignored");
});

test("a non-object result is an error, not an empty answer", () => {
  assert.throws(() => new AnswerStream("x").finish(null), /not an object/);
});

test("rendering folds thinking and escapes everything the model wrote", () => {
  const answer = new AnswerStream("Explain <b>x</b>");
  answer.applyPartial({ thinking: "<script>alert(1)</script> hmm" });
  let html = renderAnswerHtml(answer);
  assert.match(html, /<details class="thinking"><summary>Thinking… 1 token · 0 s<\/summary><pre>&lt;script&gt;alert\(1\)&lt;\/script&gt; hmm<\/pre><\/details>/);
  assert.doesNotMatch(html, /<details[^>]*open/);
  assert.doesNotMatch(html, /<script>|<b>/);
  answer.finish({ markdown: "Uses <img src=x onerror=alert(1)> `requests`.", thinking: "hmm", citations: [cite], model: "deepseek-r1" });
  html = renderAnswerHtml(answer);
  assert.match(html, /<summary>Thinking \(1 token, 0 s\)<\/summary>/);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /<code>requests<\/code>/);
  assert.match(html, /<p class="model">deepseek-r1<\/p>/);
});

test("while the model thinks the label counts its tokens and the seconds so far", () => {
  let clock = 1_000;
  const answer = new AnswerStream("Ask", () => clock);
  assert.equal(thinkingLabel(answer), "Thinking…");
  for (let i = 0; i < 120; i++) {
    answer.applyPartial({ thinking: "t " });
    clock += 100;
  }
  assert.equal(thinkingLabel(answer), "Thinking… 120 tokens · 12 s");
  answer.applyPartial({ markdown: "It adds." });
  assert.equal(thinkingLabel(answer), "Thinking (120 tokens, 12 s)");
});

test("citations render as links whose targets decode back", () => {
  const answer = new AnswerStream("q");
  answer.finish({ markdown: "Retries are set in pkg/mod.py:14.", citations: [cite] });
  const html = renderAnswerHtml(answer);
  assert.match(html, /<h3>Sources<\/h3><ol><li><a href="#" class="citation" data-target="[^"]+">pkg\/mod.py:12-20 \(Session.request\)<\/a><\/li><\/ol>/);
  assert.deepEqual(targets(html), [
    { uri: cite.uri, startLine: 13, startCharacter: 0, endLine: 13, endCharacter: Number.MAX_SAFE_INTEGER },
    { uri: cite.uri, startLine: 11, startCharacter: 0, endLine: 20, endCharacter: 0 },
  ]);
});

test("mentions inside code and inside existing links stay as they are", () => {
  const html = renderMarkdown("`pkg/mod.py:3` and [here](https://x.test/pkg/mod.py:3) and\n\n```\npkg/mod.py:3\n```", [cite]);
  assert.equal(targets(html).length, 0);
});

test("notes are read as strings only; junk is dropped and a missing list is empty", () => {
  const semanticOff = "semantic search is off: provider none (context from lexical matches only)";
  assert.deepEqual(parseAnswer({ markdown: "x", notes: [semanticOff, 3, null, { text: "n" }, ["x"], "", "cut"] }).notes, [
    semanticOff,
    "",
    "cut",
  ]);
  assert.deepEqual(parseAnswer({ markdown: "x", citations: [] }).notes, [], "missing");
  assert.deepEqual(parseAnswer({ markdown: "x", notes: "semantic search is off" }).notes, [], "not a list");
  assert.deepEqual(parseAnswer({ markdown: "x", notes: null }).notes, [], "null");
  const answer = new AnswerStream("q");
  assert.deepEqual(answer.notes, [], "none while streaming");
  answer.finish({ markdown: "x", notes: [semanticOff, 7] });
  assert.deepEqual(answer.notes, [semanticOff]);
});

test("notes render escaped, before the sources; no notes section when there are none", () => {
  const answer = new AnswerStream("q");
  answer.finish({
    markdown: "Retries are set in pkg/mod.py:14.",
    citations: [cite],
    notes: ["no index for this repository: answered without repository context", "<img src=x onerror=alert(1)> & 'cut'"],
  });
  const html = renderAnswerHtml(answer);
  assert.match(
    html,
    /<section class="notes"><h3>Notes<\/h3><ul><li>no index for this repository: answered without repository context<\/li><li>&lt;img src=x onerror=alert\(1\)&gt; &amp; &#39;cut&#39;<\/li><\/ul><\/section>/,
  );
  assert.doesNotMatch(html, /<img/);
  const notesAt = html.indexOf('<section class="notes">');
  const sourcesAt = html.indexOf('<section class="citations">');
  assert.ok(notesAt > html.indexOf('<div class="markdown">') && notesAt < sourcesAt, "after the answer, before the sources");

  const full = new AnswerStream("q");
  full.finish({ markdown: "x", citations: [cite], notes: [] });
  assert.doesNotMatch(renderAnswerHtml(full), /class="notes"|<h3>Notes/);
  const older = new AnswerStream("q");
  older.finish({ markdown: "x", citations: [cite] });
  assert.doesNotMatch(renderAnswerHtml(older), /class="notes"|<h3>Notes/);
  const streaming = new AnswerStream("q");
  streaming.applyPartial({ markdown: "x" });
  assert.doesNotMatch(renderAnswerHtml(streaming), /class="notes"/);
});

test("failures and cancellation are shown", () => {
  const failed = new AnswerStream("q");
  failed.fail("model 'deepseek-r1' is not pulled: run `ollama pull deepseek-r1`");
  assert.match(renderAnswerHtml(failed), /<p class="error">model &#39;deepseek-r1&#39; is not pulled: run `ollama pull deepseek-r1`<\/p>/);
  const cancelled = new AnswerStream("q");
  cancelled.cancel();
  assert.match(renderAnswerHtml(cancelled), /Cancelled\./);
});

test("decodeTarget accepts only well-formed file targets", () => {
  assert.equal(decodeTarget('{"uri":"https://x","startLine":0,"startCharacter":0,"endLine":0,"endCharacter":0}'), undefined);
  assert.equal(decodeTarget('{"uri":"file:///a","startLine":-1,"startCharacter":0,"endLine":0,"endCharacter":0}'), undefined);
  assert.equal(decodeTarget("not json"), undefined);
  assert.equal(decodeTarget(42), undefined);
});

test("an answer cut at chat.maxTokens says so, with the fix, above the notes", () => {
  const line =
    "answer cut at chat.maxTokens (1024); raise it (setting chat.maxTokens: enclave.chat.maxTokens in VS Code, settings.chat.maxTokens in Neovim's setup())";
  const answer = new AnswerStream("q");
  const final = answer.finish({ markdown: "It sends a requ", citations: [cite], notes: ["a note"], doneReason: "length", cut: line });
  assert.equal(final.doneReason, "length");
  assert.equal(answer.cut, line);
  const html = renderAnswerHtml(answer);
  assert.match(html, /<p class="cut">answer cut at chat.maxTokens \(1024\); raise it \(setting chat.maxTokens: enclave.chat.maxTokens in VS Code, settings.chat.maxTokens in Neovim&#39;s setup\(\)\)<\/p>/);
  assert.ok(html.indexOf('class="cut"') > html.indexOf('class="markdown"') && html.indexOf('class="cut"') < html.indexOf('class="notes"'));

  const empty = new AnswerStream("q");
  empty.finish({ markdown: "", thinking: "Let me think", doneReason: "length", cut: "no answer: the model's thinking used all of chat.maxTokens (64) before it answered; raise it (x) or turn thinking off (setting chat.think = false)" });
  assert.match(renderAnswerHtml(empty), /<p class="cut">no answer: the model&#39;s thinking used all of chat.maxTokens \(64\)/);

  const whole = new AnswerStream("q");
  whole.finish({ markdown: "x", doneReason: "stop", cut: "" });
  assert.doesNotMatch(renderAnswerHtml(whole), /class="cut"/);
  const older = new AnswerStream("q");
  assert.equal(older.finish({ markdown: "x", cut: 7 }).cut, "", "a cut that is not a string is none");
});

test("an explanation is titled with the lines it explained, an end at column 0 not included", () => {
  const selection: Citation = { uri: cite.uri, path: "shapes/geometry.py", range: { start: { line: 3, character: 0 }, end: { line: 7, character: 0 } } };
  assert.equal(explainTitle(selection), "Explain shapes/geometry.py:4-7");
  const answer = new AnswerStream("Explain the definition at shapes/geometry.py:5");
  answer.finish({ markdown: "x", target: { ...selection, range: { start: { line: 3, character: 0 }, end: { line: 6, character: 30 } }, symbol: "Circle.__init__" } });
  assert.equal(answer.title, "Explain shapes/geometry.py:4-7 (Circle.__init__)");
  assert.match(renderAnswerHtml(answer), /<h2>Explain shapes\/geometry.py:4-7 \(Circle.__init__\)<\/h2>/);
  const ask = new AnswerStream("Where are retries?");
  ask.finish({ markdown: "x", target: { bad: true } });
  assert.equal(ask.title, "Where are retries?", "no target: the title stays");
});
