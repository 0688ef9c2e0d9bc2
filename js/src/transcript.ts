// The conversation as a list of turns: each question with its answer, status and actions
// (copy, regenerate, edit & resend, ‹ versions ›), the streaming turn in its place, older
// turns on request, and the list kept at its bottom while the reader follows along.
import type { Act, CommandClient } from "./commands";
import { copyIcon, formatMs, h } from "./dom";
import { answerExtras, errorBox } from "./extras";
import type { LiveTurn, Streamed } from "./live";
import { copyText, renderAnswer } from "./markdown";
import type { Capabilities, HeaderView, LiveView, TimelineView, TranscriptView, TurnView } from "./protocol";
import { feedbackButtons } from "./feedback";
import { formBlock } from "./forms";
import { thinkingBlock } from "./thinking";
import { renderDetail, renderTimeline, unitsOf } from "./timeline";

const AUTO_FULL_CHARS = 200_000; // a cut answer up to this long is fetched whole at once; longer ones on request
// A question is shown up to this long (the traits keep as much, QUERY_CAP): laying out a 269 KB
// paragraph took over 100 ms at each draw.
const QUERY_SHOWN = 4_000;

/** The question as asked, its start only when it is very long (the whole stays in the kernel). */
function queryEl(query: string, chars = query.length): HTMLElement {
  const shown = query.slice(0, QUERY_SHOWN);
  if (chars <= shown.length) return h("div", { class: "am-query", text: query });
  return h("div", { class: "am-query am-query-cut" }, shown,
    h("span", { class: "am-muted", text: ` … and ${(chars - shown.length).toLocaleString()} more characters` }));
}

/** What the list is drawn from: the traits, read by the view at each draw. */
export type TranscriptState = {
  transcript: TranscriptView;
  turns: TurnView[]; // the path shown (one turn when the view is focused on it)
  focused: boolean; // the view shows one turn (focus_id): no older turns to load
  live: LiveView | undefined; // the live trait
  header: HeaderView; // the empty state's description and examples
  capabilities: Capabilities;
  timelines: Record<string, TimelineView>;
  compact: boolean; // each run's timeline goes inline, under its answer
  busy: boolean;
  selected: string | null; // the turn whose run is highlighted
  staticNote: string | null; // a saved state: read-only, with this note
  travel?: Travelled | null; // the turn travelled through time (timetravel.ts), drawn as it stood
};

/** The turn being travelled: `is(id)` for its message id or live key; its answer and bar to show. */
export type Travelled = { is(id: string): boolean; answer: HTMLElement; bar: HTMLElement };

export type TranscriptHooks = {
  act: Act;
  send(text: string): void; // an example or suggested question
  select(messageId: string): void; // a click on an answer
  failingNode(messageId: string, key: string): void; // an error's "in node …" link
  redraw(): void; // draw the list again (the view's, which draws the notice with it)
  travel?(id: string, live: boolean): void; // ⏱: travel through this reply's run
};

export class Transcript {
  // A live region a screen reader reads politely; aria-busy while a turn streams, so an answer
  // is announced once, complete, not chunk by chunk.
  readonly el = h("div", { class: "am-messages", attrs: { role: "log", "aria-live": "polite",
    "aria-label": "Conversation" } });
  private answerEls = new Map<string, { chars: number; el: HTMLElement }>();
  private fetching = new Set<string>(); // answers being fetched whole
  private editing: string | null = null;
  private queries = new Map<string, string>(); // whole questions fetched for an edit (the trait cuts long ones)
  private loadingOlder = false;
  private following = true; // the list stays at the bottom as answers grow, until the reader scrolls up
  private state: TranscriptState | null = null;
  private liveSlot: HTMLElement | null = null; // where the streaming turn's thinking goes

  /** `answers`: the whole answers known, kept across views of the same model. */
  constructor(private commands: CommandClient, private live: LiveTurn, private answers: Map<string, string>,
    private hooks: TranscriptHooks) {}

  wire(): void {
    this.el.addEventListener("scroll", () => {
      // Scroll events run before the next frame's drawing: a reader who scrolled up is never
      // pulled back down by text drawn after it.
      this.following = this.atBottom();
      if (this.el.scrollTop < 40) this.loadOlder();
    });
  }

  /** Asking brings the conversation's end into view. */
  followEnd(): void {
    this.following = true;
  }

  /** Keep the newest text in view while the reader is following along. */
  follow(): void {
    if (this.following) this.el.scrollTop = this.el.scrollHeight;
  }

  /** A streamed answer, kept as its message's: the settled turn shows the same element. */
  keep(streamed: Streamed): void {
    this.answers.set(streamed.messageId, streamed.text);
    this.answerEls.set(streamed.messageId, { chars: streamed.text.length, el: streamed.el });
  }

  highlight(messageId: string, scroll: boolean): void {
    for (const turn of Array.from(this.el.querySelectorAll<HTMLElement>(".am-turn"))) {
      turn.classList.toggle("am-selected", turn.dataset.messageId === messageId);
      if (scroll && turn.dataset.messageId === messageId) turn.scrollIntoView?.({ block: "nearest" });
    }
  }

  /** The whole answer of a turn (the trait may hold it cut short). */
  fullAnswer(turn: TurnView): Promise<string> {
    const known = this.answers.get(turn.id);
    if (known !== undefined && known.length >= turn.answer_chars) return Promise.resolve(known);
    return this.commands.call("answer", { message_id: turn.id }).then((result) => {
      this.answers.set(turn.id, result.answer);
      return result.answer;
    });
  }

  /** Draws the list; the caller follows the end once what sits under it is drawn too. */
  render(state: TranscriptState): void {
    this.state = state;
    const items: HTMLElement[] = [];
    const { transcript, turns: path, live, staticNote } = state;
    if (staticNote) items.push(h("div", { class: "am-static-note", attrs: { role: "note" }, text: staticNote }));
    if (transcript.older > 0 && !state.focused && !staticNote) {
      const more = h("button", { class: "am-btn am-load-older",
        text: `Load ${Math.min(transcript.older, 20)} older of ${transcript.older} earlier turns` });
      more.addEventListener("click", () => this.loadOlder());
      items.push(h("div", { class: "am-older-slot" }, more));
    }
    if (!path.length && !this.live.key) items.push(this.emptyState());
    // Hosts may deliver traits one by one: a settled message wins over its live turn.
    const liveId = this.live.messageIdOr(live?.message_id);
    const settled = liveId !== null && path.some((m) => m.id === liveId);
    const liveEl = this.live.el;
    const showLive = Boolean(this.live.key && liveEl && live?.key && !settled);
    // A regenerate or an edit streams in place of the turn it is a new version of (‹ n/n ›),
    // not as a new question under the conversation: the turns after it are not on its path.
    const replaced = showLive && live?.parent_id !== undefined
      ? path.findIndex((turn) => turn.parent_id === live.parent_id) : -1;
    const shown = replaced >= 0 ? path.slice(0, replaced) : path;
    shown.forEach((turn, i) => items.push(this.renderTurn(turn, i === shown.length - 1 && !this.live.key)));
    if (showLive && live && liveEl) {
      const clock = this.live.newClock();
      const waiting = state.capabilities.token_streaming ? "● streaming" : "● working (the answer arrives whole)";
      const question = this.userBubble(live.query ?? "", live.file ?? null, null, live.query_chars);
      if (replaced >= 0) {
        const count = path[replaced].siblings.count + 1;
        question.prepend(h("span", { class: "am-siblings am-muted", text: `‹ ${count}/${count} ›`,
          title: "A new version of this turn, streaming" }));
      }
      const travel = state.travel && live.key && state.travel.is(live.key) ? state.travel : null;
      this.liveSlot = h("div", { class: "am-live-thought" });
      this.liveThought();
      items.push(h("div", { class: `am-turn am-live${replaced >= 0 ? " am-new-version" : ""}` }, question,
        h("div", { class: "am-bot" }, this.liveSlot, travel ? travel.answer : liveEl, travel?.bar,
          h("div", { class: "am-meta" }, h("span", { class: "am-typing", text: waiting }), clock,
            this.travelButton(live.key!, true)))));
    }
    this.el.replaceChildren(...items);
    this.el.setAttribute("aria-busy", String(Boolean(this.live.key)));
  }

  /** The streaming turn's own thinking, redrawn as its run's timeline changes (not the list). */
  liveThought(): void {
    const thought = this.live.timeline?.reasoning;
    const key = this.live.key;
    this.liveSlot?.replaceChildren(...(thought && key ? [thinkingBlock(`answer:${key}`, thought, "answer")] : []));
  }

  private get current(): TranscriptState {
    return this.state!;
  }

  private atBottom(): boolean {
    return this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - 24;
  }

  private loadOlder(): void {
    const older = this.state?.transcript.older;
    if (!older || this.loadingOlder || this.state?.staticNote) return;
    this.loadingOlder = true;
    const before = this.el.scrollHeight - this.el.scrollTop;
    void this.commands.call("load_older", {}).finally(() => {
      this.loadingOlder = false;
      requestAnimationFrame(() => { this.el.scrollTop = this.el.scrollHeight - before; });
    });
  }

  private emptyState(): HTMLElement {
    const header = this.current.header;
    const start = header.takes_inputs ? "Fill in the inputs below and press Run." : "Ask a question to start.";
    const box = h("div", { class: "am-empty" }, h("div", { text: header.description
      ? `${header.description} ${start}` : start }));
    const examples = header.examples ?? [];
    if (examples.length && !this.current.staticNote) {
      const chips = h("div", { class: "am-examples" });
      for (const example of examples.slice(0, 6)) {
        const chip = h("button", { class: "am-example", text: example, title: "Ask this" });
        chip.addEventListener("click", () => this.hooks.send(example));
        chips.append(chip);
      }
      box.append(chips);
    }
    return box;
  }

  private userBubble(query: string, file: TurnView["file"], turn: TurnView | null,
    chars = turn?.query_chars ?? query.length): HTMLElement {
    const { busy, capabilities: caps, staticNote } = this.current;
    const bubble = h("div", { class: "am-user" });
    if (turn?.created_at) bubble.title = `asked ${new Date(turn.created_at).toLocaleString()}`;
    if (file) bubble.append(h("span", { class: "am-chip", text: `📎 ${file.filename} (${file.size} B)` }));
    if (query) bubble.append(queryEl(query, chars));
    const row = h("div", { class: "am-user-row" });
    if (!turn || staticNote) { row.append(bubble); return row; }
    const siblings = turn.siblings;
    if (siblings.count > 1) {
      const prev = h("button", { class: "am-nav am-prev", text: "‹", title: "Previous version",
        attrs: { "aria-label": "Previous version" } });
      const next = h("button", { class: "am-nav am-next", text: "›", title: "Next version",
        attrs: { "aria-label": "Next version" } });
      prev.disabled = !siblings.prev || busy;
      next.disabled = !siblings.next || busy;
      prev.addEventListener("click", () => { if (siblings.prev) this.hooks.act("select", { message_id: siblings.prev }); });
      next.addEventListener("click", () => { if (siblings.next) this.hooks.act("select", { message_id: siblings.next }); });
      row.append(h("span", { class: "am-siblings" }, prev,
        h("span", { class: "am-sibling-count", text: `${siblings.index + 1}/${siblings.count}` }), next));
    }
    if (this.editing === turn.id) {
      const box = h("textarea", { class: "am-input am-edit-input", attrs: { "aria-label": "Edited question" } });
      box.value = this.queries.get(turn.id) ?? turn.query;
      const save = h("button", { class: "am-btn am-primary", text: "Send edit" });
      const cancel = h("button", { class: "am-btn", text: "Cancel" });
      save.addEventListener("click", () => {
        if (!box.value.trim()) return;
        this.editing = null;
        this.hooks.act("edit", { message_id: turn.id, text: box.value });
      });
      cancel.addEventListener("click", () => { this.editing = null; this.hooks.redraw(); });
      row.append(h("div", { class: "am-edit" }, box, h("div", {}, save, cancel)));
      return row;
    }
    if (!turn.file && caps.branching) {
      const edit = h("button", { class: "am-action am-edit-btn", text: "✎", title: "Edit & resend",
        attrs: { "aria-label": "Edit & resend" } });
      // Only the start of a long question is here: the whole of it is asked for before editing.
      const cut = chars > query.length && !this.queries.has(turn.id);
      edit.disabled = busy;
      edit.addEventListener("click", () => {
        if (!cut) {
          this.editing = turn.id;
          this.hooks.redraw();
          return;
        }
        edit.disabled = true;
        this.commands.call("answer", { message_id: turn.id }).then((result) => {
          this.queries.set(turn.id, result.query);
          this.editing = turn.id;
          this.hooks.redraw();
        }, () => { edit.disabled = false; });
      });
      row.append(edit);
    }
    row.append(bubble);
    return row;
  }

  /** ⏱: travel through a reply's run (a settled turn's, or the live one's while it streams). */
  private travelButton(id: string, live: boolean): HTMLElement | null {
    if (!this.hooks.travel) return null;
    const button = h("button", { class: "am-action am-travel-btn", text: "⏱", title: "Time travel through this run",
      attrs: { "aria-label": "Time travel through this run" } });
    button.addEventListener("click", (e) => { e.stopPropagation(); this.hooks.travel?.(id, live); });
    return button;
  }

  private answerEl(turn: TurnView): HTMLElement {
    const known = this.answers.get(turn.id)?.length ?? turn.answer.length;
    if (turn.answer_chars > known && turn.answer_chars <= AUTO_FULL_CHARS && !this.current.staticNote
        && !this.fetching.has(turn.id)) {
      this.fetching.add(turn.id);
      void this.fullAnswer(turn).then(() => this.hooks.redraw(), () => undefined)
        .finally(() => this.fetching.delete(turn.id));
    }
    const full = this.answers.get(turn.id);
    const text = full !== undefined && full.length >= turn.answer.length ? full : turn.answer;
    const cached = this.answerEls.get(turn.id);
    if (cached && cached.chars === text.length) return cached.el;
    const el = h("div", { class: "am-answer am-md" });
    el.append(renderAnswer(text));
    this.answerEls.set(turn.id, { chars: text.length, el });
    return el;
  }

  private renderTurn(turn: TurnView, last = false): HTMLElement {
    const { capabilities: caps, staticNote, busy } = this.current;
    const meta = h("div", { class: "am-meta" });
    const shown = this.answers.get(turn.id)?.length ?? turn.answer.length;
    if (turn.status !== "succeeded") {
      meta.append(h("span", { class: `am-status am-status-${turn.status}`, text: turn.status }));
    }
    if (turn.status === "stopped") {
      meta.append(h("span", { class: "am-stop-note", text: caps.stop_note ?? (caps.stop === "client"
        ? "you stopped listening; the workflow may still finish on the server (its answer replaces this one if it does)"
        : "stopped") }));
    } else if (turn.stopped_at !== null) {
      meta.append(h("span", { class: "am-stop-note", text: `you stopped listening at ${turn.stopped_at.toLocaleString()}`
        + " characters; the workflow went on and finished on the server: this is its whole answer" }));
    } else if (turn.status === "waiting") {
      meta.append(h("span", { class: "am-stop-note", text: turn.form
        ? "waiting for you: answer the form above and the run goes on in this turn"
        : "the workflow waits for a person to answer its form; it goes on on the server once they do (history() shows how it ended)" }));
    } else if (turn.status === "answering" || turn.status === "querying") {
      meta.append(h("span", { class: "am-stop-note", text: "still running on the server: shown here when it ends" }));
    }
    const timeline = this.current.timelines[turn.id];
    if (timeline) {
      meta.append(h("span", { class: "am-muted am-timing", text: `${formatMs(timeline.total_ms)} · ${unitsOf(timeline)}`,
        title: turn.finished_at ? `finished ${new Date(turn.finished_at).toLocaleString()}` : "" }));
    }
    const actions = h("span", { class: "am-actions" });
    if (!staticNote) {
      const copy = h("button", { class: "am-action am-copy-answer", title: "Copy the answer",
        attrs: { "aria-label": "Copy the answer" } }, copyIcon());
      copy.addEventListener("click", (e) => {
        e.stopPropagation();
        void this.fullAnswer(turn).then((text) => copyText(text, copy), () => undefined);
      });
      actions.append(copy);
      if (caps.feedback && turn.status === "succeeded") actions.append(feedbackButtons(turn, this.hooks.act, busy));
      if (!turn.file && caps.branching) {
        const regen = h("button", { class: "am-action am-regenerate", text: "↻", title: "Regenerate",
          attrs: { "aria-label": "Regenerate" } });
        regen.disabled = busy;
        regen.addEventListener("click", (e) => { e.stopPropagation(); this.hooks.act("regenerate", { message_id: turn.id }); });
        actions.append(regen);
      } else if (!caps.branching && caps.regenerate_reason) {
        actions.append(h("span", { class: "am-muted am-no-branch", text: "no regenerate", title: caps.regenerate_reason }));
      }
    }
    const travelButton = timeline ? this.travelButton(turn.id, false) : null;
    if (travelButton) actions.append(travelButton);
    meta.append(actions);
    const travel = this.current.travel?.is(turn.id) ? this.current.travel : null;
    const thought = timeline?.reasoning;
    const bot = h("div", { class: "am-bot" }, thought ? thinkingBlock(`answer:${turn.id}`, thought, "answer") : null,
      travel ? travel.answer : this.answerEl(turn), travel?.bar);
    if (turn.answer_chars > shown && (turn.answer_chars > AUTO_FULL_CHARS || staticNote)) {
      const rest = turn.answer_chars - shown;
      const more = h("button", { class: "am-btn am-show-all",
        text: staticNote ? `… ${rest.toLocaleString()} more characters (run the notebook to see them)`
          : `Show the whole answer (${rest.toLocaleString()} more characters)` });
      more.disabled = Boolean(staticNote);
      more.addEventListener("click", () => {
        more.disabled = true;
        more.textContent = "Loading…";
        void this.fullAnswer(turn).then(() => this.hooks.redraw(), () => { more.textContent = "Could not load it"; });
      });
      bot.append(more);
    }
    if (turn.error) bot.append(errorBox(turn.id, turn.error, this.hooks.failingNode));
    if (turn.form && turn.status === "waiting") bot.append(formBlock(turn, turn.form, staticNote ? null : this.hooks.act, busy));
    if (turn.input_outcome) meta.prepend(h("span", { class: "am-muted am-form-outcome", text: `form ${turn.input_outcome}` }));
    const suggest = last && !staticNote ? (question: string) => this.hooks.send(question) : null;
    const extras = answerExtras(turn, suggest, busy);
    if (extras) bot.append(extras);
    bot.append(meta);
    if (this.current.compact && timeline) {
      const details = h("details", { class: "am-inline-timeline" }, h("summary", { text: "Execution timeline" }));
      details.append(renderTimeline(timeline, (_, local) => details.append(renderDetail(local)), caps.token_streaming));
      bot.append(details);
    }
    const turnEl = h("div", { class: `am-turn am-turn-${turn.status}` }, this.userBubble(turn.query, turn.file, turn), bot);
    turnEl.dataset.messageId = turn.id;
    turnEl.classList.toggle("am-selected", this.current.selected === turn.id);
    bot.addEventListener("click", () => this.hooks.select(turn.id));
    return turnEl;
  }
}
