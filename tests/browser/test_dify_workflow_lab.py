"""A Dify workflow app asked in the widget in JupyterLab, as a new user would: the inputs form
is the message, Run sends it, the run's outputs show under the answer as a collapsible tree of
text (a name that holds markup stays text), and the timeline shows the retried node's two runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .jupyter import JupyterServer, lab_with, run_and_find_chat

pytestmark = pytest.mark.browser

NAME = 'Ada <img src="https://evil.example/x.png" onerror="window.__owned=1"><b>bold</b>'
CELLS = ["from atomemo_notebook import ChatWidget\n"
         "widget = ChatWidget(system='dify', app_type='workflow', user_id='lab-user')\nwidget"]


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory) -> Iterator[JupyterServer]:
    with lab_with(tmp_path_factory.mktemp("jupyter-workflow") / "work", {"workflow.ipynb": CELLS}) as server:
        yield server


def test_a_workflow_app_asked_in_jupyterlab(lab_page, jupyter, artifacts):
    page = lab_page
    chat = run_and_find_chat(page, jupyter.lab("workflow.ipynb"), "workflow.ipynb")
    run = chat.locator(".am-run")
    run.wait_for(timeout=60_000)
    assert "Greeting workflow" in (chat.locator(".am-app-name").text_content() or "")
    assert chat.locator(".am-input").is_hidden() and chat.locator(".am-send").is_hidden()
    assert chat.locator(".am-attach").is_hidden()  # a run takes inputs, not an attachment
    assert "Fill in the inputs below and press Run." in (chat.locator(".am-empty").first.text_content() or "")
    chat.locator('input.am-field[data-variable="name"]').fill(NAME)
    run.click()
    outputs = chat.locator(".am-turn-succeeded .am-outputs")
    outputs.wait_for(timeout=60_000)
    chat.scroll_into_view_if_needed()
    leaves = outputs.locator(".am-out-leaf").all_text_contents()
    assert leaves == [f"greeting: Hello, {NAME}!", f"name: {NAME}", f"letters: {len(NAME)}"]
    assert outputs.locator("img, b, script").count() == 0  # the name's markup is text, never HTML
    assert page.evaluate("window.__owned") is None
    turn = chat.locator(".am-turn").last
    assert (turn.locator(".am-query").text_content() or "") == f"name: {NAME}"
    assert turn.locator(".am-error-box").count() == 0  # the retried node's failed first attempt failed nothing
    rows = chat.locator(".am-execution").last.locator(".am-node .am-row-name").all_text_contents()
    assert [r.split(" ")[0] for r in rows] == ["Start", "Look", "Look", "Compose", "End"]
    outputs.locator("summary").first.click()  # collapsible: closed, the values are hidden
    assert outputs.locator(".am-out-leaf").first.is_hidden()
    page.screenshot(path=str(artifacts / "jupyterlab-dify-workflow.png"))
