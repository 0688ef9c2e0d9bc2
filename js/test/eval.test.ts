import { describe, expect, it } from "vitest";

import { answerPreview, progressText, renderRun } from "../src/eval";
import type { EvalDetailView, EvalModel } from "../src/protocol";

describe("EvalWidget views", () => {
  it("says how far the evaluation is, with the time left while it runs", () => {
    const progress = { total: 10, done: 4, failed: 1, running: 2, stopped: 0, rows_per_s: 2.5, elapsed_s: 1.6,
      eta_s: 2.4, finished: false, error: null, waiting: null };
    const model = { get: (k: keyof EvalModel) => (k === "progress" ? progress : undefined) } as never;
    expect(progressText(model)).toBe("4/10 done · 1 failed · 2 running · 2.5 rows/s · about 3 s left");
    const done = { ...progress, done: 10, running: 0, stopped: 0, eta_s: null, finished: true };
    const finished = { get: () => done } as never;
    expect(progressText(finished)).toBe("10/10 done · 1 failed · 0 running · 2.5 rows/s · finished");
    const broken = { ...done, done: 3, error: "OSError: [Errno 28] No space left on device" };
    expect(progressText({ get: () => broken } as never)).toBe("3/10 done · 1 failed · 0 running · 2.5 rows/s"
      + " · finished · ✗ the evaluation failed: OSError: [Errno 28] No space left on device");
    const repeated = { ...done, total: 12, done: 12, repeats: 3, rows_done: 4, rows_total: 4 };
    expect(progressText({ get: () => repeated } as never)).toBe("12/12 asks (4/4 rows × 3) done · 1 failed · 0 running"
      + " · 2.5 asks/s · finished");
    const queued = { ...progress, done: 0, running: 0, eta_s: null, waiting: "another evaluation is writing e.jsonl" };
    expect(progressText({ get: () => queued } as never)).toBe("0/10 done · 1 failed · 0 running · 2.5 rows/s"
      + " · waiting: another evaluation is writing e.jsonl");
  });

  it("draws a row's run: hostile answers inert, the failed node marked", () => {
    const detail: EvalDetailView = {
      row: 3, tokens: true,
      turns: [{ query: "<b>q</b>", answer: "<img src=x onerror=alert(1)> **ok**", status: "failed", error: "boom" }],
      timelines: [{ message_id: "m", execution_id: "x", status: "failed", execution_status: "failed", ttft_ms: null,
        total_ms: 10, node_count: 1, failures: 1, anomalies: [],
        nodes: [{ key: "k", node_id: "n", name: "Fetch", type: "http_request", status: "failed", start_ms: 0,
          end_ms: 10, duration_ms: 10, error: "503", output: null, out_ports: [], anomaly: null, depth: 0, tools: [] }] }],
    };
    const el = renderRun(detail);
    expect(el.querySelector(".ae-run-title")?.textContent).toBe("Row 3");
    expect(el.querySelector(".ae-q")?.textContent).toBe("<b>q</b>");
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector(".am-answer strong")?.textContent).toBe("ok");
    expect(el.querySelector(".am-answer")?.classList.contains("am-md")).toBe(true); // the answer styles apply
    // The table cell shows the answer read, not its markdown.
    expect(answerPreview("**Starter** costs $9.\n\n| Plan | Price |\n|---|---|\n| Team | $49 |")).toBe(
      "Starter costs $9. Plan Price Team $49");
    expect(answerPreview("x".repeat(5000)).length).toBe(300);
    expect(el.querySelector(".am-node.am-status-failed .am-row-name")?.textContent).toContain("Fetch");
  });
});
