// The widget in a file of its own (export_html(interactive=True), views/export.py): the same
// widget, over a model read from the page's embedded data instead of a kernel (exported.ts).
import type { AnyModel } from "@anywidget/types";

import { type Exported, ExportedModel } from "./exported";
import { layouts } from "./layouts";
import type { Model } from "./protocol";
import widget from "./widget";

/** Draw the exported conversation into `el` from the page's data. */
export function mount(el: HTMLElement, data: Exported): () => void {
  const model = new ExportedModel(data) as unknown as AnyModel<Model>;
  return widget.render({ model, el } as Parameters<typeof widget.render>[0]);
}

layouts.useWorker(""); // the file's policy allows no worker script: graphs are laid out on this thread
const source = document.getElementById("atomemo-data");
const root = document.getElementById("atomemo-root");
if (source && root) mount(root, JSON.parse(source.textContent ?? "{}") as Exported);
