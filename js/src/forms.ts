// The form a paused run waits on (Dify's Human Input): its markdown drawn sanitized like an
// answer (scripts gone, remote images held), its inputs as real form fields, its actions as
// buttons, and the time left. Submitting sends the answer to the kernel, which posts it: the
// form's token never reaches the browser.
import type { Act } from "./commands";
import { h } from "./dom";
import { renderMarkdown } from "./markdown";
import type { FormView, TurnView } from "./protocol";

const PLACEHOLDER = /\{\{#\$output\.([A-Za-z0-9_]+)#\}\}/g; // where an input's answer goes in the content

/** "12 min left", "expired": the time left to answer, by the server's clock as the browser reads it. */
export function timeLeft(expiresAt: number | null, now = Date.now() / 1000): string {
  if (expiresAt === null) return "";
  const left = Math.round(expiresAt - now);
  if (left <= 0) return "expired";
  if (left < 120) return `${left} s left`;
  if (left < 7200) return `${Math.round(left / 60)} min left`;
  return `${Math.round(left / 3600)} h left`;
}

const TICK_MS = 1000;
const UNSEEN_TICKS = 10; // a form never put on the page stops its clock after this many ticks

/** Keeps the form's time left true while it is on the page: the words each second, and at the
 *  deadline the buttons off. Stops once the form has left the page (a re-render drew another). */
function keepTime(box: HTMLElement, left: HTMLElement, form: FormView, buttons: () => HTMLButtonElement[]): void {
  if (form.expires_at === null || timeLeft(form.expires_at) === "expired") return;
  let seen = false;
  let unseen = 0;
  const timer = setInterval(() => {
    if (!box.isConnected) {
      if (seen || ++unseen > UNSEEN_TICKS) clearInterval(timer);
      return;
    }
    seen = true;
    const text = timeLeft(form.expires_at);
    left.textContent = ` waiting for you · ${text}`;
    if (text === "expired") {
      for (const b of buttons()) b.disabled = true;
      box.classList.add("am-form-expired");
      clearInterval(timer);
    }
  }, TICK_MS);
}

function field(form: FormView, f: FormView["fields"][number]): HTMLElement {
  const id = `am-form-${form.form_id}-${f.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
  let input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
  if (f.type === "paragraph") {
    input = h("textarea", { class: "am-form-input", attrs: { rows: "3" } });
  } else if (f.type === "select" && f.options.length) {
    input = h("select", { class: "am-form-input" }, ...f.options.map((o) => h("option", { text: o, attrs: { value: o } })));
  } else {
    input = h("input", { class: "am-form-input", attrs: { type: f.type === "number" ? "number" : "text" } });
  }
  input.id = id;
  input.name = f.name;
  if (f.default !== null) input.value = f.default;
  return h("div", { class: "am-form-field" }, h("label", { text: f.name, attrs: { for: id } }), input);
}

/** The form under a waiting turn; `act` sends the answer (null: a saved, read-only view). */
export function formBlock(turn: TurnView, form: FormView, act: Act | null, busy: boolean): HTMLElement {
  const content = h("div", { class: "am-form-content am-md" });
  content.append(renderMarkdown(form.content.replace(PLACEHOLDER, (_, name: string) => `[${name}]`), false));
  const left = h("span", { class: "am-muted am-form-left",
    text: ` waiting for you${form.expires_at !== null ? ` · ${timeLeft(form.expires_at)}` : ""}` });
  const box = h("div", { class: "am-form", attrs: { role: "group", "aria-label": `Form: ${form.node_title}` } },
    h("div", { class: "am-form-head" }, h("strong", { text: `✋ ${form.node_title}` }), left),
    content);
  box.addEventListener("click", (e) => e.stopPropagation()); // typing in the form is not a pick of the turn
  if (form.refused) {
    box.append(h("div", { class: "am-form-refused", attrs: { role: "note" }, text: form.refused }));
    return box;
  }
  const fields = form.fields.map((f) => field(form, f));
  box.append(...fields);
  const buttons = h("div", { class: "am-form-actions" });
  for (const action of form.actions) {
    const button = h("button", { class: `am-btn am-form-action${action.style === "primary" ? " am-primary" : ""}`,
      text: action.title || action.id });
    button.dataset.action = action.id;
    button.disabled = busy || act === null || timeLeft(form.expires_at) === "expired";
    button.addEventListener("click", () => {
      if (!act) return;
      const inputs: Record<string, string> = {};
      for (const el of Array.from(box.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>(".am-form-input"))) {
        inputs[el.name] = el.value;
      }
      for (const b of Array.from(buttons.querySelectorAll("button"))) (b as HTMLButtonElement).disabled = true;
      act("respond", { message_id: turn.id, action: action.id, inputs });
    });
    buttons.append(button);
  }
  box.append(buttons);
  if (act !== null) keepTime(box, left, form, () => Array.from(buttons.querySelectorAll("button")));
  return box;
}
