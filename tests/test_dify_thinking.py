"""A model's thinking as the widget and the static copy show it: under its node, collapsed,
never in the answer. Over loopback against the embedded server's Dify routes (its `thinker`
app streams reasoning_chunk events), then the views built from the reply."""

from __future__ import annotations

from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._wire import Event
from atomemo_notebook.protocol.dify._adapter import DifyTranslator
from atomemo_notebook.views import _widget_protocol as wp
from atomemo_notebook.views._snapshot import snapshot_html
from atomemo_notebook.views._view_state import REASONING_CAP, reasoning_view, timeline_view

from .conftest import maybe
from .test_dify import dify_chat


async def test_a_nodes_thinking_streams_to_its_run_and_its_timeline_row(kind, server):
    chat = dify_chat(kind, server, "thinker")
    reply = await maybe(chat.ask("Why is the sky blue?"))
    assert reply.status == "succeeded" and reply.text == "Here is a short answer to: Why is the sky blue?"
    llm = next(s for s in reply.nodes if s.name == "Think and draft")
    assert llm.reasoning.startswith("The question is 'Why is the sky blue?'") and llm.reasoning_final
    assert "The question is" not in reply.text and reply.reasoning == ""
    chunks = [r.event for r in reply.events if r.event.event == "reasoning_chunk"]
    assert len(chunks) > 2 and (chunks[-1].data or {})["data"]["is_final"] is True
    view = timeline_view(reply)
    wp.check(view, wp.TimelineView)
    rows = {n["name"]: n for n in view["nodes"]}
    assert rows["Think and draft"]["reasoning"] == {"text": llm.reasoning, "chars": len(llm.reasoning),
                                                     "final": True}
    assert rows["Reply"]["reasoning"] is None and view["reasoning"] is None


def test_a_thought_streaming_is_not_final_and_a_long_one_keeps_its_newest_text():
    reply = Reply("q", translate=DifyTranslator())
    ids = {"message_id": "m1", "conversation_id": "c1", "task_id": "t1"}
    reply.apply(Event("node_started", {**ids, "workflow_run_id": "w", "data": {"id": "r1", "node_id": "llm",
                                                                              "title": "LLM"}}), 0.0)
    reply.apply(Event("reasoning_chunk", {**ids, "data": {"reasoning": "a" * 10 + "b" * REASONING_CAP,
                                                         "node_id": "llm", "is_final": False}}), 0.1)
    (row,) = timeline_view(reply)["nodes"]
    assert row["reasoning"] == {"text": "b" * REASONING_CAP, "chars": REASONING_CAP + 10, "final": False}
    assert reasoning_view([], False) is None and reasoning_view([""], True) is None


def test_the_answers_own_think_block_is_on_the_timeline_and_the_snapshot_shows_thoughts_collapsed():
    from atomemo_notebook.model.tree import MessageTree

    reply = Reply("q", translate=DifyTranslator())
    ids = {"message_id": "m1", "conversation_id": "c1", "task_id": "t1"}
    node = {"id": "r1", "node_id": "llm", "title": "LLM"}
    for offset, (name, data) in enumerate([
            ("workflow_started", {**ids, "workflow_run_id": "w", "data": {"id": "w"}}),
            ("node_started", {**ids, "workflow_run_id": "w", "data": node}),
            ("reasoning_chunk", {**ids, "data": {"reasoning": "<script>alert(1)</script> weigh it",
                                                 "node_id": "llm", "is_final": True}}),
            ("node_finished", {**ids, "workflow_run_id": "w", "data": {**node, "status": "succeeded"}}),
            ("message", {**ids, "answer": "<think>my own plan</think>The answer."}),
            ("message_end", {**ids, "metadata": {}}),
            ("workflow_finished", {**ids, "workflow_run_id": "w", "data": {"id": "w", "status": "succeeded"}})]):
        reply.apply(Event(name, data), float(offset))
    reply.close()
    view = timeline_view(reply)
    assert view["reasoning"] == {"text": "my own plan", "chars": 11, "final": True}
    tree = MessageTree()
    tree.add_reply(reply)
    page = snapshot_html({"app_name": "t"}, tree, "m1")
    assert page.count('<details class="think"') == 2 and "<details open" not in page
    assert "my own plan" in page and "&lt;script&gt;alert(1)&lt;/script&gt; weigh it" in page
    assert "<script>" not in page
    # The answer itself never holds the thinking.
    assert page.index("my own plan") < page.index("The answer.")
    assert page.count("my own plan") == 1
