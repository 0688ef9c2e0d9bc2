// The Graph tab: the workflow laid out left to right by dagre (a maintained layout library),
// with one execution drawn on it: nodes coloured by status, the path taken highlighted, nodes
// that did not run dimmed, a node that ran N times badged ×N, tool calls as small satellites of
// their agent, the failed node unmissable. Layout runs only when the structure changes; a live
// update only restyles. Wheel or +/− zoom, drag pans, 0 or "Fit" fits; Tab reaches each node.
import { activates, h } from "./dom";
import { type Box, type Layout, structureKey } from "./layout";
import { type Layouts, layouts as pageLayouts } from "./layouts";
import type { GraphEdgeView, GraphNodeView, GraphStructureView, NodeView, TimelineView } from "./protocol";
import { type Detail, nodeDetail } from "./timeline";

const SVG = "http://www.w3.org/2000/svg";
const NAME_CHARS = 22;
// Below this on-screen size a 12 px name is unreadable: names are not drawn (each node keeps its
// tooltip and aria-label), which saves ~40% of a big graph's first paint; zooming in draws them.
const LABEL_MIN_PX = 5;
// A name is read at 10 px or more (12 px text at 5/6 scale): below it the view says to zoom in, and
// fit never goes below it for a small workflow, whose whole would not be worth unreadable names.
const READABLE_SCALE = 10 / 12;
const SMALL_GRAPH = 20;

const PAN: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export type GraphPick = (node: NodeView) => void;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {},
  ...children: (SVGElement | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const child of children) el.append(child);
  return el;
}

/** The structure to draw: the published one, else what the run revealed (and say so). */
export function structureOf(published: GraphStructureView | null | undefined, run: TimelineView | null):
  { nodes: GraphNodeView[]; edges: GraphEdgeView[]; inferred: boolean; cut: boolean } {
  if (published && published.nodes.length) return { ...published, inferred: false };
  const nodes: GraphNodeView[] = [];
  const seen = new Set<string>();
  for (const node of run?.nodes ?? []) {
    if (seen.has(node.node_id)) continue;
    seen.add(node.node_id);
    nodes.push({ id: node.node_id, name: node.name, type: node.type, parent: null });
  }
  const edges = (run?.edges ?? []).filter((e) => seen.has(e.source) && seen.has(e.target));
  return { nodes, edges, inferred: true, cut: false };
}

type Runs = Map<string, NodeView[]>;

function runsOf(run: TimelineView | null): Runs {
  const runs: Runs = new Map();
  for (const node of run?.nodes ?? []) {
    const list = runs.get(node.node_id) ?? [];
    list.push(node);
    runs.set(node.node_id, list);
  }
  return runs;
}

function statusOf(list: NodeView[] | undefined): string {
  if (!list || !list.length) return "not-run";
  if (list.some((n) => n.status === "failed")) return "failed";
  return list[list.length - 1].status;
}

export class GraphView {
  readonly el: HTMLElement;
  private host = h("div", { class: "am-graph-host", attrs: { tabindex: "0", "aria-label": "Workflow graph: arrows pan, +/− zoom, 0 fits, Tab reaches each node" } });
  private note = h("div", { class: "am-muted am-graph-note" });
  private farHint = h("div", { class: "am-muted am-graph-far-hint", text: "Zoom in to read the names.", attrs: { hidden: "" } });
  private restHint = h("div", { class: "am-muted am-graph-rest-hint", text: "Drag, the arrows or − show the rest.",
    attrs: { hidden: "" } });
  private svgEl: SVGSVGElement = svg("svg", { class: "am-graph" });
  private layout: Layout | null = null;
  private wanted: { key: string; published: GraphStructureView | null | undefined; run: TimelineView | null } | null = null;
  private view: Box = { x: 0, y: 0, w: 1, h: 1 };
  private nodeEls = new Map<string, SVGGElement>();
  private edgeEls: { el: SVGPathElement; source: string; target: string }[] = [];
  private labels: { parent: SVGGElement; make: () => SVGElement[] }[] = [];
  private labelsDrawn = false;
  private runs: Runs = new Map();
  private drag: { x: number; y: number; view: Box } | null = null;
  onPick: (detail: Detail) => void = () => {};

  /** `layouts`: where layouts come from (the page's cache and worker unless told). */
  constructor(private layouts: Layouts = pageLayouts) {
    const zoomIn = h("button", { class: "am-btn am-graph-zoom", text: "+", title: "Zoom in (+)",
      attrs: { "aria-label": "Zoom in" } });
    const zoomOut = h("button", { class: "am-btn am-graph-zoom", text: "−", title: "Zoom out (−)",
      attrs: { "aria-label": "Zoom out" } });
    const fit = h("button", { class: "am-btn am-graph-fit", text: "Fit", title: "Fit the whole graph (0)" });
    zoomIn.addEventListener("click", () => this.zoom(0.8));
    zoomOut.addEventListener("click", () => this.zoom(1.25));
    fit.addEventListener("click", () => this.fit());
    this.host.append(this.svgEl);
    this.el = h("div", { class: "am-graph-view" }, h("div", { class: "am-graph-controls" }, zoomIn, zoomOut, fit, this.note, this.farHint,
      this.restHint),
      this.host);
    this.host.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, e); },
      { passive: false });
    this.host.addEventListener("pointerdown", (e) => {
      if ((e.target as Element).closest(".am-gnode")) return;
      this.drag = { x: e.clientX, y: e.clientY, view: { ...this.view } };
      this.host.setPointerCapture?.(e.pointerId);
    });
    this.host.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      const scale = this.view.w / Math.max(this.host.clientWidth, 1);
      this.view = { ...this.drag.view, x: this.drag.view.x - (e.clientX - this.drag.x) * scale,
        y: this.drag.view.y - (e.clientY - this.drag.y) * scale };
      this.applyView();
    });
    this.host.addEventListener("pointerup", () => { this.drag = null; });
    this.host.addEventListener("keydown", (e) => {
      if (e.key === "+" || e.key === "=") this.zoom(0.8);
      else if (e.key === "-" || e.key === "_") this.zoom(1.25);
      else if (e.key === "0") this.fit();
      else if (e.target === this.host && e.key in PAN) this.pan(...PAN[e.key]);
      else return;
      e.preventDefault();
    });
  }

  /** A published structure is known: have a big one laid out off the main thread already. */
  prepare(published: GraphStructureView | null | undefined): void {
    if (published && published.nodes.length) void this.layouts.soon(published.nodes, published.edges);
  }

  /** Draw `published` (or the run's inferred graph) with `run` on it. */
  update(published: GraphStructureView | null | undefined, run: TimelineView | null): void {
    const structure = structureOf(published, run);
    this.note.textContent = !structure.nodes.length ? "The workflow graph appears with the first run."
      : structure.inferred ? "Inferred from this run's events: this system does not publish its workflow graph."
        : structure.cut ? "A large workflow: only its first nodes are drawn." : "";
    const key = structureKey(structure.nodes, structure.edges);
    this.wanted = { key, published, run };
    if (!this.layout || this.layout.key !== key) {
      // Only when the workflow itself changed: from the cache, the worker (a big graph), or here.
      const pending = this.layouts.ready(key) ? undefined : this.layouts.soon(structure.nodes, structure.edges);
      if (pending) {
        this.el.dataset.layout = "waiting";
        this.note.textContent = `Laying out ${structure.nodes.length} nodes…`;
        pending.then(() => { if (this.wanted?.key === key) this.update(this.wanted.published, this.wanted.run); },
          (error: unknown) => { this.note.textContent = `This graph could not be laid out: ${String(error)}`; });
        return;
      }
      const size = this.size(); // before drawing, so the new graph is laid out by the browser only once
      this.layout = this.layouts.ready(key) ?? this.layouts.now(structure.nodes, structure.edges);
      this.el.dataset.layout = this.layouts.origin.get(key) ?? "main";
      this.draw(structure.nodes, structure.edges);
      this.paint(run); // before fitting: a fit that shows part of the graph shows where the run failed
      this.fit(size);
      return;
    }
    this.paint(run);
  }

  private draw(nodes: GraphNodeView[], edges: GraphEdgeView[]): void {
    const layout = this.layout as Layout;
    this.nodeEls.clear();
    this.edgeEls = [];
    this.labels = [];
    this.labelsDrawn = false;
    const edgeLayer = svg("g", { class: "am-gedges" });
    const nodeLayer = svg("g", { class: "am-gnodes" });
    const all: GraphEdgeView[] = [...edges];
    for (const n of nodes) if (n.parent && !edges.some((e) => e.source === n.parent && e.target === n.id)) {
      all.push({ source: n.parent, target: n.id, label: null });
    }
    for (const e of all) {
      const points = layout.edges.get(`${e.source}\u0000${e.target}`);
      if (!points || !points.length) continue;
      const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      const path = svg("path", { class: "am-gedge", d });
      path.dataset.source = e.source;
      path.dataset.target = e.target;
      edgeLayer.append(path);
      this.edgeEls.push({ el: path, source: e.source, target: e.target });
      const label = e.label;
      if (label) {
        const mid = points[Math.floor(points.length / 2)];
        this.labels.push({ parent: edgeLayer,
          make: () => [svg("text", { class: "am-glabel", x: mid.x, y: mid.y - 4, "text-anchor": "middle" }, label)] });
      }
    }
    for (const n of nodes) {
      const box = layout.positions.get(n.id);
      if (!box) continue;
      const name = n.name.length > NAME_CHARS ? `${n.name.slice(0, NAME_CHARS)}…` : n.name;
      const group = svg("g", { class: "am-gnode am-status-not-run", transform: `translate(${box.x},${box.y})`,
        tabindex: 0, role: "button", "aria-label": `${n.name} (${n.type})` },
      svg("title", {}, `${n.name} · ${n.type}`),
      svg("rect", { width: box.w, height: box.h, rx: 7 }));
      group.dataset.nodeId = n.id;
      group.dataset.name = n.name;
      this.labels.push({ parent: group, make: () => [svg("text", { class: "am-gname", x: 10, y: 17 }, name),
        svg("text", { class: "am-gtype", x: 10, y: 32 }, n.type)] });
      const pick = () => {
        const list = this.runs.get(n.id);
        if (list && list.length) this.onPick(nodeDetail(list[list.length - 1]));
      };
      activates(group, pick);
      nodeLayer.append(group);
      this.nodeEls.set(n.id, group);
    }
    this.svgEl.replaceChildren(edgeLayer, nodeLayer);
  }

  /** The run on the graph: only classes and badges change (no layout). */
  private paint(run: TimelineView | null): void {
    this.runs = runsOf(run);
    for (const [id, group] of this.nodeEls) {
      const list = this.runs.get(id);
      const status = statusOf(list);
      group.setAttribute("class", `am-gnode am-status-${status}${status === "failed" ? " am-gfailed" : ""}`);
      group.dataset.status = status;
      group.dataset.runs = String(list?.length ?? 0);
      for (const old of Array.from(group.querySelectorAll(".am-gbadge, .am-gtool, .am-gmark"))) old.remove();
      const box = this.layout?.positions.get(id);
      if (!box || !list) continue;
      if (list.length > 1) {
        group.append(svg("g", { class: "am-gbadge", transform: `translate(${box.w - 14},-6)` },
          svg("rect", { x: -12, y: -8, width: 28, height: 16, rx: 8 }),
          svg("text", { x: 2, y: 4, "text-anchor": "middle" }, `×${list.length}`)));
      }
      if (status === "failed") group.append(svg("text", { class: "am-gmark", x: box.w - 16, y: box.h - 8 }, "✕"));
      const tools = list.flatMap((n) => n.tools);
      tools.slice(0, 12).forEach((tool, i) => {
        group.append(svg("circle", { class: `am-gtool am-status-${tool.status}`, cx: 12 + i * 13, cy: box.h + 8, r: 5 },
          svg("title", {}, `🔧 ${tool.name} · ${tool.status}`)));
      });
    }
    for (const edge of this.edgeEls) {
      const taken = this.runs.has(edge.source) && this.runs.has(edge.target);
      edge.el.setAttribute("class", `am-gedge${taken ? " am-gtaken" : run && run.nodes.length ? " am-gdim" : ""}`);
    }
  }

  fit(size = this.size()): void {
    const layout = this.layout;
    if (!layout) return;
    const w = Math.max(layout.width, 1), hgt = Math.max(layout.height + 16, 1);
    const scale = size.width && size.height ? Math.min(size.width / w, size.height / hgt) : 1;
    if (scale < READABLE_SCALE && this.nodeEls.size <= SMALL_GRAPH) {
      // A small workflow in a narrow pane: at a readable size, its start or the node that failed
      // in view, the rest a drag away.
      const vw = size.width / READABLE_SCALE, vh = size.height / READABLE_SCALE;
      const failed = [...this.runs.keys()].find((id) => statusOf(this.runs.get(id)) === "failed");
      const box = failed ? layout.positions.get(failed) : undefined;
      const x = box ? Math.min(Math.max(box.x + box.w / 2 - vw / 2, 0), Math.max(w - vw, 0)) : 0;
      this.view = { x, y: (hgt - vh) / 2, w: vw, h: vh };
    } else {
      this.view = { x: 0, y: 0, w, h: hgt };
    }
    this.applyView(size);
  }

  private size(): { width: number; height: number } {
    return { width: this.host.clientWidth, height: this.host.clientHeight };
  }

  /** A tenth of the view along an arrow's direction. */
  private pan(dx: number, dy: number): void {
    this.view = { ...this.view, x: this.view.x + dx * this.view.w * 0.1, y: this.view.y + dy * this.view.h * 0.1 };
    this.applyView();
  }

  private zoom(factor: number, at?: WheelEvent): void {
    const rect = this.host.getBoundingClientRect();
    const fx = at && rect.width ? (at.clientX - rect.left) / rect.width : 0.5;
    const fy = at && rect.height ? (at.clientY - rect.top) / rect.height : 0.5;
    const w = Math.min(Math.max(this.view.w * factor, 40), 200_000);
    const hgt = this.view.h * (w / this.view.w);
    this.view = { x: this.view.x + (this.view.w - w) * fx, y: this.view.y + (this.view.h - hgt) * fy, w, h: hgt };
    this.applyView({ width: rect.width, height: rect.height });
  }

  private applyView(size = this.size()): void {
    const v = this.view;
    this.svgEl.setAttribute("viewBox", `${v.x.toFixed(1)} ${v.y.toFixed(1)} ${v.w.toFixed(1)} ${v.h.toFixed(1)}`);
    this.showLabels(size);
  }

  /** Names are drawn once the zoom makes them readable, then only hidden when zoomed out again. */
  private showLabels({ width, height }: { width: number; height: number }): void {
    // An unmeasured host (not yet in the page) draws them: nothing is known to be too small.
    const scale = width && height ? Math.min(width / this.view.w, height / this.view.h) : 1;
    const readable = scale * 12 >= LABEL_MIN_PX;
    const whole = !this.layout || (this.view.x <= 1 && this.view.y <= 1 && this.view.x + this.view.w >= this.layout.width - 1
      && this.view.y + this.view.h >= this.layout.height - 1);
    if (readable && !this.labelsDrawn) {
      this.labelsDrawn = true;
      for (const { parent, make } of this.labels) {
        const made = make();
        const rect = parent.querySelector("rect");
        if (rect) rect.after(...made); // under the badges and tool dots the run adds later
        else parent.append(...made);
      }
    }
    this.svgEl.classList.toggle("am-graph-far", !readable);
    this.farHint.hidden = scale + 1e-9 >= READABLE_SCALE;
    this.restHint.hidden = whole;
  }
}
