// Builds the widget: first the layout worker on its own (a classic script), then widget.js and
// eval.js, with the worker's script inside widget.js as text (anywidget ships one ES module, and a
// worker needs a script of its own). `--dev`: unminified, with inline source maps.
import { copyFileSync, mkdirSync } from "node:fs";

import * as esbuild from "esbuild";

const dev = process.argv.includes("--dev");
const common = { bundle: true, minify: !dev, target: "es2020", sourcemap: dev ? "inline" : false, logLevel: "info" };

const worker = await esbuild.build({ ...common, entryPoints: ["src/layout-worker.ts"], format: "iife", write: false });
const workerSource = worker.outputFiles[0].text;

const layoutWorker = {
  name: "layout-worker",
  setup(build) {
    build.onResolve({ filter: /^virtual:layout-worker$/ }, (args) => ({ path: args.path, namespace: "layout-worker" }));
    build.onLoad({ filter: /.*/, namespace: "layout-worker" }, () => ({ contents: workerSource, loader: "text" }));
  },
};

await esbuild.build({ ...common, entryPoints: ["src/widget.ts", "src/eval.ts", "src/standalone.ts"], format: "esm",
  outdir: "../atomemo_notebook/static", plugins: [layoutWorker] });

// The stylesheet ships beside the bundle; anywidget loads it through ChatWidget._css.
mkdirSync("../atomemo_notebook/static", { recursive: true });
copyFileSync("src/styles.css", "../atomemo_notebook/static/widget.css");
