// The composer: the question box, Send and Stop, the attached file's chip and the trigger
// inputs form. It says what the user asked for through hooks; whether a send may go is the
// view's to decide.
import type { Act } from "./commands";
import { h } from "./dom";
import type { AttachmentView, Capabilities, HeaderView } from "./protocol";

export type ComposerHooks = {
  send(): void; // Enter or Send: the typed text
  stop(): void; // Stop (Esc is the view's: it works from anywhere in the widget)
  draft(text: string): void; // the typed text changed: kept for the next view of the model
  act: Act;
};

export class Composer {
  private input = h("textarea", {
    class: "am-input",
    attrs: { rows: "2", placeholder: "Ask something… (Enter sends, Shift+Enter new line, Esc stops)",
      "aria-label": "Your question" },
  });
  private sendBtn = h("button", { class: "am-btn am-primary am-send", text: "Send", title: "Send (Enter)" });
  private stopBtn = h("button", { class: "am-btn am-stop", text: "■ Stop", title: "Stop (Esc)",
    attrs: { "aria-label": "Stop" } });
  private attachBtn = h("button", { class: "am-btn am-attach", text: "📎", title: "Attach a file",
    attrs: { "aria-label": "Attach a file" } });
  private fileInput = h("input", { attrs: { type: "file" } });
  private chip = h("div", { class: "am-chip-slot" });
  private inputsToggle = h("button", { class: "am-btn", text: "⚙ Inputs", title: "Trigger inputs",
    attrs: { "aria-label": "Trigger inputs" } });
  private inputsForm = h("div", { class: "am-inputs" });
  readonly el = h("div", { class: "am-composer" },
    this.chip, this.inputsForm,
    h("div", { class: "am-composer-row" }, this.attachBtn, this.fileInput, this.input,
      h("div", { class: "am-composer-buttons" }, this.sendBtn, this.stopBtn, this.inputsToggle)));

  constructor(private hooks: ComposerHooks) {
    this.fileInput.hidden = true;
    this.inputsForm.hidden = true;
  }

  /** Listens to its controls: only a live view does (a saved state's composer is hidden). */
  wire(): void {
    this.sendBtn.addEventListener("click", () => this.hooks.send());
    this.stopBtn.addEventListener("click", () => this.hooks.stop());
    this.input.addEventListener("keydown", (e) => {
      // Enter (or Ctrl/Cmd+Enter) sends; Shift+Enter is a new line, as the placeholder says.
      if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing) {
        e.preventDefault();
        this.hooks.send();
      }
    });
    this.input.addEventListener("input", () => this.hooks.draft(this.input.value));
    this.attachBtn.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => void this.attach());
    this.inputsToggle.addEventListener("click", () => { this.inputsForm.hidden = !this.inputsForm.hidden; });
  }

  get text(): string {
    return this.input.value;
  }

  set text(value: string) {
    this.input.value = value;
  }

  focus(): void {
    this.input.focus();
  }

  /** After a send: empty (the text comes back from notice.draft if the send fails). */
  clear(): void {
    this.input.value = "";
    this.hooks.draft("");
  }

  /** The unsent text is never lost: back into the box if the box is empty. */
  restore(draft: string): void {
    if (draft && !this.input.value) this.input.value = draft;
  }

  private busy = false;
  private runMode = false; // a workflow app: the inputs form is the message, Run sends it

  render(busy: boolean, caps: Capabilities, readOnly: boolean): void {
    this.busy = busy;
    this.sendBtn.hidden = busy || this.runMode;
    this.stopBtn.hidden = !busy;
    this.stopBtn.title = caps.stop === "client"
      ? "Stop listening (Esc). This system cannot cancel a run: the workflow may still finish on the server."
      : "Stop (Esc)";
    this.attachBtn.disabled = busy;
    this.attachBtn.hidden = !caps.files || this.runMode; // a workflow app's run takes its inputs only
    this.el.hidden = readOnly;
  }

  renderAttachment(file: AttachmentView): void {
    if (!file.filename) { this.chip.replaceChildren(); return; }
    const remove = h("button", { class: "am-chip-x", text: "×", title: "Remove attachment",
      attrs: { "aria-label": "Remove attachment" } });
    remove.addEventListener("click", () => this.hooks.act("detach", {}));
    this.chip.replaceChildren(h("span", { class: "am-chip am-attachment" },
      `📎 ${file.filename} (${file.size ?? 0} B)`, remove,
      h("span", { class: "am-muted", text: " sent with the next message" })));
  }

  renderInputs(header: HeaderView): void {
    const variables = (header.variables ?? []).filter((v) => !v.hidden);
    this.runMode = Boolean(header.takes_inputs);
    this.inputsToggle.hidden = variables.length === 0 || this.runMode;
    this.input.hidden = this.runMode;
    this.sendBtn.hidden = this.busy || this.runMode;
    if (this.runMode) this.attachBtn.hidden = true;
    if (this.runMode) this.inputsForm.hidden = false;
    const running = this.inputsForm.querySelector<HTMLButtonElement>(".am-run");
    if (running) running.disabled = this.busy;
    if (!variables.length) { this.inputsForm.replaceChildren(); return; }
    if (this.inputsForm.contains(document.activeElement)) return; // don't clobber typing
    const inputs = header.inputs ?? {};
    const fields = variables.map((v) => {
      const field = h("input", { class: "am-field", attrs: { type: v.type === "number" ? "number" : "text" } });
      field.dataset.variable = v.variable;
      field.value = inputs[v.variable] === undefined ? "" : String(inputs[v.variable]);
      if (v.maxLength) field.maxLength = v.maxLength;
      return h("label", { class: "am-label" }, `${v.label}${v.required ? " *" : ""}`, field);
    });
    // A workflow app's run is asked with the form (Run); a chat's inputs go with the next question (Apply).
    const apply = this.runMode
      ? h("button", { class: "am-btn am-primary am-run", text: "▶ Run", title: "Run the workflow with these inputs" })
      : h("button", { class: "am-btn", text: "Apply" });
    apply.disabled = this.runMode && this.busy;
    apply.addEventListener("click", () => {
      const values: Record<string, string> = {};
      for (const field of Array.from(this.inputsForm.querySelectorAll<HTMLInputElement>("input.am-field"))) {
        values[field.dataset.variable ?? ""] = field.value;
      }
      this.hooks.act(this.runMode ? "run" : "set_inputs", { inputs: values });
    });
    this.inputsForm.replaceChildren(...fields, apply);
  }

  private async attach(): Promise<void> {
    const file = this.fileInput.files?.[0];
    if (!file) return;
    const data = await file.arrayBuffer();
    this.hooks.act("attach", { filename: file.name, mime_type: file.type || null }, [data]);
    this.fileInput.value = "";
  }
}
