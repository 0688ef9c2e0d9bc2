import { describe, expect, it } from "vitest";

import type { NodeView, TapePatch, TapeView } from "../src/protocol";
import { applyPatch, CHECKPOINT, ERROR, loopIterations, type Moment, NODE, Tape, TOOL } from "../src/tape";

function node(i: number, status: string, tools = 0, more: Partial<NodeView> = {}): NodeView {
  return { key: `k${i}`, node_id: `n${i}`, name: `node ${i}`, type: "llm", status, start_ms: i, end_ms: null,
    duration_ms: null, error: null, output: null, out_ports: [], anomaly: null, depth: 0,
    tools: Array.from({ length: tools }, (_, t) => ({ key: `t${i}.${t}`, name: "tool", status: "succeeded",
      start_ms: i, end_ms: i + 1, duration_ms: 1, args: null, result: null, anomaly: null })), ...more };
}

/** A run of `events` events: text deltas, nodes starting and finishing, a tool, a reset, a failure. */
function patchesOf(events: number): TapePatch[] {
  const patches: TapePatch[] = [];
  let nodes = 0;
  for (let e = 0; e < events; e++) {
    if (e === 500) patches.push({ e, reset: "replaced. " });
    else if (e % 7 === 0) patches.push({ e, nodes: [[nodes, node(nodes, "running")]], summary: { node_count: nodes + 1 } }), nodes++;
    else if (e % 7 === 3 && nodes) patches.push({ e, nodes: [[nodes - 1, node(nodes - 1, "succeeded", e % 2)]] });
    else if (e % 7 !== 5) patches.push({ e, append: `w${e} ` });
    if (e === events - 1) patches.push({ e, nodes: [[0, node(0, "failed")]], summary: { status: "failed", failures: 1 } });
  }
  return patches;
}

function piece(patches: TapePatch[], offsets: number[], since: number, to: number, patchSince: number,
  done: boolean): TapeView {
  const mine = patches.filter((p, i) => i >= patchSince && p.e < to);
  return { message_id: "m1", since, events: to, offsets_ms: offsets.slice(since, to),
    names: offsets.slice(since, to).map(() => "ev"), patch_since: patchSince, patches: mine, done, cut: null };
}

/** State at n, the slow way: fold the first n events' patches from nothing. */
function foldFirst(patches: TapePatch[], n: number): Moment {
  let state: Moment = new Tape().at(0);
  for (const patch of patches) if (patch.e < n) state = applyPatch(state, patch).state;
  return state;
}

describe("Tape", () => {
  const events = 1000;
  const patches = patchesOf(events);
  const offsets = Array.from({ length: events }, (_, i) => i * 10 + (i > 600 ? 30_000 : 0)); // one long wait

  it("the state at event n equals folding the first n events, for every n", () => {
    const tape = new Tape();
    tape.append(piece(patches, offsets, 0, events, 0, true));
    expect(tape.events).toBe(events);
    for (let n = 0; n <= events; n++) expect(tape.at(n)).toEqual(foldFirst(patches, n));
    expect(tape.at(events).timeline.status).toBe("failed");
    expect(tape.at(events).text.startsWith("replaced. ")).toBe(true);
    expect(tape.at(events + 50)).toEqual(tape.at(events)); // past the end: the end
  });

  it("a tape grown piece by piece (a streaming reply) folds the same, its end patching a known event", () => {
    const tape = new Tape();
    const last = patches.length - 1; // the end's patch lands on the last event, after it was seen
    tape.append(piece(patches.slice(0, last), offsets, 0, 300, 0, false));
    const had = tape.patchCount;
    tape.append(piece(patches.slice(0, last), offsets, 300, events, had, false));
    expect(tape.at(events).timeline.status).toBe("streaming");
    tape.append({ ...piece(patches, offsets, events, events, last, true), patches: [patches[last]] });
    for (let n = 0; n <= events; n += 13) expect(tape.at(n)).toEqual(foldFirst(patches, n));
    expect(tape.at(events)).toEqual(foldFirst(patches, events));
    expect(() => tape.append(piece(patches, offsets, 5, 6, 0, true))).toThrow(/out of order/);
  });

  it("a moment is at most CHECKPOINT events' patches from a kept state", () => {
    const tape = new Tape();
    tape.append(piece(patches, offsets, 0, events, 0, true));
    let worst = 0;
    for (let n = 0; n <= events; n++) {
      tape.at(n);
      const window = patches.filter((p) => p.e >= n - (n % CHECKPOINT) && p.e < n).length;
      expect(tape.lastCost).toBe(n === events ? 0 : window);
      worst = Math.max(worst, tape.lastCost);
    }
    expect(worst).toBeLessThanOrEqual(CHECKPOINT);
    expect(worst).toBeGreaterThan(CHECKPOINT / 2);
  });

  it("next node / tool call / error find the events that did them", () => {
    const tape = new Tape();
    tape.append(piece(patches, offsets, 0, events, 0, true));
    expect(tape.next(0, NODE)).toBe(1); // event 0 started node 0: position 1 shows it
    expect(tape.next(1, NODE)).toBe(8);
    const tool = tape.next(0, TOOL)!;
    expect(tape.at(tool).timeline.nodes.some((n) => n.tools.length)).toBe(true);
    expect(tape.at(tool - 1).timeline.nodes.some((n) => n.tools.length)).toBe(false);
    expect(tape.next(0, ERROR)).toBe(events);
    expect(tape.next(events, ERROR)).toBeNull();
  });

  it("skip waits shrinks each gap longer than a second to a second", () => {
    const tape = new Tape();
    tape.append(piece(patches, offsets, 0, events, 0, true));
    expect(tape.positionAt(6_010)).toBe(601);
    expect(tape.positionAt(6_010 + 30_000)).toBe(602);
    expect(tape.timeOf(events, true)).toBe(tape.timeOf(events) - 30_000 + 1000 - 10);
    expect(tape.positionAt(tape.timeOf(700, true), true)).toBe(700);
  });

  it("a running loop says its iteration", () => {
    const loop = node(0, "running", 0, { type: "loop", name: "each order" });
    const child = (i: number, status: string) => node(i, status, 0, { node_id: i % 2 ? "a" : "b", depth: 1 });
    const timeline = { ...new Tape().at(0).timeline, nodes: [loop, child(1, "succeeded"), child(2, "succeeded"),
      child(3, "succeeded"), child(4, "running")] };
    expect(loopIterations(timeline)).toEqual([{ name: "each order", iteration: 2 }]);
  });
});
