// A model's thinking, drawn as a collapsed "Thinking…" block: under its node in the timeline,
// above the answer for the answer's own <think> block. It is never part of the answer. A block
// opened while the thinking streams stays open through redraws and streams; when the
// thinking is final it closes (once: opened again, it stays open).
import { h } from "./dom";
import type { ReasoningView } from "./protocol";

type Shown = { open: boolean; final: boolean };
const shown = new Map<string, Shown>(); // block key -> what the reader did with it
const MAX_KEYS = 2_000; // the oldest blocks' state is forgotten past this (they draw closed)

function remember(key: string, state: Shown): void {
  shown.delete(key);
  shown.set(key, state);
  if (shown.size > MAX_KEYS) shown.delete(shown.keys().next().value as string);
}

/** The block for one thought; `key` names it across redraws (a node run's key, an answer's id). */
export function thinkingBlock(key: string, view: ReasoningView, kind: "node" | "answer"): HTMLDetailsElement {
  const before = shown.get(key);
  // Closes when final: a block the reader opened while it streamed closes as the thinking ends.
  const open = Boolean(before?.open) && !(view.final && before && !before.final);
  remember(key, { open, final: view.final });
  const cut = view.chars - view.text.length;
  const label = view.final ? "Thinking" : "Thinking…";
  const count = `${view.chars.toLocaleString()} characters`;
  const details = h("details", { class: `am-thinking am-thinking-${kind}${view.final ? " am-final" : " am-streaming-thought"}` },
    h("summary", { class: "am-thinking-summary" }, h("span", { class: "am-thinking-label", text: label }),
      h("span", { class: "am-muted", text: ` · ${count}` })),
    h("div", { class: "am-thinking-text", text: (cut > 0 ? `… (${cut.toLocaleString()} earlier characters)\n` : "") + view.text }));
  details.open = open;
  details.dataset.key = key;
  details.addEventListener("toggle", () => remember(key, { open: details.open, final: view.final }));
  // A click inside is the reader's, not a pick of the row or the turn around it.
  details.addEventListener("click", (e) => e.stopPropagation());
  return details;
}
