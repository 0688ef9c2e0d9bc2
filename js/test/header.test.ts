import { afterEach, describe, expect, it, vi } from "vitest";

import type { Act } from "../src/commands";
import { Header, type HeaderState } from "../src/header";
import type { Capabilities } from "../src/protocol";

const CAPS: Capabilities = { token_streaming: true, stop: "client", branching: true, files: true };

function drawn(state: Partial<HeaderState>, act: Act = () => undefined): HTMLElement {
  const header = new Header(act);
  header.render({ header: {}, conversations: [], capabilities: CAPS, readOnly: false, ...state });
  return header.el;
}

describe("Header", () => {
  afterEach(() => vi.useRealTimers());

  it("shows no system chip when the label is empty (the home system)", () => {
    const el = drawn({ header: { app_name: "Support", system: "atomemo", system_label: "" } });
    expect(el.querySelector(".am-system")).toBeNull();
    expect(el.querySelector(".am-app-name")?.textContent).toBe("Support");
  });

  it("shows the label Python sends as the system chip", () => {
    const chip = drawn({ header: { system: "dify", system_label: "Dify" } }).querySelector<HTMLElement>(".am-system");
    expect(chip?.textContent).toBe("Dify");
    expect(chip?.title).toBe("Talking to Dify");
  });

  it("a saved state's header has the title and no controls", () => {
    const el = drawn({ header: { app_name: "Support", offline: true, demo_apps: [{ slug: "a", name: "A" }] }, readOnly: true });
    expect(el.querySelector(".am-controls")?.childElementCount).toBe(0);
  });

  it("clearing a one-conversation system's history takes a second click within the wait", () => {
    vi.useFakeTimers();
    const asked: string[] = [];
    const el = drawn({ capabilities: { ...CAPS, new_conversation: "clear" } }, (name) => { asked.push(name); });
    const button = () => el.querySelector<HTMLButtonElement>(".am-clear")!;
    button().click();
    expect(button().textContent).toBe("Delete the history?");
    expect(asked).toEqual([]);
    vi.advanceTimersByTime(5001); // the question lapses: one click more asks again
    expect(button().textContent).toBe("New chat");
    button().click();
    button().click();
    expect(asked).toEqual(["new_conversation"]);
    expect(button().textContent).toBe("New chat");
  });

  it("reopening a past conversation asks for it by id", () => {
    const asked: [string, unknown][] = [];
    const el = drawn({ conversations: [{ id: "c1", name: "First", updated_at: null }, { id: "c2", name: "", updated_at: null }] },
      (name, args) => { asked.push([name, args]); });
    const select = el.querySelector<HTMLSelectElement>(".am-conversations")!;
    expect(Array.from(select.options).map((o) => o.text)).toEqual(["Conversations (2)", "First", "c2"]);
    select.value = "c2";
    select.dispatchEvent(new Event("change"));
    expect(asked).toEqual([["open_conversation", { id: "c2" }]]);
  });
});
