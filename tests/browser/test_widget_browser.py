"""What the widget shows, in Debian's Chromium: the built bundle bridged to a real ChatWidget."""

from __future__ import annotations

import pytest

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer

from .harness import Bridge, assert_nodes, turns

pytestmark = pytest.mark.browser


def widget_for(server: LocalServer, slug: str, **kwargs) -> ChatWidget:
    app = server.app(slug)
    widget = ChatWidget(app["app_id"], app["trigger_id"], f"browser-{slug}", api_key=server.api_key,
                        base_url=server.base_url, **kwargs)
    widget.booted.result(10)
    return widget


def ask_in_page(bridge: Bridge, text: str) -> None:
    bridge.pump()
    before = len(bridge.widget.chat.replies)
    bridge.page.fill(".am-input", text)
    bridge.page.press(".am-input", "Enter")
    # A short answer can start and settle between two polls: count replies, not the live trait.
    bridge.wait_for(lambda: len(bridge.widget.chat.replies) > before or bool(bridge.widget.notice),
                    what="the reply to start", step=True)  # nothing past the start: see wait_for


def test_typed_question_streams_in_full_with_the_timeline(page, paced, artifacts):
    bridge = Bridge(page, widget_for(paced, "support"))
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.wait_for(lambda: page.locator(".am-streaming").count() == 1, what="streaming view", step=True)
    bridge.settle()
    answer = page.locator(".am-turn .am-answer").last
    assert "Starter" in answer.inner_text() and answer.locator("table").count() == 1
    ask_in_page(bridge, "How do I rotate my API key?")
    bridge.settle()
    final = turns(bridge.widget)[-1]["answer"]
    answer = page.locator(".am-turn .am-answer").last
    assert answer.locator("ol li").count() == 4
    assert answer.locator(".am-code button.am-copy").count() == 1
    code = answer.locator("pre code")
    assert code.inner_text() in final and code.locator(".hljs-keyword").count() >= 2  # coloured python
    names = page.locator(".am-execution").last.locator(".am-node .am-row-name").all_inner_texts()
    assert_nodes(names, ["Chat Trigger", "Search help center", "Draft answer", "Reply"])
    assert "4 nodes" in page.locator(".am-summary").last.inner_text()
    assert page.locator(".am-header .am-app-name").inner_text() == "Support Assistant"
    assert page.locator(".am-version").inner_text() == "v1.0"
    page.screenshot(path=str(artifacts / "harness-light.png"))
    assert bridge.dialogs == [] and bridge.foreign_requests == []


def test_an_answer_that_reaches_the_page_in_one_burst_still_shows_it_streaming(page, paced):
    """A loaded machine may deliver a whole answer between two looks of the page: its streaming
    view still shows on the way (checked message by message), then the settled answer."""
    bridge = Bridge(page, widget_for(paced, "support"))
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.widget.wait()  # the whole answer queued for the page before it sees any of it
    assert not bridge.widget.live and bridge.inbox.qsize() > 10
    bridge.wait_for(lambda: page.locator(".am-streaming").count() == 1, what="streaming view", step=True)
    bridge.settle()
    assert page.locator(".am-streaming").count() == 0
    assert "Starter" in page.locator(".am-turn .am-answer").last.inner_text()


def test_stop_button_stops_a_long_answer(page):
    with LocalServer(chunk_size=2, chunk_delay=0.03, node_delay=0) as slow:
        bridge = Bridge(page, widget_for(slow, "echo"))
        ask_in_page(bridge, "stop me " * 60)
        bridge.wait_for(lambda: page.locator(".am-stop:visible").count() == 1, what="stop button")
        bridge.wait_for(lambda: len(page.locator(".am-streaming").inner_text()) > 10, what="some text")
        page.click(".am-stop")
        bridge.settle()
        message = turns(bridge.widget)[-1]
        assert message["status"] == "stopped" and 0 < len(message["answer"]) < len("stop me " * 60)
        assert page.locator(".am-turn .am-status-stopped").inner_text() == "stopped"
        assert page.locator(".am-primary:visible").inner_text() == "Send"


def test_escape_key_stops(page):
    with LocalServer(chunk_size=2, chunk_delay=0.03, node_delay=0) as slow:
        bridge = Bridge(page, widget_for(slow, "echo"))
        ask_in_page(bridge, "escape " * 60)
        bridge.wait_for(lambda: len(page.locator(".am-streaming").inner_text()) > 10, what="some text")
        page.press(".am-input", "Escape")
        bridge.settle()
        assert turns(bridge.widget)[-1]["status"] == "stopped"


def test_regenerate_and_sibling_navigation(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    ask_in_page(bridge, "one")
    bridge.settle()
    ask_in_page(bridge, "two")
    bridge.settle()
    page.locator(".am-turn").last.locator(".am-regenerate").click()
    bridge.wait_for(lambda: len(bridge.widget.chat.tree) == 3, what="regenerated message")
    bridge.settle()
    counts = page.locator(".am-sibling-count").all_inner_texts()
    assert counts == ["2/2"]
    page.locator(".am-prev").click()
    bridge.wait_for(lambda: page.locator(".am-sibling-count").all_inner_texts() == ["1/2"], what="1/2")
    assert bridge.widget.transcript["leaf_id"] == turns(bridge.widget)[-1]["id"]
    assert [t["query"] for t in turns(bridge.widget)] == ["one", "two"]


def test_edit_and_resend(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    ask_in_page(bridge, "original question")
    bridge.settle()
    page.locator(".am-edit-btn").click()
    page.fill(".am-edit-input", "edited question")
    page.click("text=Send edit")
    bridge.wait_for(lambda: len(bridge.widget.chat.tree) == 2, what="edited message")
    bridge.settle()
    assert page.locator(".am-turn .am-query").all_inner_texts() == ["edited question"]
    assert page.locator(".am-sibling-count").inner_text() == "2/2"


def test_a_dify_agents_log_is_a_tree_in_its_nodes_detail(page, paced):
    widget = ChatWidget(system="dify", user_id="browser-agent-log", **paced.demo("dify", "agent"))
    widget.booted.result(10)
    bridge = Bridge(page, widget)
    ask_in_page(bridge, "Where is order 1042? I'm in Berlin.")
    bridge.settle()
    page.locator(".am-node", has_text="Order agent").first.click()
    detail = page.locator(".am-detail")
    bridge.wait_for(lambda: "agent_log" in detail.inner_text(), what="the agent node's detail")
    text = detail.inner_text()
    # Each tool call a root of the log, the thought before it its child (indented under it).
    calls = [line for line in text.splitlines() if line.startswith("• ")]
    assert calls == [line for line in calls if "[success]" in line] and len(calls) == 3, text
    assert calls[0].startswith("• lookup_order [success]") and "A-1042" in calls[0]
    assert '  • Thought [success] {"thought": "I will call lookup_order."}' in text.splitlines()


def test_a_question_longer_than_the_trait_keeps_is_edited_whole(page, paced):
    """The transcript trait keeps a question's first 4,000 characters (a 269 KB question laid out
    whole froze JupyterLab): Edit asks the kernel for all of it, and the edit sends all of it."""
    bridge = Bridge(page, widget_for(paced, "echo"))
    long = "".join(f"line {i:05d} of a long question\n" for i in range(300))  # ~9,000 characters
    reply = bridge.widget.ask(long)
    reply.wait()
    bridge.settle()
    assert turns(bridge.widget)[-1]["query_chars"] == len(long) > len(turns(bridge.widget)[-1]["query"])
    edit = page.locator(".am-edit-btn")
    assert edit.is_enabled()
    edit.click()
    box = page.locator(".am-edit-input")
    bridge.wait_for(lambda: box.count() == 1, what="the edit box, after the whole question came")
    assert box.input_value() == long
    box.evaluate("(el) => { el.value = el.value.replace('line 00299', 'LINE 299'); }")
    page.click("text=Send edit")
    bridge.wait_for(lambda: len(bridge.widget.chat.tree) == 2, what="edited message")
    bridge.settle()
    edited = bridge.widget.chat.replies[-1].query
    assert edited == long.replace("line 00299", "LINE 299") and len(edited) == len(long) - 2


def test_timeline_details_are_text_and_failures_coloured(page, paced):
    bridge = Bridge(page, widget_for(paced, "flaky"))
    ask_in_page(bridge, "inventory?")
    bridge.settle()
    failed = page.locator(".am-node.am-status-failed")
    assert failed.count() == 2 and page.locator(".am-node.am-status-break").count() == 1
    failed.first.click()
    detail = page.locator(".am-detail")
    assert "HTTP 503" in detail.inner_text() and detail.locator("pre").count() >= 1
    assert "1 failed" not in page.locator(".am-summary").inner_text()  # two runs failed
    assert "2 failed" in page.locator(".am-summary").inner_text()
    page.locator(".am-turn .am-bot").last.click()
    assert page.locator(".am-execution.am-selected").count() == 1
    page.locator(".am-execution-head").first.click()
    assert page.locator(".am-turn.am-selected").count() == 1


def test_event_inspector_lists_and_filters(page, paced):
    bridge = Bridge(page, widget_for(paced, "agent"))
    ask_in_page(bridge, "order 9 in Lima")
    bridge.settle()
    page.click(".am-side-tabs .am-tab >> text=Events")
    bridge.wait_for(lambda: page.locator(".am-event").count() > 5, what="event rows")
    assert page.locator(".am-event-name").first.inner_text() == "message_created"
    page.select_option(".am-inspector select", "tool_call_started")
    bridge.wait_for(lambda: set(page.locator(".am-event-name").all_inner_texts()) == {"tool_call_started"},
                    what="filtered rows")
    assert page.locator(".am-event").count() == 3


def test_error_shows_its_code_and_keeps_the_draft(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    page.click("text=⚙ Inputs")
    page.fill("input[data-variable=tone]", "x" * 20)
    page.fill("input[data-variable=repeat]", "0")
    page.click(".am-inputs >> text=Apply")
    bridge.wait_for(lambda: bridge.widget.chat.inputs.get("repeat") == 0, what="inputs applied")
    ask_in_page(bridge, "keep these words")
    bridge.wait_for(lambda: page.locator(".am-notice").count() == 1, what="notice")
    assert page.locator(".am-notice .am-error-code").inner_text() == "TRIGGER_INPUTS_ERROR"
    assert page.input_value(".am-input") == "keep these words"


def test_reload_mid_stream_recovers_text_and_finishes(page):
    with LocalServer(chunk_size=2, chunk_delay=0.02, node_delay=0) as slow:
        bridge = Bridge(page, widget_for(slow, "echo"))
        text = "reload-proof " * 20
        ask_in_page(bridge, text)
        bridge.wait_for(lambda: len(page.locator(".am-streaming").inner_text()) > 20, what="some text")
        bridge.reload()
        bridge.wait_for(lambda: page.locator(".am-streaming").count() == 1
                        and len(page.locator(".am-streaming").inner_text()) > 20, what="recovered text")
        bridge.settle()
        assert page.locator(".am-turn .am-answer").last.inner_text().strip() == text.strip()


def test_narrow_and_dark(browser, paced, artifacts):
    context = browser.new_context(viewport={"width": 560, "height": 900})
    page = context.new_page()
    bridge = Bridge(page, widget_for(paced, "agent"), width=520, theme="jp-dark")
    ask_in_page(bridge, "order 31 in Kyoto")
    bridge.settle()
    assert page.locator(".am-root.am-narrow").count() == 1
    assert page.locator(".am-input").is_visible() and page.locator(".am-side").is_hidden()
    page.click(".am-pane-tab >> text=Timeline")  # one pane at a time: the timeline is a tab away
    # The side pane shows with the input still under it (the messages give it their room).
    assert page.locator(".am-side").is_visible() and page.locator(".am-messages").is_hidden()
    assert page.locator(".am-input").is_visible()
    assert page.locator(".am-execution .am-node").count() == 3
    page.click(".am-pane-tab >> text=Graph")  # the graph fits the narrow pane, on the dark theme
    page.wait_for_function("document.querySelectorAll('.am-gnode').length === 3")
    host = page.locator(".am-graph-host").bounding_box()
    assert host is not None and host["width"] <= 520
    assert page.evaluate("getComputedStyle(document.querySelector('.am-graph-host')).backgroundColor") == \
        "rgb(17, 20, 24)"
    name_fill = page.evaluate("getComputedStyle(document.querySelector('.am-gname')).fill")
    assert name_fill != "rgb(0, 0, 0)"  # text in the theme's colour, not black on dark
    page.keyboard.press("Tab")  # the graph and its nodes are reachable by keyboard
    page.locator(".am-gnode").first.focus()
    page.keyboard.press("Enter")
    assert "Chat Trigger" in page.locator(".am-detail").inner_text()
    page.click(".am-pane-tab >> text=Compare")
    assert page.locator(".am-compare-pick").count() == 2 and page.locator(".am-compare").is_visible()
    page.click(".am-pane-tab >> text=Chat")
    assert page.locator(".am-input").is_visible()
    background = page.evaluate("getComputedStyle(document.querySelector('.am-root')).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    page.screenshot(path=str(artifacts / "harness-dark-narrow.png"), full_page=True)
    context.close()


def test_compact_focus_view_shows_one_message(page, paced):
    widget = widget_for(paced, "echo", compact=True)
    bridge = Bridge(page, widget)
    first = widget.ask("first")
    widget.wait()
    widget.ask("second")
    widget.wait()
    widget.focus_id = str(first.message_id)
    bridge.settle()
    assert page.locator(".am-header").is_hidden() and page.locator(".am-side").is_hidden()
    assert page.locator(".am-turn .am-query").all_inner_texts() == ["first"]
    assert page.locator(".am-inline-timeline").count() == 1


def test_attach_a_file_shows_a_chip_and_sends_it(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    bridge.pump()
    page.set_input_files("input[type=file]", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello file"}])
    bridge.wait_for(lambda: bool(bridge.widget.attachment), what="the upload")
    bridge.wait_for(lambda: page.locator(".am-chip.am-attachment").count() == 1, what="the chip")
    assert "notes.txt (10 B)" in page.locator(".am-chip.am-attachment").inner_text()
    page.fill(".am-input", "and a question about it")
    page.click(".am-primary")
    # The file and the typed question go together: the file's turn, then the question's.
    bridge.wait_for(lambda: len(bridge.widget.chat.tree) == 2, what="both messages")
    bridge.settle()
    bridge.wait_for(lambda: page.locator(".am-turn").count() == 2, what="both turns")
    first, second = page.locator(".am-turn").all()
    assert "notes.txt" in first.locator(".am-user .am-chip").inner_text()
    assert first.locator(".am-answer").inner_text().strip() == "[file: notes.txt]"
    assert second.locator(".am-query").inner_text() == "and a question about it"
    assert page.locator(".am-chip.am-attachment").count() == 0
    assert page.input_value(".am-input") == ""


def test_auto_scroll_only_while_at_the_bottom(page):
    with LocalServer(chunk_size=6, chunk_delay=0.01, node_delay=0) as slow:
        bridge = Bridge(page, widget_for(slow, "echo"))
        ask_in_page(bridge, "line of text\n\n" * 120)
        list_js = "document.querySelector('.am-messages')"
        bridge.wait_for(lambda: page.evaluate(f"{list_js}.scrollHeight > {list_js}.clientHeight + 200"),
                        what="overflowing answer")
        at_bottom = f"{list_js}.scrollTop + {list_js}.clientHeight >= {list_js}.scrollHeight - 30"
        # Following the stream: the view catches up with the text at its next frame (not at the
        # same instant as the text grows, which a loaded machine can show between the two).
        bridge.wait_for(lambda: page.evaluate(at_bottom), what="following the stream")
        page.evaluate(f"{list_js}.scrollTop = 0")  # the reader scrolls up to read
        height = page.evaluate(f"{list_js}.scrollHeight")
        bridge.wait_for(lambda: page.evaluate(f"{list_js}.scrollHeight") > height + 100, what="more text")
        assert page.evaluate(f"{list_js}.scrollTop") == 0  # not yanked back down
        widget = bridge.widget
        widget.stop()
        bridge.settle()


def test_a_finished_answer_is_never_shown_twice(page, paced):
    # Traits may reach the browser one at a time (marimo does this): the settled transcript can
    # arrive before the live turn is cleared. The page must never show the answer twice meanwhile.
    bridge = Bridge(page, widget_for(paced, "support"))
    page.evaluate("""() => {
      window.__maxAnswers = 0;
      window.__maxSections = 0;
      const count = () => {
        window.__maxAnswers = Math.max(window.__maxAnswers,
          document.querySelectorAll('.am-messages .am-answer').length);
        window.__maxSections = Math.max(window.__maxSections,
          document.querySelectorAll('.am-execution').length);
      };
      new MutationObserver(count).observe(document.body, {childList: true, subtree: true});
    }""")
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    assert page.locator(".am-messages .am-answer").count() == 1
    assert page.evaluate("window.__maxAnswers") == 1
    assert page.evaluate("window.__maxSections") == 1


def test_inspector_pages_searches_and_filters_by_message(page, paced):
    widget = widget_for(paced, "echo", inputs={"repeat": 60})
    bridge = Bridge(page, widget)
    ask_in_page(bridge, "page me ")  # 480 characters in chunks of 3: well over one page of events
    bridge.settle()
    ask_in_page(bridge, "second question")
    bridge.settle()
    page.click(".am-side-tabs .am-tab >> text=Events")
    bridge.wait_for(lambda: page.locator(".am-event").count() == 200, what="the newest page")
    total = len(widget.chat.replies[0].events) + len(widget.chat.replies[1].events)
    assert page.locator(".am-event-count").inner_text() == f"{total - 199}–{total} of {total}"
    assert page.locator(".am-newer").is_disabled() and page.locator(".am-older").is_enabled()
    page.click(".am-older")
    bridge.wait_for(lambda: page.locator(".am-event-count").inner_text().startswith(f"{total - 399}–"),
                    what="the older page")
    page.select_option(".am-event-message", widget.chat.replies[1].message_id)
    second = len(widget.chat.replies[1].events)
    bridge.wait_for(lambda: page.locator(".am-event-count").inner_text().endswith(f"of {second}"),
                    what="one message's events")
    page.fill(".am-event-search", "execution_finished")
    bridge.wait_for(lambda: page.locator(".am-event").count() == 1, what="the search result")
    assert page.locator(".am-event-name").inner_text() == "execution_finished"


def test_loop_children_are_indented_under_their_loop(page, paced):
    bridge = Bridge(page, widget_for(paced, "flaky"))
    ask_in_page(bridge, "inventory?")
    bridge.settle()
    rows = page.locator(".am-execution").last.locator(".am-node")
    names = rows.locator(".am-row-name").all_inner_texts()
    depths = [rows.nth(i).evaluate("el => el.style.getPropertyValue('--am-depth')") for i in range(rows.count())]
    assert [(n.split()[0], d) for n, d in zip(names, depths, strict=True)] == [
        ("Chat", "0"), ("Retry", "0"), ("Fetch", "1"), ("Fetch", "1"), ("Request", "0"), ("Apology", "0")]
    pads = [rows.nth(i).evaluate("el => parseFloat(getComputedStyle(el).paddingLeft)") for i in range(rows.count())]
    assert pads[2] > pads[1] and pads[4] == pads[1]  # drawn indented, not only marked


def _big_graph(count: int, prefix: str = "n") -> dict:
    """A branching published workflow of `count` nodes (each node has two children)."""
    return {"nodes": [{"id": f"{prefix}{i}", "name": f"Step {i}", "type": "llm", "parent": None} for i in range(count)],
            "edges": [{"source": f"{prefix}{(i - 1) // 2}", "target": f"{prefix}{i}", "label": None}
                      for i in range(1, count)],
            "cut": False}


def _open_graph_tab(page, count: int) -> None:
    page.locator(".am-side-tabs .am-tab", has_text="Graph").click()
    page.wait_for_function("(n) => document.querySelectorAll('.am-gnode').length === n", arg=count, timeout=15_000)


def test_a_big_workflow_is_laid_out_in_the_worker_before_its_tab_opens(page, paced):
    widget = widget_for(paced, "echo")
    widget.header = {**widget.header, "graph": _big_graph(200)}
    Bridge(page, widget)
    # the worker lays it out as the widget renders, with the Graph tab still closed
    prepared = page.evaluate("""async () => { const m = await import('/widget.js');
      for (let i = 0; i < 200 && !m.layouts.origin.size; i++) await new Promise((r) => setTimeout(r, 50));
      return [...m.layouts.origin.values()]; }""")
    assert prepared == ["worker"] and page.locator(".am-gnode").count() == 0
    _open_graph_tab(page, 200)
    assert page.get_attribute(".am-graph-view", "data-layout") == "worker"
    boxes = page.evaluate("""() => [...document.querySelectorAll('.am-gnode')].map((g) => g.getAttribute('transform'))""")
    assert len(set(boxes)) == 200  # every node has a place of its own
    # at fit, 200 names would be about a pixel high: not drawn, and the view says how to read them
    assert page.locator(".am-gname").count() == 0 and page.locator(".am-graph-far-hint").is_visible()
    assert page.get_attribute(".am-gnode[data-node-id=n7]", "aria-label") == "Step 7 (llm)"
    page.focus(".am-graph-host")
    for _ in range(14):
        page.keyboard.press("+")
    assert page.locator(".am-gname").count() == 200 and page.locator(".am-graph-far-hint").is_hidden()
    assert page.locator(".am-gnode[data-node-id=n7] .am-gname").text_content() == "Step 7"


@pytest.mark.parametrize("worker", ["forbidden", "broken"])
def test_a_big_workflow_is_laid_out_here_when_no_worker_can_help(browser, paced, worker):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if worker == "forbidden":  # a page whose policy refuses workers
        page.add_init_script("window.Worker = function () { throw new DOMException('refused', 'SecurityError'); };")
    else:  # a worker that starts, then fails
        page.add_init_script("""(() => { const Real = window.Worker; window.Worker = function () {
          return new Real(URL.createObjectURL(new Blob(['throw new Error("broken worker")'],
                                                       { type: 'text/javascript' }))); }; })();""")
    try:
        widget = widget_for(paced, "echo")
        widget.header = {**widget.header, "graph": _big_graph(150, "m")}
        Bridge(page, widget)
        _open_graph_tab(page, 150)
        assert page.get_attribute(".am-graph-view", "data-layout") == "main"
        assert errors == []
    finally:
        context.close()


# Every settled turn that succeeded shows its answer, checked after each change to the page (a
# MutationObserver runs before the browser could paint): never an empty bubble, not for a frame.
WATCH_SETTLED = """() => { window.__emptySettled = [];
  new MutationObserver(() => {
    for (const turn of document.querySelectorAll('.am-turn.am-turn-succeeded')) {
      const answer = turn.querySelector('.am-answer');
      if (!answer || !answer.textContent.trim()) window.__emptySettled.push(turn.querySelector('.am-query')?.textContent);
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true}); }"""


def test_a_turn_that_settles_between_two_frames_shows_its_answer_at_once(page, paced):
    """The whole reply (start, every delta, the settle) reaches the page in one task, as it does
    when the last deltas and the settle arrive between two animation frames: the settled turn
    holds its answer at once, with no frame in which its bubble is empty."""
    bridge = Bridge(page, widget_for(paced, "support"))
    page.evaluate(WATCH_SETTLED)
    for question, word in (("Tell me about pricing plans", "Starter"), ("How do I rotate my API key?", "rotate")):
        bridge.pump()
        bridge.widget.ask(question)
        bridge.widget.wait(30)
        assert bridge.pump_in_one_task() > 3  # the live turn, its deltas and the settle together
        last = page.locator(".am-turn").last
        assert "am-turn-succeeded" in (last.get_attribute("class") or "")
        assert word in (last.locator(".am-answer").text_content() or "")
    assert page.evaluate("window.__emptySettled") == []


def test_a_kernel_busy_running_a_cell_is_never_called_gone(page, paced):
    """A cell that asks and waits in a loop keeps the kernel busy: what the browser asks meanwhile
    (here: the Events tab's first page) waits for the cell to end. The kernel still streams every
    answer, so the widget says it is busy, never that it does not answer, and the request is
    answered when the cell ends."""
    import time

    bridge = Bridge(page, widget_for(paced, "support"))
    bridge.busy_cell = True
    page.locator(".am-side .am-tab", has_text="Events").first.click()  # a command, held
    assert bridge.held, "the Events tab asks the kernel for its first page"
    started = time.monotonic()
    while time.monotonic() - started < 12:  # past the 10 s a reply may take
        bridge.widget.ask("Tell me about pricing plans")
        bridge.wait_for(lambda: bridge.widget._orchestrator.running is None or bridge.widget._orchestrator.running.done(),
                        what="the answer, streamed while the cell runs")
        assert page.locator(".am-kernel-gone").count() == 0
    page.locator(".am-kernel-busy").wait_for(timeout=5_000)
    assert "busy" in page.locator(".am-kernel-busy").inner_text()
    assert page.locator(".am-kernel-gone").count() == 0
    bridge.end_cell()
    bridge.wait_for(lambda: page.locator(".am-kernel-busy").count() == 0, what="the busy note to go")
    assert page.locator(".am-kernel-gone").count() == 0


def test_compare_offers_every_version_by_its_own_question_after_edits_and_navigation(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    widget = bridge.widget
    first = widget.ask("How do I rotate my API key?")
    widget.wait(30)
    widget.edit(first.message_id, "What does it cost?")
    widget.wait(30)
    bridge.settle()
    page.locator(".am-side .am-tab", has_text="Compare").first.click()
    picker = page.locator(".am-compare-pick").first

    def labels() -> list[str]:
        return [o.strip() for o in picker.locator("option").all_inner_texts()]

    bridge.wait_for(lambda: len(labels()) == 2, what="both versions offered")
    assert any("What does it cost?" in t and "v2/2" in t for t in labels()), labels()
    assert any("How do I rotate my API key?" in t and "v1/2" in t for t in labels()), labels()
    assert not any("another version" in t for t in labels())
    page.locator(".am-prev").first.click()  # ‹ to the first version: both still offered, each by its own
    bridge.wait_for(lambda: page.locator(".am-turn .am-query").last.inner_text() == "How do I rotate my API key?",
                    what="the first version shown")
    page.locator(".am-side .am-tab", has_text="Compare").first.click()
    bridge.wait_for(lambda: any("What does it cost?" in t for t in labels()), what="the other version offered")
    assert any("How do I rotate my API key?" in t and "v1/2" in t for t in labels()), labels()


def test_code_scrolls_instead_of_wrapping_and_untrusted_text_is_isolated(page, paced):
    """27.6: a long code line scrolls sideways (even under a host rule `pre { white-space:
    pre-wrap }`, as JupyterLab's output area has), the copy button is an icon any font draws,
    and a stray U+202E in a question reorders only itself."""
    bridge = Bridge(page, widget_for(paced, "echo"))
    page.add_style_tag(content="pre { white-space: pre-wrap; word-break: break-all; }")  # a host's rule
    line = "result = some_module.a_rather_long_function_name(argument_one, argument_two)" * 3
    ask_in_page(bridge, f"```python\n{line}\n```")
    bridge.settle()
    pre = page.locator(".am-turn .am-answer pre").last
    box = pre.evaluate("p => ({scroll: p.scrollWidth, client: p.clientWidth, height: p.querySelector('code').getBoundingClientRect().height, font: parseFloat(getComputedStyle(p).lineHeight) || 16})")
    assert box["scroll"] > box["client"]  # it scrolls
    assert box["height"] < 2.5 * box["font"]  # one line, not wrapped
    copy = page.locator(".am-copy-answer").last
    assert copy.locator("svg").count() == 1 and copy.get_attribute("aria-label") == "Copy the answer"
    ask_in_page(bridge, "abc\u202edef and more")
    bridge.settle()
    isolation = page.locator(".am-turn .am-query").last.evaluate("q => getComputedStyle(q).unicodeBidi")
    assert isolation == "isolate"


def test_new_chat_empties_the_open_event_inspector(page, paced):
    bridge = Bridge(page, widget_for(paced, "echo"))
    ask_in_page(bridge, "hello there")
    bridge.settle()
    page.locator(".am-side .am-tab", has_text="Events").first.click()
    counter = page.locator(".am-inspector .am-event-count")
    bridge.wait_for(lambda: "of" in counter.inner_text(), what="the old conversation's events")
    bridge.widget.new_conversation()  # from Python, or reopening another one: only the traits say so
    bridge.wait_for(lambda: counter.inner_text() == "no events", what="the inspector to follow the new chat")


def test_a_streaming_table_and_bold_text_never_show_their_markdown(page, paced):
    """27.5: while a block streams, its markdown is drawn as it will read (a table's header as a
    table, an open ** as bold), never as pipes and asterisks; every state the page shows is read."""
    bridge = Bridge(page, widget_for(paced, "support"))
    page.evaluate("""() => { window.__seen = [];
      new MutationObserver(() => { const live = document.querySelector('.am-streaming');
        if (live) window.__seen.push(live.textContent); })
        .observe(document.body, {childList: true, subtree: true, characterData: true}); }""")
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    seen = page.evaluate("window.__seen")
    assert len(seen) > 20  # many states of the streaming answer were read
    assert not [s for s in seen if "| Plan" in s or "|---" in s], "a table drawn as pipes"
    assert not [s for s in seen if "**" in s], "bold drawn as asterisks"


@pytest.mark.parametrize("width", [240, 360])
def test_narrow_cells_keep_the_input_in_view_on_every_pane_and_never_scroll_sideways(page, paced, width):
    """27.3: at 240-400 px each pane shows with the input under it, every tab label is whole
    (the strip scrolls, a label is never cut to "Co"), and the widget does not scroll sideways."""
    bridge = Bridge(page, widget_for(paced, "support"), width=width)
    ask_in_page(bridge, "How do I rotate my API key?")
    bridge.settle()
    tabs = page.locator(".am-pane-tab")
    for name in tabs.all_text_contents():
        tabs.filter(has_text=name).first.click()
        state = page.evaluate("""() => { const root = document.querySelector('.am-root');
          const input = document.querySelector('.am-composer .am-input').getBoundingClientRect();
          return {sideways: root.scrollWidth - root.clientWidth, input: [input.width, input.height],
                  inside: input.right <= root.getBoundingClientRect().right + 1,
                  cut: [...document.querySelectorAll('.am-pane-tab')].filter(t => t.scrollWidth > t.clientWidth + 1)
                         .map(t => t.textContent)}; }""")
        assert state["sideways"] <= 0, f"{name} at {width}px scrolls sideways by {state['sideways']} px"
        assert state["input"][0] > 80 and state["input"][1] > 20 and state["inside"], f"{name}: input {state}"
        assert state["cut"] == [], f"{name}: tab labels cut {state['cut']}"


def test_a_regenerate_streams_in_place_as_the_new_version(page):
    """27.6: regenerating the last answer shows it streaming where that turn is, as version
    ‹ 2/2 ›, never as a new question under the conversation."""
    with LocalServer(chunk_size=2, chunk_delay=0.03, node_delay=0) as slow:
        bridge = Bridge(page, widget_for(slow, "echo"))
        ask_in_page(bridge, "first question")
        bridge.settle()
        ask_in_page(bridge, "second question " * 8)
        bridge.settle()
        last = turns(bridge.widget)[-1]
        page.locator(".am-turn").last.locator(".am-regenerate").click()
        bridge.wait_for(lambda: len(page.locator(".am-streaming").inner_text()) > 4, what="the new version streaming")
        queries = page.locator(".am-turn .am-query").all_inner_texts()
        assert len(queries) == 2 and queries[-1] == last["query"]  # in place, not a third question
        assert page.locator(".am-turn").last.locator(".am-siblings").inner_text() == "‹ 2/2 ›"
        bridge.settle()
        assert page.locator(".am-turn").count() == 2
        assert page.locator(".am-turn").last.locator(".am-sibling-count").inner_text() == "2/2"


NAME_PX = """() => [...document.querySelectorAll('.am-gname')].map((t) => t.getScreenCTM().a * 12)"""


def test_a_small_graph_fits_with_names_never_below_a_readable_size(page, paced):
    bridge = Bridge(page, widget_for(paced, "support"), width=360)
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    page.click(".am-pane-tab >> text=Graph")
    page.wait_for_function("document.querySelectorAll('.am-gnode').length === 4")
    sizes = page.evaluate(NAME_PX)  # 4 nodes in a 330 px pane: the whole would put names at ~5 px
    assert len(sizes) == 4 and min(sizes) >= 9.9, sizes
    assert page.locator(".am-graph-rest-hint").is_visible() and page.locator(".am-graph-far-hint").is_hidden()
    page.focus(".am-graph-host")
    for _ in range(6):  # zoomed out to see it all: the names are small now, and the view says so
        page.keyboard.press("-")
    assert page.locator(".am-graph-rest-hint").is_hidden() and page.locator(".am-graph-far-hint").is_visible()
    page.keyboard.press("0")  # fit: readable again
    assert min(page.evaluate(NAME_PX)) >= 9.9 and page.locator(".am-graph-far-hint").is_hidden()


CUT = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.getClientRects().length > 0 && el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent)"""


@pytest.mark.parametrize("system", ["odyssey", "pipelit"])
def test_labels_are_whole_where_the_pane_has_room(page, system):
    widget = ChatWidget(system=system, demo="support")
    widget.booted.result(10)
    try:
        bridge = Bridge(page, widget, width=1000)
        ask_in_page(bridge, "Tell me about pricing plans")
        bridge.settle()
        assert page.locator(".am-execution .am-node").count() >= 2
        if system == "odyssey":  # steps reported after the answer say so in full ("reported aft…" before)
            assert page.locator(".am-track.am-reported").count() >= 1
            # the agent's name, not its slug; no list of conversations shown, so New chat promises none
            assert page.locator(".am-app-name").inner_text() == "Support Assistant"
            assert page.locator(".am-conversations").is_hidden()
            assert "stays in the list" not in (page.get_attribute(".am-new", "title") or "")
        assert page.evaluate(CUT, ".am-row-name, .am-row-label, .am-track.am-reported, .am-row-dur") == []
    finally:
        widget.close()


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_event_filters_and_search_fit_their_pane(page, paced, width):
    bridge = Bridge(page, widget_for(paced, "support"), width=width)
    ask_in_page(bridge, "Tell me about pricing plans")
    bridge.settle()
    page.locator(".am-side .am-tab", has_text="Events").click()
    bridge.wait_for(lambda: page.locator(".am-event-message option").count() > 1, what="the filters")
    pane = page.locator(".am-inspector").bounding_box()
    for control in (".am-event-type", ".am-event-message", ".am-event-search"):
        box = page.locator(control).bounding_box()
        assert pane and box and box["x"] >= pane["x"] and box["x"] + box["width"] <= pane["x"] + pane["width"] + 0.5, control
    assert page.locator(".am-event-search").bounding_box()["width"] >= 100  # room to type in


LONG_PARAGRAPH = "word " * 53_800  # 269 KB on one line, as a long echo
MANY_PARAGRAPHS = "\n\n".join(f"Paragraph {i} " + "lorem ipsum dolor sit amet " * 30 for i in range(400))  # 328 KB


def ask_long(page, bridge: Bridge, text: str) -> None:
    page.evaluate("(t) => { const el = document.querySelector('.am-input'); el.value = t; }", text)
    page.press(".am-input", "Enter")
    bridge.wait_for(lambda: len(bridge.widget.chat.replies) == 1, what="the reply to start", timeout=60)
    bridge.settle()


def test_a_long_one_line_echo_is_drawn_in_bounded_pieces_and_its_question_cut(page):
    with LocalServer(chunk_size=4000, chunk_delay=0.005, node_delay=0) as srv:
        bridge = Bridge(page, widget_for(srv, "echo"))
        ask_long(page, bridge, LONG_PARAGRAPH)
        page.wait_for_function("!document.querySelector('.am-streaming')")
        # The question bubble holds its start, not 269 KB laid out again at every draw.
        query = page.locator(".am-turn .am-query").inner_text()
        assert len(query) < 4_100 and "more characters" in query
        # The answer: one line cut after words into pieces parsed one by one, none of them whole.
        sizes = page.evaluate("[...document.querySelectorAll('.am-turn .am-answer .am-block')].map((b) => +b.dataset.chars)")
        assert len(sizes) >= 40 and max(sizes) <= 6_000, sizes
        words = page.evaluate("document.querySelector('.am-turn .am-answer').textContent.split(/\\s+/).filter(Boolean)")
        assert words.count("word") == 53_800  # every word, none cut


def test_a_long_answer_lays_out_only_what_is_near_the_view(page):
    with LocalServer(chunk_size=4000, chunk_delay=0.005, node_delay=0) as srv:
        bridge = Bridge(page, widget_for(srv, "echo"))
        ask_long(page, bridge, MANY_PARAGRAPHS)
        page.wait_for_function("!document.querySelector('.am-streaming')")
        blocks = page.locator(".am-turn .am-answer .am-block")
        assert blocks.count() >= 55
        # finished blocks skip layout off screen: a redraw or a follow lays out the visible ones
        assert page.evaluate("getComputedStyle(document.querySelector('.am-block')).contentVisibility") == "auto"
        assert page.evaluate("[...document.querySelectorAll('.am-block')].every((b) => +b.dataset.chars <= 6000)")
        assert "Paragraph 399" in page.locator(".am-turn .am-answer").text_content()
