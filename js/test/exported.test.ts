// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import type { EventRow } from "../src/protocol";
import { eventsPage, type Exported, ExportedModel } from "../src/exported";

const row = (messageId: string, seq: number, event: string, data = "{}"): EventRow =>
  ({ message_id: messageId, seq, offset_ms: seq, event, data });

function exported(): Exported {
  return {
    traits: { transcript: { leaf_id: "m2", turns: [{ id: "m1", answer: "first" }, { id: "m2", answer: "second" }], older: 0 } } as unknown as Exported["traits"],
    details: { m1: { k1: { title: "node", sections: [["json_output", "42"]] } } },
    events: { m1: [row("m1", 0, "message_created"), row("m1", 1, "text_chunk", '{"text": "Hello"}')],
      m2: Array.from({ length: 250 }, (_, i) => row("m2", i, i % 2 ? "text_chunk" : "node_started")) },
    tapes: {}, compares: {},
  };
}

describe("the exported file's model", () => {
  it("pages, filters and searches the embedded events as the kernel's events command does", () => {
    const data = exported();
    const newest = eventsPage(data, { message_id: null, event_filter: null, search: null, offset: -200, limit: 200 });
    expect(newest.total).toBe(252);
    expect(newest.offset).toBe(52);
    expect(newest.rows[0].seq).toBe(50);
    expect(newest.types).toEqual(["message_created", "node_started", "text_chunk"]);
    expect(newest.messages).toEqual(["m1", "m2"]);
    const one = eventsPage(data, { message_id: "m1", event_filter: null, search: "hello", offset: 0, limit: 200 });
    expect(one.rows.map((r) => r.seq)).toEqual([1]);
    const typed = eventsPage(data, { message_id: "m2", event_filter: "node_started", search: null, offset: 200, limit: 200 });
    expect(typed.total).toBe(125);
    expect(typed.offset).toBe(125);
    expect(typed.rows).toEqual([]);
  });

  it("answers what the file holds, says what it does not, and refuses every change", async () => {
    const model = new ExportedModel(exported());
    const replies: Record<string, unknown>[] = [];
    model.on("msg:custom", (msg) => replies.push(msg as Record<string, unknown>));
    const ask = (id: number, name: string, args: Record<string, unknown> = {}) =>
      model.send({ type: "command", id, name, args });
    ask(1, "answer", { message_id: "m2" });
    ask(2, "detail", { message_id: "m1", key: "k1" });
    ask(3, "detail", { message_id: "m1", key: "nope" });
    ask(4, "send", { text: "hi" });
    ask(5, "tape", { message_id: "m1", since: 0, patches: 0 });
    ask(6, "hello");
    await new Promise((r) => setTimeout(r, 0));
    const byId = Object.fromEntries(replies.map((r) => [r.id as number, r]));
    expect(byId[1]).toMatchObject({ ok: true, result: { message_id: "m2", answer: "second" } });
    expect(byId[2]).toMatchObject({ ok: true, result: { title: "node" } });
    expect(byId[3]).toMatchObject({ ok: false, error: { code: "NOT_IN_FILE" } });
    expect(byId[4]).toMatchObject({ ok: false, error: { code: "READ_ONLY" } });
    expect(byId[5]).toMatchObject({ ok: false, error: { code: "NOT_IN_FILE" } });
    expect(byId[6]).toMatchObject({ ok: true, result: null });
  });
});
