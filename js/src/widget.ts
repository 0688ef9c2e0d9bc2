// ChatWidget's front end. It renders what the Python model says (traits + live messages)
// and sends the user's intents back; it holds no protocol logic of its own.
import type { AnyModel, RenderProps } from "@anywidget/types";

import { formatMs, h } from "./dom";
import { Inspector } from "./inspector";
import { IncrementalMarkdown, renderMarkdown } from "./markdown";
import { type Detail, renderDetail, renderTimeline } from "./timeline";
import type { EventsPage, LiveMessage, LiveSnapshot, MessageView, Model, TimelineView } from "./types";

const NARROW_PX = 720;

class ChatView {
  private root: HTMLElement;
  private headerEl = h("div", { class: "am-header" });
  private list = h("div", { class: "am-messages", attrs: { "aria-live": "polite" } });
  private noticeEl = h("div", { class: "am-notice-slot" });
  private input = h("textarea", {
    class: "am-input",
    attrs: { rows: "2", placeholder: "Ask something… (Enter sends, Shift+Enter new line, Esc stops)" },
  });
  private sendBtn = h("button", { class: "am-btn am-primary", text: "Send", title: "Send (Enter)" });
  private stopBtn = h("button", { class: "am-btn am-stop", text: "■ Stop", title: "Stop (Esc)" });
  private attachBtn = h("button", { class: "am-btn", text: "📎", title: "Attach a file" });
  private fileInput = h("input", { attrs: { type: "file" } });
  private chip = h("div", { class: "am-chip-slot" });
  private inputsToggle = h("button", { class: "am-btn", text: "⚙ Inputs", title: "Trigger inputs" });
  private inputsForm = h("div", { class: "am-inputs" });
  private timelineEl = h("div", { class: "am-timelines" });
  private detailEl = h("div", { class: "am-detail-slot" });
  private side: HTMLElement;
  private inspector: Inspector;
  private tabs: Record<"timeline" | "events", HTMLButtonElement>;
  private tab: "timeline" | "events" = "timeline";

  private answers = new Map<string, { answer: string; el: HTMLElement }>();
  private liveKey: string | null = null;
  private liveSeq = 0;
  private liveMd: IncrementalMarkdown | null = null;
  private liveEl: HTMLElement | null = null;
  private liveTimeline: TimelineView | null = null;
  private liveMessageId: string | null = null;
  private selected: string | null = null; // message whose execution is highlighted
  private editing: string | null = null;
  private shownNotice = "";
  private observer: ResizeObserver | null = null;
  private pollTimer: number | null = null;
  private disposers: (() => void)[] = [];

  constructor(private model: AnyModel<Model>, el: HTMLElement) {
    this.inspector = new Inspector((msg) => this.model.send(msg));
    this.tabs = {
      timeline: h("button", { class: "am-tab", text: "Timeline" }),
      events: h("button", { class: "am-tab", text: "Events" }),
    };
    this.side = h("div", { class: "am-side" },
      h("div", { class: "am-tabs" }, this.tabs.timeline, this.tabs.events),
      h("div", { class: "am-tab-body" }, this.timelineEl, this.inspector.el), this.detailEl);
    this.fileInput.hidden = true;
    const composer = h("div", { class: "am-composer" },
      this.chip, this.inputsForm,
      h("div", { class: "am-composer-row" }, this.attachBtn, this.fileInput, this.input,
        h("div", { class: "am-composer-buttons" }, this.sendBtn, this.stopBtn, this.inputsToggle)));
    this.root = h("div", { class: "am-root" }, this.headerEl,
      h("div", { class: "am-main" }, h("div", { class: "am-chat" }, this.list, this.noticeEl, composer), this.side));
    el.append(this.root);
    this.wire();
    this.renderAll();
    this.model.send({ type: "hello" }); // recover a reply that is streaming right now
  }

  dispose(): void {
    for (const off of this.disposers) off();
    this.observer?.disconnect();
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
  }

  // -- wiring -------------------------------------------------------------------------
  private on(event: string, fn: () => void): void {
    this.model.on(event, fn);
    this.disposers.push(() => this.model.off(event, fn));
  }

  private wire(): void {
    this.on("change:header", () => { this.renderHeader(); this.renderInputs(); });
    this.on("change:conversations", () => this.renderHeader());
    for (const name of ["messages", "leaf_id", "notice", "focus_id", "compact"]) {
      this.on(`change:${name}`, () => this.renderAll());
    }
    this.on("change:timelines", () => this.renderTimelines());
    this.on("change:attachment", () => this.renderChip());
    this.on("change:live", () => this.onLiveTrait());
    const onCustom = (msg: LiveMessage | LiveSnapshot | EventsPage) => this.onCustom(msg);
    this.model.on("msg:custom", onCustom);
    this.disposers.push(() => this.model.off("msg:custom", onCustom));

    this.sendBtn.addEventListener("click", () => this.send());
    this.stopBtn.addEventListener("click", () => this.model.send({ type: "stop" }));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
      else if (e.key === "Escape") { e.preventDefault(); this.model.send({ type: "stop" }); }
    });
    this.attachBtn.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => void this.attach());
    this.inputsToggle.addEventListener("click", () => { this.inputsForm.hidden = !this.inputsForm.hidden; });
    this.inputsForm.hidden = true;
    this.tabs.timeline.addEventListener("click", () => this.showTab("timeline"));
    this.tabs.events.addEventListener("click", () => this.showTab("events"));
    this.showTab("timeline");
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => {
        this.root.classList.toggle("am-narrow", this.root.clientWidth < NARROW_PX);
      });
      this.observer.observe(this.root);
    }
  }

  private showTab(tab: "timeline" | "events"): void {
    this.tab = tab;
    this.tabs.timeline.classList.toggle("am-active", tab === "timeline");
    this.tabs.events.classList.toggle("am-active", tab === "events");
    this.timelineEl.hidden = tab !== "timeline";
    this.inspector.el.hidden = tab !== "events";
    this.detailEl.hidden = tab !== "timeline";
    if (tab === "events") this.inspector.refresh();
    this.syncPolling();
  }

  private syncPolling(): void {
    const want = this.tab === "events" && this.liveKey !== null;
    if (want && this.pollTimer === null) {
      this.pollTimer = setInterval(() => this.inspector.refresh(), 1000) as unknown as number;
    } else if (!want && this.pollTimer !== null) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
      if (this.tab === "events") this.inspector.refresh();
    }
  }

  // -- intents ------------------------------------------------------------------------
  private busy(): boolean {
    return Boolean(this.model.get("live")?.key);
  }

  private send(): void {
    const text = this.input.value;
    const hasFile = Boolean(this.model.get("attachment")?.filename);
    if (this.busy() || (!text.trim() && !hasFile)) return;
    if (hasFile) {
      // The file goes first as its own message; the typed text stays for the next one.
      this.model.send({ type: "send", text: "" });
      return;
    }
    this.model.send({ type: "send", text });
    this.input.value = ""; // restored from notice.draft if the send fails
  }

  private async attach(): Promise<void> {
    const file = this.fileInput.files?.[0];
    if (!file) return;
    const data = await file.arrayBuffer();
    this.model.send({ type: "attach", filename: file.name, mime_type: file.type || null }, undefined, [data]);
    this.fileInput.value = "";
  }

  // -- live stream --------------------------------------------------------------------
  private onCustom(msg: LiveMessage | LiveSnapshot | EventsPage): void {
    if (msg.type === "events") { this.inspector.receive(msg); return; }
    // A message for a reply the traits no longer call live is late: never bring that turn back.
    if (this.model.get("live")?.key !== msg.key) return;
    if (msg.type === "live_snapshot") {
      this.ensureLive(msg.key);
      this.liveMessageId = msg.message_id ?? this.liveMessageId;
      if (msg.seq < this.liveSeq || !this.liveMd) return;
      this.liveSeq = msg.seq;
      this.stickToBottom(() => this.liveMd?.reset(msg.text));
      this.liveTimeline = msg.timeline;
      this.renderTimelines();
      return;
    }
    if (msg.type === "live") {
      this.ensureLive(msg.key);
      if (msg.seq <= this.liveSeq || !this.liveMd) return;
      this.liveSeq = msg.seq;
      if (msg.message_id) this.liveMessageId = msg.message_id;
      const md = this.liveMd;
      this.stickToBottom(() => {
        if (msg.reset !== undefined) md.reset(msg.reset);
        else if (msg.append) md.append(msg.append);
        md.flush();
      });
      if (msg.timeline) { this.liveTimeline = msg.timeline; this.renderTimelines(); }
    }
  }

  private ensureLive(key: string): void {
    if (this.liveKey === key && this.liveEl) return;
    this.liveKey = key;
    this.liveSeq = 0;
    this.liveTimeline = null;
    this.liveMessageId = null;
    this.liveEl = h("div", { class: "am-answer am-md am-streaming" });
    this.liveMd = new IncrementalMarkdown(this.liveEl);
    this.renderMessages();
    this.syncPolling();
  }

  private onLiveTrait(): void {
    const live = this.model.get("live");
    if (live?.key) this.ensureLive(live.key);
    else {
      this.liveKey = null; this.liveEl = null; this.liveMd = null; this.liveTimeline = null;
      this.liveMessageId = null;
    }
    this.renderAll();
    this.syncPolling();
  }

  /** The live reply's message id, from whichever of its messages or traits told it first. */
  private liveMessageIdNow(): string | null {
    return this.liveMessageId ?? this.liveTimeline?.message_id ?? this.model.get("live")?.message_id ?? null;
  }

  private stickToBottom(change: () => void): void {
    const list = this.list;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
    change();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  // -- rendering ----------------------------------------------------------------------
  private renderAll(): void {
    const compact = this.model.get("compact");
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
      h("span", { class: "am-app-name", text: header.app_name ?? "Atomemo chat" }),
      header.app_version ? h("span", { class: "am-version", text: header.app_version }) : null,
      header.offline ? h("span", { class: "am-badge", text: "offline demo server",
        title: "An embedded Atomemo-compatible server in this kernel: no key, no network" }) : null);
    const controls = h("div", { class: "am-controls" });
    if (header.offline && header.demo_apps?.length) {
      const pick = h("select", { class: "am-select am-demo-picker", title: "Demo app" });
      for (const app of header.demo_apps) pick.append(h("option", { text: app.name, attrs: { value: app.slug } }));
      pick.value = header.demo ?? "";
      pick.addEventListener("change", () => this.model.send({ type: "pick_demo", slug: pick.value }));
      controls.append(pick);
    }
    const conversations = this.model.get("conversations") ?? [];
    const reopen = h("select", { class: "am-select am-conversations", title: "Reopen a past conversation" });
    reopen.append(h("option", { text: `Conversations (${conversations.length})`, attrs: { value: "" } }));
    for (const c of conversations) reopen.append(h("option", { text: c.name || c.id, attrs: { value: c.id } }));
    reopen.value = header.conversation_id && conversations.some((c) => c.id === header.conversation_id)
      ? header.conversation_id : "";
    reopen.addEventListener("change", () => {
      if (reopen.value) this.model.send({ type: "open_conversation", id: reopen.value });
    });
    const fresh = h("button", { class: "am-btn am-new", text: "＋ New", title: "New conversation" });
    fresh.addEventListener("click", () => this.model.send({ type: "new_conversation" }));
    controls.append(reopen, fresh);
    this.headerEl.replaceChildren(title, controls);
  }

  private path(): MessageView[] {
    const messages = this.model.get("messages") ?? [];
    const byId = new Map(messages.map((m) => [m.id, m]));
    const focus = this.model.get("focus_id");
    if (focus) return byId.has(focus) ? [byId.get(focus)!] : [];
    let leaf: MessageView | undefined = byId.get(this.model.get("leaf_id")) ?? messages[messages.length - 1];
    const out: MessageView[] = [];
    const seen = new Set<string>();
    while (leaf && !seen.has(leaf.id)) {
      seen.add(leaf.id);
      out.push(leaf);
      leaf = leaf.parent_id ? byId.get(leaf.parent_id) : undefined;
    }
    return out.reverse();
  }

  private siblings(message: MessageView): MessageView[] {
    return (this.model.get("messages") ?? []).filter((m) => m.parent_id === message.parent_id);
  }

  private renderMessages(): void {
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 24;
    const items: HTMLElement[] = [];
    const path = this.path();
    if (!path.length && !this.liveKey) {
      const header = this.model.get("header") ?? {};
      items.push(h("div", { class: "am-empty", text: header.description
        ? `${header.description} Ask a question to start.` : "Ask a question to start." }));
    }
    for (const message of path) items.push(this.renderTurn(message));
    const live = this.model.get("live");
    // Hosts may deliver traits one by one: a settled message wins over its live turn.
    const liveId = this.liveMessageIdNow();
    const settled = liveId !== null && path.some((m) => m.id === liveId);
    if (this.liveKey && this.liveEl && live?.key && !settled) {
      items.push(h("div", { class: "am-turn am-live" },
        this.userBubble(live.query ?? "", live.file ?? null, null),
        h("div", { class: "am-bot" }, this.liveEl,
          h("div", { class: "am-meta" }, h("span", { class: "am-typing", text: "● streaming" })))));
    }
    this.list.replaceChildren(...items);
    this.renderNotice();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  private userBubble(query: string, file: MessageView["file"], message: MessageView | null): HTMLElement {
    const bubble = h("div", { class: "am-user" });
    if (file) bubble.append(h("span", { class: "am-chip", text: `📎 ${file.filename} (${file.size} B)` }));
    if (query) bubble.append(h("div", { class: "am-query", text: query }));
    if (!message) return h("div", { class: "am-user-row" }, bubble);
    const row = h("div", { class: "am-user-row" });
    const siblings = this.siblings(message);
    if (siblings.length > 1) {
      const index = siblings.findIndex((m) => m.id === message.id);
      const prev = h("button", { class: "am-nav am-prev", text: "‹", title: "Previous version" });
      const next = h("button", { class: "am-nav am-next", text: "›", title: "Next version" });
      prev.disabled = index <= 0 || this.busy();
      next.disabled = index >= siblings.length - 1 || this.busy();
      prev.addEventListener("click", () => this.model.send({ type: "select", message_id: siblings[index - 1].id }));
      next.addEventListener("click", () => this.model.send({ type: "select", message_id: siblings[index + 1].id }));
      row.append(h("span", { class: "am-siblings" }, prev,
        h("span", { class: "am-sibling-count", text: `${index + 1}/${siblings.length}` }), next));
    }
    if (this.editing === message.id) {
      const box = h("textarea", { class: "am-input am-edit-input" });
      box.value = message.query;
      const save = h("button", { class: "am-btn am-primary", text: "Send edit" });
      const cancel = h("button", { class: "am-btn", text: "Cancel" });
      save.addEventListener("click", () => {
        if (!box.value.trim()) return;
        this.editing = null;
        this.model.send({ type: "edit", message_id: message.id, text: box.value });
      });
      cancel.addEventListener("click", () => { this.editing = null; this.renderMessages(); });
      row.append(h("div", { class: "am-edit" }, box, h("div", {}, save, cancel)));
      return row;
    }
    if (!message.file) {
      const edit = h("button", { class: "am-action am-edit-btn", text: "✎", title: "Edit & resend" });
      edit.disabled = this.busy();
      edit.addEventListener("click", () => { this.editing = message.id; this.renderMessages(); });
      row.append(edit);
    }
    row.append(bubble);
    return row;
  }

  private answerEl(message: MessageView): HTMLElement {
    const cached = this.answers.get(message.id);
    if (cached && cached.answer === message.answer) return cached.el;
    const el = h("div", { class: "am-answer am-md" });
    el.append(renderMarkdown(message.answer));
    this.answers.set(message.id, { answer: message.answer, el });
    return el;
  }

  private renderTurn(message: MessageView): HTMLElement {
    const meta = h("div", { class: "am-meta" });
    if (message.status !== "succeeded") {
      meta.append(h("span", { class: `am-status am-status-${message.status}`, text: message.status }));
    }
    if (message.error) {
      meta.append(h("span", { class: "am-error-code", text: message.error.code }),
        h("span", { class: "am-error-text", text: message.error.message }));
    }
    const timeline = this.model.get("timelines")?.[message.id];
    if (timeline) meta.append(h("span", { class: "am-muted", text: `${formatMs(timeline.total_ms)} · ${timeline.node_count} nodes` }));
    if (!message.file) {
      const regen = h("button", { class: "am-action am-regenerate", text: "↻", title: "Regenerate" });
      regen.disabled = this.busy();
      regen.addEventListener("click", (e) => {
        e.stopPropagation();
        this.model.send({ type: "regenerate", message_id: message.id });
      });
      meta.append(regen);
    }
    const bot = h("div", { class: "am-bot" }, this.answerEl(message), meta);
    if (this.model.get("compact") && timeline) {
      const details = h("details", { class: "am-inline-timeline" }, h("summary", { text: "Execution timeline" }));
      details.append(renderTimeline(timeline, (d) => details.append(renderDetail(d))));
      bot.append(details);
    }
    const turn = h("div", { class: "am-turn" }, this.userBubble(message.query, message.file, message), bot);
    turn.dataset.messageId = message.id;
    turn.classList.toggle("am-selected", this.selected === message.id);
    bot.addEventListener("click", () => this.select(message.id, "message"));
    return turn;
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
    const pick = (detail: Detail) => this.detailEl.replaceChildren(renderDetail(detail));
    for (const message of this.path()) {
      const view = timelines[message.id];
      if (view) sections.push(this.section(message.id, message.query || message.file?.filename || "", view, pick));
    }
    const liveId = this.liveMessageIdNow();
    if (this.liveKey && this.liveTimeline && !(liveId !== null && timelines[liveId])) {
      const live = this.model.get("live");
      sections.push(this.section(this.liveTimeline.message_id ?? "", live?.query ?? "", this.liveTimeline, pick, true));
    }
    if (!sections.length) sections.push(h("div", { class: "am-empty", text: "The execution timeline appears here." }));
    this.timelineEl.replaceChildren(...sections);
  }

  private section(messageId: string, query: string, view: TimelineView, pick: (d: Detail) => void,
    live = false): HTMLElement {
    const head = h("div", { class: "am-execution-head", text: `${live ? "● " : ""}${query.slice(0, 80) || "(file)"}` });
    head.addEventListener("click", () => { if (messageId) this.select(messageId, "timeline"); });
    const section = h("div", { class: `am-execution${live ? " am-live" : ""}` }, head, renderTimeline(view, pick));
    section.dataset.messageId = messageId;
    section.classList.toggle("am-selected", this.selected === messageId && Boolean(messageId));
    return section;
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
    this.sendBtn.hidden = busy;
    this.stopBtn.hidden = !busy;
    this.attachBtn.disabled = busy;
    this.root.classList.toggle("am-busy", busy);
  }

  private renderChip(): void {
    const file = this.model.get("attachment") ?? {};
    if (!file.filename) { this.chip.replaceChildren(); return; }
    const remove = h("button", { class: "am-chip-x", text: "×", title: "Remove attachment" });
    remove.addEventListener("click", () => this.model.send({ type: "detach" }));
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
      this.model.send({ type: "set_inputs", inputs: values });
    });
    this.inputsForm.replaceChildren(...fields, apply);
  }
}

function render({ model, el }: RenderProps<Model>): () => void {
  const view = new ChatView(model, el);
  return () => view.dispose();
}

export default { render };

// The renderer itself, for bench/browser_render.py (measured in the built bundle).
export { IncrementalMarkdown, renderMarkdown };
