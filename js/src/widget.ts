// ChatWidget's front end. It renders what the Python model says (traits + live messages),
// asks the kernel for more by command (protocol.ts), and sends the user's intents back; it
// holds no protocol logic of a chat system of its own.
import type { AnyModel, RenderProps } from "@anywidget/types";

import { CommandClient, CommandError, type KernelState } from "./commands";
import { CompareView } from "./compare";
import { GraphView } from "./graph";
import { copyIcon, formatMs, h } from "./dom";
import { Inspector } from "./inspector";
import { layoutOf } from "./layout";
import { Layouts, layouts } from "./layouts";
import { copyText, IncrementalMarkdown, renderAnswer, renderMarkdown } from "./markdown";
import { migrate } from "./migrate";
import { safeLink } from "./sanitize";
import type { Capabilities, LiveMessage, LiveSnapshot, Model, TimelineView, TranscriptView, TurnView } from "./protocol";
import { type Detail, renderDetail, renderTimeline, unitsOf } from "./timeline";
import layoutWorkerSource from "virtual:layout-worker";

layouts.useWorker(layoutWorkerSource);

const NARROW_PX = 720;
const TICK_MS = 100; // the live turn's elapsed-time counter
const AUTO_FULL_CHARS = 200_000; // a cut answer up to this long is fetched whole at once; longer ones on request
const CONFIRM_MS = 5000; // how long "Delete the history?" waits for its second click
const DEFAULT_CAPABILITIES: Capabilities = { token_streaming: true, stop: "client", branching: true, files: true };

type Tab = "timeline" | "graph" | "events" | "compare";
type Pane = "chat" | Tab;

/** What a view leaves behind for the next view of the same model (a redisplay, an output
 * re-rendered by its notebook): the typed draft and the answers it already holds. */
type Memory = { draft: string; answers: Map<string, string>; focused: boolean; tab: Tab };
const memories = new WeakMap<object, Memory>();

function memoryOf(model: object): Memory {
  let memory = memories.get(model);
  if (!memory) memories.set(model, (memory = { draft: "", answers: new Map(), focused: false, tab: "timeline" }));
  return memory;
}

class ChatView {
  private root = h("div", { class: "am-root", attrs: { "data-lm-suppress-shortcuts": "true", tabindex: "-1" } });
  private headerEl = h("div", { class: "am-header" });
  private panes = h("div", { class: "am-panes" });
  // A live region a screen reader reads politely; aria-busy while a turn streams, so an answer
  // is announced once, complete, not chunk by chunk.
  private list = h("div", { class: "am-messages", attrs: { role: "log", "aria-live": "polite",
    "aria-label": "Conversation" } });
  private noticeEl = h("div", { class: "am-notice-slot" });
  private kernelEl = h("div", { class: "am-kernel-slot" });
  private input = h("textarea", {
    class: "am-input",
    attrs: { rows: "2", placeholder: "Ask something… (Enter sends, Shift+Enter new line, Esc stops)",
      "aria-label": "Your question" },
  });
  private sendBtn = h("button", { class: "am-btn am-primary am-send", text: "Send", title: "Send (Enter)" });
  private stopBtn = h("button", { class: "am-btn am-stop", text: "■ Stop", title: "Stop (Esc)" });
  private attachBtn = h("button", { class: "am-btn am-attach", text: "📎", title: "Attach a file",
    attrs: { "aria-label": "Attach a file" } });
  private fileInput = h("input", { attrs: { type: "file" } });
  private chip = h("div", { class: "am-chip-slot" });
  private inputsToggle = h("button", { class: "am-btn", text: "⚙ Inputs", title: "Trigger inputs" });
  private inputsForm = h("div", { class: "am-inputs" });
  private timelineEl = h("div", { class: "am-timelines" });
  private detailEl = h("div", { class: "am-detail-slot" });
  private side: HTMLElement;
  private inspector: Inspector;
  private compare: CompareView;
  private graph = new GraphView();
  private tabs: Record<Tab, HTMLButtonElement>;
  private paneTabs: Record<Pane, HTMLButtonElement>;
  private tab: Tab = "timeline";

  private commands: CommandClient;
  private memory: Memory;
  private answerEls = new Map<string, { chars: number; el: HTMLElement }>();
  private fetching = new Set<string>(); // answers being fetched whole
  private liveKey: string | null = null;
  private liveSeq = 0;
  private liveMd: IncrementalMarkdown | null = null;
  private liveEl: HTMLElement | null = null;
  private liveTimeline: TimelineView | null = null;
  private liveMessageId: string | null = null;
  private liveStarted = 0;
  private liveClock: HTMLElement | null = null;
  private tick: number | null = null;
  private selected: string | null = null; // message whose execution is highlighted
  private editing: string | null = null;
  private confirmingClear = false; // "New chat" on a one-conversation system waits for its second click
  private loadingOlder = false;
  private following = true; // the list stays at the bottom as answers grow, until the reader scrolls up
  private shownNotice = "";
  private observer: ResizeObserver | null = null;
  private pollTimer: number | null = null;
  private disposers: (() => void)[] = [];
  private staticNote: string | null = null;
  private staticTranscript: TranscriptView | null = null;

  constructor(private model: AnyModel<Model>, el: HTMLElement) {
    this.commands = new CommandClient(model);
    this.memory = memoryOf(model);
    this.inspector = new Inspector(this.commands);
    this.compare = new CompareView(this.commands);
    this.tabs = {
      timeline: h("button", { class: "am-tab", text: "Timeline", attrs: { role: "tab" } }),
      graph: h("button", { class: "am-tab", text: "Graph", title: "Where in the workflow the run went", attrs: { role: "tab" } }),
      events: h("button", { class: "am-tab", text: "Events", attrs: { role: "tab" } }),
      compare: h("button", { class: "am-tab", text: "Compare", title: "Two replies side by side", attrs: { role: "tab" } }),
    };
    this.paneTabs = {
      chat: h("button", { class: "am-tab am-pane-tab", text: "Chat" }),
      timeline: h("button", { class: "am-tab am-pane-tab", text: "Timeline" }),
      graph: h("button", { class: "am-tab am-pane-tab", text: "Graph" }),
      events: h("button", { class: "am-tab am-pane-tab", text: "Events" }),
      compare: h("button", { class: "am-tab am-pane-tab", text: "Compare" }),
    };
    this.side = h("div", { class: "am-side" },
      h("div", { class: "am-tabs am-side-tabs", attrs: { role: "tablist" } }, this.tabs.timeline, this.tabs.graph,
        this.tabs.events, this.tabs.compare),
      h("div", { class: "am-tab-body" }, this.timelineEl, this.graph.el, this.inspector.el, this.compare.el),
      this.detailEl);
    this.fileInput.hidden = true;
    const composer = h("div", { class: "am-composer" },
      this.chip, this.inputsForm,
      h("div", { class: "am-composer-row" }, this.attachBtn, this.fileInput, this.input,
        h("div", { class: "am-composer-buttons" }, this.sendBtn, this.stopBtn, this.inputsToggle)));
    this.panes.append(this.paneTabs.chat, this.paneTabs.timeline, this.paneTabs.graph, this.paneTabs.events,
      this.paneTabs.compare);
    this.root.append(this.headerEl, this.panes,
      h("div", { class: "am-main" },
        h("div", { class: "am-chat" }, this.list, this.kernelEl, this.noticeEl, composer), this.side));
    el.append(this.root);
    const migrated = migrate(model);
    if (migrated) {
      // A state saved by another protocol version: shown as saved, read-only, with a note.
      this.staticNote = migrated.note;
      this.staticTranscript = migrated.transcript;
      this.root.classList.add("am-static");
      this.renderAll();
      return;
    }
    this.input.value = this.memory.draft;
    this.wire();
    this.graph.prepare(this.model.get("header")?.graph); // a big workflow is laid out before its tab opens
    this.renderAll();
    if (this.memory.focused) requestAnimationFrame(() => this.input.focus());
    void this.commands.call("hello", {}).then((snapshot) => { if (snapshot) this.onLive(snapshot); },
      () => undefined);
  }

  dispose(): void {
    this.memory.draft = this.input.value;
    this.memory.focused = this.root.contains(document.activeElement);
    for (const off of this.disposers) off();
    this.observer?.disconnect();
    this.commands.dispose();
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    if (this.tick !== null) clearInterval(this.tick);
  }

  // -- wiring -------------------------------------------------------------------------
  private on(event: string, fn: () => void): void {
    // The view never sets a trait itself: every change came from the kernel, which is alive.
    const handler = () => { this.commands.heard(); fn(); };
    this.model.on(event, handler);
    this.disposers.push(() => this.model.off(event, handler));
  }

  private wire(): void {
    this.on("change:header", () => {
      this.graph.prepare(this.model.get("header")?.graph);
      this.renderHeader(); this.renderInputs(); this.renderMessages(); this.renderGraph();
    });
    this.on("change:conversations", () => this.renderHeader());
    for (const name of ["transcript", "notice", "focus_id", "compact"]) this.on(`change:${name}`, () => this.renderAll());
    this.on("change:timelines", () => this.renderTimelines());
    let shownIds = new Set(this.transcript().turns.map((t) => t.id));
    this.on("change:transcript", () => {
      // Another conversation (New chat, a reopened one): the inspector's page is of the old one.
      const ids = new Set(this.transcript().turns.map((t) => t.id));
      const another = shownIds.size > 0 && ![...ids].some((id) => shownIds.has(id));
      shownIds = ids;
      if (another && this.tab === "events") this.inspector.first();
      if (this.tab !== "compare") return;
      this.compare.setChoices(this.transcript().turns); // a new turn or version may be picked now
      void this.compare.run();
    });
    this.on("change:attachment", () => this.renderChip());
    this.on("change:live", () => this.onLiveTrait());
    const onCustom = (msg: LiveMessage | LiveSnapshot | { type: "reply" }) => {
      if (this.commands.receive(msg)) return;
      if (msg.type === "live" || msg.type === "live_snapshot") this.onLive(msg);
    };
    this.model.on("msg:custom", onCustom);
    this.disposers.push(() => this.model.off("msg:custom", onCustom));
    this.commands.onKernel = (state) => this.renderKernel(state);

    this.sendBtn.addEventListener("click", () => this.send());
    this.stopBtn.addEventListener("click", () => this.stop());
    // Keys typed in the widget stay in the widget: the notebook's shortcuts (Shift+Enter runs
    // the cell, A/B/D/M/Z edit it...) never see them. Lumino honours the attribute on the root;
    // other hosts get the propagation stopped.
    for (const type of ["keydown", "keypress", "keyup"] as const) {
      this.root.addEventListener(type, (e) => {
        if (type === "keydown" && (e as KeyboardEvent).key === "Escape" && this.busy()) {
          e.preventDefault();
          this.stop();
        }
        e.stopPropagation();
      });
    }
    // A click anywhere in the widget keeps the focus in it (so Esc stops from anywhere): the
    // host notebook would otherwise take the focus to its cell on the same mousedown.
    this.root.addEventListener("mousedown", (e) => {
      e.stopPropagation();
      const target = e.target as HTMLElement | null;
      if (!target?.closest("input, textarea, select, button, a, [tabindex]:not(.am-root)")) {
        requestAnimationFrame(() => { if (!this.root.contains(document.activeElement)) this.root.focus(); });
      }
    });
    this.input.addEventListener("keydown", (e) => {
      // Enter (or Ctrl/Cmd+Enter) sends; Shift+Enter is a new line, as the placeholder says.
      if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => { this.memory.draft = this.input.value; });
    this.attachBtn.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => void this.attach());
    this.inputsToggle.addEventListener("click", () => { this.inputsForm.hidden = !this.inputsForm.hidden; });
    this.inputsForm.hidden = true;
    this.tabs.timeline.addEventListener("click", () => this.showTab("timeline"));
    this.tabs.events.addEventListener("click", () => this.showTab("events"));
    this.tabs.compare.addEventListener("click", () => this.showTab("compare"));
    this.tabs.graph.addEventListener("click", () => this.showTab("graph"));
    this.graph.onPick = (detail) => this.detailEl.replaceChildren(renderDetail(detail));
    for (const pane of ["chat", "timeline", "graph", "events", "compare"] as const) {
      this.paneTabs[pane].addEventListener("click", () => this.showPane(pane));
    }
    this.list.addEventListener("scroll", () => {
      // Scroll events run before the next frame's drawing: a reader who scrolled up is never
      // pulled back down by text drawn after it.
      this.following = this.atBottom();
      if (this.list.scrollTop < 40) this.loadOlder();
    });
    this.showTab(this.memory.tab);
    this.showPane("chat");
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => {
        this.root.classList.toggle("am-narrow", this.root.clientWidth < NARROW_PX);
      });
      this.observer.observe(this.root);
    }
  }

  private showTab(tab: Tab): void {
    this.tab = tab;
    this.memory.tab = tab;
    for (const [name, button] of Object.entries(this.tabs)) {
      button.classList.toggle("am-active", tab === name);
      button.setAttribute("aria-selected", String(tab === name));
    }
    this.timelineEl.hidden = tab !== "timeline";
    this.inspector.el.hidden = tab !== "events";
    this.compare.el.hidden = tab !== "compare";
    this.graph.el.hidden = tab !== "graph";
    this.detailEl.hidden = tab !== "timeline" && tab !== "graph";
    if (tab === "graph") this.renderGraph();
    if (tab === "events") this.inspector.first();
    if (tab === "compare") {
      this.compare.setChoices(this.transcript().turns);
      void this.compare.run();
    }
    this.syncPolling();
  }

  /** Narrow widths show one pane at a time: the chat (input always in view) or a side tab. */
  private showPane(pane: Pane): void {
    this.root.dataset.pane = pane;
    for (const [name, button] of Object.entries(this.paneTabs)) button.classList.toggle("am-active", name === pane);
    if (pane !== "chat") this.showTab(pane);
  }

  private syncPolling(): void {
    const want = this.tab === "events" && this.liveKey !== null;
    if (want && this.pollTimer === null) {
      this.pollTimer = setInterval(() => void this.inspector.refresh(), 1000) as unknown as number;
    } else if (!want && this.pollTimer !== null) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
      if (this.tab === "events") void this.inspector.refresh();
    }
  }

  // -- intents ------------------------------------------------------------------------
  private capabilities(): Capabilities {
    return this.model.get("header")?.capabilities ?? DEFAULT_CAPABILITIES;
  }

  private busy(): boolean {
    return Boolean(this.model.get("live")?.key);
  }

  /** A command the user asked for: its failure is shown, never lost. */
  private act<N extends Parameters<CommandClient["call"]>[0]>(name: N,
    args: Parameters<CommandClient["call"]>[1] & object, buffers?: ArrayBuffer[]): void {
    this.commands.call(name, args as never, buffers).catch((error: unknown) => {
      if (error instanceof CommandError && error.view.code === "KERNEL_UNREACHABLE") return; // shown by renderKernel
    });
  }

  private send(text?: string): void {
    const value = text ?? this.input.value;
    const hasFile = Boolean(this.model.get("attachment")?.filename);
    if (this.busy() || (!value.trim() && !hasFile)) return;
    // A file and a typed question go together: the file first, then the question.
    this.following = true; // asking brings the conversation's end into view
    this.input.focus(); // the Send button hides while answering: focus stays in the widget, so Esc stops
    this.act("send", { text: value });
    if (text === undefined) {
      this.input.value = ""; // restored from notice.draft if the send fails
      this.memory.draft = "";
    }
  }

  private stop(): void {
    this.act("stop", {});
    if (!this.root.contains(document.activeElement)) this.input.focus(); // the Stop button hides
  }

  private loadOlder(): void {
    const older = this.transcript().older;
    if (!older || this.loadingOlder || this.staticNote) return;
    this.loadingOlder = true;
    const before = this.list.scrollHeight - this.list.scrollTop;
    void this.commands.call("load_older", {}).finally(() => {
      this.loadingOlder = false;
      requestAnimationFrame(() => { this.list.scrollTop = this.list.scrollHeight - before; });
    });
  }

  private async attach(): Promise<void> {
    const file = this.fileInput.files?.[0];
    if (!file) return;
    const data = await file.arrayBuffer();
    this.act("attach", { filename: file.name, mime_type: file.type || null }, [data]);
    this.fileInput.value = "";
  }

  // -- live stream --------------------------------------------------------------------
  private onLive(msg: LiveMessage | LiveSnapshot): void {
    // A message for a reply the traits no longer call live is late: never bring that turn back.
    if (this.model.get("live")?.key !== msg.key) return;
    this.ensureLive(msg.key);
    const md = this.liveMd;
    if (!md) return;
    if (msg.type === "live_snapshot") {
      this.liveMessageId = msg.message_id ?? this.liveMessageId;
      if (msg.seq < this.liveSeq) return;
      this.liveSeq = msg.seq;
      md.reset(msg.text);
      this.liveTimeline = msg.timeline;
      this.renderTimelines();
      return;
    }
    if (msg.seq <= this.liveSeq) return;
    this.liveSeq = msg.seq;
    if (msg.message_id) this.liveMessageId = msg.message_id;
    if (msg.reset !== undefined) md.reset(msg.reset);
    else if (msg.append) md.append(msg.append);
    if (msg.timeline) { this.liveTimeline = msg.timeline; this.renderTimelines(); }
  }

  private ensureLive(key: string): void {
    if (this.liveKey === key && this.liveEl) return;
    this.liveKey = key;
    this.liveSeq = 0;
    this.liveTimeline = null;
    this.liveMessageId = null;
    this.liveStarted = performance.now();
    this.liveEl = h("div", { class: "am-answer am-md am-streaming" });
    this.liveMd = new IncrementalMarkdown(this.liveEl);
    this.liveMd.onDraw = () => this.follow();
    if (this.tick === null) this.tick = setInterval(() => this.renderClock(), TICK_MS) as unknown as number;
    this.renderMessages();
    this.syncPolling();
  }

  private onLiveTrait(): void {
    const live = this.model.get("live");
    if (live?.key) this.ensureLive(live.key);
    else {
      // The reply settled: keep what this view streamed as that message's answer, so the
      // settled turn is not drawn (or sent) again.
      if (this.liveMessageId && this.liveMd && this.liveEl) {
        this.liveMd.end();
        this.memory.answers.set(this.liveMessageId, this.liveMd.text);
        this.liveEl.classList.remove("am-streaming");
        this.answerEls.set(this.liveMessageId, { chars: this.liveMd.text.length, el: this.liveEl });
      }
      this.liveKey = null; this.liveEl = null; this.liveMd = null; this.liveTimeline = null;
      this.liveMessageId = null; this.liveClock = null;
      if (this.tick !== null) { clearInterval(this.tick); this.tick = null; }
    }
    this.renderAll();
    this.syncPolling();
  }

  /** The live reply's message id, from whichever of its messages or traits told it first. */
  private liveMessageIdNow(): string | null {
    return this.liveMessageId ?? this.liveTimeline?.message_id ?? this.model.get("live")?.message_id ?? null;
  }

  private atBottom(): boolean {
    return this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 24;
  }

  /** Keep the newest text in view while the reader is following along. */
  private follow(): void {
    if (this.following) this.list.scrollTop = this.list.scrollHeight;
  }

  private renderClock(): void {
    if (this.liveClock) this.liveClock.textContent = `${((performance.now() - this.liveStarted) / 1000).toFixed(1)} s`;
  }

  // -- rendering ----------------------------------------------------------------------
  private transcript(): TranscriptView {
    if (this.staticTranscript) return this.staticTranscript;
    const transcript = this.model.get("transcript");
    return transcript && Array.isArray(transcript.turns) ? transcript : { leaf_id: "", turns: [], older: 0 };
  }

  private renderAll(): void {
    const compact = Boolean(this.model.get("compact"));
    this.root.classList.toggle("am-compact", compact);
    this.headerEl.hidden = compact;
    this.side.hidden = compact;
    this.renderHeader();
    this.renderMessages();
    this.renderTimelines();
    this.renderComposer();
    this.renderChip();
    this.renderInputs();
  }

  private renderHeader(): void {
    const header = this.model.get("header") ?? {};
    const title = h("div", { class: "am-title" },
      h("span", { class: "am-emoji", text: header.app_emoji ?? "" }),
      h("span", { class: "am-app-name", text: header.app_name ?? "Chat" }),
      header.app_version ? h("span", { class: "am-version", text: header.app_version }) : null,
      header.system_label
        ? h("span", { class: "am-system", text: header.system_label, title: `Talking to ${header.system_label}` }) : null,
      header.offline ? h("span", { class: "am-badge", text: "offline demo server",
        title: "An embedded server in this kernel: no key, no network" }) : null);
    const controls = h("div", { class: "am-controls" });
    if (this.staticNote) {
      this.headerEl.replaceChildren(title, controls);
      return;
    }
    if (header.offline && header.demo_apps?.length) {
      const pick = h("select", { class: "am-select am-demo-picker", title: "Demo app", attrs: { "aria-label": "Demo app" } });
      for (const app of header.demo_apps) pick.append(h("option", { text: app.name, attrs: { value: app.slug } }));
      pick.value = header.demo ?? "";
      pick.addEventListener("change", () => this.act("pick_demo", { slug: pick.value }));
      controls.append(pick);
    }
    const caps = this.capabilities();
    const conversations = this.model.get("conversations") ?? [];
    const reopen = h("select", { class: "am-select am-conversations", title: "Reopen a past conversation",
      attrs: { "aria-label": "Past conversations" } });
    reopen.append(h("option", { text: `Conversations (${conversations.length})`, attrs: { value: "" } }));
    for (const c of conversations) reopen.append(h("option", { text: c.name || c.id, attrs: { value: c.id } }));
    reopen.value = header.conversation_id && conversations.some((c) => c.id === header.conversation_id)
      ? header.conversation_id : "";
    reopen.addEventListener("change", () => {
      if (reopen.value) this.act("open_conversation", { id: reopen.value });
    });
    reopen.hidden = caps.conversations === false;
    controls.append(reopen, this.freshButton(caps));
    this.headerEl.replaceChildren(title, controls);
  }

  /** "New chat": a new conversation; where the system keeps only one, clearing its history,
   *  which asks to be confirmed by a second click (nothing is deleted by one stray click). */
  private freshButton(caps: Capabilities): HTMLElement {
    if (caps.new_conversation !== "clear") {
      const fresh = h("button", { class: "am-btn am-new", text: "New chat",
        title: "Clear the chat and start a new conversation (this one stays in the list)" });
      fresh.addEventListener("click", () => this.act("new_conversation", {}));
      return fresh;
    }
    const clear = h("button", { class: "am-btn am-new am-clear", text: this.confirmingClear ? "Delete the history?" : "New chat",
      title: "This system keeps one conversation per user and workflow: a new chat deletes its history on the server" });
    clear.classList.toggle("am-danger", this.confirmingClear);
    clear.addEventListener("click", () => {
      if (!this.confirmingClear) {
        this.confirmingClear = true;
        window.setTimeout(() => { this.confirmingClear = false; this.renderHeader(); }, CONFIRM_MS);
        this.renderHeader();
        return;
      }
      this.confirmingClear = false;
      this.renderHeader();
      this.act("new_conversation", {});
    });
    return clear;
  }

  private path(): TurnView[] {
    const turns = this.transcript().turns;
    const focus = this.model.get("focus_id");
    if (focus) return turns.filter((t) => t.id === focus);
    return turns;
  }

  private renderMessages(): void {
    const items: HTMLElement[] = [];
    const transcript = this.transcript();
    const path = this.path();
    if (this.staticNote) items.push(h("div", { class: "am-static-note", attrs: { role: "note" }, text: this.staticNote }));
    if (transcript.older > 0 && !this.model.get("focus_id") && !this.staticNote) {
      const more = h("button", { class: "am-btn am-load-older",
        text: `Load ${Math.min(transcript.older, 20)} older of ${transcript.older} earlier turns` });
      more.addEventListener("click", () => this.loadOlder());
      items.push(h("div", { class: "am-older-slot" }, more));
    }
    if (!path.length && !this.liveKey) items.push(this.emptyState());
    const live = this.model.get("live");
    // Hosts may deliver traits one by one: a settled message wins over its live turn.
    const liveId = this.liveMessageIdNow();
    const settled = liveId !== null && path.some((m) => m.id === liveId);
    const showLive = Boolean(this.liveKey && this.liveEl && live?.key && !settled);
    // A regenerate or an edit streams in place of the turn it is a new version of (‹ n/n ›),
    // not as a new question under the conversation: the turns after it are not on its path.
    const replaced = showLive && live?.parent_id !== undefined
      ? path.findIndex((turn) => turn.parent_id === live.parent_id) : -1;
    const shown = replaced >= 0 ? path.slice(0, replaced) : path;
    shown.forEach((turn, i) => items.push(this.renderTurn(turn, i === shown.length - 1 && !this.liveKey)));
    if (showLive && live && this.liveEl) {
      this.liveClock = h("span", { class: "am-clock" });
      this.renderClock();
      const waiting = this.capabilities().token_streaming ? "● streaming" : "● working (the answer arrives whole)";
      const question = this.userBubble(live.query ?? "", live.file ?? null, null);
      if (replaced >= 0) {
        const count = path[replaced].siblings.count + 1;
        question.prepend(h("span", { class: "am-siblings am-muted", text: `‹ ${count}/${count} ›`,
          title: "A new version of this turn, streaming" }));
      }
      items.push(h("div", { class: `am-turn am-live${replaced >= 0 ? " am-new-version" : ""}` }, question,
        h("div", { class: "am-bot" }, this.liveEl,
          h("div", { class: "am-meta" }, h("span", { class: "am-typing", text: waiting }), this.liveClock))));
    }
    this.list.replaceChildren(...items);
    this.list.setAttribute("aria-busy", String(Boolean(this.liveKey)));
    this.renderNotice();
    this.follow();
  }

  private emptyState(): HTMLElement {
    const header = this.model.get("header") ?? {};
    const box = h("div", { class: "am-empty" }, h("div", { text: header.description
      ? `${header.description} Ask a question to start.` : "Ask a question to start." }));
    const examples = header.examples ?? [];
    if (examples.length && !this.staticNote) {
      const chips = h("div", { class: "am-examples" });
      for (const example of examples.slice(0, 6)) {
        const chip = h("button", { class: "am-example", text: example, title: "Ask this" });
        chip.addEventListener("click", () => this.send(example));
        chips.append(chip);
      }
      box.append(chips);
    }
    return box;
  }

  private userBubble(query: string, file: TurnView["file"], turn: TurnView | null): HTMLElement {
    const bubble = h("div", { class: "am-user" });
    if (turn?.created_at) bubble.title = `asked ${new Date(turn.created_at).toLocaleString()}`;
    if (file) bubble.append(h("span", { class: "am-chip", text: `📎 ${file.filename} (${file.size} B)` }));
    if (query) bubble.append(h("div", { class: "am-query", text: query }));
    const row = h("div", { class: "am-user-row" });
    if (!turn || this.staticNote) { row.append(bubble); return row; }
    const siblings = turn.siblings;
    if (siblings.count > 1) {
      const prev = h("button", { class: "am-nav am-prev", text: "‹", title: "Previous version" });
      const next = h("button", { class: "am-nav am-next", text: "›", title: "Next version" });
      prev.disabled = !siblings.prev || this.busy();
      next.disabled = !siblings.next || this.busy();
      prev.addEventListener("click", () => { if (siblings.prev) this.act("select", { message_id: siblings.prev }); });
      next.addEventListener("click", () => { if (siblings.next) this.act("select", { message_id: siblings.next }); });
      row.append(h("span", { class: "am-siblings" }, prev,
        h("span", { class: "am-sibling-count", text: `${siblings.index + 1}/${siblings.count}` }), next));
    }
    if (this.editing === turn.id) {
      const box = h("textarea", { class: "am-input am-edit-input", attrs: { "aria-label": "Edited question" } });
      box.value = turn.query;
      const save = h("button", { class: "am-btn am-primary", text: "Send edit" });
      const cancel = h("button", { class: "am-btn", text: "Cancel" });
      save.addEventListener("click", () => {
        if (!box.value.trim()) return;
        this.editing = null;
        this.act("edit", { message_id: turn.id, text: box.value });
      });
      cancel.addEventListener("click", () => { this.editing = null; this.renderMessages(); });
      row.append(h("div", { class: "am-edit" }, box, h("div", {}, save, cancel)));
      return row;
    }
    const caps = this.capabilities();
    if (!turn.file && caps.branching) {
      const edit = h("button", { class: "am-action am-edit-btn", text: "✎", title: "Edit & resend" });
      edit.disabled = this.busy();
      edit.addEventListener("click", () => { this.editing = turn.id; this.renderMessages(); });
      row.append(edit);
    }
    row.append(bubble);
    return row;
  }

  private answerEl(turn: TurnView): HTMLElement {
    const known = this.memory.answers.get(turn.id)?.length ?? turn.answer.length;
    if (turn.answer_chars > known && turn.answer_chars <= AUTO_FULL_CHARS && !this.staticNote
        && !this.fetching.has(turn.id)) {
      this.fetching.add(turn.id);
      void this.fullAnswer(turn).then(() => this.renderMessages(), () => undefined)
        .finally(() => this.fetching.delete(turn.id));
    }
    const full = this.memory.answers.get(turn.id);
    const text = full !== undefined && full.length >= turn.answer.length ? full : turn.answer;
    const cached = this.answerEls.get(turn.id);
    if (cached && cached.chars === text.length) return cached.el;
    const el = h("div", { class: "am-answer am-md" });
    el.append(renderAnswer(text));
    this.answerEls.set(turn.id, { chars: text.length, el });
    return el;
  }

  private fullAnswer(turn: TurnView): Promise<string> {
    const known = this.memory.answers.get(turn.id);
    if (known !== undefined && known.length >= turn.answer_chars) return Promise.resolve(known);
    return this.commands.call("answer", { message_id: turn.id }).then((result) => {
      this.memory.answers.set(turn.id, result.answer);
      return result.answer;
    });
  }

  private renderTurn(turn: TurnView, last = false): HTMLElement {
    const meta = h("div", { class: "am-meta" });
    const caps = this.capabilities();
    const shown = this.memory.answers.get(turn.id)?.length ?? turn.answer.length;
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
      meta.append(h("span", { class: "am-stop-note", text: "the workflow waits for a person to answer its form; it goes on on the server once they do (history() shows how it ended)" }));
    } else if (turn.status === "answering" || turn.status === "querying") {
      meta.append(h("span", { class: "am-stop-note", text: "still running on the server: shown here when it ends" }));
    }
    const timeline = this.model.get("timelines")?.[turn.id];
    if (timeline) {
      meta.append(h("span", { class: "am-muted am-timing", text: `${formatMs(timeline.total_ms)} · ${unitsOf(timeline)}`,
        title: turn.finished_at ? `finished ${new Date(turn.finished_at).toLocaleString()}` : "" }));
    }
    const actions = h("span", { class: "am-actions" });
    if (!this.staticNote) {
      const copy = h("button", { class: "am-action am-copy-answer", title: "Copy the answer",
        attrs: { "aria-label": "Copy the answer" } }, copyIcon());
      copy.addEventListener("click", (e) => {
        e.stopPropagation();
        void this.fullAnswer(turn).then((text) => copyText(text, copy), () => undefined);
      });
      actions.append(copy);
      if (!turn.file && caps.branching) {
        const regen = h("button", { class: "am-action am-regenerate", text: "↻", title: "Regenerate" });
        regen.disabled = this.busy();
        regen.addEventListener("click", (e) => { e.stopPropagation(); this.act("regenerate", { message_id: turn.id }); });
        actions.append(regen);
      } else if (!caps.branching && caps.regenerate_reason) {
        actions.append(h("span", { class: "am-muted am-no-branch", text: "no regenerate", title: caps.regenerate_reason }));
      }
    }
    meta.append(actions);
    const bot = h("div", { class: "am-bot" }, this.answerEl(turn));
    if (turn.answer_chars > shown && (turn.answer_chars > AUTO_FULL_CHARS || this.staticNote)) {
      const rest = turn.answer_chars - shown;
      const more = h("button", { class: "am-btn am-show-all",
        text: this.staticNote ? `… ${rest.toLocaleString()} more characters (run the notebook to see them)`
          : `Show the whole answer (${rest.toLocaleString()} more characters)` });
      more.disabled = Boolean(this.staticNote);
      more.addEventListener("click", () => {
        more.disabled = true;
        more.textContent = "Loading…";
        void this.fullAnswer(turn).then(() => this.renderMessages(), () => { more.textContent = "Could not load it"; });
      });
      bot.append(more);
    }
    if (turn.error) bot.append(this.errorBox(turn));
    const extras = this.answerExtras(turn, last);
    if (extras) bot.append(extras);
    bot.append(meta);
    if (this.model.get("compact") && timeline) {
      const details = h("details", { class: "am-inline-timeline" }, h("summary", { text: "Execution timeline" }));
      details.append(renderTimeline(timeline, (_, local) => details.append(renderDetail(local)),
        this.capabilities().token_streaming));
      bot.append(details);
    }
    const turnEl = h("div", { class: `am-turn am-turn-${turn.status}` }, this.userBubble(turn.query, turn.file, turn), bot);
    turnEl.dataset.messageId = turn.id;
    turnEl.classList.toggle("am-selected", this.selected === turn.id);
    bot.addEventListener("click", () => this.select(turn.id, "message"));
    return turnEl;
  }

  /** Under an answer: the sources it drew on, the files it came with, and (under the last
   *  answer only) the questions the system suggests asking next. */
  private answerExtras(turn: TurnView, last: boolean): HTMLElement | null {
    const citations = turn.citations ?? [];
    const files = turn.files ?? [];
    const suggestions = last && !this.staticNote ? turn.suggestions ?? [] : [];
    if (!citations.length && !files.length && !suggestions.length) return null;
    const box = h("div", { class: "am-extras" });
    if (citations.length) {
      const details = h("details", { class: "am-citations" },
        h("summary", { text: `Sources (${citations.length})` }));
      citations.forEach((c, i) => {
        const href = safeLink(c.url);
        const title = href
          ? h("a", { class: "am-citation-title", text: c.title, attrs: { href, target: "_blank", rel: "noopener noreferrer" } })
          : h("span", { class: "am-citation-title", text: c.title });
        const item = h("div", { class: "am-citation" }, h("span", { class: "am-citation-n", text: `[${i + 1}] ` }), title);
        const where = [c.source, c.score === null ? null : `score ${c.score.toFixed(2)}`].filter(Boolean).join(" · ");
        if (where) item.append(h("span", { class: "am-muted", text: ` ${where}` }));
        if (c.snippet && c.snippet !== c.title) item.append(h("div", { class: "am-citation-snippet", text: c.snippet }));
        details.append(item);
      });
      details.addEventListener("click", (e) => e.stopPropagation());
      box.append(details);
    }
    for (const f of files) {
      const href = safeLink(f.url);
      if (href) box.append(h("a", { class: "am-chip am-answer-file", text: `📎 ${f.type}`,
        attrs: { href, target: "_blank", rel: "noopener noreferrer" } }));
    }
    if (suggestions.length) {
      const chips = h("div", { class: "am-suggestions", attrs: { "aria-label": "Suggested questions" } });
      for (const question of suggestions) {
        const chip = h("button", { class: "am-example am-suggestion", text: question, title: "Ask this" });
        chip.disabled = this.busy();
        chip.addEventListener("click", (e) => { e.stopPropagation(); this.send(question); });
        chips.append(chip);
      }
      box.append(chips);
    }
    return box;
  }

  /** A failed turn says what failed, with a link to the failing node in the timeline. */
  private errorBox(turn: TurnView): HTMLElement {
    const error = turn.error!;
    const box = h("div", { class: "am-error-box", attrs: { role: "alert" } },
      h("span", { class: "am-error-code", text: error.code }),
      h("span", { class: "am-error-text", text: error.message }));
    if (error.node && error.node_key) {
      const link = h("button", { class: "am-link am-error-node", text: `in node “${error.node}” ›`,
        title: "Show the failing node in the timeline" });
      link.addEventListener("click", (e) => {
        e.stopPropagation();
        this.showFailingNode(turn.id, error.node_key!);
      });
      box.append(link);
    }
    return box;
  }

  private showFailingNode(messageId: string, key: string): void {
    if (this.root.classList.contains("am-narrow")) this.showPane("timeline");
    else this.showTab("timeline");
    this.select(messageId, "message");
    const row = this.timelineEl.querySelector<HTMLElement>(`.am-execution[data-message-id="${CSS.escape(messageId)}"] .am-row[data-key="${CSS.escape(key)}"]`);
    if (row) {
      row.classList.add("am-flash");
      row.scrollIntoView?.({ block: "center" });
      row.focus();
      row.click();
    }
  }

  private select(messageId: string, from: "message" | "timeline"): void {
    this.selected = messageId;
    for (const turn of Array.from(this.list.querySelectorAll<HTMLElement>(".am-turn"))) {
      turn.classList.toggle("am-selected", turn.dataset.messageId === messageId);
      if (from === "timeline" && turn.dataset.messageId === messageId) turn.scrollIntoView?.({ block: "nearest" });
    }
    for (const section of Array.from(this.timelineEl.querySelectorAll<HTMLElement>(".am-execution"))) {
      section.classList.toggle("am-selected", section.dataset.messageId === messageId);
      if (from === "message" && section.dataset.messageId === messageId) section.scrollIntoView?.({ block: "nearest" });
    }
  }

  private renderTimelines(): void {
    const timelines = this.model.get("timelines") ?? {};
    const sections: HTMLElement[] = [];
    for (const turn of this.path()) {
      const view = timelines[turn.id];
      if (view) sections.push(this.section(turn.id, turn.query || turn.file?.filename || "", view));
    }
    const liveId = this.liveMessageIdNow();
    if (this.liveKey && this.liveTimeline && !(liveId !== null && timelines[liveId])) {
      const live = this.model.get("live");
      sections.push(this.section(this.liveTimeline.message_id ?? "", live?.query ?? "", this.liveTimeline, true));
    }
    if (!sections.length) sections.push(h("div", { class: "am-empty", text: "The execution timeline appears here." }));
    this.timelineEl.replaceChildren(...sections);
    this.renderGraph();
  }

  /** The run the Graph tab draws: the one streaming, else the selected one, else the last. */
  private graphRun(): TimelineView | null {
    if (this.liveKey && this.liveTimeline) return this.liveTimeline;
    const timelines = this.model.get("timelines") ?? {};
    if (this.selected && timelines[this.selected]) return timelines[this.selected];
    const turns = this.path();
    for (let i = turns.length - 1; i >= 0; i--) if (timelines[turns[i].id]) return timelines[turns[i].id];
    return null;
  }

  private renderGraph(): void {
    if (this.tab !== "graph") return; // laid out when shown: a hidden tab costs nothing
    this.graph.update(this.model.get("header")?.graph, this.graphRun());
  }

  private section(messageId: string, query: string, view: TimelineView, live = false): HTMLElement {
    const head = h("div", { class: "am-execution-head", text: `${live ? "● " : ""}${query.slice(0, 80) || "(file)"}`,
      attrs: { role: "button", tabindex: "0" } });
    head.addEventListener("click", () => { if (messageId) this.select(messageId, "timeline"); });
    const pick = (key: string, local: Detail) => {
      this.detailEl.replaceChildren(renderDetail(local));
      if (live || !messageId) return;
      // The trait holds outputs cut short: the whole of them comes by command.
      this.commands.call("detail", { message_id: messageId, key }).then(
        (full) => this.detailEl.replaceChildren(renderDetail(full)), () => undefined);
    };
    const section = h("div", { class: `am-execution${live ? " am-live" : ""}` }, head,
      renderTimeline(view, pick, this.capabilities().token_streaming));
    section.dataset.messageId = messageId;
    section.classList.toggle("am-selected", this.selected === messageId && Boolean(messageId));
    return section;
  }

  private renderKernel(state: KernelState): void {
    if (state === "answering") { this.kernelEl.replaceChildren(); return; }
    if (state === "busy") {
      this.kernelEl.replaceChildren(h("div", { class: "am-kernel-busy am-muted", attrs: { role: "status" },
        text: "The kernel is busy running a cell: what you asked here is done when the cell ends." }));
      return;
    }
    this.kernelEl.replaceChildren(h("div", { class: "am-kernel-gone", attrs: { role: "alert" },
      text: "The kernel does not answer: it may have restarted or stopped. Re-run the cell to reconnect; "
        + "your typed text is kept." }));
  }

  private renderNotice(): void {
    const notice = this.model.get("notice") ?? {};
    if (!notice.code && !notice.message) { this.noticeEl.replaceChildren(); this.shownNotice = ""; return; }
    this.noticeEl.replaceChildren(h("div", { class: "am-notice", attrs: { role: "alert" } },
      h("span", { class: "am-error-code", text: notice.code ?? "error" }),
      h("span", { class: "am-error-text", text: notice.message ?? "" })));
    const signature = `${notice.code}|${notice.message}|${notice.draft}`;
    if (signature !== this.shownNotice) {
      this.shownNotice = signature;
      // The unsent text is never lost: back into the box if the box is empty.
      if (notice.draft && !this.input.value) this.input.value = notice.draft;
    }
  }

  private renderComposer(): void {
    const busy = this.busy();
    const caps = this.capabilities();
    this.sendBtn.hidden = busy;
    this.stopBtn.hidden = !busy;
    this.stopBtn.title = caps.stop === "client"
      ? "Stop listening (Esc). This system cannot cancel a run: the workflow may still finish on the server."
      : "Stop (Esc)";
    this.attachBtn.disabled = busy;
    this.attachBtn.hidden = !caps.files;
    this.root.classList.toggle("am-busy", busy);
    const composer = this.input.closest(".am-composer") as HTMLElement | null;
    if (composer) composer.hidden = Boolean(this.staticNote);
  }

  private renderChip(): void {
    const file = this.model.get("attachment") ?? {};
    if (!file.filename) { this.chip.replaceChildren(); return; }
    const remove = h("button", { class: "am-chip-x", text: "×", title: "Remove attachment" });
    remove.addEventListener("click", () => this.act("detach", {}));
    this.chip.replaceChildren(h("span", { class: "am-chip am-attachment" },
      `📎 ${file.filename} (${file.size ?? 0} B)`, remove,
      h("span", { class: "am-muted", text: " sent with the next message" })));
  }

  private renderInputs(): void {
    const header = this.model.get("header") ?? {};
    const variables = (header.variables ?? []).filter((v) => !v.hidden);
    this.inputsToggle.hidden = variables.length === 0;
    if (!variables.length) { this.inputsForm.replaceChildren(); return; }
    if (this.inputsForm.contains(document.activeElement)) return; // don't clobber typing
    const inputs = header.inputs ?? {};
    const fields = variables.map((v) => {
      const field = h("input", { class: "am-field", attrs: { type: v.type === "number" ? "number" : "text" } });
      field.dataset.variable = v.variable;
      field.value = inputs[v.variable] === undefined ? "" : String(inputs[v.variable]);
      if (v.maxLength) field.maxLength = v.maxLength;
      return h("label", { class: "am-label" }, `${v.label}${v.required ? " *" : ""}`, field);
    });
    const apply = h("button", { class: "am-btn", text: "Apply" });
    apply.addEventListener("click", () => {
      const values: Record<string, string> = {};
      for (const field of Array.from(this.inputsForm.querySelectorAll<HTMLInputElement>("input.am-field"))) {
        values[field.dataset.variable ?? ""] = field.value;
      }
      this.act("set_inputs", { inputs: values });
    });
    this.inputsForm.replaceChildren(...fields, apply);
  }
}

function render({ model, el }: RenderProps<Model>): () => void {
  const view = new ChatView(model, el);
  return () => view.dispose();
}

export default { render };

// The renderers themselves, for bench/browser_render.py and bench/graph_render.py (measured in the built bundle).
export { GraphView, IncrementalMarkdown, layoutOf, Layouts, layouts, renderAnswer, renderMarkdown };
