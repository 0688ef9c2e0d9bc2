"""What a finished reply keeps, counted as Python's cyclic garbage collector sees it: an
evaluation keeps thousands of replies, and each full collection walks every container object
they hold. Counts, not seconds (bench/eval_throughput.py measures the time)."""

from __future__ import annotations

import gc
import threading
import types
import weakref
from typing import Any

import pytest

from atomemo_notebook import AsyncChat, AsyncClient, Chat, Client, Event, Reply, evaluate
from atomemo_notebook.model.reply import EventRecord
from atomemo_notebook.protocol.atomemo.events import ChatMessage, NodeStarted, event_from_wire
from atomemo_notebook.server import LocalServer

from .conftest import ids

SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def tracked_from(root: object) -> int:
    """Container objects the collector tracks, reachable from `root` (shared classes, modules and
    functions left out). Iterative: no recursion limit on a deep value."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, SHARED):
            continue
        seen.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return len(seen)


def answer(chunks: int) -> Reply:
    reply = Reply("q", system="atomemo")
    reply.apply(event_from_wire("message_created", {"message_id": "m1", "conversation_id": "c1"}))
    reply.apply(event_from_wire("execution_started", {"resource_type": "execution", "resource": {
        "id": "x1", "status": "running"}}))
    for i in range(chunks):
        reply.apply(event_from_wire("chat_message", {"text": f"word {i} "}))
    reply.apply(event_from_wire("execution_finished", {"resource_type": "execution", "resource": {
        "id": "x1", "status": "succeeded"}}))
    reply.close()
    return reply


def test_text_chunks_keep_no_object_each():
    small, large = answer(10), answer(2_000)
    assert len(large.events) == 2_003 and large.text.startswith("word 0 word 1 ")
    gc.collect()  # as a full collection leaves them: dicts of atoms untracked
    # An object per chunk (a record and its event) was 4,000 more for the large one.
    assert tracked_from(large) - tracked_from(small) <= 2, (tracked_from(small), tracked_from(large))
    # And few at all: the reply, its columns, its text; no empty list for citations, files,
    # anomalies, pauses or thinking it never had (made when first used: below).
    assert tracked_from(large) <= 16, tracked_from(large)
    assert large.citations == [] and large.pauses == [] and large.anomalies == []
    large.anomalies.append("a note")  # made when read, kept: what is put in stays
    large.files = [{"name": "a.txt"}]
    assert large.anomalies == ["a note"] and large.files == [{"name": "a.txt"}]


def test_a_node_run_keeps_no_empty_list_and_its_ports_as_said(server: LocalServer):
    from atomemo_notebook.model.reply import NodeSpan

    span = NodeSpan(result_id="r", node_id="n", name="Node", type="llm")
    gc.collect()
    assert tracked_from(span) == 1  # the span alone: no list for tools, thinking or ports
    assert span.tools == [] and span.out_ports == [] and span.reasoning == ""
    with Client(server.api_key, base_url=server.base_url) as client:
        reply = Chat(client, **ids(server.app("support")), user_id="objects").ask("refund please")
    assert reply.status == "succeeded" and all(node.status == "succeeded" for node in reply.nodes)
    # The branch taken is the port a node reports; a node that reports none has none.
    ports = {node.name: node.out_ports for node in reply.nodes}
    assert any(ports.values()) and all(isinstance(p, list) for p in ports.values()), ports


def test_events_read_back_as_records_of_their_own_class():
    reply = answer(3)
    node = event_from_wire("node_started", {"resource_type": "result", "resource": {
        "id": "r1", "node_id": "n1", "status": "running"}})
    reply = Reply("q", system="atomemo")
    reply.apply(node, offset=0.5)
    reply.apply(event_from_wire("chat_message", {"text": "hi"}), offset=0.75)
    reply.apply(Event("custom_event", {"k": [1, 2]}), offset=1.0)
    events = reply.events
    assert len(events) == 3 and bool(events)
    first = events[0]
    assert isinstance(first, EventRecord) and type(first.event) is NodeStarted and first.offset == 0.5
    assert first.event == node and first.event.data is node.data  # the same data, not a copy
    assert type(events[1].event) is ChatMessage and events[1].event.text == "hi"
    assert events[-1] == EventRecord(1.0, Event("custom_event", {"k": [1, 2]}))
    assert type(events[-1].event) is Event
    assert [r.offset for r in events] == [0.5, 0.75, 1.0] == [r.offset for r in events[:]]
    assert [r.offset for r in events[1:]] == [0.75, 1.0] and events[::-1][0].offset == 1.0
    assert events[5:] == []
    with pytest.raises(IndexError):
        events[3]
    with pytest.raises(IndexError):
        events[-4]
    assert next(reversed(events)).offset == 1.0 and events.index(events[1]) == 1
    assert "3 events" in repr(events)
    # What a reader of many events reads alone, without a record or an event per event.
    assert [events.name(i) for i in range(3)] == ["node_started", "chat_message", "custom_event"] == events.names()
    assert events.offset(-1) == 1.0 and events.data(0) is node.data and events.event(1).text == "hi"
    with pytest.raises(IndexError):
        events.name(3)
    # Compared like the list it was: with a list, a tuple, or another reply's events.
    assert events == list(events) and events == tuple(events) and reply.events == events
    assert Reply("q", system="atomemo").events == [] and events != [] and events != "abc"
    head = events.first(2)
    reply.apply(event_from_wire("chat_message", {"text": "later"}), offset=2.0)
    assert len(head) == 2 and head == events[:2] and len(events) == 4  # the prefix stays as it was
    assert len(events.first(99)) == 4 and len(events.first(-1)) == 0


def test_event_classes_made_on_the_fly_are_bounded_and_lose_no_event(monkeypatch):
    from atomemo_notebook.model import reply as reply_module

    monkeypatch.setattr(reply_module, "MAX_KINDS", len(reply_module._KINDS) + 2)
    reply = Reply("q", system="atomemo")
    made = [type(f"Made{i}", (Event,), {"__slots__": ()}) for i in range(5)]
    for i, cls in enumerate(made):
        reply.apply(cls(f"made_{i}", {"i": i}))
    events = reply.events
    assert [type(e.event) for e in events] == [*made[:2], Event, Event, Event]  # past the bound: plain
    assert [(e.event.event, e.event.data) for e in events] == [(f"made_{i}", {"i": i}) for i in range(5)]
    assert len(reply_module._KINDS) == reply_module.MAX_KINDS


def test_a_replys_events_are_not_the_saved_event_log():
    import atomemo_notebook

    reply = answer(2)
    assert not isinstance(reply.events, atomemo_notebook.EventLog)  # replay() reads a saved log, by its own name
    with pytest.raises(TypeError):
        hash(reply.events)


def test_reading_events_while_another_thread_applies():
    reply = Reply("q", system="atomemo")
    stop = threading.Event()
    problems: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                for record in reply.events:  # never a half-appended event
                    assert isinstance(record.event.data, dict)
        except BaseException as exc:  # handed to the test
            problems.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(3_000):
            reply.apply(event_from_wire("chat_message", {"text": str(i)}))
    finally:
        stop.set()
        reader.join(30)
    assert not problems and len(reply.events) == 3_000


def test_wait_from_another_thread_and_after_the_end():
    reply = Reply("q", system="atomemo")
    assert not reply.wait(0.01) and not reply.done
    waited: list[bool] = []
    waiting = threading.Thread(target=lambda: waited.append(reply.wait(30)))
    waiting.start()
    reply.close("succeeded")
    waiting.join(30)
    assert waited == [True] and reply.done and reply.wait(0)
    reply.reopen()  # as after a form's answer: not final again until it ends again
    assert not reply.done and not reply.wait(0.01)
    reply.close("succeeded")
    assert reply.wait(0)


def test_a_finished_reply_lets_go_of_its_chat(server: LocalServer):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = Chat(client, **ids(server.app("echo")), user_id="objects")
        reply = chat.ask("hello")
        assert reply.status == "succeeded" and reply.responder is None
        # A reply that keeps the chat keeps every reply of its conversation, in a cycle.
        assert all(r.responder is None for r in chat.replies)


def test_dropped_evaluation_is_freed_without_the_collector(server: LocalServer):
    """Rows' replies in no cycle: dropping the results frees every reply at once, by reference
    counting, with the collector switched off (each was in a cycle with its chat, ~90 objects a
    row, left to a full collection, which walks the whole heap, to find)."""
    async_client = AsyncClient(server.api_key, base_url=server.base_url)
    chat = AsyncChat(async_client, **ids(server.app("echo")), user_id="objects-eval")
    results: Any = evaluate(chat, [f"question {i}" for i in range(20)], concurrency=4).wait(120, bar=False)
    assert (results.df["status"] == "succeeded").all()
    replies = [weakref.ref(reply) for row in results.replies for reply in row]
    assert len(replies) == 20
    gc.disable()  # nothing but reference counting may free them
    try:
        del results
        alive = sum(ref() is not None for ref in replies)
    finally:
        gc.enable()
    assert alive == 0, f"{alive} of 20 replies outlived their results"
