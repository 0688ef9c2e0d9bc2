// What a view leaves behind for the next view of the same model (a redisplay, an output
// re-rendered by its notebook): the typed draft, the answers it already holds, whether it
// had the focus and which side tab it showed.
import type { Tab } from "./panes";

export type Memory = { draft: string; answers: Map<string, string>; focused: boolean; tab: Tab };

const memories = new WeakMap<object, Memory>();

export function memoryOf(model: object): Memory {
  let memory = memories.get(model);
  if (!memory) memories.set(model, (memory = { draft: "", answers: new Map(), focused: false, tab: "timeline" }));
  return memory;
}
