import { describe, expect, it } from "vitest";

import { GraphView, layoutOf, structureOf } from "../src/graph";
import type { GraphStructureView, NodeView, TimelineView } from "../src/protocol";

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
