// Saved widget state drawn by a bundle of another protocol version (a notebook saved by an
// older atomemo-notebook, opened after an upgrade): read what can be read into today's
// shapes, for a static, read-only view with a one-line note. Never a broken view.
import { PROTOCOL_VERSION, type TranscriptView, type TurnView } from "./protocol";

export type Migrated = { transcript: TranscriptView; note: string };

type V1Message = { id?: unknown; parent_id?: unknown; query?: unknown; answer?: unknown; status?: unknown };

const text = (value: unknown) => (typeof value === "string" ? value : "");

function turn(m: V1Message): TurnView {
  const answer = text(m.answer);
  return {
    id: text(m.id), parent_id: typeof m.parent_id === "string" ? m.parent_id : null, query: text(m.query),
    file: null, answer, answer_chars: answer.length,
    status: (["succeeded", "failed", "stopped"].includes(text(m.status)) ? text(m.status) : "succeeded") as TurnView["status"],
    error: null, execution_id: null, created_at: null, finished_at: null, has_timeline: false,
    siblings: { index: 0, count: 1, prev: null, next: null }, stopped_at: null,
  };
}

/** The saved state's transcript and a note, or null when the state is today's. */
export function migrate(state: { get(key: string): unknown }): Migrated | null {
  const version = state.get("protocol");
  if (version === PROTOCOL_VERSION) return null;
  const saved = typeof version === "number" ? `protocol v${version}` : "an earlier version (protocol v1)";
  const note = `Saved by ${saved}; this is v${PROTOCOL_VERSION}: shown as saved, read-only. Re-run the cell for a live chat.`;
  const messages = state.get("messages");
  if (version === undefined && Array.isArray(messages)) {
    // v1 kept every message and the leaf: follow the path from the leaf up.
    const byId = new Map((messages as V1Message[]).map((m) => [text(m.id), m]));
    const path: TurnView[] = [];
    const seen = new Set<string>();
    let current: V1Message | undefined = byId.get(text(state.get("leaf_id"))) ?? (messages as V1Message[])[messages.length - 1];
    while (current && !seen.has(text(current.id))) {
      seen.add(text(current.id));
      path.push(turn(current));
      current = typeof current.parent_id === "string" ? byId.get(current.parent_id) : undefined;
    }
    return { transcript: { leaf_id: text(state.get("leaf_id")), turns: path.reverse(), older: 0 }, note };
  }
  const transcript = state.get("transcript") as Partial<TranscriptView> | undefined;
  const savedTurns = Array.isArray(transcript?.turns) ? transcript!.turns : [];
  // v2's and v3's turns are today's (v3 added the header's system_label, v4 the evaluation
  // table's row labels): kept whole.
  const turns = version === 2 || version === 3 ? savedTurns : (savedTurns as V1Message[]).map(turn);
  return { transcript: { leaf_id: text(transcript?.leaf_id), turns, older: 0 }, note };
}
