"""The workflow as a graph, for the Graph tab: the structure a system publishes (Atomemo's
app snapshot, Pipelit's workflow definition) normalized to nodes and edges, or, where it
publishes none (Dify, OdysseyAI), the edges one run's events reveal (each node's predecessor,
else the order nodes started in; a Loop's children inside it). The browser lays it out (dagre)
and draws the run on it; the static snapshot draws it in columns by depth."""

from __future__ import annotations

from html import escape
from typing import Any

from ..model.reply import Reply
from ..protocol.backend import AppInfo

__all__ = ["MAX_GRAPH_NODES", "inferred_edges", "published_graph", "static_svg"]

MAX_GRAPH_NODES = 2000  # a bigger published graph is cut (the view says so)
NAME_CHARS = 80


def _edge(source: Any, target: Any, label: Any = None) -> dict[str, Any] | None:
    if not isinstance(source, str) or not isinstance(target, str) or not source or not target:
        return None
    return {"source": source, "target": target, "label": str(label)[:40] if label not in (None, "") else None}


def _node(node_id: str, name: Any, kind: Any, parent: Any = None) -> dict[str, Any]:
    return {"id": node_id, "name": str(name or node_id)[:NAME_CHARS], "type": str(kind or "")[:40],
            "parent": parent if isinstance(parent, str) and parent else None}


def published_graph(app: AppInfo | None) -> dict[str, Any] | None:
    """The app's own graph, if its system publishes one: {nodes, edges, cut}."""
    raw = app.graph if app is not None else None
    if not isinstance(raw, dict):
        return None
    nodes_raw = raw.get("nodes")
    items = list(nodes_raw.values()) if isinstance(nodes_raw, dict) else \
        nodes_raw if isinstance(nodes_raw, list) else []
    nodes: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        node_id = item.get("id") or item.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            continue
        data: dict[str, Any] = item["data"] if isinstance(item.get("data"), dict) else {}
        nodes.append(_node(node_id, item.get("name") or item.get("label") or data.get("title"),
                           item.get("type") or item.get("component_type"),
                           item.get("parentId") or item.get("parent_id") or data.get("parentId")))
    if not nodes:
        return None
    cut = len(nodes) > MAX_GRAPH_NODES
    nodes = nodes[:MAX_GRAPH_NODES]
    known = {n["id"] for n in nodes}
    edges = []
    edges_raw = raw.get("edges")
    for item in edges_raw if isinstance(edges_raw, list) else []:  # any other shape: no edges
        if not isinstance(item, dict):
            continue
        edge = _edge(item.get("source") or item.get("source_node_id"), item.get("target") or item.get("target_node_id"),
                     item.get("label") or item.get("edge_label") or item.get("sourceHandle"))
        if edge is not None and edge["source"] in known and edge["target"] in known:
            edges.append(edge)
    return {"nodes": nodes, "edges": edges[: MAX_GRAPH_NODES * 4], "cut": cut}


def inferred_edges(reply: Reply) -> list[dict[str, Any]]:
    """What one run reveals: an edge into each node from its predecessor (when the system
    names it), else from the node that started before it at the same depth; loop children
    hang off their loop. Node ids, deduplicated, in run order."""
    spans = list(reply.nodes)
    by_run = {s.result_id: s for s in spans}
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    last_at: dict[str | None, str] = {}  # the last node started inside each parent (None: top level)
    for span in spans:
        parent = by_run.get(span.parent_run_id) if span.parent_run_id else None
        scope = parent.node_id if parent else None
        source = span.predecessor_id or last_at.get(scope) or (scope if scope != span.node_id else None)
        if source and source != span.node_id and (source, span.node_id) not in seen:
            seen.add((source, span.node_id))
            edges.append({"source": source, "target": span.node_id, "label": None})
        last_at[scope] = span.node_id
    return edges


def static_svg(structure: dict[str, Any], overlay: dict[str, str]) -> str:
    """The graph as a small static SVG for snapshots (no browser there): nodes in columns by
    their depth from the entry, in the order they come. `overlay`: node id -> status."""
    nodes = structure.get("nodes") or []
    edges = structure.get("edges") or []
    ids = [n["id"] for n in nodes]
    outgoing: dict[str, list[str]] = {i: [] for i in ids}
    waiting = dict.fromkeys(ids, 0)
    for e in edges:
        if e["source"] in outgoing and e["target"] in waiting and e["source"] != e["target"]:
            outgoing[e["source"]].append(e["target"])
            waiting[e["target"]] += 1
    depth = dict.fromkeys(ids, 0)
    ready = [i for i in ids if waiting[i] == 0]
    while ready:  # Kahn's order, iterative; nodes on a cycle keep the depth reached so far
        node_id = ready.pop()
        for target in outgoing[node_id]:
            depth[target] = max(depth[target], depth[node_id] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node_id in ids:
        column = depth.get(node_id, 0)
        place[node_id] = (column, rows.get(column, 0))
        rows[column] = rows.get(column, 0) + 1
    width, height, gap_x, gap_y = 150, 36, 40, 16
    w = (max((c for c, _ in place.values()), default=0) + 1) * (width + gap_x)
    h = (max(rows.values(), default=1)) * (height + gap_y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="am-graph-static" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" role="img" aria-label="workflow graph">']
    for e in edges:
        if e["source"] in place and e["target"] in place:
            (c1, r1), (c2, r2) = place[e["source"]], place[e["target"]]
            x1, y1 = c1 * (width + gap_x) + width, r1 * (height + gap_y) + height // 2
            x2, y2 = c2 * (width + gap_x), r2 * (height + gap_y) + height // 2
            taken = e["source"] in overlay and e["target"] in overlay
            parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{"#2563eb" if taken else "#aaa"}" '
                         f'stroke-width="{2 if taken else 1}"/>')
    colours = {"succeeded": "#1a7f37", "failed": "#cf222e", "running": "#2563eb", "break": "#bf8700"}
    for n in nodes:
        column, row = place[n["id"]]
        x, y = column * (width + gap_x), row * (height + gap_y)
        status = overlay.get(n["id"])
        stroke = colours.get(status or "", "#999")
        parts.append(f'<g class="am-graph-node" data-status="{escape(status or "not run")}">'
                     f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="white" '
                     f'stroke="{stroke}" stroke-width="{3 if status == "failed" else 1.5}" '
                     f'opacity="{1 if status else 0.45}"/>'
                     f'<text x="{x + 8}" y="{y + 22}" font-size="12" font-family="sans-serif">'
                     f'{escape(n["name"][:22])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
