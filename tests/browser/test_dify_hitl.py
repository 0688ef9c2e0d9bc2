"""Dify as it is today, in JupyterLab 4 (Debian's Chromium): a node's thinking as a collapsed
"Thinking…" block that streams while open and closes when final, never in the answer; a paused
run's form drawn (sanitized), filled and submitted, the run going on in the same turn; an answer rated like, commented and taken back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator

from .jupyter import answer_of, lab_fixtures, open_chat, settled_turn

pytestmark = pytest.mark.browser

SERVER = ("from atomemo_notebook import ChatWidget\nfrom atomemo_notebook.server import LocalServer\n"
          "srv = LocalServer(chunk_size=4, chunk_delay={delay}, node_delay=0).start()\n")
NOTEBOOKS = {
    "thinking": [SERVER.format(delay=0.08) + "app = srv.app('thinker')\n"
                 "chat = ChatWidget(system='dify', api_key=app['dify_api_key'], base_url=srv.dify_base_url,"
                 " user_id='thinks')\nchat"],
    "approval": [SERVER.format(delay=0.01) + "app = srv.app('approval')\n"
                 "chat = ChatWidget(system='dify', api_key=app['dify_api_key'], base_url=srv.dify_base_url,"
                 " user_id='reviews')\nchat"],
    "feedback": [SERVER.format(delay=0) + "app = srv.app('echo')\n"
                 "chat = ChatWidget(system='dify', api_key=app['dify_api_key'], base_url=srv.dify_base_url,"
                 " user_id='rates')\nchat"],
}


lab, jupyter = lab_fixtures("dify-hitl", NOTEBOOKS)


def ask(chat: Locator, text: str) -> None:
    chat.locator(".am-input").fill(text)
    chat.locator(".am-input").press("Enter")


def test_a_nodes_thinking_is_a_collapsed_block_that_streams_while_open_and_closes_when_final(lab_page, jupyter,
                                                                                               artifacts):
    page = lab_page
    chat = open_chat(page, jupyter, "thinking")
    chat.scroll_into_view_if_needed()
    ask(chat, "Why is the sky blue?")
    block = chat.locator(".am-execution.am-live .am-thinking-node")
    block.wait_for(timeout=30_000)
    # Collapsed at first, and still thinking.
    assert block.evaluate("el => el.open") is False
    assert block.locator(".am-thinking-label").text_content() == "Thinking…"
    block.locator("summary").click()
    # Opened while it streams: it stays open through the redraws, and its text grows.
    first = len(block.locator(".am-thinking-text").text_content() or "")
    page.wait_for_function(
        """([root, first]) => { const b = root.querySelector('.am-execution.am-live .am-thinking-node');
               return b && b.open && b.querySelector('.am-thinking-text').textContent.length > first; }""",
        arg=[chat.element_handle(), first], timeout=30_000)
    page.screenshot(path=str(artifacts / "dify-thinking-open.png"))
    # Final: the block closes by itself, says it is done, and holds the whole thought.
    settled_turn(chat, "Why is the sky blue?")
    final = chat.locator(".am-execution").last.locator(".am-thinking-node")
    final.wait_for(timeout=30_000)
    page.wait_for_function(
        """root => { const b = [...root.querySelectorAll('.am-execution .am-thinking-node')].pop();
               return b && b.classList.contains('am-final') && !b.open; }""",
        arg=chat.element_handle(), timeout=30_000)
    assert final.locator(".am-thinking-label").text_content() == "Thinking"
    thought = final.locator(".am-thinking-text").text_content() or ""
    assert thought.startswith("The question is 'Why is the sky blue?'") and thought.endswith("the question.")
    # Never mixed into the answer.
    answer = answer_of(chat.locator(".am-turn").last)
    assert answer.strip() == "Here is a short answer to: Why is the sky blue?"
    assert chat.locator(".am-turn .am-thinking").count() == 0  # the answer itself had no <think> block
    # Opened again by the reader, a final block stays open across redraws.
    final.locator("summary").click()
    page.wait_for_function(
        "root => [...root.querySelectorAll('.am-execution .am-thinking-node')].pop().open",
        arg=chat.element_handle(), timeout=10_000)


HOSTILE = "refund <script>window.__pwned = 1</script> ![t](https://evil.example/track.png) please"


def test_a_paused_runs_form_is_drawn_sanitized_filled_and_submitted_and_the_turn_goes_on(lab_page, jupyter,
                                                                                          artifacts):
    page = lab_page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    chat = open_chat(page, jupyter, "approval")
    chat.scroll_into_view_if_needed()
    ask(chat, HOSTILE)
    form = chat.locator(".am-turn .am-form")
    form.wait_for(timeout=30_000)
    turn = chat.locator(".am-turn").last
    assert "am-turn-waiting" in (turn.get_attribute("class") or "")
    assert "waiting for you" in (turn.locator(".am-meta").text_content() or "")
    assert "Review request" in (form.locator(".am-form-head").text_content() or "")
    assert form.locator(".am-form-left").text_content().strip().startswith("waiting for you ·")
    # The content is markdown drawn like an answer: a heading, the query in bold, no script, the
    # remote image held (not loaded).
    assert form.locator(".am-form-content h2").text_content() == "Please review"
    assert form.locator(".am-form-content script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert all(img.get_attribute("src") is None for img in form.locator(".am-form-content img").all())
    assert not [u for u in requests if "evil.example" in u]
    # Its inputs are real form fields with their defaults; its actions, buttons.
    comment, priority = form.locator("textarea.am-form-input"), form.locator("input.am-form-input")
    assert comment.input_value() == "looks fine" and priority.input_value() == ""
    assert form.locator(".am-form-action").all_text_contents() == ["Approve", "Reject"]
    comment.fill("fine by me")
    priority.fill("high")
    page.screenshot(path=str(artifacts / "dify-form.png"))
    form.locator(".am-form-action", has_text="Approve").click()
    # The run goes on in the same turn: one turn, its answer grown, the form gone, the pause kept.
    page.wait_for_function(
        """root => { const turns = [...root.querySelectorAll('.am-turn')];
               const last = turns[turns.length - 1];
               return turns.length === 1 && last && last.classList.contains('am-turn-succeeded')
                 && (last.querySelector('.am-answer')?.textContent ?? '').includes('Approved with priority high'); }""",
        arg=chat.element_handle(), timeout=30_000)
    settled = chat.locator(".am-turn").last
    assert answer_of(settled).strip().endswith("Approved with priority high: fine by me")
    assert settled.locator(".am-form").count() == 0
    assert "form answered: Approve" in (settled.locator(".am-meta").text_content() or "")
    rows = chat.locator(".am-execution").last.locator(".am-node")
    review = [r.locator(".am-row-status").text_content() for r in rows.all()
              if "Review request" in (r.locator(".am-row-name").text_content() or "")]
    assert review == ["paused", "succeeded"]


def test_an_answer_is_rated_commented_and_the_rating_taken_back(lab_page, jupyter):
    page = lab_page
    chat = open_chat(page, jupyter, "feedback")
    chat.scroll_into_view_if_needed()
    ask(chat, "rate this answer")
    settled_turn(chat, "rate this answer")
    turn = chat.locator(".am-turn").last
    like, dislike = turn.locator(".am-feedback-like"), turn.locator(".am-feedback-dislike")
    assert like.get_attribute("aria-pressed") == "false" and dislike.get_attribute("aria-pressed") == "false"
    like.click()
    page.wait_for_function(
        "root => [...root.querySelectorAll('.am-turn .am-feedback-like')].pop()?.getAttribute('aria-pressed') === 'true'",
        arg=chat.element_handle(), timeout=20_000)
    comment = chat.locator(".am-turn").last.locator(".am-feedback-comment")
    comment.fill("clear and short")
    chat.locator(".am-turn").last.locator(".am-feedback-send").click()
    page.wait_for_function("root => !root.querySelector('.am-feedback-comment')", arg=chat.element_handle(),
                           timeout=20_000)
    assert chat.locator(".am-turn").last.locator(".am-feedback-sent").text_content() == "comment sent"
    assert chat.locator(".am-turn").last.locator(".am-feedback-like").get_attribute("aria-pressed") == "true"
    # Pressed again, the rating is taken back.
    chat.locator(".am-turn").last.locator(".am-feedback-like").click()
    page.wait_for_function(
        "root => [...root.querySelectorAll('.am-turn .am-feedback-like')].pop()?.getAttribute('aria-pressed') === 'false'",
        arg=chat.element_handle(), timeout=20_000)
    assert chat.locator(".am-notice").count() == 0 or not (chat.locator(".am-notice").text_content() or "").strip()
