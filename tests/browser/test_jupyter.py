"""End to end in JupyterLab 4 and Notebook 7, driven in Debian's Chromium; and the secret
suite: a known key never reaches the saved notebook, the widget state, outputs or logs."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from .harness import assert_nodes
from .jupyter import JupyterServer, answer_of, open_and_run_all, run_and_find_chat, settled_turn, wait_idle

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KNOWN_KEY = "sk-known-secret-for-the-leak-suite-7f3a9c"

SECRET_NOTEBOOK = [
    "import os\nfrom atomemo_notebook import ChatWidget, Client\nfrom atomemo_notebook.server import LocalServer\n"
    "key = os.environ['ATOMEMO_LEAK_TEST_KEY']\n"
    "server = LocalServer(api_key=key, chunk_delay=0, node_delay=0).start()\n"
    "app = server.app('echo')",
    "widget = ChatWidget(app['app_id'], app['trigger_id'], 'leak', api_key=key, base_url=server.base_url)\nwidget",
    "reply = widget.ask('is my key safe?')\nreply.wait()\nprint(reply.status, reply.text)\nprint(repr(widget))",
    "client = Client(key, base_url=server.base_url)\nprint(repr(client))\nclient.get_messages('no-such-conversation')",
    "Client(key + '-wrong', base_url=server.base_url).list_conversations(app_id='a', trigger_id='t', user_id='u')",
    "Client(key, base_url='http://127.0.0.1:1/api', max_retries=0).get_messages('x')",
    "widget.ask('x', parent_id='not-a-message').wait()\nwidget.notice",
    "print(server, server.config)\nwidget.snapshot()",
]


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("jupyter") / "work"
    shutil.copytree(NOTEBOOKS, root)
    secret = nbformat.v4.new_notebook()
    secret.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    secret.cells = [nbformat.v4.new_code_cell(src) for src in SECRET_NOTEBOOK]
    for cell in secret.cells:
        cell.metadata["tags"] = ["raises-exception"]  # run-all goes on past the expected errors
    nbformat.write(secret, root / "secret.ipynb")
    server = JupyterServer(root, root.parent / "jupyter.log", env={"ATOMEMO_LEAK_TEST_KEY": KNOWN_KEY})
    yield server
    server.stop()


@pytest.fixture
def jupyter(jupyter_server: JupyterServer) -> Iterator[JupyterServer]:
    """The module's server, with no kernel left running by the test before or after."""
    jupyter_server.shutdown_kernels()
    yield jupyter_server
    jupyter_server.shutdown_kernels()


def test_quickstart_in_jupyterlab(lab_page, jupyter, artifacts):
    page = lab_page
    chat = run_and_find_chat(page, jupyter.lab("01-quickstart.ipynb"), "01-quickstart.ipynb")
    page.wait_for_function("document.querySelectorAll('.am-root .am-turn').length >= 1", timeout=60_000)
    assert "Support Assistant" in chat.locator(".am-app-name").text_content()
    assert chat.locator(".am-badge").text_content() == "offline demo server"

    chat.locator(".am-input").fill("How do I rotate my API key?")
    chat.locator(".am-input").press("Enter")
    settled_turn(chat, "How do I rotate my API key?")
    last = chat.locator(".am-turn").last
    assert last.locator(".am-query").text_content() == "How do I rotate my API key?"
    answer = answer_of(last)
    assert "To rotate an API key" in answer and "You can call the workflow from Python" in answer
    assert last.locator(".am-answer ol li").count() == 4 and last.locator(".am-copy").count() == 1
    rows = chat.locator(".am-execution").last.locator(".am-node .am-row-name").all_text_contents()
    assert_nodes(rows, ["Chat Trigger", "Search help center", "Draft answer", "Reply"])
    chat.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "jupyterlab-light.png"))

    chat.locator(".am-input").fill("Give me the long setup guide")
    chat.locator(".am-input").press("Enter")
    chat.locator(".am-streaming").wait_for(timeout=30_000)
    page.wait_for_function(
        "(document.querySelector('.am-root .am-streaming')?.textContent || '').length > 200", timeout=30_000)
    chat.locator(".am-stop").click()
    chat.locator(".am-turn .am-status-stopped").wait_for(timeout=10_000)
    stopped = answer_of(chat.locator(".am-turn").last)
    assert len(stopped) >= 200 and "your workflow is live" not in stopped

    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=20_000)
    # The theme's stylesheet loads after the flag flips: wait for the widget to take its colours.
    page.wait_for_function("getComputedStyle(document.querySelector('.am-root')).backgroundColor"
                           " !== 'rgb(255, 255, 255)'", timeout=20_000)
    page.screenshot(path=str(artifacts / "jupyterlab-dark.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")


def test_other_systems_side_by_side_in_jupyterlab(lab_page, jupyter, artifacts):
    """07-other-systems: the Atomemo and the Dify demo answer the same question side by side;
    the Dify widget shows its sources and suggestion chips, and why it has no regenerate; the
    Pipelit widget's timeline lights up node by node while it says "working", and its New chat
    clears the history only on a second click."""
    page = lab_page
    run_and_find_chat(page, jupyter.lab("07-other-systems.ipynb"), "07-other-systems.ipynb")
    roots = page.locator(".am-root")
    page.wait_for_function("document.querySelectorAll('.am-root').length === 4", timeout=60_000)
    atomemo, dify, pipelit, odyssey = roots.nth(0), roots.nth(1), roots.nth(2), roots.nth(3)
    for chat in (atomemo, dify):
        settled_turn(chat, "How do I rotate my API key?")
        assert "To rotate an API key" in answer_of(chat.locator(".am-turn").last)
        rows = chat.locator(".am-execution").last.locator(".am-node .am-row-name").all_text_contents()
        assert_nodes(rows, ["Chat Trigger", "Search help center", "Draft answer", "Reply"])
    assert atomemo.locator(".am-regenerate").count() == 1 and atomemo.locator(".am-citations").count() == 0
    assert dify.locator(".am-regenerate").count() == 0 and dify.locator(".am-system").text_content() == "Dify"
    assert atomemo.locator(".am-system").count() == 0
    assert "parent_message_id" in (dify.locator(".am-no-branch").get_attribute("title") or "")
    sources = dify.locator(".am-citations")
    assert sources.locator("summary").text_content() == "Sources (3)"
    sources.locator("summary").click()
    assert sources.locator(".am-citation-title").first.text_content() == "Creating and rotating API keys"
    chips = dify.locator(".am-suggestion")
    chips.nth(2).wait_for(state="visible")  # suggestions may follow the answer by a request of their own
    assert chips.count() == 3
    question = chips.first.text_content()
    page.screenshot(path=str(artifacts / "other-systems.png"))
    chips.first.click()
    settled_turn(dify, question)
    assert dify.locator(".am-turn").count() == 2 and dify.locator(".am-turn").first.locator(".am-suggestion").count() == 0

    pipelit_lights_up_and_clears_after_confirming(pipelit, artifacts)
    odyssey_cites_and_follows_up(odyssey, artifacts)


PIPELIT_Q = "Where is order 1042? I'm in Berlin."


def pipelit_lights_up_and_clears_after_confirming(pipelit, artifacts) -> None:
    page = pipelit.page
    pipelit.scroll_into_view_if_needed()
    settled_turn(pipelit, PIPELIT_Q)  # asked by the notebook
    assert pipelit.locator(".am-system").text_content() == "Pipelit"
    assert pipelit.locator(".am-regenerate").count() == 0 and pipelit.locator(".am-no-branch").count() == 1
    # Record every state the rows and the live answer go through while the next question runs.
    page.evaluate("""(root) => {
        const seen = window.__amPipelitSeen = new Set();
        const look = () => {
          for (const row of root.querySelectorAll('.am-node')) {
            const status = [...row.classList].find((c) => c.startsWith('am-status-'));
            seen.add(`${row.querySelector('.am-row-name')?.textContent ?? ''}|${status}`);
          }
          const typing = root.querySelector('.am-live .am-typing');
          if (typing) seen.add(`typing|${typing.textContent}`);
        };
        new MutationObserver(look).observe(root, {childList: true, subtree: true, attributes: true});
      }""", pipelit.element_handle())
    pipelit.locator(".am-input").fill(PIPELIT_Q)
    pipelit.locator(".am-input").press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('.am-root')[2].querySelectorAll('.am-turn:not(.am-live)').length === 2",
        timeout=60_000)
    settled_turn(pipelit, PIPELIT_Q)
    seen = page.evaluate("[...window.__amPipelitSeen]")
    agent_states = {s.split("|")[1] for s in seen if s.startswith("Order agent")}
    assert {"am-status-running", "am-status-succeeded"} <= agent_states, seen
    assert "typing|● working (the answer arrives whole)" in seen, seen
    answers = pipelit.locator(".am-turn .am-answer").all_text_contents()
    assert len(answers) == 2 and all("A-1042" in a for a in answers)
    summary = pipelit.locator(".am-summary").first.text_content()
    assert "· answer " in summary and "first token" not in summary, summary  # no tokens on Pipelit
    page.screenshot(path=str(artifacts / "pipelit.png"))
    clear = pipelit.locator(".am-clear")
    clear.click()
    assert clear.text_content() == "Delete the history?"
    assert pipelit.locator(".am-turn").count() == 2  # one click deletes nothing
    pipelit.locator(".am-clear").click()
    page.wait_for_function("() => document.querySelectorAll('.am-root')[2].querySelectorAll('.am-turn').length === 0",
                           timeout=30_000)


def test_quickstart_smoke_in_notebook_7(lab_page, jupyter, artifacts):
    page = lab_page
    chat = run_and_find_chat(page, jupyter.notebook7("01-quickstart.ipynb"), "01-quickstart.ipynb")
    page.wait_for_function(
        "[...document.querySelectorAll('.am-root .am-answer')].some(a => a.textContent.includes('current plans'))",
        timeout=60_000)
    chat.locator(".am-input").fill("hello from Notebook 7")
    chat.locator(".am-input").press("Enter")
    settled_turn(chat, "hello from Notebook 7")
    page.screenshot(path=str(artifacts / "notebook7.png"))


def test_known_key_leaks_nowhere(lab_page, jupyter, artifacts):
    page = lab_page
    run_and_find_chat(page, jupyter.lab("secret.ipynb"), "secret.ipynb")
    saved = jupyter.root / "secret.ipynb"
    before = saved.stat().st_mtime_ns
    page.evaluate("window.jupyterapp.shell.currentWidget.context.save()")
    page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    deadline = time.monotonic() + 30
    while saved.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.05)
    text = saved.read_text()
    notebook = json.loads(text)
    state = notebook["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert state.get("state"), "widget state was expected to be saved with the notebook"
    outputs = json.dumps([c.get("outputs", []) for c in notebook["cells"]])
    errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert {e["ename"] for e in errors} >= {"ConversationNotFoundError", "AuthenticationError",
                                            "APIConnectionError"}, [
        (c.get("execution_count"), [o.get("ename") or o.get("output_type") for o in c.get("outputs", [])])
        for c in notebook["cells"]]
    assert "is my key safe?" in outputs  # the run really happened
    assert KNOWN_KEY not in text
    assert KNOWN_KEY not in json.dumps(state)
    assert KNOWN_KEY not in outputs
    assert KNOWN_KEY not in jupyter.log_text()
    assert KNOWN_KEY not in page.content()
    page.screenshot(path=str(artifacts / "secret-suite.png"))


def odyssey_cites_and_follows_up(odyssey, artifacts) -> None:
    """OdysseyAI: steps reported after the fact (no bars), numbered sources whose link opens
    in a new tab with no opener, and a follow-up chip that asks its question."""
    page = odyssey.page
    odyssey.scroll_into_view_if_needed()
    settled_turn(odyssey, "How do I rotate my API key?")  # asked by the notebook
    assert odyssey.locator(".am-system").text_content() == "OdysseyAI"
    execution = odyssey.locator(".am-execution").last
    assert execution.locator(".am-track.am-reported").count() == 4 and execution.locator(".am-bar").count() == 0
    assert "4 steps reported" in execution.locator(".am-summary").text_content()
    assert odyssey.locator(".am-turn").last.locator(".am-timing").text_content().endswith("· 4 steps")  # not "nodes"
    sources = odyssey.locator(".am-turn").last.locator(".am-citations")
    assert sources.locator("summary").text_content() == "Sources (3)"
    sources.locator("summary").click()
    assert [n.strip() for n in sources.locator(".am-citation-n").all_text_contents()] == ["[1]", "[2]", "[3]"]
    link = sources.locator("a.am-citation-title").first
    href = link.get_attribute("href") or ""
    assert href.startswith("https://help.example.com/articles/") and link.text_content().endswith(".md")
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener noreferrer"
    # No network here: the help site is answered by the browser itself.
    page.context.route("https://help.example.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>help</title><p>article</p>"))
    with page.expect_popup() as opened:
        link.click()
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.url == href and popup.evaluate("window.opener") is None
    popup.close()
    chips = odyssey.locator(".am-turn").last.locator(".am-suggestion")
    chips.nth(2).wait_for(state="visible")
    assert chips.count() == 3
    question = chips.first.text_content()
    chips.first.click()
    settled_turn(odyssey, question)
    assert odyssey.locator(".am-turn").count() == 2
    page.screenshot(path=str(artifacts / "odyssey.png"))


def test_evaluation_table_and_drill_down_in_jupyterlab(lab_page, jupyter, artifacts):
    """08-evaluate-a-workflow: the results tables fill in; the flaky app's failed rows are
    marked with their node; a click (or Enter) opens a row's run, its failed node unmissable."""
    page = lab_page
    open_and_run_all(page, jupyter.lab("08-evaluate-a-workflow.ipynb"), "08-evaluate-a-workflow.ipynb")
    page.wait_for_function("document.querySelectorAll('.ae-root').length === 2", timeout=120_000)
    wait_idle(page)
    flaky = page.locator(".ae-root").nth(1)
    flaky.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.querySelector('.ae-progress').textContent.startsWith('5/5 done')",
                           arg=flaky.element_handle(), timeout=30_000)
    assert "2 failed" in flaky.locator(".ae-progress").text_content() and flaky.locator(".ae-stop").is_hidden()
    rows = flaky.locator("tr.ae-row")
    assert rows.count() == 5
    failed = flaky.locator("tr.ae-row.am-status-failed")
    assert failed.count() == 2 and failed.first.locator(".ae-node").text_content() == "Fetch inventory"
    cells_before = page.locator(".jp-Notebook .jp-Cell").count()
    failed.first.click()
    page.wait_for_function("(el) => el.querySelector('.ae-run .am-node.am-status-failed')",
                           arg=flaky.element_handle(), timeout=30_000)
    run = flaky.locator(".ae-run")
    assert run.locator(".ae-run-title").text_content() == f"Row {failed.first.get_attribute('data-row')}"
    names = run.locator(".am-node.am-status-failed .am-row-name").all_text_contents()
    assert names and all(name.startswith("Fetch inventory") for name in names)
    run.locator(".am-node.am-status-failed").first.click()
    assert "503" in run.locator(".am-detail").text_content()
    page.screenshot(path=str(artifacts / "evaluation.png"))
    rows.first.focus()
    page.keyboard.press("Enter")  # the keyboard opens a row too, and JupyterLab never sees the key
    page.wait_for_function("(el) => el.querySelector('.ae-run-title')?.textContent === 'Row 0'",
                           arg=flaky.element_handle(), timeout=30_000)
    assert page.locator(".jp-Notebook .jp-Cell").count() == cells_before


GRAPH_JS = """(root) => {
  const names = {};
  for (const g of root.querySelectorAll('.am-gnode')) names[g.dataset.nodeId] = g.dataset.name;
  return {
    nodes: Object.values(names).sort(),
    edges: [...root.querySelectorAll('.am-gedge')].map(e => names[e.dataset.source] + ' -> ' + names[e.dataset.target]).sort(),
    status: Object.fromEntries([...root.querySelectorAll('.am-gnode')].map(g => [names[g.dataset.nodeId],
      g.dataset.status + ':' + g.dataset.runs])),
  };
}"""


def test_the_graph_and_compare_tabs_in_jupyterlab(lab_page, jupyter, artifacts):
    """02-debugging: the flaky app's graph read from the SVG (nodes, edges, the failed node,
    the loop's count), a node's detail on click, each demo app's graph, the graph lighting up
    while a reply streams, and the Compare tab after an edit."""
    from atomemo_notebook.server._demo import DEMO_APPS

    page = lab_page
    chat = run_and_find_chat(page, jupyter.lab("02-debugging-a-failing-workflow.ipynb"),
                             "02-debugging-a-failing-workflow.ipynb")
    chat.scroll_into_view_if_needed()
    settled_turn(chat, "Is the blue kettle in stock? fail")
    chat.locator(".am-side-tabs .am-tab", has_text="Graph").click()
    page.wait_for_function("(root) => root.querySelectorAll('.am-gnode').length === 6", arg=chat.element_handle(),
                           timeout=30_000)
    graph = page.evaluate(GRAPH_JS, chat.element_handle())
    flaky = DEMO_APPS["flaky"]
    assert graph["nodes"] == sorted(name for _, name, _ in flaky.nodes)
    assert graph["edges"] == sorted(["Chat Trigger -> Retry loop", "Retry loop -> Fetch inventory",
                                     "Retry loop -> Request ok?", "Request ok? -> Inventory report",
                                     "Request ok? -> Apology"])
    assert graph["status"]["Fetch inventory"] == "failed:2" and graph["status"]["Apology"] == "not-run:0"
    names = sorted(chat.locator(".am-gname").all_text_contents())  # a small graph's names are readable at fit
    assert names == graph["nodes"] and chat.locator(".am-graph-far-hint").is_hidden()
    # JupyterLab's page lets the widget start its layout worker (a blob: script, as big graphs use)
    assert page.evaluate("""() => new Promise((resolve) => {
        const w = new Worker(URL.createObjectURL(new Blob(['onmessage = (e) => postMessage(e.data * 2)'],
                                                          { type: 'text/javascript' })));
        w.onmessage = (e) => { w.terminate(); resolve(e.data); }; w.onerror = () => resolve('refused');
        w.postMessage(21); })""") == 42
    failed = chat.locator('.am-gnode.am-gfailed')
    assert failed.count() == 1 and failed.locator(".am-gbadge").text_content() == "×2"
    failed.click()
    assert "503" in chat.locator(".am-detail").text_content()
    page.screenshot(path=str(artifacts / "graph.png"))
    # Compare: the edited question beside its first version (the defaults: the two versions).
    chat.locator(".am-side-tabs .am-tab", has_text="Compare").click()
    page.wait_for_function("(root) => root.querySelectorAll('.am-compare-row').length > 0",
                           arg=chat.element_handle(), timeout=30_000)
    only = chat.locator(".am-compare-row.am-ran-a-only td:first-child").all_text_contents()
    assert only == ["Request ok?", "Apology"]
    assert chat.locator(".am-compare-b .am-diff-add").count() >= 1 or \
        chat.locator(".am-compare-a .am-diff-del").count() >= 1
    differs = chat.locator(".am-compare-row.am-differs")
    assert differs.count() >= 1
    differs.first.click()
    assert chat.locator(".am-compare-output").count() == 2
    page.screenshot(path=str(artifacts / "compare.png"))
    # Live: the graph lights up while the next reply streams.
    chat.locator(".am-side-tabs .am-tab", has_text="Graph").click()
    page.evaluate("""(root) => { const seen = window.__amGraphSeen = new Set();
        new MutationObserver(() => { for (const g of root.querySelectorAll('.am-gnode'))
          seen.add(g.dataset.name + '|' + g.dataset.status); })
          .observe(root, {subtree: true, attributes: true, attributeFilter: ['data-status']}); }""",
                  chat.element_handle())
    chat.locator(".am-input").fill("Is the red chair in stock?")
    chat.locator(".am-input").press("Enter")
    settled_turn(chat, "Is the red chair in stock?")
    seen = set(page.evaluate("[...window.__amGraphSeen]"))
    assert "Retry loop|running" in seen and "Apology|succeeded" in seen, seen
    # Every demo app's own graph.
    for slug in ("echo", "agent", "support"):
        app = DEMO_APPS[slug]
        chat.locator(".am-demo-picker").select_option(slug)
        page.wait_for_function("([root, n]) => root.querySelectorAll('.am-gnode').length === n",
                               arg=[chat.element_handle(), len(app.nodes)], timeout=30_000)
        graph = page.evaluate(GRAPH_JS, chat.element_handle())
        names = [name for _, name, _ in app.nodes]
        assert graph["nodes"] == sorted(names)
        assert graph["edges"] == sorted(f"{a} -> {b}" for a, b in itertools.pairwise(names))
    # After a regenerate (support): the same answer, another sample: the model node's output differs.
    chat.locator(".am-input").fill("What does it cost?")
    chat.locator(".am-input").press("Enter")
    settled_turn(chat, "What does it cost?")
    chat.locator(".am-turn").last.locator(".am-regenerate").click()
    page.wait_for_function("(root) => { const t = [...root.querySelectorAll('.am-turn')].pop();"
                           " return t && !t.classList.contains('am-live') && t.textContent.includes('2/2'); }",
                           arg=chat.element_handle(), timeout=30_000)
    chat.locator(".am-side-tabs .am-tab", has_text="Compare").click()
    page.wait_for_function("(root) => [...root.querySelectorAll('.am-compare-row.am-differs td:first-child')]"
                           ".map(td => td.textContent).join() === 'Draft answer'", arg=chat.element_handle(),
                           timeout=30_000)
    assert chat.locator(".am-compare-a .am-diff-del").count() == 0  # the answers themselves are the same
