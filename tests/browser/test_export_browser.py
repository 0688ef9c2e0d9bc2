"""The interactive export opened as a user would: from file://, in Chromium, with every request
to anywhere routed to abort and counted (0). Every tab works with no Python and no network,
time travel too; the policy is never broken (no securitypolicyviolation); the XSS payloads
of test_xss.py stay inert in the file as they do in the widget."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer

from .harness import Bridge
from .test_xss import DOM_CHECK, PAYLOADS

pytestmark = pytest.mark.browser

WATCH = """window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
window.__sentinel = 'intact';"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("export")
    with LocalServer(chunk_size=7, chunk_delay=0.002, node_delay=0.01) as srv:
        app = srv.app("agent")
        widget = ChatWidget(app["app_id"], app["trigger_id"], "export", api_key=srv.api_key, base_url=srv.base_url)
        widget.booted.result(10)
        first = widget.ask("Where is order 1042? I'm in Berlin.")
        first.wait()
        widget.ask("And what is the weather in Paris?").wait()
        agent = widget.export_html(folder / "agent.html", interactive=True)
        widget.close()
        echo = srv.app("echo")
        widget = ChatWidget(echo["app_id"], echo["trigger_id"], "export-xss", api_key=srv.api_key, base_url=srv.base_url)
        widget.booted.result(10)
        for payload in PAYLOADS:
            widget.ask(payload).wait()
        xss = widget.export_html(folder / "xss.html", interactive=True)
        widget.close()
        key = srv.api_key
    return {"agent": agent, "xss": xss, "answer": first.text, "events": len(first.events), "key": key}


class Offline:
    """A page that may read file:// and nothing else: every other request is aborted and counted."""

    def __init__(self, page: Any) -> None:
        self.page, self.requests, self.dialogs = page, [], []
        page.route("**/*", self._route)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.add_init_script(WATCH)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri())
        self.page.wait_for_selector(".am-root .am-turn")


def tab(page: Any, name: str) -> None:
    page.click(f".am-side-tabs .am-tab:has-text('{name}')")


def opened(page: Any) -> int:
    """Wait for the travel bar's tape to come; its number of events. (Waits go through locators:
    the page's CSP forbids the eval that wait_for_function needs to poll a string.)"""
    expect(page.locator(".am-travel-label")).to_have_text(re.compile(r"^event (\d+) of \1 ·"))
    return int(page.get_attribute(".am-travel-slider", "max"))


def scrub(page: Any, position: int) -> None:
    page.locator(".am-travel-slider").evaluate(
        "(el, p) => { el.value = String(p); el.dispatchEvent(new Event('input', {bubbles: true})); }", position)
    expect(page.locator(".am-travel-label")).to_have_text(re.compile(rf"^event {position} of"))


def test_every_tab_and_time_travel_work_from_disk_with_no_network(page, exported, artifacts):
    offline = Offline(page)
    offline.open(exported["agent"])
    assert page.locator(".am-turn").count() == 2 and page.locator(".am-composer").is_hidden()
    assert "read-only" in page.inner_text(".am-static-note")
    # Timeline: the runs, and a node's detail (embedded, not asked of a kernel).
    tab(page, "Timeline")
    assert page.locator(".am-timelines .am-execution").count() == 2
    page.locator(".am-timelines .am-row.am-node").first.click()
    page.wait_for_selector(".am-detail .am-detail-title")
    # Graph: the workflow with the last run on it.
    tab(page, "Graph")
    page.wait_for_selector(".am-gnode.am-status-succeeded")
    # Events: every event of both runs, one page.
    tab(page, "Events")
    page.wait_for_selector(".am-event")
    total = json.loads(page.evaluate("document.getElementById('atomemo-data').textContent"))
    events = sum(len(rows) for rows in total["events"].values())
    assert page.inner_text(".am-event-count") == f"1–{events} of {events}"
    # Compare: the two turns side by side (answered ahead in the file).
    tab(page, "Compare")
    page.wait_for_selector(".am-compare-result .am-compare-table")

    # Time travel through the first run: to its middle, the answer cut, the graph half lit.
    page.locator(".am-turn").first.locator(".am-travel-btn").click()
    assert opened(page) == exported["events"]
    page.focus(".am-travel")
    page.keyboard.press("Home")
    expect(page.locator(".am-travel-label")).to_have_text(re.compile(r"^event 0 of"))
    assert page.locator(".am-travel-answer").get_attribute("data-chars") == "0"
    middle = exported["events"] // 2
    scrub(page, middle)
    chars = int(page.locator(".am-travel-answer").get_attribute("data-chars"))
    assert 0 < chars < len(exported["answer"])
    tab(page, "Graph")
    page.wait_for_selector(".am-gnode.am-status-succeeded")
    lit = page.locator(".am-gnode.am-status-succeeded").count()
    dark = page.locator(".am-gnode.am-status-not-run, .am-gnode.am-status-running").count()
    assert lit >= 1 and dark >= 1  # some of the workflow has run, some not yet
    # The inspector on the event of that moment.
    tab(page, "Events")
    current = page.locator(".am-event.am-event-current")
    current.wait_for()
    assert current.get_attribute("data-seq") == str(middle - 1)
    # Next tool call, then play at 16× to the end (awaited, never slept).
    page.focus(".am-travel")
    page.keyboard.press("Home")
    page.keyboard.press("t")
    expect(page.locator(".am-travel-label")).not_to_have_text(re.compile(r"^event 0 of"))
    page.select_option(".am-travel-speed", "16")
    page.click(".am-travel-play")
    n = exported["events"]
    expect(page.locator(".am-travel-label")).to_have_text(re.compile(rf"^event {n} of {n}"))
    expect(page.locator(".am-travel-play")).to_contain_text("Play")
    assert int(page.locator(".am-travel-answer").get_attribute("data-chars")) == len(exported["answer"])
    page.keyboard.press("Escape")
    page.wait_for_selector(".am-travel", state="detached")
    page.screenshot(path=str(artifacts / "export-file.png"))
    assert offline.requests == [] and offline.dialogs == []
    assert page.evaluate("window.__violations") == []
    assert exported["key"] not in exported["agent"].read_text()


def test_the_xss_payloads_stay_inert_in_the_file(page, exported, artifacts):
    offline = Offline(page)
    offline.open(exported["xss"])
    assert page.locator(".am-turn").count() == len(PAYLOADS)
    for link in page.locator(".am-answer a").all():
        link.dispatch_event("mouseover")
    assert page.evaluate(DOM_CHECK) == []
    # A payload's turn travelled through time: drawn by the same sanitizer, as it streamed.
    turn = page.locator(".am-turn").nth(PAYLOADS.index("<script>alert(1)</script>"))
    turn.locator(".am-travel-btn").click()
    for position in range(opened(page) + 1):
        scrub(page, position)
        assert page.evaluate(DOM_CHECK) == [], position
    page.screenshot(path=str(artifacts / "export-xss.png"))
    assert offline.requests == [] and offline.dialogs == []
    assert page.evaluate("window.__violations") == []


def test_a_replayed_log_opens_in_time_travel_at_its_start(page, tmp_path):
    with LocalServer(chunk_size=7, chunk_delay=0, node_delay=0) as srv:
        app = srv.app("agent")
        source = ChatWidget(app["app_id"], app["trigger_id"], "recorder", api_key=srv.api_key, base_url=srv.base_url)
        source.booted.result(10)
        answer = source.ask("Where is order 1042? I'm in Berlin.")
        answer.wait()
        log = source.chat.save_events(tmp_path / "session.jsonl")
        source.close()
        echo = srv.app("echo")
        widget = ChatWidget(echo["app_id"], echo["trigger_id"], "viewer", api_key=srv.api_key, base_url=srv.base_url)
        widget.booted.result(10)
        bridge = Bridge(page, widget)
        widget.replay(log)
        label = page.locator(".am-travel-label")
        bridge.wait_for(lambda: label.count() == 1 and label.text_content().startswith("event 0 of "),
                        what="the replayed reply open in time travel at its start")
        assert page.locator(".am-travel-answer").get_attribute("data-chars") == "0"
        page.select_option(".am-travel-speed", "16")
        page.click(".am-travel-play")
        events = len(answer.events)
        bridge.wait_for(lambda: label.text_content().startswith(f"event {events} of {events}"), what="played to its end")
        assert page.locator(".am-travel-answer").get_attribute("data-chars") == str(len(answer.text))
        # The moment's text is drawn over the next frames: read once all of it is on the page.
        expect(page.locator(".am-travel-answer")).to_have_attribute("data-drawn", "true")
        assert "Your order A-1042 has shipped" in page.locator(".am-travel-answer").text_content()
        widget.close()


def test_a_loop_says_its_current_iteration(page, tmp_path):
    with LocalServer(chunk_size=7, chunk_delay=0, node_delay=0) as srv:
        app = srv.app("flaky")
        widget = ChatWidget(app["app_id"], app["trigger_id"], "looper", api_key=srv.api_key, base_url=srv.base_url)
        widget.booted.result(10)
        widget.ask("Is the blue kettle in stock? fail").wait()
        path = widget.export_html(tmp_path / "loop.html", interactive=True)
        widget.close()
    offline = Offline(page)
    offline.open(path)
    page.locator(".am-turn .am-travel-btn").click()
    events = opened(page)
    page.focus(".am-travel")
    page.keyboard.press("Home")
    seen = []
    for _ in range(events):  # node by node through the run: the loop's iteration is said while it runs
        label = page.inner_text(".am-travel-label")
        seen.append(label)
        if "iteration 2" in label:
            break
        page.keyboard.press("n")
        expect(page.locator(".am-travel-label")).not_to_have_text(label)
    assert any("Retry loop: iteration 1" in s for s in seen) and "Retry loop: iteration 2" in seen[-1], seen
    assert offline.requests == []
