// EvalWidget's front end: the live results table of evaluate() (progress, Stop), and the
// run of the row one clicks (its answer and timeline). Everything shown goes in as text,
// answers through the same markdown renderer and sanitizer as the chat.
import type { AnyModel, RenderProps } from "@anywidget/types";

import { activates, formatMs, h } from "./dom";
import { renderMarkdown } from "./markdown";
import { renderComparison } from "./compare";
import type { ComparisonModel, EvalDetailView, EvalModel, EvalRowView } from "./protocol";
import { renderDetail, renderTimeline } from "./timeline";

function scoreText(value: number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "✓" : "✗";
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export function progressText(model: AnyModel<EvalModel>): string {
  const p = model.get("progress");
  const eta = p.eta_s === null ? "" : ` · about ${Math.ceil(p.eta_s)} s left`;
  const stopped = p.stopped ? ` · ${p.stopped} stopped` : "";
  // The run's own failure (its cache, the app) ended it: said here, as wait() raises it in Python.
  const failure = p.error ? ` · ✗ the evaluation failed: ${p.error}` : p.waiting ? ` · waiting: ${p.waiting}` : "";
  // With repeats the counts are asks; the rows (each asked `repeats` times) are said beside them.
  const asks = p.repeats ? ` asks (${p.rows_done ?? 0}/${p.rows_total ?? 0} rows × ${p.repeats})` : "";
  return `${p.done}/${p.total}${asks} done · ${p.failed} failed · ${p.running} running${stopped} · `
    + `${p.rows_per_s.toFixed(1)} ${asks ? "asks" : "rows"}/s${eta}${p.finished ? " · finished" : ""}${failure}`;
}

const PREVIEW_CHARS = 300;

/** An answer as one line of plain text for its table cell: its markdown read, not shown raw
 * (pipes, asterisks); the whole answer is drawn as markdown in the row's run. */
export function answerPreview(markdown: string): string {
  const text = renderMarkdown(markdown.slice(0, PREVIEW_CHARS * 2)).textContent ?? "";
  return text.replace(/\s+/g, " ").trim().slice(0, PREVIEW_CHARS);
}

function rowEl(row: EvalRowView, scores: string[], selected: boolean, pick: (row: number) => void): HTMLElement {
  const tr = h("tr", { class: `ae-row am-status-${row.status}${selected ? " ae-selected" : ""}`,
    attrs: { tabindex: "0", role: "button", "aria-label": `Open row ${row.label}` } },
  h("td", { class: "ae-n", text: row.label }),
  h("td", { class: "ae-status", text: row.status }),
  h("td", { class: "ae-query", text: row.query, title: row.query }),
  h("td", { class: "ae-answer", text: row.error ? `⚠ ${row.error}` : answerPreview(row.answer),
    title: row.error ?? answerPreview(row.answer) }),
  h("td", { class: "ae-node", text: row.failed_node ?? "" }),
  h("td", { class: "ae-time", text: row.total_s === null ? "–" : formatMs(row.total_s * 1000) }),
  ...scores.map((name) => h("td", { class: "ae-score", text: scoreText(row.scores[name]) })));
  tr.dataset.row = String(row.row);
  activates(tr, () => pick(row.row));
  return tr;
}

/** A repeated row's k asks, the open one pressed: each opens its own run. */
function asksEl(detail: EvalDetailView, pick: (row: number) => void): HTMLElement | null {
  if (!detail.asks?.length) return null;
  return h("div", { class: "ae-asks", attrs: { role: "group", "aria-label": "Every ask of this row" } },
    h("span", { class: "am-muted", text: `${detail.asks.length} asks: ` }),
    ...detail.asks.map((ask) => {
      const mark = ask.passed === null ? "" : ask.passed ? " ✓" : " ✗";
      const button = h("button", { class: `am-btn ae-ask am-status-${ask.status}`, text: `${ask.label}${mark}`,
        title: `${ask.status}${ask.passed === null ? "" : ask.passed ? ", passed" : ", did not pass"}`,
        attrs: { "aria-pressed": String(ask.row === detail.row) } });
      button.dataset.row = String(ask.row);
      button.addEventListener("click", () => pick(ask.row));
      return button;
    }));
}

export function renderRun(detail: EvalDetailView, pick: (row: number) => void = () => {}): HTMLElement {
  const box = h("div", { class: "ae-run" }, h("div", { class: "ae-run-title", text: `Row ${detail.label ?? detail.row ?? ""}` }),
    asksEl(detail, pick));
  const panel = h("div", { class: "am-detail-panel" });
  for (const turn of detail.turns ?? []) {
    const answer = h("div", { class: "am-answer am-md" });
    answer.append(renderMarkdown(turn.answer));
    box.append(h("div", { class: `ae-turn am-turn-${turn.status}` },
      h("div", { class: "ae-q", text: turn.query }),
      answer,
      h("div", { class: "am-meta" }, h("span", { class: `am-status am-status-${turn.status}`, text: turn.status }),
        turn.error ? h("span", { class: "am-error-text", text: ` ${turn.error}` }) : null)));
  }
  for (const view of detail.timelines ?? []) {
    box.append(renderTimeline(view, (_, local) => panel.replaceChildren(renderDetail(local)), detail.tokens ?? true));
  }
  box.append(panel);
  return box;
}

function render({ model, el }: RenderProps<EvalModel>): () => void {
  const root = h("div", { class: "am-root ae-root" });
  const bar = h("div", { class: "ae-bar" }, h("div", { class: "ae-fill" }));
  const status = h("span", { class: "ae-progress", attrs: { "aria-live": "polite" } });
  const stop = h("button", { class: "am-btn am-stop ae-stop", text: "■ Stop",
    title: "Stop the evaluation: rows not asked yet are not asked; finished rows stay" });
  stop.addEventListener("click", () => model.send({ type: "stop" }));
  const table = h("table", { class: "ae-table" });
  const note = h("div", { class: "am-muted ae-note" });
  const run = h("div", { class: "ae-detail" });
  root.append(h("div", { class: "ae-head" }, h("strong", { text: `Evaluation · ${model.get("system")}` }), status, stop),
    bar, h("div", { class: "ae-scroll" }, table), note, run);
  el.append(root);
  // Keys pressed in the table stay in it: JupyterLab would take Enter, D D, A, B... as its own.
  root.addEventListener("keydown", (e) => e.stopPropagation());

  const pick = (row: number) => { model.set("selected", row); model.save_changes(); };
  const drawProgress = () => {
    const p = model.get("progress");
    status.textContent = progressText(model);
    status.classList.toggle("am-error-text", Boolean(p.error));
    (bar.firstChild as HTMLElement).style.width = `${p.total ? (100 * p.done) / p.total : 100}%`;
    stop.hidden = p.finished;
  };
  const drawTable = () => {
    const scores = model.get("score_columns");
    const selected = model.get("selected");
    const head = h("tr", {}, ...["#", "status", "question", "answer / error", "failed node", "time", ...scores]
      .map((name) => h("th", { text: name })));
    table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...model.get("rows")
      .map((row) => rowEl(row, scores, row.row === selected, pick))));
    const hidden = model.get("hidden_rows");
    note.textContent = hidden ? `${hidden} succeeded rows are not drawn here: results.df has every row` : "";
  };
  // "Export this row": its run as one interactive HTML file, written by the kernel (export.py).
  const exported = h("span", { class: "am-muted am-export-note", attrs: { role: "status" } });
  const exportRow = h("button", { class: "am-btn am-export ae-export", text: "Export this row",
    title: "Save this row's run as one HTML file (read-only, works offline, in the kernel's folder)" });
  exportRow.addEventListener("click", () => {
    exported.textContent = "Saving…";
    model.send({ type: "export", row: model.get("selected") });
  });
  const onMessage = (msg: { type?: string; path?: string; error?: string }) => {
    if (msg?.type === "exported") exported.textContent = msg.path ? `Saved ${msg.path}` : `Not saved: ${msg.error ?? ""}`;
  };
  model.on("msg:custom", onMessage);
  const drawRun = () => {
    const detail = model.get("detail");
    exported.textContent = "";
    run.replaceChildren(...(detail && detail.turns ? [h("div", { class: "ae-export-row" }, exportRow, exported),
      renderRun(detail, pick)] : [h("div", { class: "am-muted", text: "Click a row to see its answer and timeline." })]));
  };
  drawProgress(); drawTable(); drawRun();
  model.on("change:progress", drawProgress);
  model.on("change:rows", drawTable);
  model.on("change:score_columns", drawTable);
  model.on("change:selected", drawTable);
  model.on("change:detail", drawRun);
  return () => {
    model.off("change:progress", drawProgress);
    model.off("change:rows", drawTable);
    model.off("change:score_columns", drawTable);
    model.off("change:selected", drawTable);
    model.off("change:detail", drawRun);
    model.off("msg:custom", onMessage);
  };
}

// ComparisonWidget ships in this bundle too (one evaluation front end): its model has a verdict.
export default {
  render: (props: RenderProps<EvalModel>) => (props.model.get("verdict" as never) === undefined ? render(props)
    : renderComparison(props as unknown as RenderProps<ComparisonModel>)),
};
