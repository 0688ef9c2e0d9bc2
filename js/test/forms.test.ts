import { describe, expect, it, vi } from "vitest";

import { feedbackButtons } from "../src/feedback";
import { formBlock, timeLeft } from "../src/forms";
import type { FormView, TurnView } from "../src/protocol";
import { thinkingBlock } from "../src/thinking";

const FORM: FormView = {
  form_id: "f1", node_title: "Review <b>request</b>",
  content: "## Please review\n\n<script>window.__pwned = 1</script>\n\n![t](https://evil.example/t.png)\n\nComment: {{#$output.comment#}}",
  fields: [{ name: "comment", type: "paragraph", default: "looks fine", options: [] },
    { name: "priority", type: "text", default: null, options: [] }],
  actions: [{ id: "approve", title: "Approve", style: "primary" }, { id: "reject", title: "Reject", style: "default" }],
  expires_at: Date.now() / 1000 + 600, refused: null,
};
const TURN = { id: "m1", status: "waiting", form: FORM } as unknown as TurnView;

describe("a paused run's form", () => {
  it("draws its content sanitized, its inputs as fields and its actions as buttons, and sends the answer", () => {
    const sent: unknown[] = [];
    const el = formBlock(TURN, FORM, ((name: string, args: unknown) => sent.push([name, args])) as never, false);
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("h2")?.textContent).toBe("Please review");
    expect(Array.from(el.querySelectorAll("img")).every((img) => !img.getAttribute("src"))).toBe(true);
    expect(el.textContent).toContain("Comment: [comment]");
    expect(el.querySelector(".am-form-head")?.textContent).toContain("Review <b>request</b>"); // text, not markup
    const [comment, priority] = Array.from(el.querySelectorAll<HTMLInputElement>(".am-form-input"));
    expect(comment.tagName).toBe("TEXTAREA");
    expect(comment.value).toBe("looks fine");
    priority.value = "high";
    const buttons = Array.from(el.querySelectorAll<HTMLButtonElement>(".am-form-action"));
    expect(buttons.map((b) => b.textContent)).toEqual(["Approve", "Reject"]);
    buttons[0].click();
    expect(sent).toEqual([["respond", { message_id: "m1", action: "approve",
      inputs: { comment: "looks fine", priority: "high" } }]]);
    expect(buttons.every((b) => b.disabled)).toBe(true); // sent once
  });

  it("a refused form shows why and offers no button; an expired one offers none that works", () => {
    const refused = formBlock(TURN, { ...FORM, refused: "the form has 10,000 inputs" }, null, false);
    expect(refused.querySelector(".am-form-refused")?.textContent).toBe("the form has 10,000 inputs");
    expect(refused.querySelectorAll(".am-form-action, .am-form-input").length).toBe(0);
    const expired = formBlock(TURN, { ...FORM, expires_at: 1 }, (() => undefined) as never, false);
    expect(Array.from(expired.querySelectorAll<HTMLButtonElement>(".am-form-action")).every((b) => b.disabled)).toBe(true);
  });

  it("its time left ticks while it is on the page, and at the deadline its buttons go off", () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date(1_000_000_000_000));
      const now = Date.now() / 1000;
      const el = formBlock(TURN, { ...FORM, expires_at: now + 3 }, (() => undefined) as never, false);
      document.body.append(el);
      const left = el.querySelector(".am-form-left")!;
      const buttons = () => Array.from(el.querySelectorAll<HTMLButtonElement>(".am-form-action"));
      expect(left.textContent).toBe(" waiting for you · 3 s left");
      vi.advanceTimersByTime(1000);
      expect(left.textContent).toBe(" waiting for you · 2 s left");
      expect(buttons().some((b) => b.disabled)).toBe(false);
      vi.advanceTimersByTime(2000);
      expect(left.textContent).toBe(" waiting for you · expired");
      expect(buttons().every((b) => b.disabled)).toBe(true);
      expect(vi.getTimerCount()).toBe(0); // its clock stopped
      const gone = formBlock(TURN, { ...FORM, expires_at: now + 600 }, (() => undefined) as never, false);
      document.body.append(gone);
      vi.advanceTimersByTime(1000);
      gone.remove(); // re-rendered: another form drawn in its place
      vi.advanceTimersByTime(1000);
      expect(vi.getTimerCount()).toBe(0);
      el.remove();
    } finally {
      vi.useRealTimers();
    }
  });

  it("says the time left", () => {
    expect(timeLeft(null)).toBe("");
    expect(timeLeft(100, 100)).toBe("expired");
    expect(timeLeft(145, 100)).toBe("45 s left");
    expect(timeLeft(100 + 600, 100)).toBe("10 min left");
    expect(timeLeft(100 + 3 * 3600, 100)).toBe("3 h left");
  });
});

describe("thinking and feedback", () => {
  it("a thought is collapsed, stays open while it streams once opened, and closes when final", () => {
    const first = thinkingBlock("k1", { text: "so", chars: 2, final: false }, "node");
    expect(first.open).toBe(false);
    first.open = true;
    first.dispatchEvent(new Event("toggle"));
    expect(thinkingBlock("k1", { text: "so far", chars: 6, final: false }, "node").open).toBe(true);
    const done = thinkingBlock("k1", { text: "so far, done", chars: 12, final: true }, "node");
    expect(done.open).toBe(false);
    expect(done.querySelector(".am-thinking-label")?.textContent).toBe("Thinking");
    done.open = true;
    done.dispatchEvent(new Event("toggle"));
    expect(thinkingBlock("k1", { text: "so far, done", chars: 12, final: true }, "node").open).toBe(true);
  });

  it("rates, and takes a rating back", () => {
    const sent: unknown[] = [];
    const act = ((name: string, args: unknown) => sent.push([name, args])) as never;
    const box = feedbackButtons({ id: "m1", feedback: null } as unknown as TurnView, act, false);
    (box.querySelector(".am-feedback-like") as HTMLButtonElement).click();
    const rated = feedbackButtons({ id: "m1", feedback: "like" } as unknown as TurnView, act, false);
    expect(rated.querySelector(".am-feedback-like")?.getAttribute("aria-pressed")).toBe("true");
    expect(rated.querySelector(".am-feedback-comment")).not.toBeNull();
    (rated.querySelector(".am-feedback-like") as HTMLButtonElement).click();
    expect(sent).toEqual([["feedback", { message_id: "m1", rating: "like", comment: null }],
      ["feedback", { message_id: "m1", rating: null, comment: null }]]);
  });
});
