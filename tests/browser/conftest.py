"""Browser fixtures: one Chromium per module, a fresh page per test, artifacts on disk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from atomemo_notebook.server import LocalServer

from .harness import launch

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API holds an event loop while it lives, and the
    # asyncio tests of other modules need the thread without one.
    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()
# What a failing browser test leaves behind, so a rare failure can be read after the fact.
SUMMARY = """() => ({roots: document.querySelectorAll('.am-root').length,
  turns: [...document.querySelectorAll('.am-root .am-turn')].map(t => t.className),
  answers: [...document.querySelectorAll('.am-root .am-answer')].map(a => a.textContent.length),
  items: document.querySelectorAll('.am-root .am-answer li').length,
  prompts: [...document.querySelectorAll('.jp-InputArea-prompt')].map(p => p.textContent),
  notice: document.querySelector('.am-root .am-notice')?.textContent || null})"""


def keep_evidence(request: pytest.FixtureRequest, page) -> None:  # type: ignore[no-untyped-def]
    if not request.node.stash.get(FAILED, False):
        return
    ARTIFACTS.mkdir(exist_ok=True)
    stem = ARTIFACTS / f"FAILED-{request.node.name}"
    try:
        page.screenshot(path=f"{stem}.png", full_page=True)
        summary = json.dumps(page.evaluate(SUMMARY), indent=1)
        (stem.with_suffix(".json")).write_text(summary)
        print(f"page at the failure of {request.node.name}: {summary[:4000]}")  # in CI's log too
    except Exception as exc:  # the page may be gone: say so, and keep the test's own failure
        (stem.with_suffix(".txt")).write_text(f"no evidence: {exc!r}")


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    keep_evidence(request, page)
    context.close()
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def lab_page(browser, request: pytest.FixtureRequest):
    """A page for Jupyter's own UI: its errors are logged; errors from our bundle fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{e}\n{getattr(e, 'stack', '')}"))
    yield page
    keep_evidence(request, page)
    context.close()
    ours = [e for e in errors if "widget.js" in e or "am-" in e or "anywidget" in e.lower()]
    assert ours == [], ours


@pytest.fixture(scope="module")
def paced() -> Iterator[LocalServer]:
    """Visible streaming: small chunks with a short delay."""
    with LocalServer(chunk_size=3, chunk_delay=0.004, node_delay=0.02, test_mode=True) as srv:
        yield srv
