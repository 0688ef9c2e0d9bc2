"""compare(a, b) in JupyterLab, driven in Debian's Chromium: the comparison shows as its verdict
and rows, the ones that regressed first; a regressed row opens both runs side by side (both
answers, both node-run lists); a repeated row's run lists its asks, each opening its own."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .jupyter import JupyterServer, lab_with, open_and_run_all, wait_idle

pytestmark = pytest.mark.browser

NOTEBOOK = "compare-evaluations.ipynb"
CELLS = [
    "from atomemo_notebook import compare, connect, contains, evaluate\n"
    # support answers all three; the flaky inventory pipeline apologises for the first (its keyword
    # gone: regressed), fails the second at Fetch inventory (regressed), answers the third (improved)
    "rows = [{'query': 'How do I rotate my API key?', 'expected': 'rotate'},\n"
    "        {'query': 'Check the inventory and fail', 'expected': 'inventory'},\n"
    "        {'query': 'Is the blue mug in stock?', 'expected': 'inventory'}]\n"
    "a = evaluate(connect('atomemo', demo='support', asynchronous=True), rows, scorers=[contains]).wait()\n"
    "b = evaluate(connect('atomemo', demo='flaky', asynchronous=True), rows, scorers=[contains]).wait()",
    "compare(a, b)",
    "evaluate(connect('atomemo', demo='echo', asynchronous=True), ['first', 'second'], repeats=3).wait()",
]


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("jupyter-compare") / "work"
    with lab_with(root, {NOTEBOOK: CELLS}) as server:
        yield server
    shutil.rmtree(root, ignore_errors=True)


def node_names(pair, side: str) -> list[str]:
    """The node runs one side ran, in order: every aligned row whose status on that side is one."""
    column = 2 if side == "a" else 3
    return [row.locator("td").first.text_content() or "" for row in pair.locator(".am-compare-row").all()
            if row.locator(f"td:nth-child({column})").text_content() != "did not run"]


def test_a_regressed_row_opens_both_runs_side_by_side(lab_page, jupyter, artifacts):
    page = lab_page
    open_and_run_all(page, jupyter.lab(NOTEBOOK), NOTEBOOK)
    page.wait_for_function("document.querySelectorAll('.ac-root').length === 1", timeout=120_000)
    wait_idle(page)
    comparison = page.locator(".ac-root")
    comparison.scroll_into_view_if_needed()
    assert "contains: " in comparison.locator(".ac-verdict li").first.text_content()
    flips = comparison.locator("tr.ac-row .ac-flip").all_text_contents()
    assert flips == ["▼ regressed", "▼ regressed", "▲ improved"]  # regressions first

    comparison.locator("tr.ac-row.ac-regressed").first.click()
    page.wait_for_function("(el) => el.querySelectorAll('.ac-pair .am-compare-row').length > 0",
                           arg=comparison.element_handle(), timeout=30_000)
    pair = comparison.locator(".ac-pair")
    assert pair.locator(".ae-run-title").text_content() == "Row 0 · regressed"
    assert "To rotate an API key" in pair.locator(".am-compare-a").text_content()
    assert "inventory service is not answering" in pair.locator(".am-compare-b").text_content()
    assert "Search help center" in node_names(pair, "a") and "Search help center" not in node_names(pair, "b")
    assert "Fetch inventory" in node_names(pair, "b") and "Fetch inventory" not in node_names(pair, "a")
    page.screenshot(path=str(artifacts / "comparison-row.png"))

    failed = comparison.locator("tr.ac-row.ac-regressed").nth(1)
    failed.focus()
    page.keyboard.press("Enter")  # the keyboard opens a row too
    page.wait_for_function("(el) => el.querySelector('.ac-pair .ae-run-title')?.textContent === 'Row 1 · regressed'",
                           arg=comparison.element_handle(), timeout=30_000)
    assert pair.locator(".am-compare-heads").text_content().count("failed") == 1  # B failed, A did not
    assert pair.locator(".am-compare-row td.am-status-failed").first.text_content() == "failed"
    assert "B: " in pair.locator(".ac-errors").text_content()


def test_a_repeated_rows_asks_open_from_its_run(lab_page, jupyter):
    page = lab_page
    open_and_run_all(page, jupyter.lab(NOTEBOOK), NOTEBOOK)
    page.wait_for_function("document.querySelectorAll('.ae-root').length === 1", timeout=120_000)
    wait_idle(page)
    table = page.locator(".ae-root")
    table.scroll_into_view_if_needed()
    rows = table.locator("tr.ae-row")
    assert rows.count() == 6
    table.locator("tr.ae-row", has_text="1 · 2/3").click()
    page.wait_for_function("(el) => el.querySelectorAll('.ae-asks .ae-ask').length === 3",
                           arg=table.element_handle(), timeout=30_000)
    asks = table.locator(".ae-ask")
    assert asks.all_text_contents() == ["1 · 1/3", "1 · 2/3", "1 · 3/3"]
    assert asks.nth(1).get_attribute("aria-pressed") == "true"
    asks.nth(2).click()
    page.wait_for_function("(el) => el.querySelector('.ae-run-title')?.textContent === 'Row 1 · 3/3'",
                           arg=table.element_handle(), timeout=30_000)
    assert table.locator(".ae-ask").nth(2).get_attribute("aria-pressed") == "true"
    assert table.locator(".ae-run .ae-q").first.text_content() == "second"
    # "Export this row": the row's run as one file in the kernel's folder, which opens from disk.
    table.locator(".ae-export").click()
    note = table.locator(".am-export-note")
    expect(note).to_have_text(re.compile(r"^Saved .*\.html$"), timeout=30_000)
    (saved,) = list(jupyter.root.glob("evaluation-row-*.html"))
    assert saved.name in note.text_content()
    exported = page.context.new_page()
    requests: list[str] = []
    exported.on("request", lambda request: requests.append(request.url))
    exported.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    exported.goto(saved.as_uri())
    exported.locator(".am-turn .am-travel-btn").first.wait_for()
    assert exported.locator(".am-turn .am-query").first.text_content() == "second"
    assert "read-only" in exported.inner_text(".am-static-note")
    assert [r for r in requests if not r.startswith("file://")] == []
    exported.close()
    # Squeezed to a narrow cell, a number and its unit stay on one line ("1.09 s", never "1.09"
    # over "s"): each time, label and score cell's text is one line box.
    table.evaluate("(el) => { el.style.width = '260px'; }")
    broken = table.evaluate("""(el) => Array.from(el.querySelectorAll('td.ae-time, td.ae-n, td.ae-score'))
      .filter((td) => td.textContent.trim()).map((td) => { const r = document.createRange();
        r.selectNodeContents(td); return [td.textContent, r.getClientRects().length]; })
      .filter(([, lines]) => lines !== 1)""")
    assert broken == [], broken
