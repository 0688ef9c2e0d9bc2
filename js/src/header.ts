// The header: the app's name and version, the system's chip, and the controls over the
// conversation (demo app picker, past conversations, New chat).
import type { Act } from "./commands";
import { h } from "./dom";
import type { Capabilities, ConversationView, HeaderView } from "./protocol";

const CONFIRM_MS = 5000; // how long "Delete the history?" waits for its second click

export type HeaderState = {
  header: HeaderView;
  conversations: ConversationView[];
  capabilities: Capabilities;
  readOnly: boolean; // a saved state: the title only, no controls
};

export class Header {
  readonly el = h("div", { class: "am-header" });
  private confirmingClear = false; // "New chat" on a one-conversation system waits for its second click
  private state: HeaderState | null = null;
  private exportNote = ""; // where the last export went, shown beside the button
  /** Save the conversation as one interactive HTML file (by the kernel); resolves to what to say. */
  exportFile: (() => Promise<string>) | null = null;

  constructor(private act: Act) {}

  render(state: HeaderState): void {
    this.state = state;
    const { header, capabilities: caps } = state;
    const title = h("div", { class: "am-title" },
      h("span", { class: "am-emoji", text: header.app_emoji ?? "" }),
      h("span", { class: "am-app-name", text: header.app_name ?? "Chat" }),
      header.app_version ? h("span", { class: "am-version", text: header.app_version }) : null,
      header.system_label
        ? h("span", { class: "am-system", text: header.system_label, title: `Talking to ${header.system_label}` }) : null,
      header.offline ? h("span", { class: "am-badge", text: "offline demo server",
        title: "An embedded server in this kernel: no key, no network" }) : null);
    const controls = h("div", { class: "am-controls" });
    if (state.readOnly) {
      this.el.replaceChildren(title, controls);
      return;
    }
    if (header.offline && header.demo_apps?.length) {
      const pick = h("select", { class: "am-select am-demo-picker", title: "Demo app", attrs: { "aria-label": "Demo app" } });
      for (const app of header.demo_apps) pick.append(h("option", { text: app.name, attrs: { value: app.slug } }));
      pick.value = header.demo ?? "";
      pick.addEventListener("change", () => this.act("pick_demo", { slug: pick.value }));
      controls.append(pick);
    }
    const conversations = state.conversations;
    const reopen = h("select", { class: "am-select am-conversations", title: "Reopen a past conversation",
      attrs: { "aria-label": "Past conversations" } });
    reopen.append(h("option", { text: `Conversations (${conversations.length})`, attrs: { value: "" } }));
    for (const c of conversations) reopen.append(h("option", { text: c.name || c.id, attrs: { value: c.id } }));
    reopen.value = header.conversation_id && conversations.some((c) => c.id === header.conversation_id)
      ? header.conversation_id : "";
    reopen.addEventListener("change", () => {
      if (reopen.value) this.act("open_conversation", { id: reopen.value });
    });
    reopen.hidden = caps.conversations === false;
    controls.append(reopen, this.freshButton(caps));
    if (this.exportFile) controls.append(this.exportButton(this.exportFile));
    this.el.replaceChildren(title, controls);
  }

  /** "Export": the conversation as one HTML file that works from disk (export.py). */
  private exportButton(exportFile: () => Promise<string>): HTMLElement {
    const button = h("button", { class: "am-btn am-export", text: "Export",
      title: "Save this conversation as one HTML file (read-only, works offline, in the kernel's folder)" });
    const note = h("span", { class: "am-muted am-export-note", text: this.exportNote, attrs: { role: "status" } });
    button.addEventListener("click", () => {
      button.disabled = true;
      note.textContent = "Saving…";
      exportFile().then((said) => { this.exportNote = said; }, (error: unknown) => {
        this.exportNote = `Not saved: ${(error as { view?: { message?: string } })?.view?.message ?? String(error)}`;
      }).finally(() => { button.disabled = false; note.textContent = this.exportNote; note.title = this.exportNote; });
    });
    return h("span", { class: "am-export-slot" }, button, note);
  }

  private redraw(): void {
    if (this.state) this.render(this.state);
  }

  /** "New chat": a new conversation; where the system keeps only one, clearing its history,
   *  which asks to be confirmed by a second click (nothing is deleted by one stray click). */
  private freshButton(caps: Capabilities): HTMLElement {
    if (caps.new_conversation !== "clear") {
      // Only where the list of past conversations shows does this one stay in it.
      const fresh = h("button", { class: "am-btn am-new", text: "New chat",
        title: caps.conversations === false
          ? "Clear the chat and start a new conversation (this system keeps no list to reopen this one from)"
          : "Clear the chat and start a new conversation (this one stays in the list)" });
      fresh.addEventListener("click", () => this.act("new_conversation", {}));
      return fresh;
    }
    const clear = h("button", { class: "am-btn am-new am-clear", text: this.confirmingClear ? "Delete the history?" : "New chat",
      title: "This system keeps one conversation per user and workflow: a new chat deletes its history on the server" });
    clear.classList.toggle("am-danger", this.confirmingClear);
    clear.addEventListener("click", () => {
      if (!this.confirmingClear) {
        this.confirmingClear = true;
        window.setTimeout(() => { this.confirmingClear = false; this.redraw(); }, CONFIRM_MS);
        this.redraw();
        return;
      }
      this.confirmingClear = false;
      this.redraw();
      this.act("new_conversation", {});
    });
    return clear;
  }
}
