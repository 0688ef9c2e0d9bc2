// ChatWidget's front end. It renders what the Python model says (traits + live messages),
// asks the kernel for more by command (protocol.ts), and sends the user's intents back; it
// holds no protocol logic of a chat system of its own. This module wires the model to the
// parts of the view, each in its own module: header, transcript (with the live turn),
// notices, composer, and the side panes (timelines, graph, events, compare).
import type { AnyModel, RenderProps } from "@anywidget/types";

import { type Act, CommandClient, CommandError } from "./commands";
import { Composer } from "./composer";
import { h } from "./dom";
import { GraphView } from "./graph";
import { Header } from "./header";
import { keepKeysAndFocus } from "./keys";
import { layoutOf } from "./layout";
import { Layouts, layouts } from "./layouts";
import { LiveTurn } from "./live";
import { IncrementalMarkdown, renderAnswer, renderMarkdown } from "./markdown";
import { type Memory, memoryOf } from "./memory";
import { migrate } from "./migrate";
import { Notices } from "./notices";
import { Panes } from "./panes";
import type { Capabilities, LiveMessage, LiveSnapshot, Model, TimelineView, TranscriptView, TurnView } from "./protocol";
import { runToDraw, Timelines } from "./timelines";
import { TimeTravel } from "./timetravel";
import { Transcript, type Travelled } from "./transcript";
import layoutWorkerSource from "virtual:layout-worker";

layouts.useWorker(layoutWorkerSource);

const NARROW_PX = 720;
const DEFAULT_CAPABILITIES: Capabilities = { token_streaming: true, stop: "client", branching: true, files: true };

class ChatView {
  private root = h("div", { class: "am-root", attrs: { "data-lm-suppress-shortcuts": "true", tabindex: "-1" } });
  private commands: CommandClient;
  private memory: Memory;
  private header: Header;
  private live: LiveTurn;
  private transcript: Transcript;
  private notices: Notices;
  private composer: Composer;
  private timelines: Timelines;
  private panes: Panes;
  private travel: TimeTravel;
  private selected: string | null = null; // message whose execution is highlighted
  private observer: ResizeObserver | null = null;
  private disposers: (() => void)[] = [];
  private staticNote: string | null = null;
  private staticTranscript: TranscriptView | null = null;

  constructor(private model: AnyModel<Model>, el: HTMLElement) {
    this.commands = new CommandClient(model);
    this.memory = memoryOf(model);
    const act = this.act;
    this.header = new Header(act);
    this.header.exportFile = () => this.commands.call("export_html", {}).then((saved) =>
      `Saved ${saved.path} (${Math.round(saved.bytes / 1024)} KB${saved.left_out ? `, ${saved.left_out} earlier turns left out` : ""})`);
    this.live = new LiveTurn({
      started: () => { this.renderMessages(); this.panes.syncPolling(); },
      timeline: () => { this.renderTimelines(); this.transcript.liveThought(); },
      drew: () => this.transcript.follow(),
    });
    this.travel = new TimeTravel({
      fetch: (id, since, patches) => this.commands.call("tape", { message_id: id, since, patches }),
      moved: () => { this.renderTimelines(); this.panes.point(this.travel.current()); },
      opened: () => this.renderMessages(),
    });
    this.transcript = new Transcript(this.commands, this.live, this.memory.answers, {
      act, send: (text) => this.send(text), select: (id) => this.select(id, "message"),
      failingNode: (id, key) => this.showFailingNode(id, key), redraw: () => this.renderMessages(),
      travel: (id, live) => void this.travel.open(id, { live }),
    });
    this.composer = new Composer({ act, send: () => this.send(), stop: () => this.stop(),
      draft: (text) => { this.memory.draft = text; } });
    this.notices = new Notices((draft) => this.composer.restore(draft));
    this.timelines = new Timelines(this.commands, { select: (id) => this.select(id, "timeline"),
      detail: (detail) => this.panes.showDetail(detail) });
    this.panes = new Panes(this.root, this.commands, this.timelines.el, {
      turns: () => this.transcriptView().turns, graph: () => this.model.get("header")?.graph,
      run: () => runToDraw(this.liveTimeline(), this.shownTimelines(), this.travel.travelling ?? this.selected, this.path()),
      streaming: () => this.live.key !== null, remember: (tab) => { this.memory.tab = tab; },
    });
    this.root.append(this.header.el, this.panes.strip,
      h("div", { class: "am-main" }, h("div", { class: "am-chat" }, this.transcript.el, this.notices.kernelEl,
        this.notices.noticeEl, this.composer.el), this.panes.side));
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
    const exported = model.get("header")?.read_only;
    if (exported) this.staticNote = exported; // an exported file (standalone.ts): read-only, every pane working
    this.composer.text = this.memory.draft;
    this.wire();
    this.panes.prepareGraph();
    this.renderAll();
    this.travelReplayed();
    if (this.memory.focused) requestAnimationFrame(() => this.composer.focus());
    void this.commands.call("hello", {}).then((snapshot) => { if (snapshot) this.onLive(snapshot); },
      () => undefined);
  }

  dispose(): void {
    this.memory.draft = this.composer.text;
    this.memory.focused = this.root.contains(document.activeElement);
    for (const off of this.disposers) off();
    this.observer?.disconnect();
    this.commands.dispose();
    this.panes.dispose();
    this.live.dispose();
    this.travel.dispose();
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
      this.travelReplayed();
      this.panes.prepareGraph();
      this.renderHeader(); this.renderInputs(); this.renderMessages(); this.panes.renderGraph();
    });
    this.on("change:conversations", () => this.renderHeader());
    for (const name of ["transcript", "notice", "focus_id", "compact"]) this.on(`change:${name}`, () => this.renderAll());
    this.on("change:timelines", () => this.renderTimelines());
    this.on("change:transcript", () => this.panes.transcriptChanged());
    this.on("change:attachment", () => this.composer.renderAttachment(this.model.get("attachment") ?? {}));
    this.on("change:live", () => this.onLiveTrait());
    const onCustom = (msg: LiveMessage | LiveSnapshot | { type: "reply" }) => {
      if (this.commands.receive(msg)) return;
      if (msg.type === "live" || msg.type === "live_snapshot") this.onLive(msg);
    };
    this.model.on("msg:custom", onCustom);
    this.disposers.push(() => this.model.off("msg:custom", onCustom));
    this.commands.onKernel = (state) => this.notices.kernel(state);
    this.composer.wire();
    keepKeysAndFocus(this.root, () => {
      if (!this.busy()) return false;
      this.stop(); // Esc stops from anywhere in the widget
      return true;
    });
    this.transcript.wire();
    this.panes.wire(this.memory.tab);
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => {
        this.root.classList.toggle("am-narrow", this.root.clientWidth < NARROW_PX);
      });
      this.observer.observe(this.root);
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
  private act: Act = (name, args, buffers) => {
    this.commands.call(name, args, buffers).catch((error: unknown) => {
      if (error instanceof CommandError && error.view.code === "KERNEL_UNREACHABLE") return; // shown by the notices
    });
  };

  private send(text?: string): void {
    const value = text ?? this.composer.text;
    const hasFile = Boolean(this.model.get("attachment")?.filename);
    if (this.busy() || (!value.trim() && !hasFile)) return;
    // A file and a typed question go together: the file first, then the question.
    this.transcript.followEnd(); // asking brings the conversation's end into view
    this.composer.focus(); // the Send button hides while answering: focus stays in the widget, so Esc stops
    this.act("send", { text: value });
    if (text === undefined) this.composer.clear(); // restored from notice.draft if the send fails
  }

  private stop(): void {
    this.act("stop", {});
    if (!this.root.contains(document.activeElement)) this.composer.focus(); // the Stop button hides
  }

  private select(messageId: string, from: "message" | "timeline"): void {
    this.selected = messageId;
    this.transcript.highlight(messageId, from === "timeline");
    this.timelines.highlight(messageId, from === "message");
  }

  private showFailingNode(messageId: string, key: string): void {
    this.panes.reveal("timeline");
    this.select(messageId, "message");
    this.timelines.flash(messageId, key);
  }

  // -- live stream --------------------------------------------------------------------
  private onLive(msg: LiveMessage | LiveSnapshot): void {
    this.live.receive(msg, this.model.get("live")?.key);
  }

  private onLiveTrait(): void {
    const live = this.model.get("live");
    if (live?.key) this.live.start(live.key);
    else {
      const streamed = this.live.settle();
      if (streamed) this.transcript.keep(streamed);
    }
    this.renderAll();
    this.panes.syncPolling();
  }

  // -- rendering ----------------------------------------------------------------------
  private transcriptView(): TranscriptView {
    if (this.staticTranscript) return this.staticTranscript;
    const transcript = this.model.get("transcript");
    return transcript && Array.isArray(transcript.turns) ? transcript : { leaf_id: "", turns: [], older: 0 };
  }

  /** The turns shown: the path, or the one turn the view is focused on. */
  private path(): TurnView[] {
    const turns = this.transcriptView().turns;
    const focus = this.model.get("focus_id");
    if (focus) return turns.filter((t) => t.id === focus);
    return turns;
  }

  private renderAll(): void {
    const compact = Boolean(this.model.get("compact"));
    this.root.classList.toggle("am-compact", compact);
    this.header.el.hidden = compact;
    this.panes.side.hidden = compact;
    this.renderHeader();
    this.renderMessages();
    this.renderTimelines();
    const busy = this.busy();
    this.composer.render(busy, this.capabilities(), Boolean(this.staticNote));
    this.root.classList.toggle("am-busy", busy);
    this.composer.renderAttachment(this.model.get("attachment") ?? {});
    this.renderInputs();
  }

  private renderHeader(): void {
    this.header.render({ header: this.model.get("header") ?? {}, conversations: this.model.get("conversations") ?? [],
      capabilities: this.capabilities(), readOnly: Boolean(this.staticNote) });
  }

  private renderInputs(): void {
    this.composer.renderInputs(this.model.get("header") ?? {});
  }

  private renderMessages(): void {
    this.transcript.render({
      transcript: this.transcriptView(), turns: this.path(), focused: Boolean(this.model.get("focus_id")),
      live: this.model.get("live"), header: this.model.get("header") ?? {}, capabilities: this.capabilities(),
      timelines: this.model.get("timelines") ?? {}, compact: Boolean(this.model.get("compact")), busy: this.busy(),
      selected: this.selected, staticNote: this.staticNote, travel: this.travelled(),
    });
    this.notices.notice(this.model.get("notice") ?? {});
    this.transcript.follow();
  }

  private renderTimelines(): void {
    const timelines = this.shownTimelines();
    const liveId = this.live.messageIdOr(this.model.get("live")?.message_id);
    const streaming = this.liveTimeline();
    const liveTimeline = this.live.key && streaming && !(liveId !== null && timelines[liveId])
      ? { timeline: streaming, query: this.model.get("live")?.query ?? "" } : null;
    this.timelines.render({ turns: this.path(), timelines, live: liveTimeline, selected: this.selected,
      tokenStreaming: this.capabilities().token_streaming, travelling: this.travel.messageId ?? this.travel.travelling });
    this.panes.renderGraph();
  }

  // -- time travel --------------------------------------------------------------------
  /** The runs' timelines as shown: the travelled one as it stood at its moment. */
  private shownTimelines(): Record<string, TimelineView> {
    const timelines = this.model.get("timelines") ?? {};
    const moment = this.travel.moment();
    const id = this.travel.live ? this.travel.messageId : this.travel.travelling;
    return moment && id && timelines[id] ? { ...timelines, [id]: moment.timeline } : timelines;
  }

  /** The streaming run's timeline as shown: as it stood, while it is travelled. */
  private liveTimeline(): TimelineView | null {
    if (!this.live.key) return null;
    const moment = this.travel.live && this.travel.travelling === this.live.key ? this.travel.moment() : null;
    return moment ? moment.timeline : this.live.timeline;
  }

  private replayedOpened: string | null = null;

  /** A reply the kernel replayed (ChatWidget.replay) opens in time travel at its start, once. */
  private travelReplayed(): void {
    const id = this.model.get("header")?.travel;
    if (!id || id === this.replayedOpened) return;
    this.replayedOpened = id;
    void this.travel.open(id, { atStart: true });
  }

  private travelled(): Travelled | null {
    const travel = this.travel;
    const id = travel.travelling;
    if (!id) return null;
    return { is: (other) => other === id || (other !== "" && other === travel.messageId),
      answer: travel.answer, bar: travel.bar };
  }
}

function render({ model, el }: RenderProps<Model>): () => void {
  const view = new ChatView(model, el);
  return () => view.dispose();
}

export default { render };

// The renderers themselves, for bench/browser_render.py and bench/graph_render.py (measured in the built bundle).
export { GraphView, IncrementalMarkdown, layoutOf, Layouts, layouts, renderAnswer, renderMarkdown };
// bench/timetravel.py: the tape and the timeline renderer, measured in the built bundle.
export { renderTimeline } from "./timeline";
export { Tape } from "./tape";
