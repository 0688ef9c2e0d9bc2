// What an answer may carry under it: the sources it drew on, the files it came with, the
// questions the system suggests asking next, and, for a failed turn, what failed.
import { h } from "./dom";
import { outputsTree } from "./outputs";
import type { ErrorView, TurnView } from "./protocol";
import { safeLink } from "./sanitize";

/** The sources, files and suggested questions under an answer, or null when it has none.
 *  `suggest` asks a suggested question; null shows none (only the last answer offers them). */
export function answerExtras(turn: TurnView, suggest: ((question: string) => void) | null,
  busy: boolean): HTMLElement | null {
  const citations = turn.citations ?? [];
  const files = turn.files ?? [];
  const suggestions = suggest ? turn.suggestions ?? [] : [];
  if (!citations.length && !files.length && !suggestions.length && !turn.outputs) return null;
  const box = h("div", { class: "am-extras" });
  if (turn.outputs) box.append(outputsTree(turn.outputs)); // a workflow run's result
  if (citations.length) {
    const details = h("details", { class: "am-citations" },
      h("summary", { text: `Sources (${citations.length})` }));
    citations.forEach((c, i) => {
      const href = safeLink(c.url);
      const title = href
        ? h("a", { class: "am-citation-title", text: c.title, attrs: { href, target: "_blank", rel: "noopener noreferrer" } })
        : h("span", { class: "am-citation-title", text: c.title });
      const item = h("div", { class: "am-citation" }, h("span", { class: "am-citation-n", text: `[${i + 1}] ` }), title);
      const where = [c.source, c.score === null ? null : `score ${c.score.toFixed(2)}`].filter(Boolean).join(" · ");
      if (where) item.append(h("span", { class: "am-muted", text: ` ${where}` }));
      if (c.snippet && c.snippet !== c.title) item.append(h("div", { class: "am-citation-snippet", text: c.snippet }));
      details.append(item);
    });
    details.addEventListener("click", (e) => e.stopPropagation());
    box.append(details);
  }
  for (const f of files) {
    const href = safeLink(f.url);
    if (href) box.append(h("a", { class: "am-chip am-answer-file", text: `📎 ${f.type}`,
      attrs: { href, target: "_blank", rel: "noopener noreferrer" } }));
  }
  if (suggest && suggestions.length) {
    const chips = h("div", { class: "am-suggestions", attrs: { "aria-label": "Suggested questions" } });
    for (const question of suggestions) {
      const chip = h("button", { class: "am-example am-suggestion", text: question, title: "Ask this" });
      chip.disabled = busy;
      chip.addEventListener("click", (e) => { e.stopPropagation(); suggest(question); });
      chips.append(chip);
    }
    box.append(chips);
  }
  return box;
}

/** A failed turn says what failed, with a link to the failing node in the timeline
 *  (`showNode(messageId, key)`). */
export function errorBox(messageId: string, error: ErrorView,
  showNode: (messageId: string, key: string) => void): HTMLElement {
  const box = h("div", { class: "am-error-box", attrs: { role: "alert" } },
    h("span", { class: "am-error-code", text: error.code }),
    h("span", { class: "am-error-text", text: error.message }));
  const key = error.node_key;
  if (error.node && key) {
    const link = h("button", { class: "am-link am-error-node", text: `in node “${error.node}” ›`,
      title: "Show the failing node in the timeline" });
    link.addEventListener("click", (e) => {
      e.stopPropagation();
      showNode(messageId, key);
    });
    box.append(link);
  }
  return box;
}
