// Where a graph's layout comes from: a page-wide cache by structure; else a Web Worker, asked as
// soon as a big published structure is known (before the Graph tab opens); else this thread
// (small or inferred graphs, a page whose policy forbids workers, jsdom in unit tests).
import { BIG_GRAPH, type Layout, layoutOf, structureKey } from "./layout";
import type { GraphEdgeView, GraphNodeView } from "./protocol";

const KEEP = 8; // layouts kept per page: a few workflows in a few widgets
const WORKER_DEADLINE_MS = 10_000; // a worker that has not answered by then is given up on

type Waiting = { resolve: (layout: Layout) => void; reject: (reason: Error) => void; timer: ReturnType<typeof setTimeout> };

export class Layouts {
  private done = new Map<string, Layout>();
  private pending = new Map<string, Promise<Layout>>();
  private worker: Worker | null | undefined; // undefined: not tried yet; null: none on this page
  private waiting = new Map<number, Waiting>();
  private nextId = 0;
  private workerSource: string | null = null;
  /** Where each layout came from, for tests and the bench. */
  readonly origin = new Map<string, "worker" | "main">();

  /** The worker's script (widget.js carries it as text); without one everything is laid out here. */
  useWorker(source: string): void {
    this.workerSource = source;
  }

  ready(key: string): Layout | undefined {
    const layout = this.done.get(key);
    if (layout) { this.done.delete(key); this.done.set(key, layout); } // most recently used last
    return layout;
  }

  /** Laid out on this thread, now. */
  now(nodes: GraphNodeView[], edges: GraphEdgeView[]): Layout {
    const layout = layoutOf(nodes, edges);
    this.keep(layout, "main");
    return layout;
  }

  /** Ask the worker for a big graph's layout; undefined when small or no worker can be had. */
  soon(nodes: GraphNodeView[], edges: GraphEdgeView[]): Promise<Layout> | undefined {
    if (nodes.length <= BIG_GRAPH) return undefined;
    const key = structureKey(nodes, edges);
    const ready = this.ready(key);
    if (ready) return Promise.resolve(ready);
    const pending = this.pending.get(key);
    if (pending) return pending;
    const worker = this.workerOrNull();
    if (!worker) return undefined;
    const asked = this.ask(worker, nodes, edges)
      .then((layout) => { this.keep(layout, "worker"); return layout; })
      .catch(() => this.now(nodes, edges)) // the worker failed: lay it out here after all
      .finally(() => this.pending.delete(key));
    this.pending.set(key, asked);
    return asked;
  }

  private keep(layout: Layout, origin: "worker" | "main"): void {
    this.done.delete(layout.key);
    this.done.set(layout.key, layout);
    this.origin.set(layout.key, origin);
    while (this.done.size > KEEP) {
      const oldest = this.done.keys().next().value as string;
      this.done.delete(oldest);
      this.origin.delete(oldest);
    }
  }

  private ask(worker: Worker, nodes: GraphNodeView[], edges: GraphEdgeView[]): Promise<Layout> {
    const id = this.nextId++;
    return new Promise<Layout>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id, new Error("the layout worker did not answer in time")),
        WORKER_DEADLINE_MS);
      this.waiting.set(id, { resolve, reject, timer });
      worker.postMessage({ id, nodes, edges });
    });
  }

  private settle(id: number, outcome: Layout | Error): void {
    const waiting = this.waiting.get(id);
    if (!waiting) return;
    this.waiting.delete(id);
    clearTimeout(waiting.timer);
    if (outcome instanceof Error) waiting.reject(outcome);
    else waiting.resolve(outcome);
  }

  private workerOrNull(): Worker | null {
    if (this.worker !== undefined) return this.worker;
    this.worker = null;
    if (!this.workerSource || typeof Worker === "undefined" || typeof Blob === "undefined") return null;
    try {
      const url = URL.createObjectURL(new Blob([this.workerSource], { type: "text/javascript" }));
      const worker = new Worker(url);
      worker.onmessage = (e: MessageEvent<{ id: number; layout?: Layout; error?: string }>) =>
        this.settle(e.data.id, e.data.layout ?? new Error(e.data.error ?? "no layout"));
      worker.onerror = () => this.giveUp(worker); // e.g. a policy that refuses blob: scripts
      this.worker = worker;
    } catch {
      this.worker = null; // a page that forbids workers: everything is laid out on this thread
    }
    return this.worker;
  }

  private giveUp(worker: Worker): void {
    worker.terminate();
    this.worker = null;
    for (const id of Array.from(this.waiting.keys())) this.settle(id, new Error("the layout worker failed"));
  }
}

/** One per page: the widgets on it share the worker and the layouts. */
export const layouts = new Layouts();
