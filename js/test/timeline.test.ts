import { describe, expect, it } from "vitest";

import { renderDetail, renderTimeline, summaryText, unitsOf } from "../src/timeline";
import type { TimelineView } from "../src/protocol";

const VIEW: TimelineView = {
  message_id: "m1", execution_id: "x1", status: "succeeded", execution_status: "succeeded",
  ttft_ms: 120, total_ms: 1000, node_count: 3, failures: 1, anomalies: [],
  nodes: [
    { key: "a", node_id: "n1", name: "Retry loop", type: "loop", status: "break", start_ms: 0, end_ms: 400,
      duration_ms: 400, error: null, output: "{\"iterations\": 2}", out_ports: [0], anomaly: null, depth: 0, tools: [] },
    { key: "b", node_id: "n2", name: "Fetch <b>inventory</b>", type: "http_request", status: "failed", start_ms: 10,
      end_ms: 200, duration_ms: 190, error: "<img src=x onerror=alert(1)>", output: null, out_ports: [],
      anomaly: null, depth: 1, tools: [] },
    { key: "c", node_id: "n3", name: "Agent", type: "ai_agent", status: "running", start_ms: 500, end_ms: null,
      duration_ms: null, error: null, output: null, out_ports: [], anomaly: null, depth: 0,
      tools: [{ key: "t1", name: "get_weather", status: "succeeded", start_ms: 550, end_ms: 700, duration_ms: 150,
        args: "{\"city\": \"Oslo\"}", result: "{\"t\": 15}", anomaly: null }] },
  ],
};

describe("renderTimeline", () => {
  it("draws a row per node, tools nested after their node, coloured by status", () => {
    const el = renderTimeline(VIEW, () => undefined);
    const rows = Array.from(el.querySelectorAll(".am-row"));
    expect(rows.map((r) => r.className)).toEqual([
      "am-row am-node am-status-break", "am-row am-node am-status-failed", "am-row am-node am-status-running",
      "am-row am-tool am-status-succeeded",
    ]);
    const bar = rows[0].querySelector<HTMLElement>(".am-bar")!;
    expect(bar.style.left).toBe("0%");
    expect(bar.style.width).toBe("40%");
    expect(rows[2].querySelector<HTMLElement>(".am-bar")!.style.width).toBe("50%"); // running: up to now
    expect(el.querySelector(".am-summary")?.textContent).toBe(summaryText(VIEW));
    expect(summaryText(VIEW)).toBe("succeeded · total 1.00 s · first token 120 ms · 3 nodes · 1 failed");
    // A system that sends the answer whole has no first token: its first moment is the answer's.
    expect(summaryText(VIEW, false)).toBe("succeeded · total 1.00 s · answer 120 ms · 3 nodes · 1 failed");
  });

  it("names and errors are text, never HTML", () => {
    let picked: ReturnType<typeof renderDetail> | null = null;
    const el = renderTimeline(VIEW, (_, detail) => { picked = renderDetail(detail); });
    expect(el.querySelector("b")).toBeNull();
    (el.querySelectorAll(".am-row")[1] as HTMLElement).click();
    expect(picked).not.toBeNull();
    const detail = picked as unknown as HTMLElement;
    expect(detail.querySelector("img")).toBeNull();
    expect(detail.textContent).toContain("<img src=x onerror=alert(1)>");
  });

  it("a tool row shows its args and result", () => {
    let text = "";
    const el = renderTimeline(VIEW, (key, detail) => { text = `${key} ${renderDetail(detail).textContent ?? ""}`; });
    (el.querySelector(".am-tool") as HTMLElement).click();
    expect(text).toContain("\"city\": \"Oslo\"");
    expect(text).toContain("\"t\": 15");
    expect(text.startsWith("t1 ")).toBe(true); // the tool call's key, to ask for its whole detail
  });

  it("indents loop children by their depth", () => {
    const el = renderTimeline(VIEW, () => undefined);
    const depths = Array.from(el.querySelectorAll<HTMLElement>(".am-row.am-node")).map((r) => r.style.getPropertyValue("--am-depth"));
    expect(depths).toEqual(["0", "1", "0"]);
  });
});

describe("steps reported after the fact", () => {
  const reported: TimelineView = {
    ...VIEW, ttft_ms: 2400, total_ms: 2400, failures: 0, node_count: 2,
    nodes: [
      { key: "r1", node_id: "agent:Root", name: "Root", type: "agent", status: "succeeded", start_ms: null,
        end_ms: null, duration_ms: null, error: null, output: null, out_ports: [], anomaly: null, depth: 0,
        tools: [], reported: true },
      { key: "r2", node_id: "s1", name: "Help center", type: "rag", status: "succeeded", start_ms: null,
        end_ms: null, duration_ms: null, error: null, output: "{}", out_ports: [], anomaly: null, depth: 1,
        tools: [], reported: true },
    ],
  };

  it("draws no invented bar and says the steps have no timing", () => {
    const el = renderTimeline(reported, () => undefined, false);
    expect(el.querySelectorAll(".am-bar").length).toBe(0);
    const tracks = Array.from(el.querySelectorAll(".am-track.am-reported")).map((t) => t.textContent);
    expect(tracks).toEqual(["reported after the answer", "reported after the answer"]);
    expect(summaryText(reported, false)).toBe(
      "succeeded · answer after 2.40 s · 2 steps reported with it (no timing) · 0 failed");
    // The turn's meta and the summary name the rows alike: steps here, nodes where they ran.
    expect(unitsOf(reported)).toBe("2 steps");
    expect(unitsOf(VIEW)).toBe("3 nodes");
    expect(unitsOf({ ...reported, node_count: 1, nodes: reported.nodes.slice(0, 1) })).toBe("1 step");
    // A timed node among them keeps its bar.
    const mixed = { ...reported, nodes: [...reported.nodes, VIEW.nodes[0]] };
    expect(renderTimeline(mixed, () => undefined).querySelectorAll(".am-bar").length).toBe(1);
  });
});
