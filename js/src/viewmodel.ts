// What the view reads of the model at each draw, in one place: the capabilities, whether a reply
// streams, the transcript and the path shown, the runs' timelines as time travel has them, and
// the state each part is drawn from. It never draws and never writes a trait: draw.ts hands what
// it reads to the parts.
import type { AnyModel } from "@anywidget/types";

import type { HeaderState } from "./header";
import type { LiveTurn } from "./live";
import { migrate } from "./migrate";
import type { AttachmentView, Capabilities, HeaderView, Model, NoticeView, TimelineView, TranscriptView, TurnView } from "./protocol";
import { runToDraw, type TimelinesState } from "./timelines";
import type { TimeTravel } from "./timetravel";
import type { Travelled, TranscriptState } from "./transcript";

const DEFAULT_CAPABILITIES: Capabilities = { token_streaming: true, stop: "client", branching: true, files: true };

export class ViewModel {
  /** The message whose run is highlighted (a click on its answer or its timeline). */
  selected: string | null = null;
  /** Read-only, with this note: a state saved by another protocol version, or an exported file. */
  readonly staticNote: string | null = null;
  /** A state saved by another protocol version, read into today's shapes: shown as saved, never wired. */
  readonly migrated: boolean;
  private staticTranscript: TranscriptView | null = null;

  constructor(private model: AnyModel<Model>, private live: LiveTurn, private travel: TimeTravel) {
    const migrated = migrate(model);
    this.migrated = migrated !== null;
    if (migrated) {
      this.staticNote = migrated.note;
      this.staticTranscript = migrated.transcript;
      return;
    }
    const exported = model.get("header")?.read_only;
    if (exported) this.staticNote = exported; // an exported file (standalone.ts): read-only, every pane working
  }

  /** The app's header: its name, capabilities, inputs, graph (empty until the kernel says). */
  headerView(): HeaderView {
    return this.model.get("header") ?? {};
  }

  capabilities(): Capabilities {
    return this.model.get("header")?.capabilities ?? DEFAULT_CAPABILITIES;
  }

  attachment(): AttachmentView {
    return this.model.get("attachment") ?? {};
  }

  notice(): NoticeView {
    return this.model.get("notice") ?? {};
  }

  /** A reply streams (as the kernel says: the live trait's key). */
  busy(): boolean {
    return Boolean(this.model.get("live")?.key);
  }

  compact(): boolean {
    return Boolean(this.model.get("compact"));
  }

  transcript(): TranscriptView {
    if (this.staticTranscript) return this.staticTranscript;
    const transcript = this.model.get("transcript");
    return transcript && Array.isArray(transcript.turns) ? transcript : { leaf_id: "", turns: [], older: 0 };
  }

  /** The turns shown: the path, or the one turn the view is focused on. */
  path(): TurnView[] {
    const turns = this.transcript().turns;
    const focus = this.model.get("focus_id");
    if (focus) return turns.filter((t) => t.id === focus);
    return turns;
  }

  /** The runs' timelines as shown: the travelled one as it stood at its moment. */
  shownTimelines(): Record<string, TimelineView> {
    const timelines = this.model.get("timelines") ?? {};
    const moment = this.travel.moment();
    const id = this.travel.live ? this.travel.messageId : this.travel.travelling;
    return moment && id && timelines[id] ? { ...timelines, [id]: moment.timeline } : timelines;
  }

  /** The streaming run's timeline as shown: as it stood, while it is travelled. */
  liveTimeline(): TimelineView | null {
    if (!this.live.key) return null;
    const moment = this.travel.live && this.travel.travelling === this.live.key ? this.travel.moment() : null;
    return moment ? moment.timeline : this.live.timeline;
  }

  /** The run the Graph tab draws (runToDraw), the travelled reply counting as the selected one. */
  run(): TimelineView | null {
    return runToDraw(this.liveTimeline(), this.shownTimelines(), this.travel.travelling ?? this.selected, this.path());
  }

  /** The turn travelled through time, for the transcript to draw as it stood. */
  travelled(): Travelled | null {
    const travel = this.travel;
    const id = travel.travelling;
    if (!id) return null;
    return { is: (other) => other === id || (other !== "" && other === travel.messageId),
      answer: travel.answer, bar: travel.bar };
  }

  header(): HeaderState {
    return { header: this.headerView(), conversations: this.model.get("conversations") ?? [],
      capabilities: this.capabilities(), readOnly: Boolean(this.staticNote) };
  }

  transcriptState(): TranscriptState {
    return {
      transcript: this.transcript(), turns: this.path(), focused: Boolean(this.model.get("focus_id")),
      live: this.model.get("live"), header: this.headerView(), capabilities: this.capabilities(),
      timelines: this.model.get("timelines") ?? {}, compact: this.compact(), busy: this.busy(),
      selected: this.selected, staticNote: this.staticNote, travel: this.travelled(),
    };
  }

  timelinesState(): TimelinesState {
    const timelines = this.shownTimelines();
    const liveId = this.live.messageIdOr(this.model.get("live")?.message_id);
    const streaming = this.liveTimeline();
    // The streaming run gets a section of its own until a settled timeline stands for it.
    const live = this.live.key && streaming && !(liveId !== null && timelines[liveId])
      ? { timeline: streaming, query: this.model.get("live")?.query ?? "" } : null;
    return { turns: this.path(), timelines, live, selected: this.selected,
      tokenStreaming: this.capabilities().token_streaming, travelling: this.travel.messageId ?? this.travel.travelling };
  }
}
