"""Run the built widget bundle in Debian's Chromium against a real ChatWidget.

The page gets a small stand-in for anywidget's model object; trait changes and custom
messages travel both ways through Playwright (Python -> page.evaluate, page ->
expose_function), so the real bundle renders the real Python widget's protocol."""

from __future__ import annotations

import base64
import json
import queue
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from atomemo_notebook import ChatWidget
from atomemo_notebook.views._widget_protocol import TRAITS

STATIC = Path(__file__).resolve().parents[2] / "atomemo_notebook" / "static"
ORIGIN = "http://widget.test"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SYNCED = list(TRAITS)  # every synced trait, as the protocol declares them

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/widget.css"></head>
<body class="{theme}" style="margin:0;padding:12px;background:var(--jp-layout-color0,#fff)">
<div id="host" style="width:{width}px"></div>
<script type="module">
import widget from "/widget.js";
const state = {state};
const handlers = new Map();
const model = {{
  get: (k) => state[k],
  set: (k, v) => {{ state[k] = v; }},
  save_changes: () => {{}},
  on: (name, fn) => {{ if (!handlers.has(name)) handlers.set(name, new Set()); handlers.get(name).add(fn); }},
  off: (name, fn) => {{ handlers.get(name)?.delete(fn); }},
  send: (content, callbacks, buffers) => {{
    const encoded = (buffers ?? []).map((b) => {{
      const bytes = new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer);
      let s = ""; for (const x of bytes) s += String.fromCharCode(x); return btoa(s);
    }});
    window.__toPython(JSON.stringify(content), encoded);
  }},
  widget_manager: {{}},
}};
window.__deliver = (kind, a, b) => {{
  if (kind === "state") {{ state[a] = b; for (const fn of handlers.get("change:" + a) ?? []) fn(); }}
  else {{ for (const fn of handlers.get("msg:custom") ?? []) fn(a, []); }}
}};
window.__rendered = widget.render({{ model, el: document.getElementById("host") }});
window.__ready = true;
</script></body></html>"""

DARK_VARS = """<style>.jp-dark{--jp-layout-color0:#111418;--jp-layout-color1:#1b1f24;--jp-layout-color2:#2a2f36;
--jp-ui-font-color1:#e6edf3;--jp-ui-font-color2:#9aa4ae;--jp-border-color1:#3a414a;--jp-brand-color1:#4c8dff;
--jp-brand-color3:#1e3a5f;--jp-cell-editor-background:#1b1f24}</style>"""


def launch(playwright: Any) -> Browser:
    executable = shutil.which("chromium")
    assert executable, "Debian chromium is required (scripts/test installs it)"
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


class Bridge:
    """One ChatWidget rendered in one page."""

    def __init__(self, page: Page, widget: ChatWidget, *, width: int = 1000, theme: str = "") -> None:
        self.page, self.widget = page, widget
        self.inbox: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.dialogs: list[str] = []
        self.foreign_requests: list[str] = []
        self.sent_to_browser: list[dict[str, Any]] = []
        self.busy_cell = False  # True: the browser's messages wait, as for a kernel running a cell
        self.held: list[tuple[Any, list[bytes]]] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", self._on_request)
        page.route(f"{ORIGIN}/**", self._serve)
        page.expose_function("__toPython", self._to_python)
        widget.observe(lambda change: self.inbox.put(("state", change["name"], change["new"])), names=SYNCED)
        widget.send = self._send  # type: ignore[method-assign]
        self.width, self.theme = width, theme
        page.goto(f"{ORIGIN}/index.html")
        page.wait_for_function("window.__ready === true")

    def _on_request(self, request: Any) -> None:
        if not request.url.startswith(ORIGIN):
            self.foreign_requests.append(request.url)

    def _serve(self, route: Any) -> None:
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path == "/index.html":
            # The page starts from the widget's current traits, as a reloaded notebook would.
            state = json.dumps({name: getattr(self.widget, name) for name in SYNCED})
            html = PAGE.format(state=state, width=self.width, theme=self.theme)
            route.fulfill(body=(DARK_VARS + html) if self.theme else html, content_type="text/html")
        elif path in ("/widget.js", "/widget.css"):
            kind = "text/javascript" if path.endswith(".js") else "text/css"
            route.fulfill(body=(STATIC / path[1:]).read_text(), content_type=kind)
        else:
            route.fulfill(status=404, body="not here")

    def _send(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.sent_to_browser.append(content)
        self.inbox.put(("msg", content, None))

    def _to_python(self, payload: str, buffers: list[str] | None = None) -> None:
        # Buffers travel as binary in a real comm; base64 here only to cross Playwright's bridge.
        raw = [base64.b64decode(b) for b in buffers or []]
        if self.busy_cell:  # a kernel running a cell reads the browser's messages only when it ends
            self.held.append((json.loads(payload), raw))
            return
        self.widget._on_custom(self.widget, json.loads(payload), raw)

    def end_cell(self) -> None:
        """The running cell ends: the kernel reads what the browser sent meanwhile."""
        self.busy_cell = False
        held, self.held = self.held, []
        for message, raw in held:
            self.widget._on_custom(self.widget, message, raw)

    def reload(self) -> None:
        """Reload the page mid-conversation: a new view from traits, plus its hello."""
        while not self.inbox.empty():
            self.inbox.get_nowait()
        self.page.reload()
        self.page.wait_for_function("window.__ready === true")

    def pump(self) -> bool:
        """Deliver what Python said since the last pump, in order; True if there was any."""
        delivered = False
        while self.pump_one():
            delivered = True
        return delivered

    def pump_in_one_task(self) -> int:
        """Deliver everything queued in one browser task, as messages that reach a page between
        two animation frames do; returns how many were delivered."""
        batch = []
        while not self.inbox.empty():
            batch.append(list(self.inbox.get_nowait()))
        self.page.evaluate("(batch) => { for (const [k, a, b] of batch) window.__deliver(k, a, b); }", batch)
        return len(batch)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "",
                 step: bool = False) -> None:
        """Deliver Python's messages until `predicate` holds. `step`: one message at a time, the
        predicate checked after each, and nothing more delivered once it holds: for a passing
        state such as "streaming", which a loaded machine may queue start to end between two
        looks (a whole answer drained by one pump never showed its streaming view to the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivered = self.pump_one() if step else self.pump()
            if predicate():
                if not step:
                    self.pump()
                return
            if not delivered:
                self.page.wait_for_timeout(25)
        raise AssertionError(f"timed out waiting for {what or predicate}")

    def pump_one(self) -> bool:
        """Deliver the next message Python said, if any."""
        try:
            kind, a, b = self.inbox.get_nowait()
        except queue.Empty:
            return False
        self.page.evaluate("([k, a, b]) => window.__deliver(k, a, b)", [kind, a, b])
        return True

    def settle(self) -> None:
        """Wait for the widget's current answer to finish and the browser to catch up."""
        self.wait_for(lambda: self.widget._orchestrator.running is None or self.widget._orchestrator.running.done(), what="answer")
        self.pump()
        # The page has drawn what it was given once the live turn (if any) is gone from it.
        self.page.wait_for_function("!document.querySelector('.am-turn.am-live')", timeout=20_000)
        self.pump()
        # Two frames rendered: a turn drawn just now is `content-visibility: auto`, and until a
        # frame has decided it is on screen its text is skipped (innerText '' for a moment).
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def turns(widget: ChatWidget) -> list[dict[str, Any]]:
    """The settled turns the widget's transcript trait holds."""
    return list(widget.transcript["turns"])


def assert_nodes(rows: list[str], names: list[str]) -> None:
    """Timeline rows read as 'name type': each row names the expected node, in order."""
    assert len(rows) == len(names), rows
    for row, name in zip(rows, names, strict=True):
        assert row.startswith(name), (row, name)
