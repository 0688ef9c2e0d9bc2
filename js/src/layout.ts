// A workflow's layout: dagre's layered layout, left to right, loop children beside their loop.
// Pure (no DOM), so the same code runs on the main thread and in the layout worker.
import dagre, { type LayoutConfig } from "@dagrejs/dagre";

import type { GraphEdgeView, GraphNodeView } from "./protocol";

const NODE_W = 168;
const NODE_H = 40;
/** Above this many nodes dagre skips its crossing sweeps and ranks by longest path. */
export const BIG_GRAPH = 60;

export type Box = { x: number; y: number; w: number; h: number };

export type Layout = { positions: Map<string, Box>; edges: Map<string, { x: number; y: number }[]>; width: number;
  height: number; key: string };

/** What a layout depends on: node ids, loop parents and edges (not names or statuses). */
export function structureKey(nodes: GraphNodeView[], edges: GraphEdgeView[]): string {
  return JSON.stringify([nodes.map((n) => [n.id, n.parent]), edges.map((e) => [e.source, e.target])]);
}

/** dagre's layered layout, left to right; loop children hang off their loop. */
export function layoutOf(nodes: GraphNodeView[], edges: GraphEdgeView[]): Layout {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  // longest-path ranking: network simplex is tidier but several times slower on big graphs.
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 42, marginx: 12, marginy: 12,
    ranker: nodes.length > BIG_GRAPH ? "longest-path" : "network-simplex" });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  const ids = new Set(nodes.map((n) => n.id));
  for (const e of edges) if (ids.has(e.source) && ids.has(e.target) && e.source !== e.target) g.setEdge(e.source, e.target);
  for (const n of nodes) {
    if (n.parent && ids.has(n.parent) && !g.hasEdge(n.parent, n.id)) g.setEdge(n.parent, n.id, { weight: 2 });
  }
  // Big graphs skip the crossing-minimization sweeps (the costliest step): the order they
  // come in is already the workflow's, and the tab stays responsive.
  dagre.layout(g, nodes.length > BIG_GRAPH ? { customOrder: firstOrder } : undefined);
  const positions = new Map<string, Box>();
  for (const id of g.nodes()) {
    const n = g.node(id);
    positions.set(id, { x: n.x - NODE_W / 2, y: n.y - NODE_H / 2, w: NODE_W, h: NODE_H });
  }
  const routed = new Map<string, { x: number; y: number }[]>();
  for (const e of g.edges()) routed.set(`${e.v}\u0000${e.w}`, g.edge(e).points ?? []);
  const graph = g.graph();
  return { positions, edges: routed, width: graph.width ?? 0, height: graph.height ?? 0,
    key: structureKey(nodes, edges) };
}

type LayoutGraph = Parameters<NonNullable<LayoutConfig["customOrder"]>>[0];

/** dagre's own first ordering (its initOrder: depth first from the lowest rank, each node
 *  placed in its rank as first reached), handed to it as `customOrder` for big graphs: with its
 *  sweeps switched off, dagre still builds the sweeps' layer graphs first (a third of its time
 *  on 200 nodes) and never uses them. Iterative, so a deep workflow cannot overflow the stack. */
export function firstOrder(g: LayoutGraph): void {
  const simple = g.nodes().filter((v) => !(g.children(v) ?? []).length);
  simple.sort((a, b) => (g.node(a).rank ?? 0) - (g.node(b).rank ?? 0));
  const next = new Map<number, number>();
  const seen = new Set<string>();
  for (const start of simple) {
    const stack = [start];
    while (stack.length) {
      const v = stack.pop() as string;
      if (seen.has(v)) continue;
      seen.add(v);
      const label = g.node(v);
      const rank = label.rank ?? 0;
      label.order = next.get(rank) ?? 0;
      next.set(rank, label.order + 1);
      const successors = g.successors(v) ?? [];
      for (let i = successors.length - 1; i >= 0; i--) if (!seen.has(successors[i])) stack.push(successors[i]);
    }
  }
}

