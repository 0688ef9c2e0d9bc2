// The Compare tab: two replies side by side (siblings after regenerate or edit, or any two
// turns): the answers with a word-level diff, and their node runs aligned, with statuses,
// durations and the outputs that differ marked. The kernel diffs and aligns; this draws text.
// Also compare(a, b) of two evaluations (ComparisonWidget): its verdict, its rows (those that
// regressed first), and the row one opens drawn as two replies are here.
import type { RenderProps } from "@anywidget/types";

import { CommandClient, CommandError } from "./commands";
import { activates, formatMs, h } from "./dom";
import type { ComparisonModel, ComparisonPairView, ComparisonRowView, CompareResult, CompareRowView, SegmentView,
  TurnView, VersionView } from "./protocol";

const LABEL_CHARS = 48;

const cut = (text: string, chars: number) => (text.length > chars ? `${text.slice(0, chars)}…` : text);

function label(turn: TurnView, index: number): string {
  const count = turn.siblings.count > 1 ? ` (v${turn.siblings.index + 1}/${turn.siblings.count})` : "";
  return `${index + 1}${count}. ${cut(turn.query, LABEL_CHARS)}`;
}

/** Another version of a turn, by its own question and the start of its own answer. */
function versionLabel(version: VersionView, index: number, at: number, count: number): string {
  const answer = version.answer.replace(/\s+/g, " ").trim();
  return `${index + 1} (v${at + 1}/${count}). ${cut(version.query, LABEL_CHARS)}${answer ? ` → ${cut(answer, 32)}` : ""}`;
}

function answerEl(segments: SegmentView[], side: "a" | "b"): HTMLElement {
  const box = h("div", { class: `am-compare-answer am-compare-${side}` });
  for (const s of segments) {
    box.append(s.op === "same" ? document.createTextNode(s.text)
      : h(s.op === "del" ? "del" : "ins", { class: `am-diff-${s.op}`, text: s.text }));
  }
  return box;
}

function rowEl(row: CompareRowView, show: (row: CompareRowView) => void): HTMLElement {
  const tr = h("tr", { class: `am-compare-row${row.output_differs ? " am-differs" : ""} am-ran-${row.ran_in.replace(" ", "-")}`,
    attrs: { tabindex: "0", role: "button" } },
  h("td", { text: row.node_name, title: row.node_type }),
  h("td", { class: `am-status-${row.status_a ?? "none"}`, text: row.status_a ?? "did not run" }),
  h("td", { class: `am-status-${row.status_b ?? "none"}`, text: row.status_b ?? "did not run" }),
  h("td", { class: "am-num", text: formatMs(row.duration_ms_a) }),
  h("td", { class: "am-num", text: formatMs(row.duration_ms_b) }),
  h("td", { text: row.output_differs ? "≠ differs" : row.ran_in === "both" ? "same" : row.ran_in }));
  activates(tr, () => show(row));
  return tr;
}

export function renderCompare(result: CompareResult): HTMLElement {
  const outputs = h("div", { class: "am-compare-outputs" });
  const show = (row: CompareRowView) => outputs.replaceChildren(
    h("div", { class: "am-detail-title", text: `${row.node_name}: outputs` }),
    h("div", { class: "am-compare-pair" },
      h("pre", { class: "am-compare-output", text: row.output_a ?? "(did not run)" }),
      h("pre", { class: "am-compare-output", text: row.output_b ?? "(did not run)" })));
  const table = h("table", { class: "am-compare-table" },
    h("thead", {}, h("tr", {}, ...["node", "A", "B", "A time", "B time", "output"].map((t) => h("th", { text: t })))),
    h("tbody", {}, ...result.rows.map((row) => rowEl(row, show))));
  const heads = h("div", { class: "am-compare-pair am-compare-heads" },
    h("div", { class: "am-muted", text: `A · ${result.status_a ?? "?"} · ${formatMs(result.total_ms_a)}` }),
    h("div", { class: "am-muted", text: `B · ${result.status_b ?? "?"} · ${formatMs(result.total_ms_b)}` }));
  return h("div", { class: "am-compare-result" }, heads,
    h("div", { class: "am-compare-pair" }, answerEl(result.answer_a, "a"), answerEl(result.answer_b, "b")),
    result.truncated ? h("div", { class: "am-muted", text: "The answers are long: their ends are compared whole." }) : null,
    result.rows.length ? table : h("div", { class: "am-muted", text: "No node runs to compare (not streamed here)." }),
    outputs);
}

export class CompareView {
  readonly el: HTMLElement;
  private a = h("select", { class: "am-compare-pick", attrs: { "aria-label": "Reply A" } });
  private b = h("select", { class: "am-compare-pick", attrs: { "aria-label": "Reply B" } });
  private body = h("div", { class: "am-compare-body" });
  private asked = 0;

  constructor(private commands: CommandClient) {
    this.el = h("div", { class: "am-compare" },
      h("div", { class: "am-compare-controls" }, h("span", { text: "A " }), this.a, h("span", { text: " B " }), this.b),
      this.body);
    this.a.addEventListener("change", () => void this.run());
    this.b.addEventListener("change", () => void this.run());
  }

  /** The replies one may pick: the turns shown, and the other versions of each. */
  setChoices(turns: TurnView[]): void {
    const keepA = this.a.value, keepB = this.b.value;
    const options: [string, string][] = [];
    turns.forEach((turn, i) => {
      options.push([turn.id, label(turn, i)]);
      const versions = turn.siblings.versions ?? [];
      versions.forEach((version, at) => {
        if (!options.some(([id]) => id === version.id)) {
          options.push([version.id, versionLabel(version, i, at + Math.max(0, turn.siblings.index
            - versions.findIndex((v) => v.id === turn.id)), turn.siblings.count)]);
        }
      });
      // A transcript saved before versions were named: the neighbours, by id only.
      if (!versions.length) {
        for (const other of [turn.siblings.prev, turn.siblings.next]) {
          if (other && !options.some(([id]) => id === other)) options.push([other, `${i + 1}. (another version)`]);
        }
      }
    });
    for (const select of [this.a, this.b]) {
      select.replaceChildren(...options.map(([id, text]) => h("option", { text, attrs: { value: id } })));
    }
    const ids = options.map(([id]) => id);
    const last = turns[turns.length - 1];
    const sibling = last ? last.siblings.prev ?? last.siblings.next : null;
    const defaultA = sibling ?? (turns.length > 1 ? turns[turns.length - 2].id : last?.id ?? "");
    this.a.value = ids.includes(keepA) ? keepA : defaultA;
    this.b.value = ids.includes(keepB) ? keepB : last?.id ?? "";
  }

  async run(): Promise<void> {
    const a = this.a.value, b = this.b.value;
    if (!a || !b) {
      this.body.replaceChildren(h("div", { class: "am-muted", text: "Ask something first: there is nothing to compare." }));
      return;
    }
    const asked = ++this.asked;
    try {
      const result = await this.commands.call("compare", { a, b });
      if (asked === this.asked) this.body.replaceChildren(renderCompare(result));
    } catch (err) {
      const message = err instanceof CommandError ? err.view.message : String(err);
      if (asked === this.asked) this.body.replaceChildren(h("div", { class: "am-error-text", text: message }));
    }
  }
}

// -- compare(a, b) of two evaluations -------------------------------------------------------------

const FLIP_TEXT: Record<string, string> = { regressed: "▼ regressed", improved: "▲ improved", "": "" };

function scoreText(value: number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "✓" : "✗";
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function pairedRowEl(row: ComparisonRowView, scores: string[], selected: boolean, pick: (row: number) => void): HTMLElement {
  const tr = h("tr", { class: `ae-row ac-row${row.flip ? ` ac-${row.flip}` : ""}${selected ? " ae-selected" : ""}`,
    attrs: { tabindex: "0", role: "button", "aria-label": `Open row ${row.label}: both runs side by side` } },
  h("td", { class: "ae-n", text: row.label }),
  h("td", { class: "ac-flip", text: FLIP_TEXT[row.flip] ?? "" }),
  h("td", { class: "ae-query", text: row.query, title: row.query }),
  h("td", { class: `am-status-${row.status_a}`, text: row.status_a }),
  h("td", { class: `am-status-${row.status_b}`, text: row.status_b }),
  h("td", { text: row.answer_changed ? "≠" : "=" }),
  ...scores.map((name) => h("td", { class: "ae-score",
    text: `${scoreText(row.scores_a[name])} → ${scoreText(row.scores_b[name])}` })));
  tr.dataset.row = String(row.row);
  tr.addEventListener("click", () => pick(row.row));
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(row.row); });
  return tr;
}

/** One paired row opened: what it asked, each run's error and scores, then both runs as the
 * Compare tab draws two replies. */
export function renderPair(pair: ComparisonPairView): HTMLElement {
  const box = h("div", { class: "ac-pair" },
    h("div", { class: "ae-run-title", text: `Row ${pair.label ?? pair.row ?? ""}${pair.flip ? ` · ${pair.flip}` : ""}` }),
    h("div", { class: "ae-q", text: pair.query ?? "" }));
  if (pair.error_a || pair.error_b) {
    box.append(h("div", { class: "am-compare-pair ac-errors" },
      h("div", { class: "am-error-text", text: pair.error_a ? `A: ${pair.error_a}` : "" }),
      h("div", { class: "am-error-text", text: pair.error_b ? `B: ${pair.error_b}` : "" })));
  }
  if (pair.scores?.length) {
    box.append(h("div", { class: "am-muted ac-scores",
      text: pair.scores.map(([name, a, b]) => `${name}: ${scoreText(a)} → ${scoreText(b)}`).join(" · ") }));
  }
  if (pair.compare) box.append(renderCompare(pair.compare));
  return box;
}

export function renderComparison({ model, el }: RenderProps<ComparisonModel>): () => void {
  const table = h("table", { class: "ae-table ac-table" });
  const note = h("div", { class: "am-muted ae-note" });
  const verdict = h("ul", { class: "ac-verdict" });
  const pairBox = h("div", { class: "ae-detail ac-detail" });
  const root = h("div", { class: "am-root ac-root" }, h("div", { class: "ae-head" },
    h("strong", { text: model.get("title") })), verdict, h("div", { class: "ae-scroll" }, table), note, pairBox);
  el.append(root);
  root.addEventListener("keydown", (e) => e.stopPropagation()); // JupyterLab would take Enter as its own

  const pick = (row: number) => { model.set("selected", row); model.save_changes(); };
  const drawTable = () => {
    verdict.replaceChildren(...model.get("verdict").map((line) => h("li", { text: line })));
    const scores = model.get("score_columns");
    const selected = model.get("selected");
    table.replaceChildren(
      h("thead", {}, h("tr", {}, ...["#", "change", "question", "A", "B", "answer", ...scores.map((s) => `${s} A → B`)]
        .map((name) => h("th", { text: name })))),
      h("tbody", {}, ...model.get("rows").map((row) => pairedRowEl(row, scores, row.row === selected, pick))));
    const hidden = model.get("hidden_rows");
    note.textContent = hidden ? `${hidden} more rows are not drawn here: comparison.df has every row` : "";
  };
  const drawPair = () => {
    const pair = model.get("pair");
    pairBox.replaceChildren(pair && pair.compare ? renderPair(pair) : h("div", { class: "am-muted",
      text: "Click a row to see both runs side by side: the answers and the node runs." }));
  };
  drawTable(); drawPair();
  model.on("change:rows", drawTable);
  model.on("change:selected", drawTable);
  model.on("change:pair", drawPair);
  return () => {
    model.off("change:rows", drawTable);
    model.off("change:selected", drawTable);
    model.off("change:pair", drawPair);
  };
}
