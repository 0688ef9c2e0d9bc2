import { describe, expect, it } from "vitest";

import { migrate } from "../src/migrate";
import { PROTOCOL_VERSION, type TurnView } from "../src/protocol";

const state = (values: Record<string, unknown>) => ({ get: (key: string) => values[key] });

const TURN: TurnView = {
  id: "m1", parent_id: null, query: "q", file: null, answer: "a", answer_chars: 1, status: "failed",
  error: { code: "E", message: "boom" }, execution_id: "e1", created_at: null, finished_at: null, has_timeline: true,
  siblings: { index: 1, count: 2, prev: "m0", next: null }, stopped_at: null,
};

describe("migrate", () => {
  it("today's state is not migrated", () => {
    expect(migrate(state({ protocol: PROTOCOL_VERSION, transcript: { turns: [] } }))).toBeNull();
  });

  it("a v2 state keeps its turns whole (v3 only added the header's system_label)", () => {
    const migrated = migrate(state({ protocol: 2, transcript: { leaf_id: "m1", turns: [TURN], older: 3 } }));
    expect(migrated?.transcript.turns).toEqual([TURN]);
    expect(migrated?.note).toContain("protocol v2");
  });

  it("a v1 state is read from the leaf up", () => {
    const migrated = migrate(state({ leaf_id: "b", messages: [
      { id: "a", parent_id: null, query: "first", answer: "1" },
      { id: "x", parent_id: "a", query: "other branch", answer: "?" },
      { id: "b", parent_id: "a", query: "second", answer: "2", status: "stopped" },
    ] }));
    expect(migrated?.transcript.turns.map((t) => [t.id, t.status])).toEqual([["a", "succeeded"], ["b", "stopped"]]);
  });
});
