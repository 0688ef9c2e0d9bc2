// The stylesheet ships beside the bundle; anywidget loads it through ChatWidget._css.
import { copyFileSync, mkdirSync } from "node:fs";
mkdirSync("../atomemo_notebook/static", { recursive: true });
copyFileSync("src/styles.css", "../atomemo_notebook/static/widget.css");
