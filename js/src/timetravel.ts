// Time travel through one reply: a bar under its turn (slider, step, play at 1×/4×/16×, skip
// waits, next node / tool call / error) and the moment it points at, which the rest of the view
// follows (the answer as it stood, the timeline and graph, the inspector's current event). The
// moment comes from the reply's tape (tape.ts), asked of the kernel (or of an exported file).
import { formatMs, h } from "./dom";
import { IncrementalMarkdown } from "./markdown";
import type { TapeView } from "./protocol";
import { ERROR, loopIterations, type Moment, NODE, Tape, TOOL } from "./tape";

const LIVE_POLL_MS = 500; // a streaming reply's tape is asked again this often while travelled
const SPEEDS = [1, 4, 16];
const LONGEST_WAIT_MS = 1000; // "skip waits": a longer gap between events counts as this

export type TravelHooks = {
  fetch(messageId: string, since: number, patches: number): Promise<TapeView>;
  moved(): void; // the moment changed: the panes follow
  opened(): void; // travel started or ended: the turn is drawn again
};

export class TimeTravel {
  private tape: Tape | null = null;
  private id: string | null = null;
  private liveKey = false; // the travelled reply is the one streaming (asked for by its live key)
  private position = 0;
  private frame: number | null = null; // a drag's draw, one per animation frame
  private playing: number | null = null;
  private poll: number | null = null;
  private speed = 1;
  private skipWaits = false;
  private md: IncrementalMarkdown | null = null;
  private opening = 0;
  private replayed: string | null = null; // the replayed reply already opened, never again
  readonly answer = h("div", { class: "am-answer am-md am-travel-answer" });
  readonly bar: HTMLElement;
  private slider = h("input", { class: "am-travel-slider", attrs: { type: "range", min: "0", max: "0", step: "1",
    "aria-label": "Moment of the run (event)" } });
  private label = h("span", { class: "am-travel-label am-muted", attrs: { "aria-live": "polite" } });
  private playButton = h("button", { class: "am-btn am-travel-play", text: "▶ Play", title: "Play (Space)" });
  private speedPick = h("select", { class: "am-select am-travel-speed", attrs: { "aria-label": "Speed" } });
  private skip = h("input", { class: "am-travel-skip", attrs: { type: "checkbox", "aria-label": "Skip waits" } });
  private liveButton = h("button", { class: "am-btn am-travel-live", text: "● Back to live", title: "Back to live (L)" });
  private note = h("div", { class: "am-travel-note am-muted" });

  constructor(private hooks: TravelHooks) {
    for (const speed of SPEEDS) this.speedPick.append(h("option", { text: `${speed}×`, attrs: { value: String(speed) } }));
    const button = (cls: string, text: string, title: string, fn: () => void) => {
      const b = h("button", { class: `am-btn ${cls}`, text, title });
      b.addEventListener("click", fn);
      return b;
    };
    this.slider.addEventListener("input", () => { this.stop(); this.seek(Number(this.slider.value)); });
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.speedPick.addEventListener("change", () => { this.speed = Number(this.speedPick.value) || 1; this.restartPlay(); });
    this.skip.addEventListener("change", () => { this.skipWaits = this.skip.checked; this.restartPlay(); });
    this.liveButton.addEventListener("click", () => this.close());
    this.bar = h("div", { class: "am-travel", attrs: { role: "group", "aria-label": "Time travel", tabindex: "0" } },
      h("div", { class: "am-travel-row" },
        button("am-travel-start", "⏮", "Start (Home)", () => this.seek(0)),
        button("am-travel-back", "◀", "One event back (←)", () => this.step(-1)),
        this.playButton,
        button("am-travel-forward", "▶|", "One event on (→)", () => this.step(1)),
        button("am-travel-end", "⏭", "End (End)", () => this.seek(Infinity)),
        this.slider),
      h("div", { class: "am-travel-row" },
        this.speedPick, h("label", { class: "am-travel-skip-label" }, this.skip, " skip waits"),
        button("am-travel-next-node", "next node", "Next node started (N)", () => this.next(NODE)),
        button("am-travel-next-tool", "next tool call", "Next tool call (T)", () => this.next(TOOL)),
        button("am-travel-next-error", "next error", "Next error (E)", () => this.next(ERROR)),
        this.liveButton,
        button("am-travel-close", "✕", "Leave time travel (Esc)", () => this.close())),
      this.label, this.note);
    this.bar.addEventListener("keydown", (e) => this.key(e));
  }

  /** The reply travelled: a settled message's id, or the live reply's key. */
  get travelling(): string | null { return this.id; }
  get live(): boolean { return this.liveKey; }
  get at(): number { return this.position; }
  get events(): number { return this.tape?.events ?? 0; }
  get messageId(): string | null { return this.tape?.messageId ?? null; }

  /** Start travelling through a reply (at its start, or at its end: `atStart`). */
  async open(id: string, options: { live?: boolean; atStart?: boolean } = {}): Promise<void> {
    this.close(false);
    const opening = ++this.opening;
    this.id = id;
    this.liveKey = Boolean(options.live);
    this.liveButton.hidden = !this.liveKey;
    const tape = new Tape();
    this.tape = tape;
    this.note.textContent = "Loading the run…";
    this.label.textContent = ""; // nothing of another reply's tape stays shown
    this.slider.max = "0";
    this.slider.value = "0";
    this.hooks.opened();
    try {
      tape.append(await this.hooks.fetch(id, 0, 0));
    } catch (error) {
      if (opening === this.opening) this.note.textContent = `No time travel for this reply: ${messageOf(error)}`;
      return;
    }
    if (opening !== this.opening) return;
    this.note.textContent = tape.cut ? `Only the start of this run can be travelled: ${tape.cut}.` : "";
    if (this.liveKey && !tape.done) this.poll = setInterval(() => void this.more(), LIVE_POLL_MS) as unknown as number;
    this.seek(options.atStart ? 0 : tape.events);
    this.bar.focus({ preventScroll: true });
  }

  /** A reply the kernel replayed (ChatWidget.replay: the header's `travel`) opens at its start, once. */
  openReplayed(id: string | null | undefined): void {
    if (!id || id === this.replayed) return;
    this.replayed = id;
    void this.open(id, { atStart: true });
  }

  /** Back to the present (the live reply streams on in its own place). */
  close(redraw = true): void {
    this.stop();
    if (this.poll !== null) { clearInterval(this.poll); this.poll = null; }
    if (this.frame !== null) { cancelAnimationFrame(this.frame); this.frame = null; }
    const was = this.id;
    this.opening++;
    this.id = null;
    this.tape = null;
    this.md = null;
    this.answer.replaceChildren();
    if (was !== null && redraw) { this.hooks.opened(); this.hooks.moved(); }
  }

  /** What is shown at the current moment, if a reply is travelled. */
  moment(): Moment | null {
    if (!this.tape) return null;
    const moment = this.tape.at(this.position);
    if (moment.timeline.total_ms !== null) return moment;
    // Mid-run the run has no total yet: the moment's own time, so running bars reach exactly it.
    return { ...moment, timeline: { ...moment.timeline, total_ms: this.tape.timeOf(this.position) } };
  }

  /** The travelled event, for the inspector: its message id and 0-based index, or null at the start. */
  current(): { messageId: string; seq: number } | null {
    const messageId = this.messageId;
    return messageId && this.position > 0 ? { messageId, seq: this.position - 1 } : null;
  }

  seek(position: number): void {
    if (!this.tape) return;
    this.position = Math.max(0, Math.min(Number.isFinite(position) ? Math.round(position) : this.tape.events,
      this.tape.events));
    if (this.frame === null) this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  step(by: number): void {
    this.stop();
    this.seek(this.position + by);
  }

  next(kind: number): void {
    if (!this.tape) return;
    this.stop();
    const found = this.tape.next(this.position, kind);
    if (found !== null) this.seek(found);
    else this.label.textContent = `${kind === NODE ? "No node starts" : kind === TOOL ? "No tool call starts"
      : "No error happens"} after this moment · ${this.describe()}`;
  }

  togglePlay(): void {
    if (this.playing !== null) this.stop();
    else this.play();
  }

  play(): void {
    const tape = this.tape;
    if (!tape || !tape.events) return;
    if (this.position >= tape.events) this.position = 0;
    let clock = tape.timeOf(this.position, this.skipWaits, LONGEST_WAIT_MS);
    let last = performance.now();
    this.playButton.textContent = "⏸ Pause";
    this.bar.classList.add("am-playing");
    const tick = (now: number) => {
      if (!this.tape) return;
      clock += (now - last) * this.speed;
      last = now;
      const position = this.tape.positionAt(clock, this.skipWaits, LONGEST_WAIT_MS);
      this.position = Math.max(this.position, position);
      this.draw();
      if (this.position >= this.tape.events) { this.stop(); return; }
      this.playing = requestAnimationFrame(tick);
    };
    this.playing = requestAnimationFrame(tick);
  }

  stop(): void {
    if (this.playing !== null) cancelAnimationFrame(this.playing);
    this.playing = null;
    this.playButton.textContent = "▶ Play";
    this.bar.classList.remove("am-playing");
  }

  dispose(): void {
    this.close(false);
  }

  private restartPlay(): void {
    if (this.playing === null) return;
    this.stop();
    this.play();
  }

  private key(e: KeyboardEvent): void {
    if (e.target instanceof HTMLSelectElement || e.altKey || e.ctrlKey || e.metaKey) return;
    const keys: Record<string, () => void> = {
      ArrowLeft: () => this.step(-1), ArrowRight: () => this.step(1),
      Home: () => { this.stop(); this.seek(0); }, End: () => { this.stop(); this.seek(Infinity); },
      " ": () => this.togglePlay(), n: () => this.next(NODE), t: () => this.next(TOOL), e: () => this.next(ERROR),
      l: () => { if (this.liveKey) this.close(); }, Escape: () => this.close(),
    };
    const act = keys[e.key];
    if (!act) return;
    e.preventDefault();
    e.stopPropagation(); // Esc here leaves time travel; it does not stop the reply
    act();
  }

  private async more(): Promise<void> {
    const tape = this.tape;
    const id = this.id;
    if (!tape || !id) return;
    try {
      const piece = await this.hooks.fetch(id, tape.events, tape.patchCount);
      if (this.tape !== tape) return;
      const atEnd = this.position >= tape.events;
      tape.append(piece);
      if (tape.done && this.poll !== null) { clearInterval(this.poll); this.poll = null; }
      this.slider.max = String(tape.events);
      if (atEnd && this.playing === null) this.seek(this.position); // the end stays where it was: the reader scrubs
      else this.label.textContent = this.describe();
    } catch {
      // the reply settled under another id, or the kernel is busy: the next poll tries again
    }
  }

  private draw(): void {
    const tape = this.tape;
    if (!tape) return;
    const moment = tape.at(this.position);
    this.slider.max = String(tape.events);
    this.slider.value = String(this.position);
    this.slider.setAttribute("aria-valuetext", this.describe());
    this.label.textContent = this.describe(moment);
    if (!this.md || !moment.text.startsWith(this.md.text)) {
      // A box of its own: frames the previous renderer still has queued draw into its old box.
      const box = h("div", { class: "am-travel-text" });
      this.answer.replaceChildren(box);
      const md = new IncrementalMarkdown(box);
      md.onDraw = () => { if (this.md === md) this.answer.dataset.drawn = String(!md.busy); };
      this.md = md;
      this.md.append(moment.text);
    } else if (moment.text.length > this.md.text.length) {
      this.md.append(moment.text.slice(this.md.text.length));
    }
    // The text of the moment is drawn over the next frames (a long one in bounded pieces):
    // `data-chars` says the moment's length now, `data-drawn` when all of it is on the page.
    this.answer.dataset.chars = String(moment.text.length);
    this.answer.dataset.drawn = String(!this.md.busy);
    this.answer.classList.toggle("am-streaming", this.position < tape.events || !tape.done);
    this.hooks.moved();
  }

  private describe(moment: Moment | null = this.moment()): string {
    const tape = this.tape;
    if (!tape) return "";
    const n = this.position;
    const parts = [`event ${n} of ${tape.events}${tape.done ? "" : " so far"}`,
      `+${formatMs(tape.timeOf(n))}`];
    if (n > 0) parts.push(tape.names[n - 1]);
    for (const loop of moment ? loopIterations(moment.timeline) : []) parts.push(`${loop.name}: iteration ${loop.iteration}`);
    return parts.join(" · ");
  }
}

function messageOf(error: unknown): string {
  const view = (error as { view?: { message?: string } } | null)?.view;
  return view?.message ?? (error instanceof Error ? error.message : String(error));
}
