import { describe, expect, it } from "vitest";

import { LiveTurn } from "../src/live";
import type { LiveMessage } from "../src/protocol";

function turn() {
  const heard: string[] = [];
  const live = new LiveTurn({ started: () => heard.push("started"), timeline: () => heard.push("timeline"),
    drew: () => undefined });
  return { live, heard };
}

const delta = (seq: number, append: string, more: Partial<LiveMessage> = {}): LiveMessage =>
  ({ type: "live", key: "r1", seq, status: "streaming", append, ...more });

const textOf = (live: LiveTurn) => {
  const streamed = live.settle();
  return streamed?.text;
};

describe("LiveTurn", () => {
  it("a message for a reply the traits no longer call live never brings the turn back", () => {
    const { live, heard } = turn();
    live.receive(delta(1, "late"), undefined);
    live.receive(delta(1, "late"), "r2");
    expect(live.key).toBeNull();
    expect(heard).toEqual([]);
  });

  it("deltas apply once, in order: a repeated or older seq is dropped", () => {
    const { live, heard } = turn();
    live.receive(delta(1, "Hello", { message_id: "m1" }), "r1");
    live.receive(delta(1, "Hello"), "r1");
    live.receive(delta(2, ", world"), "r1");
    live.receive(delta(2, "!"), "r1");
    expect(heard).toEqual(["started"]);
    expect(textOf(live)).toBe("Hello, world");
  });

  it("a snapshot replaces the text and the timeline; an older one is ignored", () => {
    const { live, heard } = turn();
    const timeline = { message_id: "m1", total_ms: 1, nodes: [] } as never;
    live.receive({ type: "live_snapshot", key: "r1", seq: 5, text: "whole so far", status: "streaming",
      message_id: "m1", timeline }, "r1");
    live.receive({ type: "live_snapshot", key: "r1", seq: 3, text: "stale", status: "streaming",
      message_id: "m1", timeline }, "r1");
    expect(heard).toEqual(["started", "timeline"]);
    expect(live.timeline).toBe(timeline);
    expect(textOf(live)).toBe("whole so far");
  });

  it("settling keeps what was streamed, drawn, for the message it became", () => {
    const { live } = turn();
    live.receive(delta(1, "done", { message_id: "m9" }), "r1");
    const el = live.el;
    const streamed = live.settle();
    expect(streamed).toEqual({ messageId: "m9", text: "done", el });
    expect(el?.classList.contains("am-streaming")).toBe(false);
    expect(live.key).toBeNull();
    expect(live.settle()).toBeNull(); // nothing is kept twice
  });

  it("the message id comes from the deltas first, then the timeline, then the trait", () => {
    const { live } = turn();
    live.start("r1");
    expect(live.messageIdOr("from-trait")).toBe("from-trait");
    live.receive({ type: "live_snapshot", key: "r1", seq: 1, text: "", status: "streaming", message_id: null,
      timeline: { message_id: "from-timeline" } as never }, "r1");
    expect(live.messageIdOr("from-trait")).toBe("from-timeline");
    live.receive(delta(2, "x", { message_id: "from-delta" }), "r1");
    expect(live.messageIdOr("from-trait")).toBe("from-delta");
  });
});
