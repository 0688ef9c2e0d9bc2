"""Dify's node_retry, agent_log and text_chunk: each attempt of a retried node is a run of its
own (as Pipelit's are), an agent's log is a tree under its run (bounded, built without
recursion, whatever the parent ids say), a workflow's text_chunk is the answer's text. The
adapter and fold without I/O, the embedded server's agent over loopback, and one stream of
each event written through a raw socket as a server sends it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import DifyClient
from atomemo_notebook.model._agent_log import MAX_DEPTH, MAX_ENTRIES
from atomemo_notebook.model._records import timeline_records
from atomemo_notebook.model.chat import Chat
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._wire import Event
from atomemo_notebook.protocol.dify._adapter import MAX_ATTEMPTS, DifyTranslator
from atomemo_notebook.server import LocalServer
from atomemo_notebook.views._view_state import error_view, node_detail

from .conftest import maybe
from .test_dify import dify_chat
from .test_reasoning import sse_server

IDS = {"message_id": "m1", "conversation_id": "c1", "task_id": "t1", "workflow_run_id": "w1"}
HTTP = {"id": "run-http", "node_id": "http", "node_type": "http-request", "title": "HTTP"}
AGENT = {"id": "run-agent", "node_id": "agent", "node_type": "agent", "title": "Agent"}


def fold(items: list[tuple[str, dict]]) -> Reply:
    reply = Reply("q", translate=DifyTranslator())
    for offset, (name, data) in enumerate(items):
        reply.apply(Event(name, {"event": name, **data}), float(offset))
    reply.close()
    return reply


def run(*middle: tuple[str, dict], status: str = "succeeded") -> list[tuple[str, dict]]:
    return [("workflow_started", {**IDS, "data": {"id": "w1"}}), *middle,
            ("message", {**IDS, "answer": "done"}), ("message_end", {**IDS, "metadata": {}}),
            ("workflow_finished", {**IDS, "data": {"id": "w1", "status": status}})]


def retry(index: int, elapsed: float = 0.3) -> tuple[str, dict]:
    return ("node_retry", {**IDS, "data": {**HTTP, "status": "retry", "error": f"attempt {index} failed",
                                           "elapsed_time": elapsed, "retry_index": index, "outputs": {}}})


def log(entry_id: str, parent: str | None, status: str = "success", label: str | None = None,
        data: object = None) -> tuple[str, dict]:
    return ("agent_log", {**IDS, "data": {"node_execution_id": "run-agent", "node_id": "agent", "id": entry_id,
                                          "parent_id": parent, "label": label or entry_id, "status": status,
                                          "data": data, "error": None, "metadata": {}}})


# -- node_retry -----------------------------------------------------------------------------------

def test_each_attempt_of_a_retried_node_is_a_run_of_its_own_one_after_another():
    reply = fold(run(("node_started", {**IDS, "data": HTTP}), retry(1, 0.3), retry(2, 0.25),
                     ("node_finished", {**IDS, "data": {**HTTP, "status": "succeeded", "elapsed_time": 0.6,
                                                        "outputs": {"status_code": 200}}})))
    assert [(s.result_id, s.status, s.error) for s in reply.nodes] == [
        ("run-http", "failed", "attempt 1 failed"), ("run-http#attempt2", "failed", "attempt 2 failed"),
        ("run-http#attempt3", "succeeded", None)]
    assert [s.elapsed for s in reply.nodes] == pytest.approx([0.3, 0.25, 0.05])
    assert reply.nodes[2].json_output == {"status_code": 200} and reply.status == "succeeded"
    first, second, third = reply.nodes
    assert first.finished == second.started and second.finished == third.started  # no overlap, no gap
    assert not reply.anomalies
    rows = timeline_records([reply])
    assert [(r["node_id"], r["status"]) for r in rows] == [("http", "failed")] * 2 + [("http", "succeeded")]
    # The failed attempts failed nothing: the turn shows no error for them.
    assert reply.retried_runs() == {0, 1} and error_view(None, reply) is None


def test_a_node_that_fails_every_attempt_is_the_failing_node_at_its_last_attempt():
    reply = fold(run(("node_started", {**IDS, "data": HTTP}), retry(1), retry(2),
                     ("node_finished", {**IDS, "data": {**HTTP, "status": "failed", "error": "gave up"}}),
                     status="failed"))
    view = error_view(None, reply)
    assert view is not None and view["node_key"].startswith("run-http#attempt3") and view["message"] == "gave up"


def test_a_node_retried_without_end_shows_at_most_max_attempts_runs_and_says_so():
    reply = fold(run(("node_started", {**IDS, "data": HTTP}), *(retry(i) for i in range(1, MAX_ATTEMPTS + 500))))
    assert len(reply.nodes) == MAX_ATTEMPTS
    assert sum("retried past" in a for a in reply.anomalies) == 1


def test_a_retry_of_a_node_that_never_started_is_an_anomaly_not_a_crash():
    reply = fold(run(retry(1), retry(2)))
    assert reply.status == "succeeded" and reply.text == "done"
    assert any("without node_started" in a for a in reply.anomalies)


# -- agent_log ------------------------------------------------------------------------------------

def agent_run(*logs: tuple[str, dict]) -> Reply:
    return fold(run(("node_started", {**IDS, "data": AGENT}), *logs,
                    ("node_finished", {**IDS, "data": {**AGENT, "status": "succeeded"}})))


def tree(reply: Reply) -> list[tuple[str, int]]:
    (agent,) = [s for s in reply.nodes if s.node_id == "agent"]
    assert agent.agent_log is not None
    return [(row["id"], row["depth"]) for row in agent.agent_log.records()]


def test_an_agents_log_is_a_tree_under_its_run_updated_in_place():
    reply = agent_run(log("round1", None, "start", "ROUND 1"), log("think", "round1", data={"thought": "search"}),
                      log("call", "round1", "start", "CALL search", {"q": "x"}), log("result", "call"),
                      log("call", "round1", "success", "CALL search", {"hits": 3}),
                      log("round1", None, "success", "ROUND 1"), log("round2", None))
    assert tree(reply) == [("round1", 0), ("think", 1), ("call", 1), ("result", 2), ("round2", 0)]
    (agent,) = reply.nodes
    assert agent.agent_log is not None
    call = agent.agent_log.entries["call"]
    assert (call.status, call.data, call.parent_id) == ("success", {"hits": 3}, "round1")
    # Roots are also the agent's steps on the timeline; nested entries live in the tree.
    assert [t.tool_name for t in agent.tools] == ["ROUND 1", "round2"]
    (row, *_) = timeline_records([reply])
    kept = json.loads(row["agent_log"])
    assert [(r["label"], r["depth"], r["status"]) for r in kept][:3] == [
        ("ROUND 1", 0, "success"), ("think", 1, "success"), ("CALL search", 1, "success")]
    text = dict(node_detail(reply, _key(reply))["sections"])["agent_log"]
    assert text is not None and "• ROUND 1 [success]" in text and "\n  • think [success]" in text
    assert "\n    • result [success]" in text


def _key(reply: Reply) -> str:
    from atomemo_notebook.views._view_state import timeline_view

    return next(n["key"] for n in timeline_view(reply)["nodes"] if n["node_id"] == "agent")


def test_a_parent_chain_ten_thousand_deep_is_walked_without_recursion_and_capped_for_display():
    chain = [log("e0", None)] + [log(f"e{i}", f"e{i - 1}") for i in range(1, 10_000)]
    got = tree(agent_run(*chain[:MAX_ENTRIES + 10]))
    assert len(got) == MAX_ENTRIES  # bounded: the rest counted, not kept
    assert [d for _, d in got[:MAX_DEPTH + 2]] == [*range(MAX_DEPTH + 1), MAX_DEPTH]
    assert max(d for _, d in got) == MAX_DEPTH


def test_more_entries_than_kept_are_counted_and_said_once():
    reply = agent_run(*(log(f"e{i}", None, "start") for i in range(MAX_ENTRIES + 300)))
    (agent,) = reply.nodes
    assert agent.agent_log is not None and len(agent.agent_log) == MAX_ENTRIES and agent.agent_log.dropped == 300
    assert sum("agent log entries past" in a for a in reply.anomalies) == 1
    assert agent.agent_log.text().endswith("… and 300 more entries, not kept")


def test_cycles_and_self_parents_are_broken_every_entry_shown_once():
    reply = agent_run(log("a", "b"), log("b", "c"), log("c", "a"), log("self", "self"), log("kid", "a"),
                      log("a", "kid"))  # a later frame cannot move an entry under its own child
    got = tree(reply)
    # Roots first (the self-parent is one); then the cycle, broken where it is first met in
    # arrival order (a), its members and a's other child under it.
    assert got == [("self", 0), ("a", 0), ("c", 1), ("b", 2), ("kid", 1)]
    assert any("names itself" in a for a in reply.anomalies)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(st.none(), st.integers(0, 30))), max_size=80))
def test_fuzz_any_parent_ids_give_every_entry_exactly_once(pairs):
    reply = agent_run(*(log(f"e{a}", None if b is None else f"e{b}") for a, b in pairs))
    got = tree(reply) if pairs else []
    assert sorted(i for i, _ in got) == sorted({f"e{a}" for a, _ in pairs})
    assert all(0 <= d <= MAX_DEPTH for _, d in got)


async def test_the_embedded_agent_logs_its_calls_as_a_tree(kind: str, server: LocalServer):
    reply = await maybe(dify_chat(kind, server, "agent").ask("Where is order 1042? I'm in Berlin."))
    agent = next(s for s in reply.nodes if s.name == "Order agent")
    assert agent.agent_log is not None
    rows = agent.agent_log.records()
    assert [(r["label"], r["depth"]) for r in rows] == [
        (label, depth) for tool in ("lookup_order", "get_weather", "calculator")
        for label, depth in ((tool, 0), ("Thought", 1))]
    assert all(r["status"] == "success" for r in rows)
    assert [t.tool_name for t in agent.tools] == ["lookup_order", "get_weather", "calculator"]


# -- text_chunk, and the three over a raw socket -----------------------------------------------

def test_text_chunks_are_the_answer_in_order():
    reply = fold([("workflow_started", {**IDS, "data": {"id": "w1"}}),
                  *(("text_chunk", {**IDS, "data": {"text": t, "from_variable_selector": ["end", "x"]}})
                    for t in ("Ada", "\n", "200")),
                  ("text_chunk", {**IDS, "data": {"text": {"not": "text"}}}),
                  ("workflow_finished", {**IDS, "data": {"id": "w1", "status": "succeeded"}})])
    assert reply.text == "Ada\n200" and reply.status == "succeeded" and reply.chunks == 3


def test_retry_agent_log_and_text_chunk_over_loopback_as_a_server_sends_them():
    items = [("workflow_started", {**IDS, "data": {"id": "w1", "workflow_id": "wf"}}),
             ("node_started", {**IDS, "data": HTTP}), retry(1),
             ("node_finished", {**IDS, "data": {**HTTP, "status": "succeeded", "elapsed_time": 0.5}}),
             ("node_started", {**IDS, "data": AGENT}), log("r1", None, "start", "ROUND 1"),
             log("t1", "r1", data={"thought": "<img src=x onerror=alert(1)>"}), log("r1", None, label="ROUND 1"),
             ("node_finished", {**IDS, "data": {**AGENT, "status": "succeeded"}}),
             ("text_chunk", {**IDS, "data": {"text": "all ", "from_variable_selector": ["agent", "text"]}}),
             ("message", {**IDS, "answer": "done"}), ("message_end", {**IDS, "metadata": {}}),
             ("workflow_finished", {**IDS, "data": {"id": "w1", "status": "succeeded"}})]
    base_url, thread = sse_server(items)
    with DifyClient("app-test", base_url=base_url) as client:
        reply = Chat(client, user_id="steps").ask("go")
    thread.join(10)
    assert reply.status == "succeeded" and reply.text == "all done"
    assert [(s.name, s.status) for s in reply.nodes] == [("HTTP", "failed"), ("HTTP", "succeeded"),
                                                          ("Agent", "succeeded")]
    assert reply.nodes[1].elapsed == pytest.approx(0.2)
    agent = reply.nodes[2]
    assert agent.agent_log is not None
    assert [(r["label"], r["depth"], r["data"]) for r in agent.agent_log.records()] == [
        ("ROUND 1", 0, None), ("t1", 1, {"thought": "<img src=x onerror=alert(1)>"})]
