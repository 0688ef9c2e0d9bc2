import { afterEach, describe, expect, it, vi } from "vitest";

import type { TapeView } from "../src/protocol";
import { TimeTravel } from "../src/timetravel";

const tape = (messageId: string): TapeView => ({ message_id: messageId, since: 0, events: 2, offsets_ms: [0, 10],
  names: ["start", "end"], patch_since: 0, patches: [{ e: 1, append: "answer" }], done: true, cut: null });

let travel: TimeTravel | null = null;
afterEach(() => travel?.dispose());

describe("TimeTravel", () => {
  it("a replayed reply opens at its start, once: the header said again, or closed and said again, opens nothing", async () => {
    const asked: string[] = [];
    travel = new TimeTravel({ fetch: async (id) => { asked.push(id); return tape(id); }, moved: () => undefined,
      opened: () => undefined });
    travel.openReplayed(undefined);
    expect(travel.travelling).toBeNull();
    travel.openReplayed("m1");
    expect(travel.travelling).toBe("m1");
    const opened = travel;
    await vi.waitFor(() => expect(opened.events).toBe(2)); // its tape came
    expect(opened.at).toBe(0); // at its start, not its end
    travel.close();
    travel.openReplayed("m1");
    expect(travel.travelling).toBeNull();
    travel.openReplayed("m2");
    expect(travel.travelling).toBe("m2");
    expect(asked).toEqual(["m1", "m2"]);
  });
});
