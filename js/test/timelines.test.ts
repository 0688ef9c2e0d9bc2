import { describe, expect, it } from "vitest";

import type { TimelineView, TurnView } from "../src/protocol";
import { runToDraw } from "../src/timelines";

const run = (id: string) => ({ message_id: id }) as TimelineView;
const turn = (id: string) => ({ id }) as TurnView;

describe("runToDraw: the run the Graph tab draws", () => {
  const timelines = { a: run("a"), b: run("b") };
  const turns = [turn("a"), turn("b"), turn("c")];

  it("is the streaming run while one streams", () => {
    const live = run("live");
    expect(runToDraw(live, timelines, "a", turns)).toBe(live);
  });

  it("else the selected turn's run", () => {
    expect(runToDraw(null, timelines, "a", turns)).toBe(timelines.a);
  });

  it("else the last turn on the path that has a run", () => {
    expect(runToDraw(null, timelines, null, turns)).toBe(timelines.b);
    expect(runToDraw(null, timelines, "gone", [turn("a")])).toBe(timelines.a);
    expect(runToDraw(null, {}, null, turns)).toBeNull();
  });
});
