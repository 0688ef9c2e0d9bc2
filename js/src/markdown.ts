// Markdown rendering, incremental and bounded: an answer is cut into blocks at blank lines
// outside code fences, and also wherever a block would grow past MAX_BLOCK characters (a
// long list between items, a huge table between rows with its header repeated, a huge code
// block by closing and reopening its fence). A finished block is parsed and sanitized once;
// only the tail, never longer than a block, is redrawn per frame. So no update costs more
// than one small parse, whatever the answer's shape. (A construct cut this way renders as
// consecutive pieces: a visual nuance only.)
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdownLang from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked } from "marked";

import { sanitize } from "./sanitize";

for (const [name, language] of Object.entries({ bash, javascript, json, markdown: markdownLang, python, sql,
  typescript, xml, yaml })) hljs.registerLanguage(name, language);

export const MAX_BLOCK = 6_000; // characters of one parsed block
const MAX_HIGHLIGHT = 20_000; // characters of one code block worth colouring
const DEEP = /^(?:\s*>){24}|^ {96}/m; // nesting so deep that it is shown as text, not parsed

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const marked = new Marked({
  gfm: true,
  async: false,
  // Raw HTML in an answer is shown as text, never interpreted.
  renderer: { html: (token) => escapeHtml(token.text) },
});

function toHtml(text: string): string {
  if (DEEP.test(text)) return `<pre class="am-plain">${escapeHtml(text)}</pre>`;
  try {
    return marked.parse(text) as string;
  } catch {
    return `<pre class="am-plain">${escapeHtml(text)}</pre>`; // the parser gave up: never a broken view
  }
}

/** One markdown text -> sanitized DOM; code blocks get a copy button (and colours when `highlight`). */
export function renderMarkdown(text: string, highlight = true): DocumentFragment {
  const fragment = sanitize(toHtml(text));
  for (const pre of Array.from(fragment.querySelectorAll("pre:not(.am-plain)"))) decorateCode(pre as HTMLPreElement, highlight);
  return fragment;
}

const TABLE_ROW = /^\s*\|.*\|\s*$/;
const DELIMITER_SO_FAR = /^\s*\|[\s:|-]*$/; // "|", "|--", "|---|:-": a delimiter row still arriving

/** The open block as it will read once complete, for display only: an open code fence closed,
 * a table's header given its delimiter row, and an unclosed `**` or backtick in the last
 * paragraph closed. The text itself is never changed; this is redone on the (bounded) tail each
 * frame, never on the whole answer. Written by hand: no markdown library closes a fragment. */
export function closeOpen(text: string): string {
  // A fence still being typed ("`", "``" alone on the last line) is not shown yet.
  const tail = /(^|\n) {0,3}(`{1,2}|~{1,2})$/.test(text) ? text.replace(/ {0,3}(`{1,2}|~{1,2})$/, "") : text;
  const lines = tail.split("\n");
  let fence: string | null = null;
  for (const line of lines) {
    const m = FENCE.exec(line);
    if (m && (fence === null || line.trim().startsWith(fence))) fence = fence === null ? m[1] : null;
  }
  if (fence !== null) return `${tail}${tail.endsWith("\n") ? "" : "\n"}${fence}`;
  // A table whose header has arrived and whose delimiter row has not (or only in part).
  const filled = lines.filter((l) => l.trim() !== "");
  const last = filled[filled.length - 1] ?? "";
  const before = filled[filled.length - 2];
  const columns = (row: string) => row.trim().replace(/^\||\|$/g, "").split("|").length;
  const header = last.trim().startsWith("|") && !TABLE_DELIMITER.test(last);
  if (header && (before === undefined || !TABLE_ROW.test(before)) && lines[lines.length - 1] === last) {
    // A header row still arriving ("| Plan | Pr"): closed, with the delimiter row to come.
    const row = TABLE_ROW.test(last) ? tail.replace(/\s*$/, "") : `${tail}|`;
    return `${row}\n|${"---|".repeat(columns(TABLE_ROW.test(last) ? last : `${last}|`))}\n`;
  }
  if (TABLE_ROW.test(last) && (before === undefined || !TABLE_ROW.test(before)) && !TABLE_DELIMITER.test(last)) {
    return `${tail.replace(/\s*$/, "")}\n|${"---|".repeat(columns(last))}\n`;
  }
  if (before !== undefined && TABLE_ROW.test(before) && !TABLE_DELIMITER.test(before)
      && !TABLE_ROW.test(filled[filled.length - 3] ?? "") && DELIMITER_SO_FAR.test(last)
      && columns(last) < columns(before) + (TABLE_ROW.test(last) ? 0 : 1)) {
    // The delimiter row still arriving ("|---|--", or "|---|---|" of a four-column header).
    return `${tail.slice(0, tail.lastIndexOf(last))}|${"---|".repeat(columns(before))}\n`;
  }
  // Emphasis and code spans left open in the last paragraph: closed, or, with nothing after
  // them yet, not shown at all.
  const close = (text: string, marker: string): string => {
    const at = text.lastIndexOf(marker);
    return text.slice(at + marker.length).trim() ? `${text.replace(/\s+$/, "")}${marker}` : text.slice(0, at);
  };
  const paragraph = tail.slice(tail.lastIndexOf("\n\n") + 1);
  const ticks = (paragraph.match(/`+/g) ?? []).filter((t) => t.length === 1).length;
  let closed = ticks % 2 === 1 ? close(tail, "`") : tail;
  const outside = ticks % 2 === 1 ? paragraph.slice(0, paragraph.lastIndexOf("`")) : paragraph;
  if (((outside.replace(/`[^`]*`/g, "").match(/\*\*/g) ?? []).length) % 2 === 1) closed = close(closed, "**");
  return closed;
}

function decorateCode(pre: HTMLPreElement, highlight: boolean): void {
  const code = pre.querySelector("code");
  const language = /(?:^|\s)language-([\w+#-]+)/.exec(code?.className ?? "")?.[1]?.toLowerCase();
  if (highlight && code && language && hljs.getLanguage(language) && (code.textContent ?? "").length <= MAX_HIGHLIGHT) {
    // highlight.js escapes the text it is given and adds only <span class="hljs-…">.
    code.innerHTML = hljs.highlight(code.textContent ?? "", { language, ignoreIllegals: true }).value;
    code.classList.add("hljs");
  }
  const wrap = document.createElement("div");
  wrap.className = "am-code";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "am-copy";
  button.textContent = "Copy";
  button.title = "Copy code";
  button.addEventListener("click", () => copyText(pre.textContent ?? "", button));
  pre.replaceWith(wrap);
  wrap.append(button, pre);
}

/** Copy to the clipboard and say so on the button. */
export function copyText(text: string, button: HTMLButtonElement): void {
  const label = button.textContent;
  void navigator.clipboard?.writeText(text).then(
    () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = label), 1200); },
    () => { button.textContent = "Copy failed"; },
  );
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const TABLE_DELIMITER = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
// A top-level list item: a piece may start there and still be a list (an indented one would
// start a piece as an indented code block).
const ITEM = /^ {0,3}(?:[-*+]|\d{1,9}[.)])\s/;
// A list is cut before an item past this many characters: a nested list parses slowly (marked),
// and an open list's tail is parsed again at each frame; 6 KB of it took 50-200 ms under load.
const LIST_BLOCK = 1_500;

/** Where finished blocks end: call `feed` with new text, read the blocks it returns. */
export class BlockSplitter {
  text = "";
  committed = 0; // text[0:committed] is made of finished blocks
  private scanned = 0; // start of the first line not yet looked at
  private fenceLine: string | null = null; // the open code fence's first line (info string kept)
  private fenceMarker = "";
  private tableHead: string | null = null; // header + delimiter rows of the open table
  private carry = ""; // what the next block must start with (a reopened fence, a table header)

  feed(delta: string): string[] {
    this.text += delta;
    const blocks: string[] = [];
    let newline = this.text.indexOf("\n", this.scanned);
    while (newline !== -1) {
      this.cutLongLine(blocks, newline);
      const lineStart = this.scanned;
      const line = this.text.slice(lineStart, newline);
      if (this.fenceLine === null && this.tableHead === null && ITEM.test(line)
        && lineStart - this.committed + this.carry.length > LIST_BLOCK) {
        // A long list is cut before an item it can see (indented at most 3 spaces, so the next
        // piece starts as a list; at 4 it would be parsed as code).
        this.commit(blocks, lineStart, "");
      }
      this.scanned = newline + 1;
      const fence = FENCE.exec(line);
      if (fence) {
        if (this.fenceLine === null) {
          this.fenceLine = line.trim();
          this.fenceMarker = fence[1];
        } else if (fence[1][0] === this.fenceMarker[0] && fence[1].length >= this.fenceMarker.length
          && !fence[2].trim()) {
          this.fenceLine = null;
        }
      } else if (this.fenceLine === null && line.trim() === "") {
        this.commit(blocks, this.scanned, "");
        this.tableHead = null;
        newline = this.text.indexOf("\n", this.scanned);
        continue;
      } else if (this.fenceLine === null && line.includes("-") && TABLE_DELIMITER.test(line)) {
        const previous = this.text.lastIndexOf("\n", lineStart - 2);
        this.tableHead = this.text.slice(previous + 1, this.scanned);
      }
      if (this.scanned - this.committed + this.carry.length > MAX_BLOCK) this.cutLongBlock(blocks);
      newline = this.text.indexOf("\n", this.scanned);
    }
    this.cutLongLine(blocks, this.text.length);
    return blocks;
  }

  /** One line of prose longer than a block (a 269 KB paragraph) is cut after a word, before a
   * letter, so each piece starts as a paragraph and is parsed and laid out on its own. */
  private cutLongLine(blocks: string[], end: number): void {
    while (this.fenceLine === null && this.tableHead === null && end - this.scanned > MAX_BLOCK) {
      const limit = this.scanned + MAX_BLOCK;
      let at = limit;
      for (let i = limit; i > this.scanned + MAX_BLOCK / 2; i--) {
        if (/\s/.test(this.text[i - 1]) && /[A-Za-z]/.test(this.text[i])) { at = i; break; }
      }
      this.commit(blocks, at, "");
      this.scanned = at;
    }
  }

  /** Cut a block that grew too long at the line just scanned, keeping the next piece well formed. */
  private cutLongBlock(blocks: string[]): void {
    if (this.fenceLine !== null) {
      this.commit(blocks, this.scanned, this.fenceLine + "\n", this.fenceMarker + "\n");
    } else if (this.tableHead !== null) {
      this.commit(blocks, this.scanned, this.tableHead);
    } else if (this.scanned - this.committed > 2 * MAX_BLOCK) {
      // No list item to cut before (feed cuts there) within twice the size: cut anywhere.
      this.commit(blocks, this.scanned, "");
    }
  }

  private commit(blocks: string[], end: number, carryNext: string, close = ""): void {
    const block = this.carry + this.text.slice(this.committed, end) + close;
    if (block.trim()) blocks.push(block);
    this.committed = end;
    this.carry = carryNext;
  }

  get tail(): string {
    return this.carry + this.text.slice(this.committed);
  }
}

// New text is taken in a block's worth at a time, for at most this long per animation frame: a
// fixed 18 KB a frame was 3 parses of a nested list, 50-70 ms on a busy machine (issue 27.4).
const FRAME_MS = 12;

/** A streaming answer inside `el`: append text; finished blocks stay, the tail is redrawn.
 * Text is taken in for at most FRAME_MS per frame, so a huge delta (a reset to a long stored
 * answer) is spread over frames instead of freezing the page. */
export class IncrementalMarkdown {
  readonly el: HTMLElement;
  private splitter = new BlockSplitter();
  private tailEl: HTMLElement;
  private pending = "";
  private tailDirty = false;
  private ended = false; // no more text will come: the tail is drawn as a finished block
  private frame: number | null = null;
  blocksParsed = 0; // finished blocks parsed so far (each once)
  parses = 0; // parser runs for finished blocks (several small blocks may share one)
  tailRenders = 0;
  /** Called after each draw (a view follows the bottom of a growing answer with it). */
  onDraw: () => void = () => {};

  constructor(el: HTMLElement, private schedule: (fn: () => void) => number = requestFrame) {
    this.el = el;
    this.tailEl = document.createElement("div");
    this.tailEl.className = "am-tail";
    el.append(this.tailEl);
  }

  get text(): string {
    return this.splitter.text + this.pending;
  }

  /** True while text is waiting to be drawn. */
  get busy(): boolean {
    return this.pending.length > 0 || this.tailDirty;
  }

  append(delta: string): void {
    if (!delta) return;
    this.pending += delta;
    if (this.frame === null) this.frame = this.schedule(() => this.step());
  }

  private step(): void {
    this.frame = null;
    this.take(Infinity, performance.now() + FRAME_MS);
    if (this.pending && this.frame === null) this.frame = this.schedule(() => this.step());
  }

  /** Draw everything now (tests, and the end of a stream). */
  flush(): void {
    this.take(Infinity);
  }

  /** No more text will come: draw the tail as a finished block (code coloured) once caught up.
   * One frame's worth is drawn now, so a settled answer is never shown empty, not even for the
   * frame between the turn settling and the next animation frame; the rest follows over frames. */
  end(): void {
    this.ended = true;
    this.tailDirty = true;
    this.take(MAX_BLOCK);
    if (this.busy && this.frame === null) this.frame = this.schedule(() => this.step());
  }

  /** Take in up to `budget` characters, a block's worth at a time, until `until` (a time). */
  private take(budget: number, until = Infinity): void {
    while (this.pending && budget > 0) {
      const slice = this.pending.slice(0, Math.min(budget, MAX_BLOCK, this.pending.length));
      this.pending = this.pending.slice(slice.length);
      budget -= slice.length;
      this.addBlocks(this.splitter.feed(slice));
      this.tailDirty = true;
      if (performance.now() >= until) break;
    }
    if (!this.tailDirty) return;
    this.tailDirty = false;
    const tail = this.splitter.tail;
    if (tail.length > 2 * MAX_BLOCK && !(this.ended && !this.pending)) {
      // A tail that cannot be cut (one huge line): plain text while it grows, parsed once at the end.
      const plain = document.createElement("p");
      plain.className = "am-plain";
      plain.textContent = tail;
      this.tailEl.replaceChildren(plain);
    } else {
      const finished = this.ended && !this.pending;
      this.tailEl.replaceChildren(renderMarkdown(finished ? tail : closeOpen(tail), finished));
    }
    this.tailRenders += 1;
    this.onDraw();
  }

  private addBlocks(finished: string[]): void {
    // Blocks finished together are parsed together while small; big ones one by one, so one
    // parse never takes more than a block's worth.
    let batch: string[] = [];
    let size = 0;
    const parse = () => {
      if (!batch.length) return;
      const div = document.createElement("div");
      div.className = "am-block";
      const text = batch.join("");
      div.dataset.chars = String(text.length); // what one parse took in (tests check the bound)
      div.append(renderMarkdown(text));
      this.el.insertBefore(div, this.tailEl);
      this.blocksParsed += batch.length;
      this.parses += 1;
      batch = [];
      size = 0;
    };
    for (const block of finished) {
      if (size + block.length > MAX_BLOCK) parse();
      batch.push(block);
      size += block.length;
    }
    parse();
  }

  reset(text: string): void {
    this.el.replaceChildren();
    this.splitter = new BlockSplitter();
    this.pending = "";
    this.ended = false;
    this.tailEl = document.createElement("div");
    this.tailEl.className = "am-tail";
    this.el.append(this.tailEl);
    this.append(text);
  }
}

/** A settled answer, drawn through the same bounded blocks, spread over frames if long. */
export function renderAnswer(text: string, schedule?: (fn: () => void) => number): HTMLElement {
  const el = document.createElement("div");
  const md = new IncrementalMarkdown(el, schedule);
  md.append(text);
  md.end();
  return el;
}

function requestFrame(fn: () => void): number {
  return typeof requestAnimationFrame === "function" ? requestAnimationFrame(fn) : (setTimeout(fn, 16) as unknown as number);
}
