// ChatWidget's front end. It renders what the Python model says (traits + live messages),
// asks the kernel for more by command (protocol.ts), and sends the user's intents back; it
// holds no protocol logic of a chat system of its own. This module assembles the parts of the
// view, each in its own module (header, transcript with the live turn, notices, composer, the
// side panes, time travel), has them drawn from what the view model reads (draw.ts, viewmodel.ts)
// when the model says something changed (subscriptions.ts), and carries out the user's intents.
import type { AnyModel, RenderProps } from "@anywidget/types";

import { CommandClient } from "./commands";
import { Composer } from "./composer";
import { h } from "./dom";
import { Draw } from "./draw";
import { GraphView } from "./graph";
import { Header } from "./header";
import { keepKeysAndFocus } from "./keys";
import { layoutOf } from "./layout";
import { Layouts, layouts } from "./layouts";
import { LiveTurn } from "./live";
import { IncrementalMarkdown, renderAnswer, renderMarkdown } from "./markdown";
import { type Memory, memoryOf } from "./memory";
import { Notices } from "./notices";
import { Panes } from "./panes";
import type { LiveMessage, LiveSnapshot, Model } from "./protocol";
import { subscribe } from "./subscriptions";
import { Timelines } from "./timelines";
import { TimeTravel } from "./timetravel";
import { Transcript } from "./transcript";
import { ViewModel } from "./viewmodel";
import layoutWorkerSource from "virtual:layout-worker";

layouts.useWorker(layoutWorkerSource);

const NARROW_PX = 720;

class ChatView {
  private root = h("div", { class: "am-root", attrs: { "data-lm-suppress-shortcuts": "true", tabindex: "-1" } });
  private commands: CommandClient;
  private memory: Memory;
  private vm: ViewModel;
  private draw: Draw;
  private live: LiveTurn;
  private transcript: Transcript;
  private notices: Notices;
  private composer: Composer;
  private timelines: Timelines;
  private panes: Panes;
  private travel: TimeTravel;
  private observer: ResizeObserver | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(private model: AnyModel<Model>, el: HTMLElement) {
    this.commands = new CommandClient(model);
    this.memory = memoryOf(model);
    const act = this.commands.act;
    const header = new Header(act);
    header.exportFile = () => this.commands.call("export_html", {}).then((saved) =>
      `Saved ${saved.path} (${Math.round(saved.bytes / 1024)} KB${saved.left_out ? `, ${saved.left_out} earlier turns left out` : ""})`);
    this.live = new LiveTurn({
      started: () => { this.draw.messages(); this.panes.syncPolling(); },
      timeline: () => { this.draw.timelines(); this.transcript.liveThought(); },
      drew: () => this.transcript.follow(),
    });
    this.travel = new TimeTravel({
      fetch: (id, since, patches) => this.commands.call("tape", { message_id: id, since, patches }),
      moved: () => { this.draw.timelines(); this.panes.point(this.travel.current()); },
      opened: () => this.draw.messages(),
    });
    this.vm = new ViewModel(model, this.live, this.travel);
    this.transcript = new Transcript(this.commands, this.live, this.memory.answers, {
      act, send: (text) => this.send(text), select: (id) => this.select(id, "message"),
      failingNode: (id, key) => this.showFailingNode(id, key), redraw: () => this.draw.messages(),
      travel: (id, live) => void this.travel.open(id, { live }),
    });
    this.composer = new Composer({ act, send: () => this.send(), stop: () => this.stop(),
      draft: (text) => { this.memory.draft = text; } });
    this.notices = new Notices((draft) => this.composer.restore(draft));
    this.timelines = new Timelines(this.commands, { select: (id) => this.select(id, "timeline"),
      detail: (detail) => this.panes.showDetail(detail) });
    this.panes = new Panes(this.root, this.commands, this.timelines.el, {
      turns: () => this.vm.transcript().turns, graph: () => this.vm.headerView().graph, run: () => this.vm.run(),
      streaming: () => this.live.key !== null, remember: (tab) => { this.memory.tab = tab; },
    });
    this.draw = new Draw(this.vm, { root: this.root, header, transcript: this.transcript, notices: this.notices,
      composer: this.composer, timelines: this.timelines, panes: this.panes });
    this.root.append(header.el, this.panes.strip,
      h("div", { class: "am-main" }, h("div", { class: "am-chat" }, this.transcript.el, this.notices.kernelEl,
        this.notices.noticeEl, this.composer.el), this.panes.side));
    el.append(this.root);
    if (this.vm.migrated) {
      // A state saved by another protocol version: shown as saved, read-only, never wired.
      this.root.classList.add("am-static");
      this.draw.all();
      return;
    }
    this.composer.text = this.memory.draft;
    this.wire();
    this.panes.prepareGraph();
    this.draw.all();
    this.travel.openReplayed(this.vm.headerView().travel);
    if (this.memory.focused) requestAnimationFrame(() => this.composer.focus());
    void this.commands.call("hello", {}).then((snapshot) => { if (snapshot) this.onLive(snapshot); },
      () => undefined);
  }

  dispose(): void {
    this.memory.draft = this.composer.text;
    this.memory.focused = this.root.contains(document.activeElement);
    this.unsubscribe();
    this.observer?.disconnect();
    this.commands.dispose();
    this.panes.dispose();
    this.live.dispose();
    this.travel.dispose();
  }

  private wire(): void {
    this.unsubscribe = subscribe(this.model, this.commands, {
      header: () => {
        this.travel.openReplayed(this.vm.headerView().travel);
        this.panes.prepareGraph();
        this.draw.header(); this.draw.inputs(); this.draw.messages(); this.panes.renderGraph();
      },
      conversations: () => this.draw.header(),
      shown: () => this.draw.all(),
      timelines: () => this.draw.timelines(),
      transcript: () => this.panes.transcriptChanged(),
      attachment: () => this.draw.attachment(),
      live: () => this.onLiveTrait(),
      message: (msg) => this.onLive(msg),
    });
    this.commands.onKernel = (state) => this.notices.kernel(state);
    this.composer.wire();
    keepKeysAndFocus(this.root, () => {
      if (!this.vm.busy()) return false;
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
  private send(text?: string): void {
    const value = text ?? this.composer.text;
    const hasFile = Boolean(this.vm.attachment().filename);
    if (this.vm.busy() || (!value.trim() && !hasFile)) return;
    // A file and a typed question go together: the file first, then the question.
    this.transcript.followEnd(); // asking brings the conversation's end into view
    this.composer.focus(); // the Send button hides while answering: focus stays in the widget, so Esc stops
    this.commands.act("send", { text: value });
    if (text === undefined) this.composer.clear(); // restored from notice.draft if the send fails
  }

  private stop(): void {
    this.commands.act("stop", {});
    if (!this.root.contains(document.activeElement)) this.composer.focus(); // the Stop button hides
  }

  private select(messageId: string, from: "message" | "timeline"): void {
    this.vm.selected = messageId;
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
    this.draw.all();
    this.panes.syncPolling();
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
