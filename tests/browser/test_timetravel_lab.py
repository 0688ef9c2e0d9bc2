"""Time travel in JupyterLab, as a user would: scrub a reply while it streams and go back to live
with one key; scrub a finished run to its middle (the answer cut, the graph half lit, the
inspector on that event); play it at 16× to its end. Every wait is for a state, never a sleep."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .jupyter import JupyterServer, lab_with, run_and_find_chat, settled_turn

pytestmark = pytest.mark.browser

# Slow enough streaming (one character every 0.15 s) that a reply can be caught while it streams.
NOTEBOOK = [
    "from atomemo_notebook import ChatWidget\nfrom atomemo_notebook.server import LocalServer\n"
    "server = LocalServer(chunk_size=1, chunk_delay=0.15, node_delay=0.3).start()\napp = server.app('agent')\n"
    "widget = ChatWidget(app['app_id'], app['trigger_id'], 'traveller', api_key=server.api_key, "
    "base_url=server.base_url)\nwidget",
]
QUESTION = "Where is order 1042? I'm in Berlin."


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory) -> Iterator[JupyterServer]:
    with lab_with(tmp_path_factory.mktemp("timetravel") / "work", {"travel.ipynb": NOTEBOOK}) as server:
        yield server


def label_starts(page, chat, text: str) -> None:
    page.wait_for_function("([root, text]) => root.querySelector('.am-travel-label')?.textContent.startsWith(text)",
                           arg=[chat.element_handle(), text], timeout=30_000)


def drawn(chat) -> None:
    """The travelled moment's text is all on the page (it is drawn over frames)."""
    expect(chat.locator(".am-travel-answer")).to_have_attribute("data-drawn", "true", timeout=30_000)


def test_scrub_live_and_finished_runs_in_jupyterlab(lab_page, jupyter, artifacts):
    page = lab_page
    chat = run_and_find_chat(page, jupyter.lab("travel.ipynb"), "travel.ipynb")
    chat.scroll_into_view_if_needed()
    chat.locator(".am-input").fill(QUESTION)
    chat.locator(".am-input").press("Enter")

    # While it streams: travel back to its start, then back to live with one key.
    live = chat.locator(".am-turn.am-live")
    live.locator(".am-answer").filter(has_text="order").wait_for(timeout=30_000)  # some text has streamed
    live.locator(".am-travel-btn").click()
    label_starts(page, chat, "event ")  # the tape so far has come
    assert "so far" in chat.locator(".am-travel-label").text_content()
    chat.locator(".am-travel").focus()
    page.keyboard.press("Home")
    label_starts(page, chat, "event 0 of")
    assert chat.locator(".am-travel-answer").get_attribute("data-chars") == "0"
    assert chat.locator(".am-turn.am-live").count() == 1  # the reply streams on meanwhile
    page.keyboard.press("l")
    chat.locator(".am-travel").wait_for(state="detached")
    assert chat.locator(".am-turn.am-live .am-answer.am-streaming").count() == 1  # live again
    settled_turn(chat, QUESTION)
    answer = chat.locator(".am-turn").last.locator(".am-answer").text_content().strip()

    # The finished run, scrubbed to its middle.
    chat.locator(".am-side-tabs .am-tab", has_text="Graph").click()
    chat.locator(".am-turn").last.locator(".am-travel-btn").click()
    slider = chat.locator(".am-travel-slider")
    page.wait_for_function("(root) => /^event (\\d+) of \\1 ·/.test(root.querySelector('.am-travel-label')?.textContent)",
                           arg=chat.element_handle(), timeout=30_000)  # the whole tape came; it opens at the end
    events = int(slider.get_attribute("max"))
    assert chat.locator(".am-travel-label").text_content().startswith(f"event {events} of {events} ·")
    middle = events // 2
    slider.evaluate("(el, p) => { el.value = String(p); el.dispatchEvent(new Event('input', {bubbles: true})); }", middle)
    label_starts(page, chat, f"event {middle} of {events}")
    drawn(chat)
    shown = chat.locator(".am-travel-answer").text_content().strip()
    assert shown and answer.startswith(shown[:20]) and len(shown) < len(answer)  # the answer as it stood: cut
    lit = chat.locator(".am-gnode.am-status-succeeded").count()
    dark = chat.locator(".am-gnode.am-status-not-run, .am-gnode.am-status-running").count()
    assert lit >= 1 and dark >= 1, (lit, dark)  # the graph half lit
    chat.locator(".am-side-tabs .am-tab", has_text="Events").click()
    current = chat.locator(".am-event.am-event-current")
    current.wait_for()
    assert current.get_attribute("data-seq") == str(middle - 1)
    page.screenshot(path=str(artifacts / "timetravel-middle.png"))

    # Play at 16× from the start to the end.
    chat.locator(".am-travel").focus()
    page.keyboard.press("Home")
    label_starts(page, chat, "event 0 of")
    chat.locator(".am-travel-speed").select_option("16")
    chat.locator(".am-travel-play").click()
    label_starts(page, chat, f"event {events} of {events}")
    page.wait_for_function("(root) => root.querySelector('.am-travel-play').textContent.includes('Play')",
                           arg=chat.element_handle())
    drawn(chat)
    assert chat.locator(".am-travel-answer").text_content().strip() == answer
    page.keyboard.press("Escape")
    chat.locator(".am-travel").wait_for(state="detached")

    # The header's Export: one file in the kernel's folder, which opens from disk with its tabs.
    chat.locator(".am-export").click()
    page.wait_for_function("(root) => root.querySelector('.am-export-note')?.textContent.startsWith('Saved ')",
                           arg=chat.element_handle(), timeout=30_000)
    (saved,) = list(jupyter.root.glob("order-agent-*.html"))
    assert saved.name in chat.locator(".am-export-note").text_content()
    exported = page.context.new_page()
    exported.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    exported.goto(saved.as_uri())
    exported.locator(".am-turn .am-travel-btn").wait_for()
    assert exported.locator(".am-turn").count() == 1 and "read-only" in exported.inner_text(".am-static-note")
    exported.close()
