// Markdown rendering, incremental: an answer is cut into blocks at blank lines outside code
// fences; a finished block is parsed and sanitized once, only the growing tail again.
// (Constructs that span blank lines, like loose lists, render per block: a visual nuance only.)
import { Marked } from "marked";

import { sanitize } from "./sanitize";

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const marked = new Marked({
  gfm: true,
  async: false,
  // Raw HTML in an answer is shown as text, never interpreted.
  renderer: { html: (token) => escapeHtml(token.text) },
});

/** One markdown text -> sanitized DOM, with a copy button on every code block. */
export function renderMarkdown(text: string): DocumentFragment {
  const fragment = sanitize(marked.parse(text) as string);
  for (const pre of Array.from(fragment.querySelectorAll("pre"))) decorateCode(pre);
  return fragment;
}

function decorateCode(pre: HTMLPreElement): void {
  const wrap = document.createElement("div");
  wrap.className = "am-code";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "am-copy";
  button.textContent = "Copy";
  button.title = "Copy code";
  button.addEventListener("click", () => {
    const code = pre.textContent ?? "";
    void navigator.clipboard?.writeText(code).then(
      () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = "Copy"), 1200); },
      () => { button.textContent = "Copy failed"; },
    );
  });
  pre.replaceWith(wrap);
  wrap.append(button, pre);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

/** Where finished blocks end: call `feed` with new text, read `committed` (an index). */
export class BlockSplitter {
  text = "";
  committed = 0; // text[0:committed] is made of finished blocks
  private scanned = 0; // start of the first line not yet looked at
  private fence: string | null = null;

  feed(delta: string): string[] {
    this.text += delta;
    const blocks: string[] = [];
    let newline = this.text.indexOf("\n", this.scanned);
    while (newline !== -1) {
      const line = this.text.slice(this.scanned, newline);
      this.scanned = newline + 1;
      const fence = FENCE.exec(line);
      if (fence) {
        const marker = fence[1];
        if (this.fence === null) this.fence = marker;
        else if (marker[0] === this.fence[0] && marker.length >= this.fence.length && !fence[2].trim()) {
          this.fence = null;
        }
      } else if (this.fence === null && line.trim() === "") {
        const block = this.text.slice(this.committed, this.scanned);
        if (block.trim()) blocks.push(block);
        this.committed = this.scanned;
      }
      newline = this.text.indexOf("\n", this.scanned);
    }
    return blocks;
  }

  get tail(): string {
    return this.text.slice(this.committed);
  }
}

/** A streaming answer inside `el`: append text; finished blocks stay, the tail is redrawn. */
export class IncrementalMarkdown {
  readonly el: HTMLElement;
  private splitter = new BlockSplitter();
  private tailEl: HTMLElement;
  private tailDirty = false;
  private frame: number | null = null;
  blocksParsed = 0; // finished blocks parsed so far (each once)
  parses = 0; // parser runs for finished blocks (several blocks may share one)
  tailRenders = 0;

  constructor(el: HTMLElement, private schedule: (fn: () => void) => number = requestFrame) {
    this.el = el;
    this.tailEl = document.createElement("div");
    this.tailEl.className = "am-tail";
    el.append(this.tailEl);
  }

  get text(): string {
    return this.splitter.text;
  }

  append(delta: string): void {
    if (!delta) return;
    const finished = this.splitter.feed(delta);
    if (finished.length) {
      // The blocks finished by this append are parsed together, once: fewer parser and
      // sanitizer runs, and never again afterwards.
      const div = document.createElement("div");
      div.className = "am-block";
      div.append(renderMarkdown(finished.join("")));
      this.el.insertBefore(div, this.tailEl);
      this.blocksParsed += finished.length;
      this.parses += 1;
    }
    this.tailDirty = true;
    if (this.frame === null) this.frame = this.schedule(() => this.flush());
  }

  /** Draw the tail now (called once per animation frame while streaming). */
  flush(): void {
    this.frame = null;
    if (!this.tailDirty) return;
    this.tailDirty = false;
    this.tailEl.replaceChildren(renderMarkdown(this.splitter.tail));
    this.tailRenders += 1;
  }

  reset(text: string): void {
    this.el.replaceChildren();
    this.splitter = new BlockSplitter();
    this.tailEl = document.createElement("div");
    this.tailEl.className = "am-tail";
    this.el.append(this.tailEl);
    this.append(text);
  }
}

function requestFrame(fn: () => void): number {
  return typeof requestAnimationFrame === "function" ? requestAnimationFrame(fn) : (setTimeout(fn, 16) as unknown as number);
}
