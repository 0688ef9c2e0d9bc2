import { describe, expect, it } from "vitest";

import { Composer } from "../src/composer";
import { MAX_CHARS, MAX_DEPTH, MAX_NODES, outputsTree } from "../src/outputs";
import type { Capabilities } from "../src/protocol";

const CAPS: Capabilities = { token_streaming: true, stop: "server", branching: false, files: true };

describe("outputsTree", () => {
  it("shows every key and value as text, nested objects and lists as collapsible nodes", () => {
    const tree = outputsTree(JSON.stringify({ greeting: "Hello, Ada!", letters: 3, tags: ["a", { deep: null }] }));
    const leaves = [...tree.querySelectorAll(".am-out-leaf")].map((el) => el.textContent);
    expect(leaves).toEqual(["greeting: Hello, Ada!", "letters: 3", "0: a", "deep: null"]);
    expect([...tree.querySelectorAll(".am-out-node > summary")].map((el) => el.textContent)).toEqual(["tags [2]", "1 {1}"]);
  });

  it("never makes HTML of a value or a key: script and remote images stay text", () => {
    const hostile = '<img src="https://evil.example/x.png" onerror="alert(1)"><script>alert(2)</script>';
    const tree = outputsTree(JSON.stringify({ [hostile]: hostile }));
    expect(tree.querySelector("img, script")).toBeNull();
    expect(tree.textContent).toContain(hostile);
  });

  it("is bounded: deep nesting without recursion, many values, long text, and cut JSON as text", () => {
    let deep = "1";
    for (let i = 0; i < 5000; i++) deep = `[${deep}]`;
    const nested = outputsTree(deep);
    expect(nested.querySelectorAll(".am-out-node").length).toBe(MAX_DEPTH - 1);
    const wide = outputsTree(JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))));
    expect(wide.querySelectorAll(".am-out-leaf").length).toBe(MAX_NODES - 1);
    expect(wide.textContent).toContain("the rest is not shown");
    const long = outputsTree(JSON.stringify({ text: "x".repeat(MAX_CHARS * 3) }));
    expect(long.querySelector(".am-out-value")!.textContent!.length).toBe(MAX_CHARS + 1);
    const cut = outputsTree('{"greeting": "Hel\n… (12 more characters)');
    expect(cut.querySelector(".am-out-raw")!.textContent).toContain("more characters");
  });
});

describe("Composer for a workflow app", () => {
  it("shows the inputs form as the message, and Run sends its values", () => {
    const heard: [string, unknown][] = [];
    const c = new Composer({ send: () => undefined, stop: () => undefined, draft: () => undefined,
      act: (name, args) => { heard.push([name, args]); } });
    c.wire();
    c.render(false, CAPS, false);
    c.renderInputs({ takes_inputs: true, inputs: {},
      variables: [{ label: "Name", variable: "name", type: "string", required: true }] });
    expect(c.el.querySelector<HTMLTextAreaElement>("textarea")!.hidden).toBe(true);
    expect(c.el.querySelector<HTMLElement>(".am-send")!.hidden).toBe(true);
    c.render(false, CAPS, false); // rendered again: still no attachment, though the system takes files
    expect(c.el.querySelector<HTMLElement>(".am-attach")!.hidden).toBe(true);
    const field = c.el.querySelector<HTMLInputElement>("input.am-field")!;
    field.value = "Ada";
    c.el.querySelector<HTMLButtonElement>(".am-run")!.click();
    expect(heard).toEqual([["run", { inputs: { name: "Ada" } }]]);
    c.render(true, CAPS, false);
    c.renderInputs({ takes_inputs: true, inputs: {},
      variables: [{ label: "Name", variable: "name", type: "string", required: true }] });
    expect(c.el.querySelector<HTMLButtonElement>(".am-run")!.disabled).toBe(true);
  });
});
