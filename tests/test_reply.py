"""Folding streams into Replies: recorded from the embedded server (all four demo apps), and
hand-made out-of-order and missing-event cases."""

from __future__ import annotations

from itertools import pairwise

import pytest

from atomemo_notebook import Client, Event, Reply
from atomemo_notebook.protocol.atomemo.events import event_from_wire
from atomemo_notebook.server import LocalServer

from .conftest import ids


@pytest.fixture(scope="module")
def names(server: LocalServer) -> dict[str, dict[str, tuple[str, str]]]:
    with Client(server.api_key, base_url=server.base_url) as client:
        out = {}
        for slug, app in server.apps.items():
            version = client.get_app(app["app_id"]).active_version
            assert version is not None
            out[slug] = version.node_names()
        return out


def fold(server: LocalServer, slug: str, query: str, names) -> Reply:
    app = server.app(slug)
    reply = Reply(query, node_names=names[slug], system="atomemo")
    with Client(server.api_key, base_url=server.base_url) as client:
        for event in client.send_message(**ids(app), query=query, user_id="fold"):
            reply.apply(event)
    reply.close()
    return reply


def test_support_app_folds_nodes_and_text(server, names):
    reply = fold(server, "support", "pricing please", names)
    assert reply.status == "succeeded" and reply.anomalies == []
    assert [(n.name, n.type, n.status) for n in reply.nodes] == [
        ("Chat Trigger", "chat_trigger", "succeeded"),
        ("Search help center", "knowledge_retrieval", "succeeded"),
        ("Draft answer", "llm", "succeeded"),
        ("Reply", "answer", "succeeded"),
    ]
    assert "| Team | $49 / month |" in reply.text
    assert reply.message_id and reply.conversation_id and reply.execution_id
    assert reply.execution is not None and reply.execution.status == "succeeded"
    assert reply.time_to_first_token is not None and reply.total_time is not None
    assert 0 <= reply.time_to_first_token <= reply.total_time
    # Each node's span lies inside the reply, and they ran one after another.
    assert all(0 <= n.started <= n.finished <= reply.total_time for n in reply.nodes)
    assert all(a.finished <= b.started for a, b in pairwise(reply.nodes))
    assert [n.duration_ms for n in reply.nodes] == [round((n.finished - n.started) * 1000, 3) for n in reply.nodes]
    assert reply.nodes[1].json_output["documents"][0]["title"] == "Plans and pricing"
    assert reply.nodes[1].json_output["topic"] == "pricing"


def test_agent_tools_nest_under_their_node(server, names):
    reply = fold(server, "agent", "order 777 in Oslo", names)
    agent = next(n for n in reply.nodes if n.type == "ai_agent")
    assert [t.tool_name for t in agent.tools] == ["lookup_order", "get_weather", "calculator"]
    assert agent.tools[1].args == {"city": "Oslo", "units": "metric"}
    assert all(t.status == "succeeded" and t.duration_ms is not None for t in agent.tools)
    assert reply.tool_calls == agent.tools
    assert all(not n.tools for n in reply.nodes if n is not agent)


def test_flaky_app_has_failed_break_and_branch(server, names):
    ok = fold(server, "flaky", "stock?", names)
    statuses = {(n.name, n.status) for n in ok.nodes}
    assert {("Retry loop", "break"), ("Fetch inventory", "failed"), ("Apology", "succeeded")} <= statuses
    assert [n.name for n in ok.nodes].count("Fetch inventory") == 2  # two runs, two spans
    assert next(n for n in ok.nodes if n.name == "Request ok?").out_ports == [1]
    assert ok.status == "succeeded" and ok.text.startswith("Sorry")
    failed = fold(server, "flaky", "make it fail", names)
    assert failed.status == "failed" and failed.text == ""
    assert failed.execution is not None and failed.execution.status == "failed"


def test_echo_app_text_is_exact(server, names):
    query = "<img src=x onerror=alert(1)> \u2028 😀" * 3
    reply = fold(server, "echo", query, names)
    assert reply.text == query and reply.chunks > 1


def ev(name: str, **resource) -> Event:
    if name == "chat_message":
        return event_from_wire(name, {"text": resource["text"]})
    if name == "message_created":
        return event_from_wire(name, resource)
    return event_from_wire(name, {"resource": resource})


def test_node_finished_without_node_started_is_recorded():
    reply = Reply("q", node_names={"n1": ("Fetch", "http_request")}, system="atomemo")
    reply.apply(ev("node_finished", id="r1", node_id="n1", status="failed", error="boom"), 1.0)
    reply.close(offset=2.0)
    (span,) = reply.nodes
    assert (span.name, span.status, span.error) == ("Fetch", "failed", "boom")
    assert span.started is None and span.duration_ms is None
    assert span.anomaly == "node_finished without node_started"
    assert any("without node_started" in a for a in reply.anomalies)


def test_tool_response_without_start_and_without_node():
    reply = Reply("q", system="atomemo")
    reply.apply(ev("tool_response", id="t1", node_id="agent", tool_name="calc", result="4"), 0.5)
    (span,) = reply.nodes
    (tool,) = span.tools
    assert tool.result == "4" and tool.args is None and tool.anomaly
    assert span.name == "agent"  # no snapshot: the id stands in for the name


def test_missing_execution_finished_ends_failed_with_an_anomaly():
    reply = Reply("q", system="atomemo")
    reply.apply(ev("message_created", message_id="m", conversation_id="c"))
    reply.apply(ev("node_started", id="r", node_id="n"))
    reply.apply(ev("chat_message", text="partial"))
    reply.close()
    assert reply.status == "failed" and reply.text == "partial"
    assert "the stream ended without execution_finished" in reply.anomalies
    assert any("never finished" in a for a in reply.anomalies)


def test_events_out_of_order_do_not_crash():
    reply = Reply("q", system="atomemo")
    for event in [
        ev("execution_finished", id="x", status="succeeded"),
        ev("tool_call_started", id="t", node_id="a", tool_name="w", args={"a": 1}),
        ev("node_finished", id="r", node_id="a", status="succeeded"),
        ev("node_started", id="r", node_id="a"),
        Event("chat_message", {"text": "hand-made"}),
        Event("whatever", None),
        event_from_wire("_malformed_frame", {"raw": "{", "error": "bad"}),
    ]:
        reply.apply(event)
    reply.close()
    assert reply.text == "hand-made" and reply.status == "succeeded"
    assert len(reply.anomalies) >= 2 and len(reply.events) == 7


def test_listeners_follow_the_reply_and_see_the_end():
    reply = Reply("q", system="atomemo")
    seen: list[str | None] = []
    remove = reply.on_update(lambda r, e: seen.append(None if e is None else e.event))
    reply.apply(ev("chat_message", text="a"))
    reply.close("stopped")
    assert seen == ["chat_message", None] and reply.status == "stopped" and reply.wait(0)
    remove()
    reply.apply(ev("chat_message", text="b"))
    assert seen == ["chat_message", None]


def test_text_is_built_linearly():
    # 200k one-character chunks, reading the text after each: stays fast because only new parts join.
    reply = Reply("q", system="atomemo")
    chunk = event_from_wire("chat_message", {"text": "x"})
    for i in range(200_000):
        reply.apply(chunk, float(i))
        if i % 1000 == 0:
            assert len(reply.text) == i + 1
    assert len(reply.text) == 200_000


def test_a_reply_reads_its_events_with_its_systems_translator():
    with pytest.raises(TypeError, match="system="):
        Reply("q")
    dify = Reply("q", system="dify")
    dify.apply(Event("message", {"event": "message", "answer": "hi", "message_id": "m", "conversation_id": "c"}))
    atomemo = Reply("q", system="atomemo")
    atomemo.apply(Event("message", {"event": "message", "answer": "hi", "message_id": "m", "conversation_id": "c"}))
    assert (dify.text, dify.message_id) == ("hi", "m")
    assert (atomemo.text, atomemo.message_id) == ("", None)  # not an Atomemo event: Atomemo's adapter skips it
    with pytest.raises(ValueError, match="known"):
        Reply("q", system="nonesuch")


def test_text_chunks_folded_without_a_neutral_event_fold_as_with_one(server):
    """Atomemo's translator says which events are plain text chunks (`text_of`): a reply appends
    those directly. Folding the same answer through the same translator without that shortcut
    gives the same reply, field for field, including a chunk with no text or a non-string one."""
    from atomemo_notebook.protocol.atomemo._adapter import translate

    with Client(server.api_key, base_url=server.base_url) as client, \
            client.send_message(**ids(server.app("support")), query="refund for order 7",
                                user_id="fast") as stream:
        events = list(stream)
    events[3:3] = [event_from_wire("chat_message", {"text": 7}), event_from_wire("chat_message", None),
                   event_from_wire("chat_message", {"text": ""})]
    fast = Reply("q", system="atomemo", clock=lambda: 0.0)
    slow = Reply("q", translate=lambda e: translate(e), clock=lambda: 0.0)  # no text_of on it
    for reply in (fast, slow):
        reply.apply_all(events[:6])
        for i, event in enumerate(events[6:]):
            reply.apply(event, float(i))
        reply.close()
    assert sum(1 for e in events if translate.text_of(e) is not None) >= 3  # the shortcut was taken
    for field in ("text", "chunks", "first_token", "changes", "status", "anomalies", "message_id"):
        assert getattr(fast, field) == getattr(slow, field), field
    assert fast.events == slow.events and [n.status for n in fast.nodes] == [n.status for n in slow.nodes]


def test_a_reply_closed_by_a_listener_mid_batch_takes_no_more_text():
    """`apply_all` is `apply` event by event: a listener that closes the reply stops the rest
    of the batch's text as it stops the next `apply`'s; and a hand-made event whose data is not
    an object is an anomaly, not a crash."""
    def folded(one_by_one: bool) -> Reply:
        reply = Reply("q", system="atomemo", clock=lambda: 0.0)
        reply.on_update(lambda r, e: r.close() if e is not None and r.text == "a" else None)
        events = [event_from_wire("chat_message", {"text": t}) for t in "abc"]
        if one_by_one:
            for event in events:
                reply.apply(event)
        else:
            reply.apply_all(events)
        return reply

    assert folded(True).text == folded(False).text == "a"
    odd = Reply("q", system="atomemo")
    odd.apply(Event("chat_message", ["not", "an", "object"]))  # type: ignore[arg-type]
    assert odd.text == "" and any("chat_message" in a for a in odd.anomalies)
