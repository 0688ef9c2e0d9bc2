import { describe, expect, it } from "vitest";

import { BlockSplitter, closeOpen, IncrementalMarkdown, MAX_BLOCK, renderAnswer, renderMarkdown } from "../src/markdown";
import { safeLink } from "../src/sanitize";

const ANSWER = [
  "Here are our current plans:",
  "",
  "| Plan | Price |",
  "|---|---|",
  "| Starter | $9 |",
  "| Team | $49 |",
  "",
  "Some **bold** text and a [link](https://example.com).",
  "",
  "```python",
  "x = 1",
  "",
  "print(x)",
  "```",
  "",
  "- one",
  "- two",
  "",
  "### The end",
  "",
].join("\n");

function html(fragment: DocumentFragment): string {
  const div = document.createElement("div");
  div.append(fragment);
  return div.innerHTML;
}

function streamInto(text: string, chunk: number): IncrementalMarkdown {
  const el = document.createElement("div");
  const md = new IncrementalMarkdown(el, () => 0);
  for (let i = 0; i < text.length; i += chunk) md.append(text.slice(i, i + chunk));
  md.flush();
  return md;
}

describe("BlockSplitter", () => {
  it("cuts one long line of prose after a word, before a letter, whatever the chunking", () => {
    const line = Array.from({ length: 12_000 }, (_, i) => (i % 7 === 1 ? "- dash **b** 1." : "word")).join(" ");
    for (const step of [1, 997, line.length]) {
      const splitter = new BlockSplitter();
      const blocks: string[] = [];
      for (let i = 0; i < line.length; i += step) blocks.push(...splitter.feed(line.slice(i, i + step)));
      expect(blocks.length).toBeGreaterThan(5);
      expect(blocks.join("") + splitter.tail).toBe(line); // nothing lost, nothing added
      for (const block of [...blocks, splitter.tail]) {
        expect(block.length).toBeLessThanOrEqual(MAX_BLOCK);
        expect(block).toMatch(/^[A-Za-z]/); // each piece starts as a paragraph, never as "- " (a list)
      }
    }
  });

  it("cuts at blank lines but never inside a code fence", () => {
    const splitter = new BlockSplitter();
    const blocks = splitter.feed(ANSWER);
    expect(blocks.map((b) => b.trim().split("\n")[0])).toEqual([
      "Here are our current plans:", "| Plan | Price |", "Some **bold** text and a [link](https://example.com).",
      "```python", "- one",
    ]);
    expect(splitter.tail).toBe("### The end\n"); // no blank line after it yet: still the tail
    expect(blocks[3]).toContain("x = 1\n\nprint(x)");
  });

  it("gives the same blocks whatever the chunking", () => {
    for (const size of [1, 2, 3, 7, 64]) {
      const splitter = new BlockSplitter();
      const blocks: string[] = [];
      for (let i = 0; i < ANSWER.length; i += size) blocks.push(...splitter.feed(ANSWER.slice(i, i + size)));
      expect(blocks.join("") + splitter.tail).toBe(ANSWER);
      expect(blocks.length).toBe(5);
    }
  });

  it("a fence closes only with the same marker, at least as long, without info", () => {
    const splitter = new BlockSplitter();
    const blocks = splitter.feed("````\n```\n\nstill code\n````\n\nafter\n\n");
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain("still code");
  });
});

describe("IncrementalMarkdown", () => {
  it("renders the same as a single render, at any chunk size", () => {
    const whole = document.createElement("div");
    const splitter = new BlockSplitter();
    for (const piece of [...splitter.feed(ANSWER), splitter.tail]) {
      const block = document.createElement("div");
      block.append(renderMarkdown(piece));
      whole.append(block);
    }
    for (const size of [1, 5, 50]) {
      const md = streamInto(ANSWER, size);
      expect(md.text).toBe(ANSWER);
      expect(md.el.querySelectorAll("table").length).toBe(1);
      expect(md.el.querySelectorAll("pre").length).toBe(1);
      expect(md.el.querySelector("pre")?.textContent).toBe("x = 1\n\nprint(x)\n");
      expect(md.blocksParsed).toBe(5);
      // Blocks that end within one append share a parse: never more parses than blocks.
      expect(md.el.querySelectorAll(".am-block").length).toBe(md.parses);
      expect(md.parses).toBeLessThanOrEqual(5);
      expect(md.el.querySelector(".am-tail h3")?.textContent).toBe("The end");
      expect(md.el.textContent).toBe(whole.textContent);
    }
  });

  it("parses each finished block once; only the tail is redrawn", () => {
    const md = streamInto(ANSWER, 1);
    expect(md.blocksParsed).toBe(5);
    const el = document.createElement("div");
    let frames: (() => void)[] = [];
    const batched = new IncrementalMarkdown(el, (fn) => { frames.push(fn); return frames.length; });
    for (const ch of ANSWER) batched.append(ch);
    expect(frames.length).toBe(1); // one redraw scheduled for many appends
    frames[0]();
    frames = [];
    expect(batched.tailRenders).toBe(1);
  });

  it("a settled answer is drawn when it settles, never left empty until the next frame", () => {
    // Frames that never come: what end() leaves on screen is what a user sees in the frame
    // between the turn settling and the next animation frame.
    const never = () => 0;
    const live = new IncrementalMarkdown(document.createElement("div"), never);
    live.append("To rotate an API key, open **Settings**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
    live.end();
    expect(live.el.textContent).toContain("To rotate an API key, open Settings.");
    expect(live.el.querySelectorAll("td").length).toBe(2);
    expect(live.busy).toBe(false);
    // A long settled answer draws its first frame's worth at once and the rest over frames.
    const long = Array.from({ length: 4000 }, (_, i) => `Line ${i} of a long answer.\n\n`).join("");
    const drawn = renderAnswer(long, never);
    expect(drawn.textContent).toContain("Line 0 of a long answer.");
    expect((drawn.textContent ?? "").length).toBeLessThan(long.length);
  });

  it("reset replaces everything", () => {
    const md = streamInto("first\n\nsecond", 3);
    md.reset("other text");
    md.flush();
    expect(md.el.textContent?.trim()).toBe("other text");
  });
});

describe("renderMarkdown", () => {
  it("wraps code blocks with a copy button", () => {
    const out = document.createElement("div");
    out.append(renderMarkdown("```js\nalert(1)\n```"));
    const button = out.querySelector(".am-code > button.am-copy");
    expect(button?.textContent).toBe("Copy");
    expect(out.querySelector(".am-code > pre")?.textContent).toBe("alert(1)\n");
  });

  it("escapes raw HTML instead of interpreting it", () => {
    const out = html(renderMarkdown('<script>alert(1)</script><img src=x onerror="alert(2)">'));
    expect(out).not.toContain("<script");
    expect(out).not.toContain("<img");
    expect(out).toContain("&lt;script&gt;");
  });

  it("keeps only http(s)/mailto links, opened safely", () => {
    const root = document.createElement("div");
    root.append(renderMarkdown(
      "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](data:text/html,x) [d](https://ok.example/x) [e](mailto:x@y.z)"));
    const links = Array.from(root.querySelectorAll("a"));
    expect(links.map((a) => a.getAttribute("href"))).toEqual([null, null, null, "https://ok.example/x", "mailto:x@y.z"]);
    for (const a of links) expect(a.getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("holds remote images back until clicked and drops data: images", () => {
    const root = document.createElement("div");
    root.append(renderMarkdown("![cat](https://evil.example/c.png) ![x](data:image/png;base64,AAAA)"));
    expect(root.querySelectorAll("img").length).toBe(0);
    const buttons = Array.from(root.querySelectorAll("button.am-image-placeholder")) as HTMLButtonElement[];
    expect(buttons[0].textContent).toContain("evil.example");
    expect(buttons[1].disabled).toBe(true);
    buttons[0].click();
    expect(root.querySelector("img")?.getAttribute("src")).toBe("https://evil.example/c.png");
    expect(root.querySelector("img")?.referrerPolicy).toBe("no-referrer");
  });

  it("strips ids, names and data attributes (no clobbering, no command linkers)", () => {
    const out = html(renderMarkdown("[x](https://a.b \"t\")"));
    expect(out).not.toMatch(/\s(id|name|data-[\w-]+)=/);
  });
});

describe("bounded blocks", () => {
  const draw = (text: string) => {
    const el = document.createElement("div");
    const md = new IncrementalMarkdown(el, () => 0);
    for (let i = 0; i < text.length; i += 997) md.append(text.slice(i, i + 997));
    md.end();
    md.flush();
    return el;
  };
  const sizes = (el: HTMLElement) => Array.from(el.querySelectorAll<HTMLElement>(".am-block")).map((b) => Number(b.dataset.chars));

  it("a long nested list with no blank line is cut between top-level items, losing none", () => {
    const items = Array.from({ length: 1500 }, (_, i) => `- item ${i}\n  - detail ${i} with **bold** text\n    - deeper ${i}\n`).join("");
    const el = draw(items);
    expect(Math.max(...sizes(el))).toBeLessThanOrEqual(2 * MAX_BLOCK);
    expect(el.querySelectorAll("li").length).toBe(4500);
    expect(el.querySelectorAll("pre").length).toBe(0); // no piece started as an indented code block
  });

  it("a huge table is cut between rows with its header repeated", () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `| ${i} | value ${i} | more ${i} |\n`).join("");
    const el = draw(`| n | value | more |\n|---|---|---|\n${rows}`);
    expect(Math.max(...sizes(el))).toBeLessThanOrEqual(2 * MAX_BLOCK);
    expect(el.querySelectorAll("tbody tr").length).toBe(3000);
    expect(Array.from(el.querySelectorAll("thead th")).every((th, i) => th.textContent === ["n", "value", "more"][i % 3])).toBe(true);
  });

  it("a huge code block is cut by closing and reopening its fence, language kept", () => {
    const code = Array.from({ length: 4000 }, (_, i) => `x_${i} = ${i}  # line ${i}`).join("\n");
    const el = draw("```python\n" + code + "\n```\n");
    expect(Math.max(...sizes(el))).toBeLessThanOrEqual(2 * MAX_BLOCK);
    const text = Array.from(el.querySelectorAll("pre code")).map((c) => c.textContent).join("\n");
    expect(text.replace(/\n+/g, "\n").trim()).toBe(code);
    expect(Array.from(el.querySelectorAll("pre code")).every((c) => c.className.includes("language-python"))).toBe(true);
  });

  it("nesting too deep to parse is shown as text, never a crash", () => {
    const el = draw(">".repeat(5000) + " deep\n\n" + "  ".repeat(3000) + "- far\n");
    expect(el.textContent).toContain("deep");
    expect(el.textContent).toContain("far");
  });
});

describe("safeLink", () => {
  it("keeps http(s) links and drops every other scheme", () => {
    expect(safeLink(" https://docs.example.com/a?b=1 ")).toBe("https://docs.example.com/a?b=1");
    expect(safeLink("HTTP://x.example")).toBe("HTTP://x.example");
    for (const bad of ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,<script>", "vbscript:x",
      "//evil.example", "mailto:a@b.c", "", null, undefined, "java\nscript:alert(1)"]) {
      expect(safeLink(bad)).toBeNull();
    }
  });
});

describe("a long nested list streamed line by line", () => {
  it("never starts a piece with a line it cannot see yet (a 4-space item would turn into code)", () => {
    // Where the cut falls depends on where the deltas end: shift the text a character at a time.
    for (let shift = 0; shift < 90; shift += 5) {
      let text = `- item ${"x".repeat(shift)}\n`;
      for (let i = 0; i < 400; i++) text += `- item ${i}\n  - detail ${i} with **bold** text\n    - deeper ${i}\n`;
      const splitter = new BlockSplitter();
      const pieces: string[] = [];
      for (const line of text.split(/(?<=\n)/)) pieces.push(...splitter.feed(line)); // each delta ends at a newline
      pieces.push(splitter.tail);
      const el = document.createElement("div");
      for (const piece of pieces) el.append(renderMarkdown(piece));
      expect([shift, el.querySelectorAll("li").length]).toEqual([shift, 1 + 400 * 3]);
      expect(el.querySelectorAll("pre, code").length).toBe(0);
      expect(pieces.length).toBeGreaterThan(3); // still cut into bounded pieces
      expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(2 * MAX_BLOCK);
    }
  }, 20_000);
});

describe("the open block, drawn as it will read", () => {
  const live = (text: string) => {
    const md = new IncrementalMarkdown(document.createElement("div"), () => 0);
    md.append(text);
    md.flush(); // drawn as a frame would, not ended
    return md.el;
  };

  it("a table with only its header so far is a table, not pipes", () => {
    const el = live("Plans:\n\n| Plan | Price |\n");
    expect(el.querySelector("th")?.textContent?.trim()).toBe("Plan");
    expect(el.textContent).not.toContain("|");
    const arriving = live("Plans:\n\n| Plan | Pr");
    expect(Array.from(arriving.querySelectorAll("th")).map((t) => t.textContent?.trim())).toEqual(["Plan", "Pr"]);
    expect(arriving.textContent).not.toContain("|");
    const fewer = live("Plans:\n| Plan | Price | Seats | Runs |\n|---|---|\n");
    expect(fewer.querySelectorAll("th").length).toBe(4);
    expect(fewer.textContent).not.toContain("|");
    const partial = live("| Plan | Price |\n|---|--");
    expect(partial.querySelectorAll("th").length).toBe(2);
    expect(partial.textContent).not.toContain("|");
  });

  it("an unclosed ** or backtick shows as bold or code, never as the marker", () => {
    const bold = live("Every plan starts with a **14-day free");
    expect(bold.querySelector("strong")?.textContent).toBe("14-day free");
    expect(bold.textContent).not.toContain("**");
    const code = live("Call `chat.ask");
    expect(code.querySelector("code")?.textContent).toBe("chat.ask");
    expect(code.textContent).not.toContain("`");
  });

  it("every state of a table and bold answer streamed one character at a time reads without markers", () => {
    const answer = "Here are our current plans:\n\n| Plan | Price | Seats | Runs / month |\n|---|---|---|---|\n"
      + "| Starter | $9 / month | 1 | 1,000 |\n| Team | $49 / month | 10 | 20,000 |\n\n"
      + "Every plan starts with a **14-day free trial**, no card needed.\n\n"
      + "Call `chat.ask()` from Python:\n\n```python\nreply = chat.ask(\"hi\")\n```\n";
    const md = new IncrementalMarkdown(document.createElement("div"), () => 0);
    const bad: string[] = [];
    for (const ch of answer) {
      md.append(ch);
      md.flush();
      const text = md.el.textContent ?? "";
      if (text.includes("|") || text.includes("**") || text.includes("`")) bad.push(text);
    }
    expect(bad).toEqual([]);
  });

  it("an open fence is code while it streams", () => {
    const el = live("```python\nx = 1\n");
    expect(el.querySelector("pre code")?.textContent).toBe("x = 1\n");
  });

  it("display only: the text is the text received, and the finished answer is parsed as is", () => {
    const md = new IncrementalMarkdown(document.createElement("div"), () => 0);
    md.append("a **b");
    md.flush();
    expect(md.text).toBe("a **b");
    md.end();
    expect(md.el.textContent).toContain("**b"); // complete: what the author wrote
    expect(closeOpen("plain text")).toBe("plain text");
  });
});
