// Like / dislike under an answer, where the system takes a rating (Dify): the kernel sends it.
// Pressing the pressed one again takes the rating back; a comment can go with a rating.
import type { Act } from "./commands";
import { h } from "./dom";
import type { TurnView } from "./protocol";

const commenting = new Set<string>(); // turns whose comment box is open (kept across redraws)

/** The rating buttons of a turn (and its comment box once a rating is chosen). */
export function feedbackButtons(turn: TurnView, act: Act, busy: boolean): HTMLElement {
  const box = h("span", { class: "am-feedback" });
  const rated = turn.feedback ?? null;
  for (const [rating, glyph, label] of [["like", "👍", "Like"], ["dislike", "👎", "Dislike"]] as const) {
    const pressed = rated === rating;
    const button = h("button", { class: `am-action am-feedback-${rating}${pressed ? " am-pressed" : ""}`, text: glyph,
      title: pressed ? `${label}d: click to take it back` : label,
      attrs: { "aria-pressed": String(pressed), "aria-label": label } });
    button.disabled = busy;
    button.addEventListener("click", (e) => {
      e.stopPropagation();
      if (pressed) commenting.delete(turn.id);
      else commenting.add(turn.id);
      act("feedback", { message_id: turn.id, rating: pressed ? null : rating, comment: null });
    });
    box.append(button);
  }
  if (rated && commenting.has(turn.id)) {
    const input = h("input", { class: "am-form-input am-feedback-comment",
      attrs: { type: "text", placeholder: "Add a comment (optional)", "aria-label": "Feedback comment", maxlength: "2000" } });
    const send = h("button", { class: "am-btn am-feedback-send", text: "Send" });
    const submit = () => {
      if (!input.value.trim()) return;
      commenting.delete(turn.id);
      act("feedback", { message_id: turn.id, rating: rated as "like" | "dislike", comment: input.value });
      // The rating stays the same, so no redraw comes: the box goes here.
      input.replaceWith(h("span", { class: "am-muted am-feedback-sent", text: "comment sent" }));
      send.remove();
    };
    send.addEventListener("click", (e) => { e.stopPropagation(); submit(); });
    input.addEventListener("click", (e) => e.stopPropagation());
    input.addEventListener("keydown", (e) => { e.stopPropagation(); if (e.key === "Enter") submit(); });
    box.append(input, send);
  }
  return box;
}
