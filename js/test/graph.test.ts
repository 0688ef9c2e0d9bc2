import { describe, expect, it, vi } from "vitest";

import { GraphView, structureOf } from "../src/graph";
import { layoutOf, structureKey } from "../src/layout";
import { Layouts } from "../src/layouts";
import type { GraphEdgeView, GraphNodeView, GraphStructureView, NodeView, TimelineView } from "../src/protocol";

const node = (id: string, status: string, extra: Partial<NodeView> = {}): NodeView => ({
  key: `${id}:${status}:${Math.random()}`, node_id: id, name: id.toUpperCase(), type: "t", status, start_ms: 0,
  end_ms: 1, duration_ms: 1, error: status === "failed" ? "boom" : null, output: null, out_ports: [], anomaly: null,
  depth: 0, tools: [], ...extra });

const run = (nodes: NodeView[], edges: TimelineView["edges"] = []): TimelineView => ({
  message_id: "m", execution_id: "x", status: "failed", execution_status: "failed", ttft_ms: null, total_ms: 5,
  nodes, node_count: nodes.length, failures: 0, anomalies: [], edges });

const BRANCHY: GraphStructureView = {
  cut: false,
  nodes: ["trigger", "loop", "http", "check", "report", "apology"].map((id) => ({ id, name: id, type: id,
    parent: id === "http" ? "loop" : null })),
  edges: [{ source: "trigger", target: "loop", label: null }, { source: "loop", target: "check", label: "done" },
    { source: "check", target: "report", label: "true" }, { source: "check", target: "apology", label: "false" }],
};

describe("the graph", () => {
  it("lays the workflow out left to right, loop children beside their loop", () => {
    const layout = layoutOf(BRANCHY.nodes, BRANCHY.edges);
    const x = (id: string) => layout.positions.get(id)!.x;
    expect(x("trigger")).toBeLessThan(x("loop"));
    expect(x("loop")).toBeLessThan(x("check"));
    expect(x("check")).toBeLessThan(x("report"));
    expect(x("loop")).toBeLessThan(x("http"));
  });

  it("draws the run on it: statuses, the path taken, the untaken branch dimmed, loop counts, tools", () => {
    const view = new GraphView();
    const tool = { key: "t1", name: "lookup", status: "succeeded", start_ms: 0, end_ms: 1, duration_ms: 1, args: null,
      result: null, anomaly: null };
    view.update(BRANCHY, run([node("trigger", "succeeded"), node("loop", "break"), node("http", "failed"),
      node("http", "failed"), node("check", "succeeded", { tools: [tool] }), node("apology", "succeeded")]));
    const g = (id: string) => view.el.querySelector<SVGGElement>(`.am-gnode[data-node-id="${id}"]`)!;
    expect(g("http").dataset.status).toBe("failed");
    expect(g("http").classList.contains("am-gfailed")).toBe(true);
    expect(g("http").dataset.runs).toBe("2");
    expect(g("http").querySelector(".am-gbadge")?.textContent).toBe("×2");
    expect(g("report").dataset.status).toBe("not-run");
    expect(g("check").querySelectorAll(".am-gtool").length).toBe(1);
    const edge = (s: string, t: string) => view.el.querySelector(`.am-gedge[data-source="${s}"][data-target="${t}"]`)!;
    expect(edge("check", "apology").classList.contains("am-gtaken")).toBe(true);
    expect(edge("check", "report").classList.contains("am-gdim")).toBe(true);
    expect(view.el.querySelector(".am-graph-note")?.textContent).toBe("");
  });

  it("infers the graph from the run where none is published, and says so", () => {
    const s = structureOf(null, run([node("a", "succeeded"), node("b", "succeeded"), node("a", "succeeded")],
      [{ source: "a", target: "b", label: null }, { source: "b", target: "ghost", label: null }]));
    expect(s.inferred).toBe(true);
    expect(s.nodes.map((n) => n.id)).toEqual(["a", "b"]);
    expect(s.edges).toEqual([{ source: "a", target: "b", label: null }]);
    const view = new GraphView();
    view.update(null, run([node("a", "succeeded")]));
    expect(view.el.querySelector(".am-graph-note")?.textContent).toContain("Inferred");
  });

  it("keeps its layout on a live update and only restyles", () => {
    const view = new GraphView();
    view.update(BRANCHY, run([node("trigger", "running")]));
    const before = view.el.querySelector('.am-gnode[data-node-id="loop"]');
    view.update(BRANCHY, run([node("trigger", "succeeded"), node("loop", "running")]));
    const after = view.el.querySelector<SVGGElement>('.am-gnode[data-node-id="loop"]');
    expect(after).toBe(before);
    expect(after!.dataset.status).toBe("running");
  });
});

const chain = (count: number, prefix = "n"): GraphStructureView => ({
  cut: false,
  nodes: Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, name: `Node ${i}`, type: "llm", parent: null })),
  edges: Array.from({ length: count - 1 }, (_, i) => ({ source: `${prefix}${Math.floor(i / 2)}`, target: `${prefix}${i + 1}`,
    label: null })),
});

describe("big graphs", () => {
  it("are laid out in dagre's first order without its sweeps: ranks left to right, no two nodes on one spot", () => {
    const tree = chain(200);
    const layout = layoutOf(tree.nodes, tree.edges);
    for (const e of tree.edges) expect(layout.positions.get(e.source)!.x).toBeLessThan(layout.positions.get(e.target)!.x);
    const spots = new Set(Array.from(layout.positions.values(), (b) => `${Math.round(b.x)},${Math.round(b.y)}`));
    expect(spots.size).toBe(200);
    // the workflow's own order within a rank: n1's children above n2's
    const y = (id: string) => layout.positions.get(id)!.y;
    expect(y("n3")).toBeLessThan(y("n5"));
  });

  it("orders a deep chain without recursion", () => {
    const deep: GraphStructureView = { cut: false,
      nodes: Array.from({ length: 1500 }, (_, i) => ({ id: `d${i}`, name: `d${i}`, type: "t", parent: null })),
      edges: Array.from({ length: 1499 }, (_, i) => ({ source: `d${i}`, target: `d${i + 1}`, label: null })) };
    const layout = layoutOf(deep.nodes, deep.edges);
    expect(layout.positions.get("d1499")!.x).toBeGreaterThan(layout.positions.get("d0")!.x);
  });

  it("draws names only once the zoom makes them readable", () => {
    const view = new GraphView(new Layouts());
    const host = view.el.querySelector<HTMLElement>(".am-graph-host")!;
    let size = 300; // the host's measured size, as a browser would report it
    Object.defineProperty(host, "clientWidth", { get: () => size });
    Object.defineProperty(host, "clientHeight", { get: () => size });
    host.getBoundingClientRect = () => ({ left: 0, top: 0, width: size, height: size }) as DOMRect;
    view.update(chain(200), null);
    expect(view.el.querySelectorAll(".am-gnode").length).toBe(200);
    expect(view.el.querySelectorAll(".am-gname").length).toBe(0); // a 200-node fit: names would be ~1 px
    expect(view.el.querySelector<HTMLElement>(".am-graph-far-hint")!.hidden).toBe(false);
    const first = view.el.querySelector<SVGGElement>(".am-gnode")!;
    expect(first.getAttribute("aria-label")).toBe("Node 0 (llm)"); // still named for a screen reader
    for (let i = 0; i < 20; i++) host.dispatchEvent(new KeyboardEvent("keydown", { key: "+" }));
    expect(view.el.querySelectorAll(".am-gname").length).toBe(200);
    expect(view.el.querySelector<HTMLElement>(".am-graph-far-hint")!.hidden).toBe(true);
    host.dispatchEvent(new KeyboardEvent("keydown", { key: "0" })); // fit again: hidden, not redrawn
    expect(view.el.querySelector("svg")!.classList.contains("am-graph-far")).toBe(true);
    expect(view.el.querySelectorAll(".am-gname").length).toBe(200);
    size = 0; // unmeasured (not in a page yet): names are drawn, nothing is known to be too small
    const small = new GraphView(new Layouts());
    small.update(BRANCHY, null);
    expect(small.el.querySelectorAll(".am-gname").length).toBe(6);
  });
});

describe("where layouts come from", () => {
  class FakeWorker {
    static made = 0;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onerror: (() => void) | null = null;
    constructor(readonly url: string, readonly mode: "answer" | "fail" | "silent") { FakeWorker.made++; }
    postMessage(ask: { id: number; nodes: GraphNodeView[]; edges: GraphEdgeView[] }): void {
      if (this.mode === "answer") setTimeout(() => this.onmessage?.({ data: { id: ask.id, layout: layoutOf(ask.nodes, ask.edges) } } as MessageEvent));
      if (this.mode === "fail") setTimeout(() => this.onerror?.());
    }
    terminate(): void {}
  }
  const withWorker = async (mode: "answer" | "fail" | "silent", body: (layouts: Layouts) => Promise<void>) => {
    const saved = globalThis.Worker;
    const savedUrl = URL.createObjectURL;
    URL.createObjectURL = () => "blob:layout-worker"; // jsdom has no blob URLs
    globalThis.Worker = class extends FakeWorker { constructor(url: string) { super(url, mode); } } as unknown as typeof Worker;
    try {
      const layouts = new Layouts();
      layouts.useWorker("/* the worker's script */");
      await body(layouts);
    } finally {
      globalThis.Worker = saved;
      URL.createObjectURL = savedUrl;
    }
  };

  it("a big published graph is laid out by the worker before its tab opens, then drawn from the cache", async () => {
    await withWorker("answer", async (layouts) => {
      const view = new GraphView(layouts);
      const big = chain(120, "w");
      view.prepare(big);
      view.update(big, null); // the tab opened before the worker answered: it waits, and says so
      expect(view.el.dataset.layout).toBe("waiting");
      expect(view.el.querySelector(".am-graph-note")!.textContent).toBe("Laying out 120 nodes…");
      await new Promise((r) => setTimeout(r, 0));
      await new Promise((r) => setTimeout(r, 0));
      expect(view.el.dataset.layout).toBe("worker");
      expect(view.el.querySelectorAll(".am-gnode").length).toBe(120);
      const again = new GraphView(layouts); // another view of the same workflow: no new layout
      again.update(big, null);
      expect(again.el.dataset.layout).toBe("worker");
      expect(again.el.querySelectorAll(".am-gnode").length).toBe(120);
      // a small graph never waits for the worker
      const small = new GraphView(layouts);
      small.update(BRANCHY, null);
      expect(small.el.dataset.layout).toBe("main");
    });
  });

  it("a worker that fails or never answers is given up on, and the graph is laid out here", async () => {
    await withWorker("fail", async (layouts) => {
      const view = new GraphView(layouts);
      view.update(chain(100, "f"), null);
      expect(view.el.dataset.layout).toBe("waiting");
      await new Promise((r) => setTimeout(r, 5));
      expect(view.el.dataset.layout).toBe("main");
      expect(view.el.querySelectorAll(".am-gnode").length).toBe(100);
      expect(layouts.soon(chain(90, "g").nodes, chain(90, "g").edges)).toBeUndefined(); // no worker any more
    });
    vi.useFakeTimers();
    try {
      await withWorker("silent", async (layouts) => {
        const view = new GraphView(layouts);
        view.update(chain(100, "s"), null);
        expect(view.el.dataset.layout).toBe("waiting");
        await vi.advanceTimersByTimeAsync(10_001); // the deadline
        expect(view.el.dataset.layout).toBe("main");
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps a bounded number of layouts, most recently used last", () => {
    const layouts = new Layouts();
    const made = Array.from({ length: 10 }, (_, i) => chain(3, `k${i}-`));
    for (const s of made) layouts.now(s.nodes, s.edges);
    expect(layouts.ready(structureKey(made[0].nodes, made[0].edges))).toBeUndefined();
    expect(layouts.ready(structureKey(made[9].nodes, made[9].edges))).toBeDefined();
    expect(layouts.origin.size).toBe(8);
  });
});
