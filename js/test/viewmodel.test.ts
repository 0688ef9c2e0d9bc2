import { afterEach, describe, expect, it } from "vitest";

import { LiveTurn } from "../src/live";
import { PROTOCOL_VERSION, type LiveMessage, type TapeView, type TimelineView, type TurnView } from "../src/protocol";
import { TimeTravel } from "../src/timetravel";
import { ViewModel } from "../src/viewmodel";

function turn(id: string): TurnView {
  return { id, parent_id: null, query: `q ${id}`, file: null, answer: "a", answer_chars: 1, status: "succeeded",
    error: null, execution_id: null, created_at: null, finished_at: null, has_timeline: true,
    siblings: { index: 0, count: 1, prev: null, next: null }, stopped_at: null };
}

function timeline(messageId: string, status: TimelineView["status"] = "succeeded"): TimelineView {
  return { message_id: messageId, execution_id: null, status, execution_status: null, ttft_ms: null, total_ms: 50,
    nodes: [], node_count: 0, failures: 0, anomalies: [] };
}

/** A reply's tape of two events: the run starts, then fails (its timeline at the end says "failed"). */
function tape(messageId: string): TapeView {
  return { message_id: messageId, since: 0, events: 2, offsets_ms: [0, 10], names: ["start", "end"], patch_since: 0,
    patches: [{ e: 0, summary: { status: "streaming" } }, { e: 1, summary: { status: "failed", total_ms: 10 } }],
    done: true, cut: null };
}

const disposers: (() => void)[] = [];
afterEach(() => { for (const dispose of disposers.splice(0)) dispose(); });

/** A view model over a model holding `traits`, with a real live turn and time travel (its tapes: `tape`). */
function viewModel(traits: Record<string, unknown>) {
  const values: Record<string, unknown> = { protocol: PROTOCOL_VERSION, ...traits };
  const model = { get: (key: string) => values[key] } as never;
  const live = new LiveTurn({ started: () => undefined, timeline: () => undefined, drew: () => undefined });
  const travel = new TimeTravel({ fetch: async (id) => tape(id === "r1" ? "m2" : id), moved: () => undefined,
    opened: () => undefined });
  disposers.push(() => { live.dispose(); travel.dispose(); });
  return { vm: new ViewModel(model, live, travel), live, travel, values };
}

describe("ViewModel", () => {
  it("the path is the transcript's turns, or the one turn the view is focused on", () => {
    const { vm, values } = viewModel({ transcript: { leaf_id: "m2", turns: [turn("m1"), turn("m2")], older: 0 } });
    expect(vm.path().map((t) => t.id)).toEqual(["m1", "m2"]);
    values.focus_id = "m1";
    expect(vm.path().map((t) => t.id)).toEqual(["m1"]);
    expect(vm.transcriptState().focused).toBe(true);
  });

  it("a transcript that is not one yet reads as empty; no header means the default capabilities", () => {
    const { vm } = viewModel({ transcript: { turns: "?" } });
    expect(vm.transcript()).toEqual({ leaf_id: "", turns: [], older: 0 });
    expect(vm.capabilities().token_streaming).toBe(true);
    expect(vm.staticNote).toBeNull();
    expect(vm.migrated).toBe(false);
  });

  it("a travelled reply's timeline is shown as it stood at its moment; the others as the kernel has them", async () => {
    const timelines = { m1: timeline("m1"), m2: timeline("m2") };
    const { vm, travel } = viewModel({ transcript: { leaf_id: "m2", turns: [turn("m1"), turn("m2")], older: 0 }, timelines });
    expect(vm.shownTimelines()).toBe(timelines);
    expect(vm.travelled()).toBeNull();
    await travel.open("m1", { atStart: true });
    expect(vm.shownTimelines().m1.status).toBe("streaming");
    expect(vm.shownTimelines().m2).toBe(timelines.m2);
    travel.seek(Infinity);
    expect(vm.shownTimelines().m1.status).toBe("failed");
    expect(vm.timelinesState().travelling).toBe("m1");
    expect(vm.travelled()?.is("m1")).toBe(true);
    expect(vm.travelled()?.is("m2")).toBe(false);
    travel.close();
    expect(vm.shownTimelines().m1).toBe(timelines.m1);
  });

  it("the streaming reply travelled by its live key: its run shown as it stood, under its message id once known", async () => {
    const timelines = { m2: timeline("m2") };
    const { vm, live, travel } = viewModel({ timelines, live: { key: "r1", message_id: "m2", query: "q" } });
    const streaming = timeline("m2", "streaming");
    live.receive({ type: "live", key: "r1", seq: 1, status: "streaming", append: "x", timeline: streaming } as LiveMessage, "r1");
    expect(vm.liveTimeline()).toBe(streaming);
    // A settled timeline stands for the streaming run: it gets no section of its own.
    expect(vm.timelinesState().live).toBeNull();
    await travel.open("r1", { live: true });
    expect(vm.liveTimeline()?.status).toBe("failed"); // the tape's end, not the streamed timeline
    travel.seek(1);
    expect(vm.liveTimeline()?.status).toBe("streaming");
    expect(vm.liveTimeline()).not.toBe(streaming);
    expect(vm.shownTimelines().m2).not.toBe(timelines.m2);
    expect(vm.shownTimelines().m2.status).toBe("streaming");
    expect(vm.travelled()?.is("r1")).toBe(true);
    expect(vm.travelled()?.is("m2")).toBe(true); // the tape said whose reply it is
    expect(vm.run()).toEqual(vm.liveTimeline()); // the Graph tab draws the streaming run as it stood
  });

  it("the streaming run has a section of its own while no settled timeline stands for it", () => {
    const { vm, live } = viewModel({ timelines: {}, live: { key: "r1", query: "asked" } });
    const streaming = timeline("m9", "streaming");
    live.receive({ type: "live", key: "r1", seq: 1, status: "streaming", append: "x", timeline: streaming } as LiveMessage, "r1");
    expect(vm.timelinesState().live).toEqual({ timeline: streaming, query: "asked" });
    expect(vm.run()).toBe(streaming);
  });

  it("a state saved by an older protocol version is read-only, its transcript as migrated", () => {
    const { vm } = viewModel({ protocol: undefined, leaf_id: "a", messages: [{ id: "a", parent_id: null, query: "q", answer: "1" }] });
    expect(vm.migrated).toBe(true);
    expect(vm.staticNote).toContain("protocol v1");
    expect(vm.capabilities().stop).toBe("client"); // no header saved: the defaults
    expect(vm.path().map((t) => t.id)).toEqual(["a"]);
    expect(vm.header().readOnly).toBe(true);
  });

  it("an exported file is read-only, every pane working (not migrated)", () => {
    const { vm } = viewModel({ header: { read_only: "Exported on 5 Dec" } });
    expect(vm.migrated).toBe(false);
    expect(vm.staticNote).toBe("Exported on 5 Dec");
    expect(vm.transcriptState().staticNote).toBe("Exported on 5 Dec");
  });
});
