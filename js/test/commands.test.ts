import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { CommandClient, CommandError, type KernelState } from "../src/commands";

// A model whose sends go nowhere: the kernel reads nothing until we say it answers.
function fakeModel() {
  const sent: { id: number; name: string }[] = [];
  return { sent, model: { send: (msg: { id: number; name: string }) => sent.push(msg) } as never };
}

describe("CommandClient: is the kernel gone, or busy running a cell?", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a command unanswered by a silent kernel says the kernel is gone", async () => {
    const { model } = fakeModel();
    const states: KernelState[] = [];
    const client = new CommandClient(model, 10_000, () => Date.now());
    client.onKernel = (s) => states.push(s);
    const call = client.call("answer", { message_id: "m" });
    vi.advanceTimersByTime(10_001);
    await expect(call).rejects.toBeInstanceOf(CommandError);
    expect(states).toEqual(["gone"]);
  });

  it("a kernel that keeps streaming is busy, never gone, and the command is answered when the cell ends", async () => {
    const { model, sent } = fakeModel();
    const states: KernelState[] = [];
    const client = new CommandClient(model, 10_000, () => Date.now());
    client.onKernel = (s) => states.push(s);
    const call = client.call("answer", { message_id: "m" });
    for (let second = 0; second < 45; second++) {  // a cell asking and waiting for 45 s
      vi.advanceTimersByTime(1000);
      client.receive({ type: "live" });  // each streamed delta proves the kernel alive
    }
    expect(states).not.toContain("gone");
    expect(states).toContain("busy");
    client.receive({ type: "reply", id: sent[0].id, ok: true, result: { answer: "whole" } });
    await expect(call).resolves.toEqual({ answer: "whole" });
    expect(states[states.length - 1]).toBe("answering");
  });

  it("a kernel that stops sending mid-wait is then called gone", async () => {
    const { model } = fakeModel();
    const states: KernelState[] = [];
    const client = new CommandClient(model, 10_000, () => Date.now());
    client.onKernel = (s) => states.push(s);
    const call = client.call("answer", { message_id: "m" });
    vi.advanceTimersByTime(5000);
    client.heard();
    vi.advanceTimersByTime(5001);  // heard 5 s ago: busy
    expect(states).toEqual(["busy"]);
    vi.advanceTimersByTime(10_000);  // nothing for 15 s: gone
    await expect(call).rejects.toBeInstanceOf(CommandError);
    expect(states).toEqual(["busy", "gone"]);
  });
});
