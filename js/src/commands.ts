// Browser -> kernel requests with ids and replies (quak's pattern): one `call` per command
// of protocol.ts, typed by name; a reply that never comes means the kernel is gone.
import type { AnyModel } from "@anywidget/types";

import type { CommandName, Commands, ErrorView, Model } from "./protocol";

export const REPLY_TIMEOUT_MS = 10_000;

type Pending = { resolve: (value: unknown) => void; reject: (error: CommandError) => void; timer: number };

export class CommandError extends Error {
  constructor(readonly view: ErrorView) {
    super(`${view.code}: ${view.message}`);
  }
}

export class CommandClient {
  private next = 1;
  private pending = new Map<number, Pending>();
  /** Called with false when a command goes unanswered, with true when replies flow again. */
  onReachable: (reachable: boolean) => void = () => {};

  constructor(private model: AnyModel<Model>, private timeoutMs = REPLY_TIMEOUT_MS) {}

  call<N extends CommandName>(name: N, args: Commands[N]["args"], buffers?: ArrayBuffer[]):
    Promise<Commands[N]["result"]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.onReachable(false);
        reject(new CommandError({ code: "KERNEL_UNREACHABLE",
          message: "the kernel did not answer: it may have restarted or stopped; re-run the cell to reconnect" }));
      }, this.timeoutMs) as unknown as number;
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.model.send({ type: "command", id, name, args }, undefined, buffers);
    });
  }

  /** Feed every custom message here; returns true when it was a reply. */
  receive(msg: { type?: string; id?: number; ok?: boolean; result?: unknown; error?: ErrorView }): boolean {
    if (msg.type !== "reply" || typeof msg.id !== "number") return false;
    const entry = this.pending.get(msg.id);
    if (!entry) return true; // late: already timed out
    this.pending.delete(msg.id);
    clearTimeout(entry.timer);
    this.onReachable(true);
    if (msg.ok) entry.resolve(msg.result ?? null);
    else entry.reject(new CommandError(msg.error ?? { code: "ERROR", message: "the command failed" }));
    return true;
  }

  dispose(): void {
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending.clear();
  }
}
