import { describe, expect, it } from "vitest";

import { Composer } from "../src/composer";
import { Notices } from "../src/notices";
import type { Capabilities } from "../src/protocol";

const CAPS: Capabilities = { token_streaming: true, stop: "server", branching: true, files: false };

function composer() {
  const heard: string[] = [];
  const drafts: string[] = [];
  const c = new Composer({ send: () => heard.push("send"), stop: () => heard.push("stop"),
    draft: (text) => drafts.push(text), act: (name) => { heard.push(name); } });
  c.wire();
  const input = c.el.querySelector<HTMLTextAreaElement>("textarea")!;
  return { c, input, heard, drafts };
}

const key = (el: HTMLElement, init: KeyboardEventInit) => el.dispatchEvent(new KeyboardEvent("keydown", { ...init, cancelable: true }));

describe("Composer", () => {
  it("Enter sends; Shift+Enter is a new line", () => {
    const { input, heard } = composer();
    key(input, { key: "Enter", shiftKey: true });
    expect(heard).toEqual([]);
    key(input, { key: "Enter" });
    expect(heard).toEqual(["send"]);
  });

  it("typing keeps the draft; clearing after a send empties it", () => {
    const { c, input, drafts } = composer();
    input.value = "hello";
    input.dispatchEvent(new Event("input"));
    c.clear();
    expect(drafts).toEqual(["hello", ""]);
    expect(c.text).toBe("");
  });

  it("a failed send's text comes back only into an empty box", () => {
    const { c } = composer();
    c.restore("first");
    expect(c.text).toBe("first");
    c.restore("second");
    expect(c.text).toBe("first");
  });

  it("while busy Stop replaces Send; a system without files shows no attach button", () => {
    const { c } = composer();
    c.render(true, CAPS, false);
    expect(c.el.querySelector<HTMLElement>(".am-send")!.hidden).toBe(true);
    expect(c.el.querySelector<HTMLElement>(".am-stop")!.hidden).toBe(false);
    expect(c.el.querySelector<HTMLElement>(".am-attach")!.hidden).toBe(true);
    c.render(false, CAPS, true);
    expect(c.el.hidden).toBe(true); // a saved state is read-only
  });
});

describe("Notices", () => {
  it("a notice gives its unsent text back once, not at every redraw", () => {
    const restored: string[] = [];
    const notices = new Notices((draft) => restored.push(draft));
    const notice = { code: "RATE_LIMITED", message: "slow down", draft: "my question" };
    notices.notice(notice);
    notices.notice(notice);
    expect(restored).toEqual(["my question"]);
    expect(notices.noticeEl.textContent).toContain("RATE_LIMITED");
    notices.notice({});
    expect(notices.noticeEl.childElementCount).toBe(0);
  });
});
