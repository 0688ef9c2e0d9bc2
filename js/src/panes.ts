// The side of the widget: the Timeline / Graph / Events / Compare tabs, and on narrow widths
// the strip that shows one pane at a time (the chat or one of the tabs). It shows and hides
// the panes, lays out the graph when its tab shows, and polls the events while a reply streams.
import type { CommandClient } from "./commands";
import { CompareView } from "./compare";
import { h } from "./dom";
import { GraphView } from "./graph";
import { Inspector } from "./inspector";
import type { GraphStructureView, TimelineView, TurnView } from "./protocol";
import { type Detail, renderDetail } from "./timeline";

export type Tab = "timeline" | "graph" | "events" | "compare";
export type Pane = "chat" | Tab;

/** What the panes read of the conversation, when they need it. */
export type PanesSource = {
  turns(): TurnView[]; // the transcript's turns (Compare picks among them)
  graph(): GraphStructureView | null | undefined; // the published workflow graph
  run(): TimelineView | null; // the run the Graph tab draws
  streaming(): boolean; // a reply streams: the Events tab polls
  remember(tab: Tab): void; // the tab shown, for the next view of the model
};

export class Panes {
  private tabs: Record<Tab, HTMLButtonElement> = {
    timeline: h("button", { class: "am-tab", text: "Timeline", attrs: { role: "tab" } }),
    graph: h("button", { class: "am-tab", text: "Graph", title: "Where in the workflow the run went", attrs: { role: "tab" } }),
    events: h("button", { class: "am-tab", text: "Events", attrs: { role: "tab" } }),
    compare: h("button", { class: "am-tab", text: "Compare", title: "Two replies side by side", attrs: { role: "tab" } }),
  };
  private paneTabs: Record<Pane, HTMLButtonElement> = {
    chat: h("button", { class: "am-tab am-pane-tab", text: "Chat", attrs: { role: "tab" } }),
    timeline: h("button", { class: "am-tab am-pane-tab", text: "Timeline", attrs: { role: "tab" } }),
    graph: h("button", { class: "am-tab am-pane-tab", text: "Graph", attrs: { role: "tab" } }),
    events: h("button", { class: "am-tab am-pane-tab", text: "Events", attrs: { role: "tab" } }),
    compare: h("button", { class: "am-tab am-pane-tab", text: "Compare", attrs: { role: "tab" } }),
  };
  private detailEl = h("div", { class: "am-detail-slot" });
  private graph = new GraphView();
  private inspector: Inspector;
  private compare: CompareView;
  private tab: Tab = "timeline";
  private pollTimer: number | null = null;
  private pointed: { messageId: string; seq: number } | null = null; // time travel's current event
  private shownIds = new Set<string>(); // the turns last shown: another conversation has none of them
  /** The narrow widths' strip of pane tabs. */
  readonly strip = h("div", { class: "am-panes", attrs: { role: "tablist", "aria-label": "Panes" } });
  readonly side: HTMLElement;

  /** `root`: the widget, whose data-pane says which pane a narrow width shows. */
  constructor(private root: HTMLElement, commands: CommandClient, private timelinesEl: HTMLElement,
    private source: PanesSource) {
    this.inspector = new Inspector(commands);
    this.compare = new CompareView(commands);
    this.side = h("div", { class: "am-side" },
      h("div", { class: "am-tabs am-side-tabs", attrs: { role: "tablist", "aria-label": "Run views" } }, this.tabs.timeline, this.tabs.graph,
        this.tabs.events, this.tabs.compare),
      h("div", { class: "am-tab-body" }, timelinesEl, this.graph.el, this.inspector.el, this.compare.el),
      this.detailEl);
    this.strip.append(this.paneTabs.chat, this.paneTabs.timeline, this.paneTabs.graph, this.paneTabs.events,
      this.paneTabs.compare);
  }

  /** A live view's: the tabs answer clicks, and `tab` shows. */
  wire(tab: Tab): void {
    this.shownIds = new Set(this.source.turns().map((t) => t.id));
    for (const name of ["timeline", "events", "compare", "graph"] as const) {
      this.tabs[name].addEventListener("click", () => this.showTab(name));
    }
    this.graph.onPick = (detail) => this.showDetail(detail);
    for (const pane of ["chat", "timeline", "graph", "events", "compare"] as const) {
      this.paneTabs[pane].addEventListener("click", () => this.showPane(pane));
    }
    arrowKeys(this.tabs, (tab) => this.showTab(tab));
    arrowKeys(this.paneTabs, (pane) => this.showPane(pane));
    this.showTab(tab);
    this.showPane("chat");
  }

  showDetail(detail: Detail): void {
    this.detailEl.replaceChildren(renderDetail(detail));
  }

  /** A big workflow is laid out before its tab opens. */
  prepareGraph(): void {
    this.graph.prepare(this.source.graph());
  }

  renderGraph(): void {
    if (this.tab !== "graph") return; // laid out when shown: a hidden tab costs nothing
    this.graph.update(this.source.graph(), this.source.run());
  }

  /** Time travel's current event (null: none), marked in the Events tab when it shows. */
  point(current: { messageId: string; seq: number } | null): void {
    const was = this.pointed;
    this.pointed = current;
    if (this.tab !== "events") return;
    if (current) this.inspector.point(current.messageId, current.seq);
    else if (was) this.inspector.first();
  }

  /** Shows a tab, as its own pane where the width shows one pane at a time. */
  reveal(tab: Tab): void {
    if (this.root.classList.contains("am-narrow")) this.showPane(tab);
    else this.showTab(tab);
  }

  transcriptChanged(): void {
    // Another conversation (New chat, a reopened one): the inspector's page is of the old one.
    const turns = this.source.turns();
    const ids = new Set(turns.map((t) => t.id));
    const another = this.shownIds.size > 0 && ![...ids].some((id) => this.shownIds.has(id));
    this.shownIds = ids;
    if (another && this.tab === "events") this.inspector.first();
    if (this.tab !== "compare") return;
    this.compare.setChoices(turns); // a new turn or version may be picked now
    void this.compare.run();
  }

  syncPolling(): void {
    const want = this.tab === "events" && this.source.streaming();
    if (want && this.pollTimer === null) {
      this.pollTimer = setInterval(() => void this.inspector.refresh(), 1000) as unknown as number;
    } else if (!want && this.pollTimer !== null) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
      if (this.tab === "events") void this.inspector.refresh();
    }
  }

  dispose(): void {
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
  }

  private showTab(tab: Tab): void {
    this.tab = tab;
    this.source.remember(tab);
    select(this.tabs, tab);
    this.timelinesEl.hidden = tab !== "timeline";
    this.inspector.el.hidden = tab !== "events";
    this.compare.el.hidden = tab !== "compare";
    this.graph.el.hidden = tab !== "graph";
    this.detailEl.hidden = tab !== "timeline" && tab !== "graph";
    if (tab === "graph") this.renderGraph();
    if (tab === "events") {
      if (this.pointed) this.inspector.point(this.pointed.messageId, this.pointed.seq);
      else this.inspector.first();
    }
    if (tab === "compare") {
      this.compare.setChoices(this.source.turns());
      void this.compare.run();
    }
    this.syncPolling();
  }

  /** Narrow widths show one pane at a time: the chat (input always in view) or a side tab. */
  private showPane(pane: Pane): void {
    this.root.dataset.pane = pane;
    select(this.paneTabs, pane);
    if (pane !== "chat") this.showTab(pane);
  }
}

/** The shown tab is selected and the one Tab reaches; the others are a press of an arrow away. */
function select<K extends string>(tabs: Record<K, HTMLButtonElement>, shown: K): void {
  for (const [name, button] of Object.entries(tabs) as [K, HTMLButtonElement][]) {
    button.classList.toggle("am-active", name === shown);
    button.setAttribute("aria-selected", String(name === shown));
    button.tabIndex = name === shown ? 0 : -1;
  }
}

/** A tablist's keys (WAI-ARIA's tabs pattern): Left and Right go to the next tab round, Home
 * and End to the first and last; the tab reached shows and takes the focus. */
function arrowKeys<K extends string>(tabs: Record<K, HTMLButtonElement>, show: (name: K) => void): void {
  const names = Object.keys(tabs) as K[];
  names.forEach((name, at) => tabs[name].addEventListener("keydown", (e) => {
    const to = e.key === "ArrowRight" ? (at + 1) % names.length : e.key === "ArrowLeft" ? (at + names.length - 1) % names.length
      : e.key === "Home" ? 0 : e.key === "End" ? names.length - 1 : -1;
    if (to < 0) return;
    e.preventDefault();
    show(names[to]);
    tabs[names[to]].focus();
  }));
}
