// The execution timeline: a Gantt row per node run, tool calls nested under their node,
// a summary line, and a detail panel that shows outputs as text (never as HTML).
import { activates, formatMs, h } from "./dom";
import type { DetailResult, NodeView, TimelineView, ToolView } from "./protocol";
import { thinkingBlock } from "./thinking";

export type Detail = DetailResult;
const REPORTED_TITLE = "The system reported this step with its answer, after the fact: it has no start or end time";
/** What a click on a row asks for: the row's key, and the detail already at hand (cut). */
export type Pick = (key: string, local: Detail) => void;

function span(view: TimelineView): number {
  let end = view.total_ms ?? 0;
  for (const node of view.nodes) {
    end = Math.max(end, node.end_ms ?? 0, node.start_ms ?? 0);
    for (const tool of node.tools) end = Math.max(end, tool.end_ms ?? 0, tool.start_ms ?? 0);
  }
  return Math.max(end, 1);
}

function bar(start: number | null, end: number | null, total: number, status: string): HTMLElement {
  const from = start ?? end ?? 0;
  const to = end ?? total; // still running: up to the latest known moment
  const el = h("span", { class: `am-bar am-status-${status}` });
  el.style.left = `${(100 * from) / total}%`;
  el.style.width = `${Math.max((100 * (to - from)) / total, 0.6)}%`;
  return el;
}

/** What a timeline's rows are called: steps reported after the fact (OdysseyAI), or nodes run. */
export function unitsOf(view: TimelineView): string {
  const reported = view.nodes.length > 0 && view.nodes.every((n) => n.reported);
  return `${view.node_count} ${reported ? "step" : "node"}${view.node_count === 1 ? "" : "s"}`;
}

/** `tokens`: whether the system streams the answer; where it arrives whole, its first
 *  moment is the answer's, not a token's. */
export function summaryText(view: TimelineView, tokens = true): string {
  if (view.nodes.length && view.nodes.every((n) => n.reported)) {
    // Nothing was timed but the wait itself.
    return [view.status, `answer after ${formatMs(view.total_ms)}`,
      `${unitsOf(view)} reported with it (no timing)`, `${view.failures} failed`].join(" · ");
  }
  const parts = [
    view.status,
    `total ${formatMs(view.total_ms)}`,
    `${tokens ? "first token" : "answer"} ${formatMs(view.ttft_ms)}`,
    `${view.node_count} node${view.node_count === 1 ? "" : "s"}`,
    `${view.failures} failed`,
  ];
  return parts.join(" · ");
}

export function nodeDetail(node: NodeView): Detail {
  return {
    title: `${node.name} (${node.type || "node"}) — ${node.status}`,
    sections: [
      ["error", node.error],
      ["json_output", node.output],
      ["out_ports", node.out_ports.length ? JSON.stringify(node.out_ports) : null],
      ["anomaly", node.anomaly],
      ["node_id", node.node_id],
    ],
  };
}

export function toolDetail(node: NodeView, tool: ToolView): Detail {
  return {
    title: `${tool.name} (tool of ${node.name}) — ${tool.status}`,
    sections: [["args", tool.args], ["result", tool.result], ["anomaly", tool.anomaly]],
  };
}

/** One execution as a Gantt chart, loop children indented under their loop. */
export function renderTimeline(view: TimelineView, onPick: Pick, tokens = true): HTMLElement {
  const total = span(view);
  const rows = h("div", { class: "am-gantt" });
  for (const node of view.nodes) {
    const row = h(
      "div",
      { class: `am-row am-node am-status-${node.status}`, attrs: { role: "button", tabindex: "0" } },
      h("span", { class: "am-row-name", title: `${node.name} · ${node.type}` },
        h("span", { class: "am-dot" }), h("span", { class: "am-row-label", text: node.name }), " ",
        h("span", { class: "am-row-type", text: node.type })),
      node.reported
        // Reported after the fact: there is no timing, and an invented bar would lie.
        ? h("span", { class: "am-track am-reported", text: "reported after the answer", title: REPORTED_TITLE })
        : h("span", { class: "am-track" }, bar(node.start_ms, node.end_ms, total, node.status)),
      h("span", { class: "am-row-dur", text: node.reported ? "" : formatMs(node.duration_ms) }),
      h("span", { class: "am-row-status", text: node.status }),
    );
    row.dataset.nodeId = node.node_id;
    row.dataset.key = node.key;
    row.style.setProperty("--am-depth", String(node.depth));
    const pick = () => onPick(node.key, nodeDetail(node));
    activates(row, pick);
    rows.append(row);
    if (node.reasoning) {
      const thought = thinkingBlock(`node:${node.key}`, node.reasoning, "node");
      thought.style.setProperty("--am-depth", String(node.depth));
      rows.append(thought);
    }
    for (const tool of node.tools) {
      const toolRow = h(
        "div",
        { class: `am-row am-tool am-status-${tool.status}`, attrs: { role: "button", tabindex: "0" } },
        h("span", { class: "am-row-name", title: tool.name }, "🔧 ", tool.name),
        h("span", { class: "am-track" }, bar(tool.start_ms, tool.end_ms, total, tool.status)),
        h("span", { class: "am-row-dur", text: formatMs(tool.duration_ms) }),
        h("span", { class: "am-row-status", text: tool.status }),
      );
      toolRow.style.setProperty("--am-depth", String(node.depth));
      toolRow.dataset.key = tool.key;
      const pickTool = () => onPick(tool.key, toolDetail(node, tool));
      activates(toolRow, pickTool);
      rows.append(toolRow);
    }
  }
  const anomalies = view.anomalies.length
    ? h("div", { class: "am-anomalies", text: `⚠ ${view.anomalies.join("; ")}` })
    : null;
  return h("div", { class: "am-timeline" },
    h("div", { class: "am-summary", text: summaryText(view, tokens) }), rows, anomalies);
}

/** The detail panel: every value as plain text in a <pre>. */
export function renderDetail(detail: Detail): HTMLElement {
  const box = h("div", { class: "am-detail" }, h("div", { class: "am-detail-title", text: detail.title }));
  for (const [label, value] of detail.sections) {
    if (value === null || value === undefined || value === "") continue;
    box.append(h("div", { class: "am-detail-label", text: label }), h("pre", { text: value }));
  }
  return box;
}
