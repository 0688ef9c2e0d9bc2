"""Accessibility, checked by axe-core inside the page (the npm package, from js/node_modules): no
serious or critical violation in the widget, light and dark, wide and narrow, on every pane; and
the transcript is a live region that is busy while a turn streams."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .harness import Bridge
from .test_widget_browser import ask_in_page, widget_for

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "js" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document.querySelector('.am-root'),
    {resultTypes: ['violations', 'passes', 'incomplete'], runOnly: ['wcag2a', 'wcag2aa', 'best-practice']});
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
    .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  const contrast = [...result.passes, ...result.incomplete].filter((r) => r.id === 'color-contrast')
    .reduce((n, r) => n + r.nodes.length, 0);
  return {serious, contrast};
}"""


@pytest.mark.parametrize(("theme", "width"), [("", 1000), ("jp-dark", 1000), ("", 360), ("jp-dark", 360)])
def test_no_serious_accessibility_violation_on_any_pane(page, paced, theme, width):
    bridge = Bridge(page, widget_for(paced, "support"), width=width, theme=theme)
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    page.add_script_tag(path=str(AXE))
    tabs = page.locator(".am-pane-tab" if width < 500 else ".am-side .am-tab")
    names = tabs.all_inner_texts()
    assert names, "the panes have tabs"
    for name in names:
        tabs.filter(has_text=name).first.click()
        found = page.evaluate(RUN_AXE)
        assert found["serious"] == [], f"{name} pane ({theme or 'light'}, {width}px): {found['serious']}"
        # axe really measured text contrast (a clipped page would let it check nothing).
        assert found["contrast"] > 0, f"{name} pane: axe checked no text contrast"


def test_the_transcript_is_a_live_region_busy_while_a_turn_streams(page, paced):
    bridge = Bridge(page, widget_for(paced, "support"))
    log = page.locator(".am-messages")
    assert log.get_attribute("role") == "log" and log.get_attribute("aria-live") == "polite"
    ask_in_page(bridge, "Give me the long setup guide")
    bridge.wait_for(lambda: page.locator(".am-streaming").count() == 1, what="streaming", step=True)
    assert log.get_attribute("aria-busy") == "true"
    bridge.settle()
    assert log.get_attribute("aria-busy") == "false"
    assert page.locator(".am-event-search").get_attribute("aria-label")


# Each control's accessible name as a screen reader finds it first (aria-label, its <label>,
# else its text): it must hold a word, not a glyph such as "‹" or "↻".
CONTROL_NAMES = """() => [...document.querySelectorAll('.am-root :is(button, select, input, textarea, [role=button], [role=tab])')]
  .filter((el) => el.getClientRects().length > 0 && !(el.type === 'file'))
  .map((el) => ({what: el.className.baseVal ?? el.className,
    name: (el.getAttribute('aria-label') ?? el.closest('label')?.textContent ?? el.textContent ?? '').trim()}))"""

# Where the focus is and whether it shows: a 2 px outline at least, or a graph node's thick box.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || !document.querySelector('.am-root').contains(el)) return null;
  const style = getComputedStyle(el);
  const rect = el.matches('.am-gnode') ? getComputedStyle(el.querySelector('rect')) : null;
  const shown = rect ? parseFloat(rect.strokeWidth) >= 3
    : style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  return {what: `${el.tagName}.${el.className.baseVal ?? el.className}`, shown};
}"""


@pytest.mark.parametrize("width", [1000, 360])
def test_every_control_has_a_name_in_words_and_a_visible_focus(page, paced, width):
    bridge = Bridge(page, widget_for(paced, "support"), width=width)
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    tabs = page.locator(".am-pane-tab" if width < 500 else ".am-side .am-tab")
    for name in tabs.all_inner_texts():
        tabs.filter(has_text=name).first.click()
        bridge.wait_for(lambda: True)
        unnamed = [c for c in page.evaluate(CONTROL_NAMES) if not re.search(r"[A-Za-z]{2}", c["name"])]
        assert unnamed == [], f"{name} pane: controls without a name in words: {unnamed}"
    tabs.first.click()  # the chat (or the Timeline beside it)
    page.focus(".am-root")  # from the widget's start
    seen: list[dict] = []
    for _ in range(60):  # Tab through the widget: every stop shows where the focus is
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            break
        seen.append(focused)
    assert len(seen) >= 5, seen
    hidden = [f["what"] for f in seen if not f["shown"]]
    assert hidden == [], f"focus not visible on {hidden}"


def test_focus_returns_to_the_input_after_send(page, paced):
    bridge = Bridge(page, widget_for(paced, "support"))
    page.locator(".am-example").first.wait_for()
    page.locator(".am-example").first.click()  # an example prompt asks it
    bridge.wait_for(lambda: len(bridge.widget.chat.replies) == 1, what="the example's reply")
    assert page.evaluate("document.activeElement.classList.contains('am-input')")
    bridge.settle()
    page.fill(".am-input", "How do I rotate my API key?")
    page.click(".am-send")  # the Send button hides while answering: the focus goes back to the box
    bridge.wait_for(lambda: len(bridge.widget.chat.replies) == 2, what="the second reply")
    assert page.evaluate("document.activeElement.classList.contains('am-input')")
    bridge.settle()
    assert page.evaluate("document.activeElement.classList.contains('am-input')")


def tab_to(page, selector: str, presses: int = 40) -> None:
    """Press Tab until the focus is on `selector` (the keyboard alone gets there)."""
    for _ in range(presses):
        if page.evaluate(f"document.activeElement?.matches({selector!r}) ?? false"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_the_panes_are_reachable_and_operable_by_keyboard_alone(page, paced):
    bridge = Bridge(page, widget_for(paced, "support"))
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    selected = ".am-side .am-tab[aria-selected=true]"
    page.focus(".am-input")
    tab_to(page, selected)  # one stop for the tab strip: the shown tab
    assert page.locator(selected).inner_text() == "Timeline"
    tab_to(page, ".am-execution-head")
    page.keyboard.press("Enter")  # the run's head selects its turn
    assert page.locator(".am-execution.am-selected").count() == 1
    tab_to(page, ".am-row.am-node")
    page.keyboard.press(" ")  # Space, as on any button
    bridge.wait_for(lambda: page.locator(".am-detail").count() == 1, what="the node's detail")
    assert "Chat Trigger" in page.locator(".am-detail-title").inner_text()
    page.focus(selected)
    page.keyboard.press("ArrowRight")  # the next tab shows and takes the focus
    assert page.evaluate("document.activeElement.textContent") == "Graph"
    assert page.locator(selected).inner_text() == "Graph"
    page.wait_for_function("document.querySelectorAll('.am-gnode').length === 4")
    tab_to(page, ".am-graph-host")
    before = page.get_attribute(".am-graph", "viewBox")
    page.keyboard.press("ArrowRight")  # arrows pan the graph
    after = page.get_attribute(".am-graph", "viewBox")
    assert before and after and float(after.split()[0]) > float(before.split()[0])
    page.keyboard.press("+")
    assert float(page.get_attribute(".am-graph", "viewBox").split()[2]) < float(after.split()[2])
    tab_to(page, ".am-gnode")
    page.keyboard.press(" ")
    assert "Chat Trigger" in page.locator(".am-detail-title").inner_text()
    page.focus(selected)
    page.keyboard.press("End")  # the last tab: Compare
    assert page.locator(selected).inner_text() == "Compare"
    tab_to(page, ".am-compare-pick")
    bridge.wait_for(lambda: page.locator(".am-compare-row").count() >= 3, what="the comparison")
    tab_to(page, ".am-compare-row")
    page.keyboard.press("Enter")
    assert "outputs" in page.locator(".am-compare-outputs").inner_text()
    page.focus(selected)
    page.keyboard.press("Home")
    assert page.locator(selected).inner_text() == "Timeline"
    assert page.locator(".am-side .am-tab[tabindex='0']").count() == 1  # one stop for the strip


def test_narrow_panes_are_tabs_the_arrows_walk(page, paced):
    bridge = Bridge(page, widget_for(paced, "support"), width=360)
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    page.focus(".am-pane-tab[aria-selected=true]")
    assert page.locator(".am-panes").get_attribute("role") == "tablist"
    for pane in ("timeline", "graph", "events", "compare", "chat"):
        page.keyboard.press("ArrowRight")
        assert page.get_attribute(".am-root", "data-pane") == pane
        assert page.evaluate("document.activeElement.getAttribute('aria-selected')") == "true"
        assert page.locator(".am-input").is_visible()
