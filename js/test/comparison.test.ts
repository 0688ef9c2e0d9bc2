import { describe, expect, it } from "vitest";

import { renderPair } from "../src/compare";
import evalWidget, { renderRun } from "../src/eval";
import type { ComparisonModel, ComparisonPairView, EvalDetailView } from "../src/protocol";

const PAIR: ComparisonPairView = {
  row: 1, label: "1", query: "<b>Check the inventory</b>", flip: "regressed", error_a: null,
  error_b: "Fetch inventory: 503", scores: [["contains", true, false]],
  compare: { answer_a: [{ op: "del", text: "<img src=x onerror=alert(1)>" }], answer_b: [], truncated: false,
    status_a: "succeeded", status_b: "failed", total_ms_a: 12, total_ms_b: 30,
    rows: [{ node_name: "Fetch inventory", node_type: "http_request", ran_in: "both", status_a: "succeeded",
      status_b: "failed", duration_ms_a: 3, duration_ms_b: 9, output_differs: true, output_a: "ok", output_b: null }] },
};

function fakeModel(state: Partial<ComparisonModel>) {
  const handlers = new Map<string, Set<() => void>>();
  const values: Record<string, unknown> = { ...state };
  return {
    get: (k: string) => values[k],
    set: (k: string, v: unknown) => { values[k] = v; },
    save_changes: () => { for (const fn of handlers.get("change:selected") ?? []) fn(); },
    on: (name: string, fn: () => void) => { if (!handlers.has(name)) handlers.set(name, new Set()); handlers.get(name)!.add(fn); },
    off: (name: string, fn: () => void) => { handlers.get(name)?.delete(fn); },
    values,
  };
}

describe("compare(a, b) in the notebook", () => {
  it("draws an opened row as both runs side by side, hostile text inert", () => {
    const el = renderPair(PAIR);
    expect(el.querySelector(".ae-run-title")?.textContent).toBe("Row 1 · regressed");
    expect(el.querySelector(".ae-q")?.textContent).toBe("<b>Check the inventory</b>");
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector(".am-compare-a del")?.textContent).toBe("<img src=x onerror=alert(1)>");
    expect(el.querySelector(".ac-errors")?.textContent).toContain("B: Fetch inventory: 503");
    expect(el.querySelector(".ac-scores")?.textContent).toBe("contains: ✓ → ✗");
    const node = el.querySelector(".am-compare-row")!;
    expect([...node.querySelectorAll("td")].map((td) => td.textContent)).toEqual(
      ["Fetch inventory", "succeeded", "failed", "3 ms", "9 ms", "≠ differs"]);
  });

  it("lists the verdict and the rows, and a click asks the kernel for that row", () => {
    const model = fakeModel({ title: "Comparison · A: atomemo · B: atomemo", verdict: ["contains: B worse"],
      rows: [{ row: 0, label: "1", query: "q", flip: "regressed", status_a: "succeeded", status_b: "failed",
        answer_changed: true, scores_a: { contains: true }, scores_b: { contains: false } }],
      hidden_rows: 0, score_columns: ["contains"], selected: -1, pair: {} });
    const el = document.createElement("div");
    // The evaluation bundle's one entry draws a comparison when its model has a verdict.
    evalWidget.render({ model, el } as never);
    expect(el.querySelector(".ac-verdict li")?.textContent).toBe("contains: B worse");
    const row = el.querySelector<HTMLElement>("tr.ac-row.ac-regressed")!;
    expect(row.querySelector(".ac-flip")?.textContent).toBe("▼ regressed");
    expect(row.querySelector(".ae-score")?.textContent).toBe("✓ → ✗");
    row.click();
    expect(model.values.selected).toBe(0);
    expect(el.querySelector("tr.ac-row.ae-selected")).not.toBeNull();
  });

  it("lists a repeated row's asks in its run, each opening its own", () => {
    const detail: EvalDetailView = { row: 4, label: "1 · 2/3", tokens: true, turns: [], timelines: [],
      asks: [{ row: 1, label: "1 · 1/3", status: "succeeded", passed: true },
        { row: 4, label: "1 · 2/3", status: "succeeded", passed: false },
        { row: 7, label: "1 · 3/3", status: "failed", passed: null }] };
    const picked: number[] = [];
    const el = renderRun(detail, (row) => picked.push(row));
    const asks = [...el.querySelectorAll<HTMLButtonElement>(".ae-ask")];
    expect(asks.map((b) => b.textContent)).toEqual(["1 · 1/3 ✓", "1 · 2/3 ✗", "1 · 3/3"]);
    expect(asks.map((b) => b.getAttribute("aria-pressed"))).toEqual(["false", "true", "false"]);
    asks[2].click();
    expect(picked).toEqual([7]);
  });
});
