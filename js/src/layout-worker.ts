// The layout worker's entry: lays a workflow out off the main thread, so a big graph is ready
// before its tab opens and the page never waits on dagre. Bundled on its own by scripts/build.mjs
// and carried inside widget.js as text (anywidget ships one module; a worker needs a script).
import { layoutOf } from "./layout";
import type { GraphEdgeView, GraphNodeView } from "./protocol";

type Ask = { id: number; nodes: GraphNodeView[]; edges: GraphEdgeView[] };

const scope = self as unknown as { onmessage: ((e: MessageEvent<Ask>) => void) | null;
  postMessage: (message: unknown) => void };

scope.onmessage = (e) => {
  const { id, nodes, edges } = e.data;
  try {
    scope.postMessage({ id, layout: layoutOf(nodes, edges) });
  } catch (error) {
    scope.postMessage({ id, error: String(error) });
  }
};
