// The model's changes and custom messages, each to what the view does about it, in the order
// the view has always been told (a transcript change draws everything, then tells the panes).
import type { AnyModel } from "@anywidget/types";

import type { CommandClient } from "./commands";
import type { LiveMessage, LiveSnapshot, Model } from "./protocol";

/** What the view does when the kernel changes a trait or sends a message. */
export type Listeners = {
  header(): void; // the app, its capabilities and inputs, the graph, a replayed reply to travel
  conversations(): void;
  shown(): void; // transcript, notice, focus_id or compact: everything is drawn again
  timelines(): void;
  transcript(): void; // after shown(): the panes learn the turns changed
  attachment(): void;
  live(): void; // the live trait: a reply started or settled
  message(msg: LiveMessage | LiveSnapshot): void; // a live delta or snapshot (command replies go to `commands`)
};

/** Listen to the model; returns what stops listening. */
export function subscribe(model: AnyModel<Model>, commands: CommandClient, to: Listeners): () => void {
  const offs: (() => void)[] = [];
  const on = (event: string, fn: () => void) => {
    // The view never sets a trait itself: every change came from the kernel, which is alive.
    const handler = () => { commands.heard(); fn(); };
    model.on(event, handler);
    offs.push(() => model.off(event, handler));
  };
  on("change:header", () => to.header());
  on("change:conversations", () => to.conversations());
  for (const name of ["transcript", "notice", "focus_id", "compact"]) on(`change:${name}`, () => to.shown());
  on("change:timelines", () => to.timelines());
  on("change:transcript", () => to.transcript());
  on("change:attachment", () => to.attachment());
  on("change:live", () => to.live());
  const onCustom = (msg: LiveMessage | LiveSnapshot | { type: "reply" }) => {
    if (commands.receive(msg)) return;
    if (msg.type === "live" || msg.type === "live_snapshot") to.message(msg);
  };
  model.on("msg:custom", onCustom);
  offs.push(() => model.off("msg:custom", onCustom));
  return () => { for (const off of offs) off(); };
}
