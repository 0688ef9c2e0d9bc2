// The streaming turn: its answer drawn as the deltas come, its run's timeline so far, and
// its elapsed-time clock. It holds what was streamed; where the turn is shown is the
// transcript's business.
import { h } from "./dom";
import { IncrementalMarkdown } from "./markdown";
import type { LiveMessage, LiveSnapshot, TimelineView } from "./protocol";

const TICK_MS = 100; // the elapsed-time counter

export type LiveHooks = {
  started(): void; // a new live turn: draw it
  timeline(): void; // its run's timeline changed
  drew(): void; // more of its answer was drawn
};

/** What a settled live turn leaves: its answer, already drawn, for the transcript to keep. */
export type Streamed = { messageId: string; text: string; el: HTMLElement };

export class LiveTurn {
  private key_: string | null = null;
  private el_: HTMLElement | null = null;
  private timeline_: TimelineView | null = null;
  private seq = 0;
  private md: IncrementalMarkdown | null = null;
  private messageId: string | null = null;
  private started = 0;
  private clock: HTMLElement | null = null;
  private tick: number | null = null;

  constructor(private hooks: LiveHooks) {}

  /** The reply streaming in this view (its key), or null. */
  get key(): string | null { return this.key_; }
  /** Its answer, as drawn so far. */
  get el(): HTMLElement | null { return this.el_; }
  /** Its run's timeline so far. */
  get timeline(): TimelineView | null { return this.timeline_; }

  /** A delta or snapshot; `current` is the key the live trait calls streaming now. */
  receive(msg: LiveMessage | LiveSnapshot, current: string | undefined): void {
    // A message for a reply the traits no longer call live is late: never bring that turn back.
    if (current !== msg.key) return;
    this.start(msg.key);
    const md = this.md;
    if (!md) return;
    if (msg.type === "live_snapshot") {
      this.messageId = msg.message_id ?? this.messageId;
      if (msg.seq < this.seq) return;
      this.seq = msg.seq;
      md.reset(msg.text);
      this.timeline_ = msg.timeline;
      this.hooks.timeline();
      return;
    }
    if (msg.seq <= this.seq) return;
    this.seq = msg.seq;
    if (msg.message_id) this.messageId = msg.message_id;
    if (msg.reset !== undefined) md.reset(msg.reset);
    else if (msg.append) md.append(msg.append);
    if (msg.timeline) { this.timeline_ = msg.timeline; this.hooks.timeline(); }
  }

  start(key: string): void {
    if (this.key_ === key && this.el_) return;
    this.key_ = key;
    this.seq = 0;
    this.timeline_ = null;
    this.messageId = null;
    this.started = performance.now();
    this.el_ = h("div", { class: "am-answer am-md am-streaming" });
    this.md = new IncrementalMarkdown(this.el_);
    this.md.onDraw = () => this.hooks.drew();
    if (this.tick === null) this.tick = setInterval(() => this.renderClock(), TICK_MS) as unknown as number;
    this.hooks.started();
  }

  /** The reply settled: what this view streamed, to be kept as that message's answer (so the
   *  settled turn is not drawn, or sent, again); null if it never learnt the message's id. */
  settle(): Streamed | null {
    let streamed: Streamed | null = null;
    if (this.messageId && this.md && this.el_) {
      this.md.end();
      this.el_.classList.remove("am-streaming");
      streamed = { messageId: this.messageId, text: this.md.text, el: this.el_ };
    }
    this.key_ = null; this.el_ = null; this.md = null; this.timeline_ = null;
    this.messageId = null; this.clock = null;
    if (this.tick !== null) { clearInterval(this.tick); this.tick = null; }
    return streamed;
  }

  /** The live reply's message id, from whichever of its messages or traits told it first
   *  (`fromTrait`: the live trait's). */
  messageIdOr(fromTrait: string | null | undefined): string | null {
    return this.messageId ?? this.timeline_?.message_id ?? fromTrait ?? null;
  }

  /** A clock for a newly drawn live turn, showing the time so far. */
  newClock(): HTMLElement {
    this.clock = h("span", { class: "am-clock" });
    this.renderClock();
    return this.clock;
  }

  dispose(): void {
    if (this.tick !== null) clearInterval(this.tick);
  }

  private renderClock(): void {
    if (this.clock) this.clock.textContent = `${((performance.now() - this.started) / 1000).toFixed(1)} s`;
  }
}
