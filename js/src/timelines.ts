// The Timeline tab: one section per run on the conversation's path (and the streaming one),
// each a timeline of its nodes; a picked node's detail goes to the detail slot.
import type { CommandClient } from "./commands";
import { activates, h } from "./dom";
import type { TimelineView, TurnView } from "./protocol";
import { type Detail, renderTimeline } from "./timeline";

export type TimelinesState = {
  turns: TurnView[]; // the path shown
  timelines: Record<string, TimelineView>;
  live: { timeline: TimelineView; query: string } | null; // the streaming run, when no settled one stands for it
  selected: string | null;
  tokenStreaming: boolean;
  travelling?: string | null; // the run shown as it stood at a moment: its details are of then, not asked anew
};

export type TimelinesHooks = {
  select(messageId: string): void; // a click on a run's head
  detail(detail: Detail): void; // a node picked: show its detail
};

/** The run the Graph tab draws: the one streaming, else the selected one, else the last. */
export function runToDraw(streaming: TimelineView | null, timelines: Record<string, TimelineView>,
  selected: string | null, turns: TurnView[]): TimelineView | null {
  if (streaming) return streaming;
  if (selected && timelines[selected]) return timelines[selected];
  for (let i = turns.length - 1; i >= 0; i--) if (timelines[turns[i].id]) return timelines[turns[i].id];
  return null;
}

export class Timelines {
  readonly el = h("div", { class: "am-timelines" });

  constructor(private commands: CommandClient, private hooks: TimelinesHooks) {}

  render(state: TimelinesState): void {
    const sections: HTMLElement[] = [];
    for (const turn of state.turns) {
      const view = state.timelines[turn.id];
      if (view) sections.push(this.section(state, turn.id, turn.query || turn.file?.filename || "", view));
    }
    if (state.live) {
      sections.push(this.section(state, state.live.timeline.message_id ?? "", state.live.query, state.live.timeline, true));
    }
    if (!sections.length) sections.push(h("div", { class: "am-empty", text: "The execution timeline appears here." }));
    this.el.replaceChildren(...sections);
  }

  highlight(messageId: string, scroll: boolean): void {
    for (const section of Array.from(this.el.querySelectorAll<HTMLElement>(".am-execution"))) {
      section.classList.toggle("am-selected", section.dataset.messageId === messageId);
      if (scroll && section.dataset.messageId === messageId) section.scrollIntoView?.({ block: "nearest" });
    }
  }

  /** Brings a run's node into view, flashed and picked (an error's "in node …" link). */
  flash(messageId: string, key: string): void {
    const row = this.el.querySelector<HTMLElement>(`.am-execution[data-message-id="${CSS.escape(messageId)}"] .am-row[data-key="${CSS.escape(key)}"]`);
    if (row) {
      row.classList.add("am-flash");
      row.scrollIntoView?.({ block: "center" });
      row.focus();
      row.click();
    }
  }

  private section(state: TimelinesState, messageId: string, query: string, view: TimelineView, live = false): HTMLElement {
    const head = h("div", { class: "am-execution-head", text: `${live ? "● " : ""}${query.slice(0, 80) || "(file)"}`,
      attrs: { role: "button", tabindex: "0" } });
    activates(head, () => { if (messageId) this.hooks.select(messageId); });
    const pick = (key: string, local: Detail) => {
      this.hooks.detail(local);
      if (live || !messageId || state.travelling === messageId) return;
      // The trait holds outputs cut short: the whole of them comes by command.
      this.commands.call("detail", { message_id: messageId, key }).then(
        (full) => this.hooks.detail(full), () => undefined);
    };
    const section = h("div", { class: `am-execution${live ? " am-live" : ""}` }, head,
      renderTimeline(view, pick, state.tokenStreaming));
    section.dataset.messageId = messageId;
    section.classList.toggle("am-selected", state.selected === messageId && Boolean(messageId));
    return section;
  }
}
