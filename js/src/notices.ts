// What the view says under the conversation: whether the kernel answers, and the last
// error the kernel reported (with the unsent text it kept).
import type { KernelState } from "./commands";
import { h } from "./dom";
import type { NoticeView } from "./protocol";

export class Notices {
  readonly kernelEl = h("div", { class: "am-kernel-slot" });
  readonly noticeEl = h("div", { class: "am-notice-slot" });
  private shown = "";

  /** `restore` puts a failed send's text back in the question box, once per notice. */
  constructor(private restore: (draft: string) => void) {}

  kernel(state: KernelState): void {
    if (state === "answering") { this.kernelEl.replaceChildren(); return; }
    if (state === "busy") {
      this.kernelEl.replaceChildren(h("div", { class: "am-kernel-busy am-muted", attrs: { role: "status" },
        text: "The kernel is busy running a cell: what you asked here is done when the cell ends." }));
      return;
    }
    this.kernelEl.replaceChildren(h("div", { class: "am-kernel-gone", attrs: { role: "alert" },
      text: "The kernel does not answer: it may have restarted or stopped. Re-run the cell to reconnect; "
        + "your typed text is kept." }));
  }

  notice(notice: NoticeView): void {
    if (!notice.code && !notice.message) { this.noticeEl.replaceChildren(); this.shown = ""; return; }
    this.noticeEl.replaceChildren(h("div", { class: "am-notice", attrs: { role: "alert" } },
      h("span", { class: "am-error-code", text: notice.code ?? "error" }),
      h("span", { class: "am-error-text", text: notice.message ?? "" })));
    const signature = `${notice.code}|${notice.message}|${notice.draft}`;
    if (signature !== this.shown) {
      this.shown = signature;
      if (notice.draft) this.restore(notice.draft);
    }
  }
}
