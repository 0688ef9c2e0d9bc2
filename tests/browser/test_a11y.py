"""Accessibility, checked by axe-core inside the page (the npm package, from js/node_modules): no
serious or critical violation in the widget, light and dark, wide and narrow, on every pane; and
the transcript is a live region that is busy while a turn streams."""

from __future__ import annotations

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
