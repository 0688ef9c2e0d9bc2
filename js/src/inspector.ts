// The raw event inspector: asks Python for a page of events (request/response over custom
// messages, quak-style), filterable by type; rows are text only.
import { formatMs, h } from "./dom";
import type { EventsPage } from "./types";

export class Inspector {
  readonly el: HTMLElement;
  private select: HTMLSelectElement;
  private table: HTMLElement;
  private counter: HTMLElement;
  private req = 0;
  private filter = "";

  constructor(private send: (msg: Record<string, unknown>) => void) {
    this.select = h("select", { class: "am-select", title: "Filter by event type" });
    this.select.append(h("option", { text: "all events", attrs: { value: "" } }));
    this.select.addEventListener("change", () => { this.filter = this.select.value; this.refresh(); });
    const refresh = h("button", { class: "am-btn", text: "Refresh" });
    refresh.addEventListener("click", () => this.refresh());
    this.counter = h("span", { class: "am-muted" });
    this.table = h("div", { class: "am-events" });
    this.el = h("div", { class: "am-inspector" }, h("div", { class: "am-toolbar" }, this.select, refresh, this.counter),
      this.table);
  }

  refresh(): void {
    this.req += 1;
    this.send({ type: "events", req: this.req, event_filter: this.filter || null, message_id: null });
  }

  receive(page: EventsPage): void {
    if (page.req !== this.req) return; // an older answer
    const current = this.select.value;
    this.select.replaceChildren(h("option", { text: "all events", attrs: { value: "" } }),
      ...page.types.map((t) => h("option", { text: t, attrs: { value: t } })));
    this.select.value = page.types.includes(current) ? current : "";
    this.counter.textContent = `${page.rows.length} of ${page.total}`;
    this.table.replaceChildren(...page.rows.map((row) =>
      h("div", { class: "am-event" },
        h("span", { class: "am-event-at", text: `+${formatMs(row.offset_ms)}` }),
        h("span", { class: `am-event-name am-ev-${row.event}`, text: row.event }),
        h("code", { class: "am-event-data", text: row.data.length > 400 ? `${row.data.slice(0, 400)}…` : row.data }),
      )));
  }
}
