// Browser -> kernel requests with ids and replies (quak's pattern): one `call` per command
// of protocol.ts, typed by name; a reply that never comes, from a kernel that sends nothing
// else either, means the kernel is gone.
import type { AnyModel } from "@anywidget/types";

import type { CommandName, Commands, ErrorView, Model } from "./protocol";

export const REPLY_TIMEOUT_MS = 10_000;

type Pending = { resolve: (value: unknown) => void; reject: (error: CommandError) => void; timer: number };

/** What the view says about the kernel: it answers, it is busy running a cell (it still sends,
 * so it is alive, but it reads our requests only when the cell ends), or it is gone. */
export type KernelState = "answering" | "busy" | "gone";

export class CommandError extends Error {
  constructor(readonly view: ErrorView) {
    super(`${view.code}: ${view.message}`);
  }
}

export class CommandClient {
  private next = 1;
  private pending = new Map<number, Pending>();
  private lastHeard = -Infinity;
  /** Called when what is known of the kernel changes (see KernelState). */
  onKernel: (state: KernelState) => void = () => {};

  constructor(private model: AnyModel<Model>, private timeoutMs = REPLY_TIMEOUT_MS,
    private now: () => number = () => performance.now()) {}

  /** Anything the kernel sent (a streamed delta, a trait): it is alive, whatever it answers. */
  heard(): void {
    this.lastHeard = this.now();
  }

  call<N extends CommandName>(name: N, args: Commands[N]["args"], buffers?: ArrayBuffer[]):
    Promise<Commands[N]["result"]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const expire = () => {
        if (this.now() - this.lastHeard < this.timeoutMs) {
          // A kernel that keeps sending is running a cell: our request waits for the cell to
          // end. Say it is busy and keep waiting; never call a live kernel gone.
          this.onKernel("busy");
          const entry = this.pending.get(id);
          if (entry) entry.timer = setTimeout(expire, this.timeoutMs) as unknown as number;
          return;
        }
        this.pending.delete(id);
        this.onKernel("gone");
        reject(new CommandError({ code: "KERNEL_UNREACHABLE",
          message: "the kernel did not answer: it may have restarted or stopped; re-run the cell to reconnect" }));
      };
      const timer = setTimeout(expire, this.timeoutMs) as unknown as number;
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.model.send({ type: "command", id, name, args }, undefined, buffers);
    });
  }

  /** A command the user asked for: its failure is shown, never lost. */
  readonly act: Act = (name, args, buffers) => {
    this.call(name, args, buffers).catch((error: unknown) => {
      if (error instanceof CommandError && error.view.code === "KERNEL_UNREACHABLE") return; // shown by the notices
    });
  };

  /** Feed every custom message here; returns true when it was a reply. */
  receive(msg: { type?: string; id?: number; ok?: boolean; result?: unknown; error?: ErrorView }): boolean {
    this.heard();
    if (msg.type !== "reply" || typeof msg.id !== "number") return false;
    const entry = this.pending.get(msg.id);
    if (!entry) return true; // late: already timed out
    this.pending.delete(msg.id);
    clearTimeout(entry.timer);
    this.onKernel("answering");
    if (msg.ok) entry.resolve(msg.result ?? null);
    else entry.reject(new CommandError(msg.error ?? { code: "ERROR", message: "the command failed" }));
    return true;
  }

  dispose(): void {
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending.clear();
  }
}

/** A command the user asked for, sent and not awaited: a part of the view that only asks
 * takes one of these rather than the whole client. */
export type Act = <N extends CommandName>(name: N, args: Commands[N]["args"], buffers?: ArrayBuffer[]) => void;
