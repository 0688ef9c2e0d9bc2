// The raw event inspector: pages of events asked of the kernel by command, filterable by
// type and message, searchable, newest page first; rows are text only.
import type { CommandClient } from "./commands";
import { formatMs, h } from "./dom";
import type { EventsPage } from "./protocol";

export const PAGE = 200;

export class Inspector {
  readonly el: HTMLElement;
  private types: HTMLSelectElement;
  private messages: HTMLSelectElement;
  private search: HTMLInputElement;
  private table: HTMLElement;
  private counter: HTMLElement;
  private older: HTMLButtonElement;
  private newer: HTMLButtonElement;
  private offset = -PAGE; // negative: counted back from the newest
  private asked = 0;
  private page: EventsPage | null = null;
  private pointed: { messageId: string; seq: number } | null = null; // time travel's current event

  constructor(private commands: CommandClient) {
    this.types = h("select", { class: "am-select am-event-type", title: "Filter by event type",
      attrs: { "aria-label": "Event type" } });
    this.types.append(h("option", { text: "all events", attrs: { value: "" } }));
    this.messages = h("select", { class: "am-select am-event-message", title: "Only one message's events",
      attrs: { "aria-label": "Message" } });
    this.messages.append(h("option", { text: "all messages", attrs: { value: "" } }));
    this.search = h("input", { class: "am-field am-event-search", attrs: { type: "search", placeholder: "Search…",
      "aria-label": "Search the events" } });
    for (const control of [this.types, this.messages]) control.addEventListener("change", () => this.first());

    let typing: number | undefined;
    this.search.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.first(), 250) as unknown as number;
    });
    this.older = h("button", { class: "am-btn am-older", text: "‹ Older", title: "Older events" });
    this.newer = h("button", { class: "am-btn am-newer", text: "Newer ›", title: "Newer events" });
    this.older.addEventListener("click", () => this.turn(-1));
    this.newer.addEventListener("click", () => this.turn(1));
    const refresh = h("button", { class: "am-btn", text: "Refresh" });
    refresh.addEventListener("click", () => void this.refresh());
    this.counter = h("span", { class: "am-muted am-event-count" });
    this.table = h("div", { class: "am-events" });
    this.el = h("div", { class: "am-inspector" },
      h("div", { class: "am-toolbar" }, this.types, this.messages, this.search),
      h("div", { class: "am-toolbar" }, this.older, this.newer, refresh, this.counter),
      this.table);
  }

  /** Show the page holding one message's event `seq`, that event marked (time travel's moment);
   *  a move within the page shown asks nothing of the kernel. */
  point(messageId: string, seq: number): void {
    const same = this.pointed?.messageId === messageId && this.page !== null
      && this.messages.value === messageId && !this.types.value && !this.search.value.trim();
    this.pointed = { messageId, seq };
    const offset = Math.floor(seq / PAGE) * PAGE;
    if (same && this.page!.offset === offset) { this.mark(); return; }
    this.types.value = "";
    this.search.value = "";
    this.offset = offset;
    void this.refresh();
  }

  /** Show the newest page with the current filters. */
  first(): void {
    this.pointed = null;
    this.offset = -PAGE;
    void this.refresh();
  }

  private turn(direction: -1 | 1): void {
    if (!this.page) return;
    this.offset = Math.max(0, this.page.offset + direction * PAGE);
    void this.refresh();
  }

  async refresh(): Promise<void> {
    const asked = ++this.asked;
    let page: EventsPage;
    try {
      page = await this.commands.call("events", {
        message_id: this.pointed?.messageId ?? (this.messages.value || null), event_filter: this.types.value || null,
        search: this.search.value.trim() || null, offset: this.offset, limit: PAGE,
      });
    } catch {
      return; // the kernel is gone: the chat says so
    }
    if (asked !== this.asked) return; // an older answer
    this.page = page;
    refill(this.types, "all events", page.types);
    refill(this.messages, "all messages", page.messages, (id, i) => `#${i + 1} ${id.slice(0, 8)}`);
    if (this.pointed && page.messages.includes(this.pointed.messageId)) this.messages.value = this.pointed.messageId;
    const last = Math.min(page.offset + page.rows.length, page.total);
    this.counter.textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no events";
    this.older.disabled = page.offset <= 0;
    this.newer.disabled = last >= page.total;
    this.table.replaceChildren(...page.rows.map((row) => {
      const el = h("div", { class: "am-event" },
        h("span", { class: "am-event-at", text: `+${formatMs(row.offset_ms)}` }),
        h("span", { class: `am-event-name am-ev-${row.event.replace(/[^\w-]/g, "")}`, text: row.event }),
        h("code", { class: "am-event-data", text: row.data.length > 400 ? `${row.data.slice(0, 400)}…` : row.data }),
      );
      el.dataset.seq = String(row.seq);
      el.dataset.messageId = row.message_id ?? "";
      return el;
    }));
    this.mark();
  }

  private mark(): void {
    const pointed = this.pointed;
    for (const row of Array.from(this.table.querySelectorAll<HTMLElement>(".am-event"))) {
      const current = pointed !== null && row.dataset.seq === String(pointed.seq) && row.dataset.messageId === pointed.messageId;
      row.classList.toggle("am-event-current", current);
      if (current) {
        row.setAttribute("aria-current", "true");
        row.scrollIntoView?.({ block: "nearest" });
      } else row.removeAttribute("aria-current");
    }
  }
}

function refill(select: HTMLSelectElement, all: string, values: string[],
  label: (value: string, index: number) => string = (v) => v): void {
  const current = select.value;
  select.replaceChildren(h("option", { text: all, attrs: { value: "" } }),
    ...values.map((v, i) => h("option", { text: label(v, i), attrs: { value: v } })));
  select.value = values.includes(current) ? current : "";
}
