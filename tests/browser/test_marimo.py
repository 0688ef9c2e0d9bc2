"""The widget in another anywidget host: a marimo app, driven in Debian's Chromium."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .harness import assert_nodes
from .jupyter import free_port

pytestmark = pytest.mark.browser

APP = '''import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    from atomemo_notebook import ChatWidget
    chat = ChatWidget()
    mo.ui.anywidget(chat)
    return


if __name__ == "__main__":
    app.run()
'''


@pytest.fixture
def marimo_app(tmp_path: Path):
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    log = (tmp_path / "marimo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "marimo", "run", "app.py", "--headless", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


def test_chat_widget_streams_in_marimo(marimo_app, page, artifacts):
    # marimo_app first: it is set up before the page and torn down after it. The other way round
    # the server stopped under an open page, whose service worker then failed to update (an
    # error in the page, seen once in ten runs of the browser suite).
    page.goto(marimo_app)
    chat = page.locator(".am-root").first
    chat.wait_for(timeout=60_000)
    assert chat.locator(".am-app-name").inner_text() == "Support Assistant"
    chat.locator(".am-input").fill("How much does it cost?")
    chat.locator(".am-input").press("Enter")
    chat.locator(".am-turn").first.wait_for(timeout=30_000)
    # marimo renders widgets inside a shadow root: locators pierce it, document.querySelector would not.
    chat.locator(".am-turn:not(.am-live) .am-answer").filter(has_text="14-day free trial").wait_for(
        timeout=30_000)
    chat.locator(".am-live").wait_for(state="detached", timeout=10_000)
    assert chat.locator(".am-turn .am-answer").count() == 1  # settled once, the live turn gone
    answer = chat.locator(".am-turn .am-answer").inner_text()
    assert "| Starter" not in answer and "Starter" in answer  # a rendered table, not raw markdown
    rows = chat.locator(".am-execution .am-node .am-row-name").all_inner_texts()
    assert_nodes(rows, ["Chat Trigger", "Search help center", "Draft answer", "Reply"])
    page.screenshot(path=str(artifacts / "marimo.png"))
