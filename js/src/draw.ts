// The parts drawn from what the view model reads: all of them (the order the view has always
// drawn in: header, list with its notice, timelines and graph, composer), or the one the
// model's change concerns. The parts keep their own DOM; this only says what each is shown.
import type { Composer } from "./composer";
import type { Header } from "./header";
import type { Notices } from "./notices";
import type { Panes } from "./panes";
import type { Timelines } from "./timelines";
import type { Transcript } from "./transcript";
import type { ViewModel } from "./viewmodel";

/** The parts drawn, and the widget's root, whose classes say compact and busy. */
export type Parts = { root: HTMLElement; header: Header; transcript: Transcript; notices: Notices; composer: Composer;
  timelines: Timelines; panes: Panes };

export class Draw {
  constructor(private vm: ViewModel, private parts: Parts) {}

  all(): void {
    const { root, header, panes, composer } = this.parts;
    const compact = this.vm.compact();
    root.classList.toggle("am-compact", compact);
    header.el.hidden = compact;
    panes.side.hidden = compact;
    this.header();
    this.messages();
    this.timelines();
    const busy = this.vm.busy();
    composer.render(busy, this.vm.capabilities(), Boolean(this.vm.staticNote));
    root.classList.toggle("am-busy", busy);
    this.attachment();
    this.inputs();
  }

  header(): void {
    this.parts.header.render(this.vm.header());
  }

  /** The app's inputs, under the composer. */
  inputs(): void {
    this.parts.composer.renderInputs(this.vm.headerView());
  }

  attachment(): void {
    this.parts.composer.renderAttachment(this.vm.attachment());
  }

  /** The list of turns and the notice under it; the newest text kept in view for a reader following along. */
  messages(): void {
    this.parts.transcript.render(this.vm.transcriptState());
    this.parts.notices.notice(this.vm.notice());
    this.parts.transcript.follow();
  }

  /** The Timeline tab, and the Graph tab that draws one of its runs. */
  timelines(): void {
    this.parts.timelines.render(this.vm.timelinesState());
    this.parts.panes.renderGraph();
  }
}
