// A reply's tape (views/tape.py), replayed: the kernel folded the event log once into one patch
// per event that changed what is shown, the same diff its live messages carry; here the patches
// are applied in order, as live messages are, with a checkpoint every CHECKPOINT events so any
// moment is at most CHECKPOINT patches away. No event is folded here: there is one fold, in Python.
import type { NodeView, TapePatch, TapeView, TimelineView } from "./protocol";

export const CHECKPOINT = 64; // events between kept states: a moment costs at most this many patches

/** What is shown at a moment: the answer as it stood and the run's timeline. */
export type Moment = { text: string; timeline: TimelineView };

// What an event did, for "next node" / "next tool call" / "next error".
export const NODE = 1;
export const TOOL = 2;
export const ERROR = 4;

const EMPTY: TimelineView = { message_id: null, execution_id: null, status: "streaming", execution_status: null,
  ttft_ms: null, total_ms: null, nodes: [], node_count: 0, failures: 0, anomalies: [] };

/** One patch on a state: a new state (the old one is kept as it was: checkpoints share it). */
export function applyPatch(state: Moment, patch: TapePatch): { state: Moment; kinds: number } {
  let text = state.text;
  if (patch.reset !== undefined) text = patch.reset;
  else if (patch.append) text += patch.append;
  let kinds = 0;
  let timeline = state.timeline;
  if (patch.nodes || patch.summary) {
    const nodes: NodeView[] = patch.nodes ? timeline.nodes.slice() : timeline.nodes;
    for (const [index, node] of patch.nodes ?? []) {
      const before = nodes[index];
      if (!before) kinds |= NODE;
      if (node.tools.length > (before?.tools.length ?? 0)) kinds |= TOOL;
      if (node.status === "failed" && before?.status !== "failed") kinds |= ERROR;
      nodes[index] = node;
    }
    timeline = { ...timeline, ...(patch.summary as Partial<TimelineView> | undefined), nodes };
    if (patch.summary && typeof patch.summary.node_count === "number" && nodes.length > patch.summary.node_count) {
      timeline.nodes = nodes.slice(0, patch.summary.node_count);
    }
    if (patch.summary?.status === "failed" && state.timeline.status !== "failed") kinds |= ERROR;
  }
  return { state: { text, timeline }, kinds };
}

/** The tape of one reply, grown as its pieces arrive; `at(n)` is the moment after n events. */
export class Tape {
  readonly offsets: number[] = []; // each event's offset (ms since the reply started)
  readonly names: string[] = [];
  private patches: TapePatch[] = [];
  private firstPatch: number[] = []; // index of the first patch of each event or later
  private checkpoints: Moment[] = [{ text: "", timeline: EMPTY }]; // the state after k*CHECKPOINT events
  private kinds = new Uint8Array(0); // what each event did (NODE | TOOL | ERROR)
  private head: Moment = { text: "", timeline: EMPTY }; // the state after every patch so far
  private headPatches = 0;
  lastCost = 0; // patches the last at() applied (tests and the bench read it)
  done = false;
  cut: string | null = null;
  messageId: string | null = null;

  get events(): number { return this.offsets.length; }
  get patchCount(): number { return this.patches.length; }

  /** A piece of the tape (the whole, or what a streaming reply added since the last piece). */
  append(view: TapeView): void {
    if (view.since !== this.offsets.length || view.patch_since !== this.patches.length) {
      throw new Error(`tape piece out of order: it starts at event ${view.since}, patch ${view.patch_since}; `
        + `this tape has ${this.offsets.length} events, ${this.patches.length} patches`);
    }
    this.offsets.push(...view.offsets_ms);
    this.names.push(...view.names);
    this.patches.push(...view.patches);
    this.done = view.done;
    this.cut = view.cut;
    this.messageId = view.message_id ?? this.messageId;
    const kinds = new Uint8Array(this.offsets.length);
    kinds.set(this.kinds);
    this.kinds = kinds;
    // A patch may land on an event seen before (a streaming reply's end): fold from the last
    // checkpoint at or before it, as at() does.
    const earliest = view.patches.length ? Math.min(view.since, view.patches[0].e) : view.since;
    this.reindex();
    this.checkpoints.length = Math.min(this.checkpoints.length, Math.floor(earliest / CHECKPOINT) + 1);
    let k = this.checkpoints.length - 1;
    let state = this.checkpoints[k];
    let p = this.firstPatch[k * CHECKPOINT] ?? this.patches.length;
    for (let e = k * CHECKPOINT; e < this.offsets.length; e++) {
      let kind = 0;
      for (; p < this.patches.length && this.patches[p].e === e; p++) {
        const next = applyPatch(state, this.patches[p]);
        state = next.state;
        kind |= next.kinds;
      }
      this.kinds[e] = kind;
      if ((e + 1) % CHECKPOINT === 0) this.checkpoints[(e + 1) / CHECKPOINT] = state;
    }
    this.head = state;
    this.headPatches = this.patches.length;
  }

  /** The moment after the first `position` events (0 .. events). */
  at(position: number): Moment {
    const n = Math.max(0, Math.min(Math.floor(position), this.offsets.length));
    this.lastCost = 0;
    if (n === this.offsets.length && this.headPatches === this.patches.length) return this.head;
    const k = Math.min(Math.floor(n / CHECKPOINT), this.checkpoints.length - 1);
    let state = this.checkpoints[k];
    const end = this.firstPatch[n] ?? this.patches.length;
    const start = this.firstPatch[k * CHECKPOINT] ?? this.patches.length;
    for (let p = start; p < end; p++) state = applyPatch(state, this.patches[p]).state;
    this.lastCost = Math.max(end - start, 0);
    return state;
  }

  /** The first position after `from` whose event did `kind` (NODE, TOOL, ERROR), or null. */
  next(from: number, kind: number): number | null {
    for (let e = Math.max(0, from); e < this.kinds.length; e++) if (this.kinds[e] & kind) return e + 1;
    return null;
  }

  /** How many events had arrived `ms` after the start; `skipWaits`: on a clock where every
   *  gap longer than `longest` ms counts as `longest`. */
  positionAt(ms: number, skipWaits = false, longest = 1000): number {
    const times = skipWaits ? this.shrunk(longest) : this.offsets;
    let low = 0;
    let high = times.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (times[middle] <= ms) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The offset of the event at `position` (its last event), on the same clock as positionAt. */
  timeOf(position: number, skipWaits = false, longest = 1000): number {
    const times = skipWaits ? this.shrunk(longest) : this.offsets;
    return position <= 0 ? 0 : times[Math.min(position, times.length) - 1] ?? 0;
  }

  private shrunkCache: { longest: number; length: number; times: number[] } | null = null;

  private shrunk(longest: number): number[] {
    const cache = this.shrunkCache;
    if (cache && cache.longest === longest && cache.length === this.offsets.length) return cache.times;
    const times: number[] = [];
    let previous = 0;
    let clock = 0;
    for (const offset of this.offsets) {
      clock += Math.min(Math.max(offset - previous, 0), longest);
      previous = offset;
      times.push(clock);
    }
    this.shrunkCache = { longest, length: this.offsets.length, times };
    return times;
  }

  private reindex(): void {
    const first = new Array<number>(this.offsets.length + 1);
    let p = 0;
    for (let e = 0; e <= this.offsets.length; e++) {
      while (p < this.patches.length && this.patches[p].e < e) p++;
      first[e] = p;
    }
    this.firstPatch = first;
  }
}

/** The loops running at a moment, with their current iteration: how many times the loop's
 *  first child has started since the loop did. */
export function loopIterations(timeline: TimelineView): { name: string; iteration: number }[] {
  const out: { name: string; iteration: number }[] = [];
  const nodes = timeline.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const loop = nodes[i];
    if (!/loop|iteration/i.test(loop.type) || loop.status !== "running") continue;
    let first: string | null = null;
    let iteration = 0;
    for (let j = i + 1; j < nodes.length && nodes[j].depth > loop.depth; j++) {
      if (nodes[j].depth !== loop.depth + 1) continue;
      first ??= nodes[j].node_id;
      if (nodes[j].node_id === first) iteration++;
    }
    out.push({ name: loop.name, iteration: Math.max(iteration, 1) });
  }
  return out;
}
