"""Thinking kept apart from the answer: Dify's reasoning_chunk events go to their node's run,
`<think>` blocks inside the answer go to the reply's own reasoning, whatever the chunking; the
answer that evaluation scores never holds them. The adapter and fold without I/O, then one
stream written through a raw socket on loopback, as a server sends it."""

from __future__ import annotations

import json
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import DifyClient
from atomemo_notebook.model.chat import Chat
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol import _neutral as n
from atomemo_notebook.protocol._wire import Event
from atomemo_notebook.protocol.dify._adapter import DifyTranslator, ThinkSplitter

from .hostile_server import one_stream_server

IDS = {"message_id": "m1", "conversation_id": "c1", "task_id": "t1"}


def frames(answer_chunks: list[str], reasoning: list[tuple[str, bool]]) -> list[tuple[str, dict]]:
    node = {"id": "run-llm", "node_id": "llm", "node_type": "llm", "title": "Think hard"}
    out = [("workflow_started", {**IDS, "workflow_run_id": "w1", "data": {"id": "w1"}}),
           ("node_started", {**IDS, "workflow_run_id": "w1", "data": node})]
    out += [("reasoning_chunk", {**IDS, "data": {"reasoning": text, "node_id": "llm", "is_final": final}})
            for text, final in reasoning]
    out += [("node_finished", {**IDS, "workflow_run_id": "w1", "data": {**node, "status": "succeeded"}})]
    out += [("message", {**IDS, "answer": chunk}) for chunk in answer_chunks]
    out += [("workflow_finished", {**IDS, "workflow_run_id": "w1", "data": {"id": "w1", "status": "succeeded"}}),
            ("message_end", {**IDS, "metadata": {}})]
    return out


def fold(items: list[tuple[str, dict]]) -> Reply:
    reply = Reply("q", translate=DifyTranslator())
    for offset, (name, data) in enumerate(items):
        reply.apply(Event(name, data), float(offset))
    reply.close()
    return reply


def test_a_nodes_reasoning_goes_to_its_run_and_never_to_the_answer():
    reply = fold(frames(["The answer."], [("Let me ", False), ("think.", False), ("", True)]))
    (llm,) = reply.nodes
    assert llm.reasoning == "Let me think." and llm.reasoning_final
    assert reply.text == "The answer." and reply.reasoning == "" and reply.status == "succeeded"
    from atomemo_notebook.model._records import timeline_records

    (row,) = timeline_records([reply])
    assert row["reasoning"] == "Let me think."


def test_think_blocks_in_the_answer_are_reasoning_however_the_chunks_cut_the_tags():
    whole = "<think>first, the plan</think>The answer is 42."
    for cut in range(1, len(whole)):
        reply = fold(frames([whole[:cut], whole[cut:]], []))
        assert reply.text == "The answer is 42.", cut
        assert reply.reasoning == "first, the plan" and reply.reasoning_final, cut


def answer_and_thought(events: list[n.Neutral]) -> tuple[str, str]:
    answer, thought = "", ""
    for event in events:
        if isinstance(event, n.Text):
            answer += event.text
        elif isinstance(event, n.TextReplaced):
            answer = event.text
        elif isinstance(event, n.Reasoning):
            thought += event.text
    return answer, thought


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<think>", "</think>", "<", ">", "think", "<th", "ink>", "a", "</", " "]),
                max_size=30), st.data())
def test_fuzz_the_splitter_loses_and_invents_nothing(pieces, data):
    text = "".join(pieces)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    splitter = ThinkSplitter()
    out: list[n.Neutral] = []
    for count, chunk in enumerate(chunks, 1):
        out.extend(splitter.split(chunk))
        if not text.startswith("<think>"):  # no thinking: the answer so far is exactly what came
            assert answer_and_thought(out)[0] == "".join(chunks[:count])
    out.extend(splitter.flush())
    answer, thought = answer_and_thought(out)
    if text.startswith("<think>"):
        body, closed, rest = text[len("<think>"):].partition("</think>")
        assert (thought, answer) == (body, rest if closed else "")
    else:
        assert (answer, thought) == (text, "")  # only an answer that opens with <think> thinks


def test_a_reasoning_chunk_that_is_not_text_is_an_anomaly_not_a_crash():
    bad = frames(["ok"], [])
    bad.insert(2, ("reasoning_chunk", {**IDS, "data": {"reasoning": {"x": 1}, "node_id": "llm"}}))
    reply = fold(bad)
    assert reply.text == "ok" and any("reasoning" in a for a in reply.anomalies)


def sse_server(items: list[tuple[str, dict]]) -> tuple[str, threading.Thread]:
    """One HTTP answer written by hand on a raw socket: the stream exactly as a server sends it."""
    body = "".join(f"event: {name}\ndata: {json.dumps({'event': name, **data})}\n\n" for name, data in items)
    return one_stream_server(body.encode(), b"/chat-messages")


def test_thinking_over_loopback_stays_out_of_the_answer():
    items = frames(["<think>Check the plan", " first.</th", "ink>Plans start at $9."],
                   [("Reading the question.", False), ("", True)])
    base_url, thread = sse_server(items)
    with DifyClient("app-test", base_url=base_url) as client:
        chat = Chat(client, user_id="thinker")
        reply = chat.ask("What does it cost?")
    thread.join(10)
    assert reply.status == "succeeded" and reply.text == "Plans start at $9."
    assert reply.reasoning == "Check the plan first." and reply.nodes[0].reasoning == "Reading the question."
