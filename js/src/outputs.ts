// A workflow run's outputs (a Dify workflow app's answer) as a collapsible tree: built with a
// stack, never recursion, every key and value as text (never HTML), bounded in nodes, depth
// and characters, whatever the server sent.
import { h } from "./dom";

export const MAX_NODES = 2000;
export const MAX_DEPTH = 20;
export const MAX_CHARS = 2000;

type Item = [parent: HTMLElement, key: string | null, value: unknown, depth: number];

function leafText(value: unknown): string {
  if (value !== null && typeof value === "object") { // deeper than MAX_DEPTH: not walked, not stringified
    return Array.isArray(value) ? `[… nested past ${MAX_DEPTH} levels]` : `{… nested past ${MAX_DEPTH} levels}`;
  }
  const text = typeof value === "string" ? value : String(JSON.stringify(value) ?? value);
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)}…` : text;
}

export function outputsTree(json: string): HTMLElement {
  const root = h("details", { class: "am-outputs", attrs: { open: "" } }, h("summary", { text: "Outputs" }));
  root.addEventListener("click", (e) => e.stopPropagation());
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    root.append(h("pre", { class: "am-out-raw", text: json })); // cut, or not JSON: as text
    return root;
  }
  const stack: Item[] = [[root, null, value, 0]];
  let shown = 0;
  while (stack.length) {
    const [parent, key, item, depth] = stack.pop() as Item;
    if (++shown > MAX_NODES) {
      root.append(h("div", { class: "am-muted", text: `… more than ${MAX_NODES} values: the rest is not shown` }));
      break;
    }
    if (item !== null && typeof item === "object" && depth < MAX_DEPTH) {
      const entries: [string, unknown][] = Array.isArray(item)
        ? item.map((v, i): [string, unknown] => [String(i), v]) : Object.entries(item);
      let box = parent;
      if (key !== null) {
        const size = Array.isArray(item) ? `[${entries.length}]` : `{${entries.length}}`;
        box = h("details", { class: "am-out-node", attrs: depth <= 2 ? { open: "" } : {} },
          h("summary", {}, h("span", { class: "am-out-key", text: key }), h("span", { class: "am-muted", text: ` ${size}` })));
        parent.append(box);
      }
      for (let i = entries.length - 1; i >= 0; i--) stack.push([box, entries[i][0], entries[i][1], depth + 1]);
    } else {
      parent.append(h("div", { class: "am-out-leaf" },
        key === null ? null : h("span", { class: "am-out-key", text: `${key}: ` }),
        h("span", { class: "am-out-value", text: leafText(item) })));
    }
  }
  return root;
}
