// The model of an exported file (standalone.ts): the traits read from the page's embedded data,
// the commands answered from it (the details, events, tapes and comparisons export.py wrote); a
// command that would change anything is refused: the file is read-only, and there is no kernel.
import type { CompareResult, DetailResult, EventRow, EventsArgs, EventsPage, Model, TapeView } from "./protocol";

/** What export.py embeds (`<script type="application/json" id="atomemo-data">`). */
export type Exported = {
  traits: Model;
  details: Record<string, Record<string, DetailResult>>; // message id -> node key -> detail
  events: Record<string, EventRow[]>; // message id -> its events, oldest first
  tapes: Record<string, TapeView>; // message id -> its whole tape
  compares: Record<string, CompareResult>; // "a|b" -> the comparison
};

type Listener = (...args: unknown[]) => void;
type Command = { type: "command"; id: number; name: string; args: Record<string, unknown> };

const READ_ONLY = { code: "READ_ONLY", message: "this is an exported file: read-only, with no kernel behind it" };

/** The events command over the embedded rows: filter, search, page (views/view_state.events_page). */
export function eventsPage(data: Exported, args: EventsArgs): EventsPage {
  const limit = Math.max(1, Math.min(args.limit || 200, 1000));
  const needle = (args.search ?? "").toLowerCase();
  const types = new Set<string>();
  const messages: string[] = [];
  const matches: EventRow[] = [];
  for (const [messageId, rows] of Object.entries(data.events)) {
    messages.push(messageId);
    if (args.message_id && args.message_id !== messageId) continue;
    for (const row of rows) {
      types.add(row.event);
      if (args.event_filter && row.event !== args.event_filter) continue;
      if (needle && !row.event.toLowerCase().includes(needle) && !row.data.toLowerCase().includes(needle)) continue;
      matches.push(row);
    }
  }
  const total = matches.length;
  const start = args.offset < 0 ? Math.max(total + args.offset, 0) : Math.min(args.offset, total);
  return { rows: matches.slice(start, start + limit), total, offset: start, types: [...types].sort(), messages };
}

/** A model with the AnyModel surface the widget uses, its traits fixed, its commands answered here. */
export class ExportedModel {
  private listeners = new Map<string, Set<Listener>>();

  constructor(private data: Exported) {}

  get<K extends keyof Model>(key: K): Model[K] {
    return this.data.traits[key];
  }

  set(): void {} // the view never sets a trait
  save_changes(): void {}

  on(event: string, fn: Listener): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(fn);
  }

  off(event?: string | null, fn?: Listener | null): void {
    if (!event) this.listeners.clear();
    else if (!fn) this.listeners.delete(event);
    else this.listeners.get(event)?.delete(fn);
  }

  send(content: unknown): void {
    const msg = content as Command;
    if (msg?.type !== "command") return;
    let reply: Record<string, unknown>;
    try {
      reply = { type: "reply", id: msg.id, ok: true, result: this.answer(msg.name, msg.args) };
    } catch (error) {
      const view = error instanceof Error ? { code: "NOT_IN_FILE", message: error.message } : READ_ONLY;
      reply = { type: "reply", id: msg.id, ok: false, error: view };
    }
    queueMicrotask(() => { for (const fn of this.listeners.get("msg:custom") ?? []) fn(reply, []); });
  }

  private answer(name: string, args: Record<string, unknown>): unknown {
    const data = this.data;
    const id = String(args.message_id ?? "");
    switch (name) {
      case "hello": return null;
      case "answer": {
        const turn = data.traits.transcript.turns.find((t) => t.id === id);
        if (!turn) throw new Error(`message ${id} is not in this file`);
        return { message_id: id, answer: turn.answer, query: turn.query };
      }
      case "detail": {
        const detail = data.details[id]?.[String(args.key)];
        if (!detail) throw new Error("this detail is not in this file");
        return detail;
      }
      case "events": return eventsPage(data, args as unknown as EventsArgs);
      case "tape": {
        const tape = data.tapes[id];
        if (!tape) throw new Error(`the run of message ${id} was not saved in this file`);
        return tape;
      }
      case "compare": {
        const result = data.compares[`${String(args.a)}|${String(args.b)}`];
        if (!result) throw new Error("this pair of versions was not compared in this file");
        return result;
      }
      default: throw READ_ONLY;
    }
  }
}

