"""A row of evaluate() is folded and recorded while the next row's request is out (at
concurrency 1 the client would otherwise wait idle on the server then), over loopback against
the embedded server: the transport says when a request is written, before its answer's headers
are read, or when it is paused (REQUEST_SENT); a held answer is folded at the times its events
arrived, never at the time it is folded; an answer past the bound, counted inflated, is not
held; a row with scorers is recorded before the next is asked; a row that cannot be saved stops
every worker at once; a stop or a failure before the next request is written keeps the row
answered before; a script's turns end in order; no task an ask started keeps the run alive."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from atomemo_notebook import AsyncChat, AsyncClient, evaluate, exact, load_evaluation
from atomemo_notebook.model import chat as chat_module
from atomemo_notebook.model.chat import LEAF
from atomemo_notebook.server import LocalServer
from atomemo_notebook.transport._client import REQUEST_SENT

from .conftest import wait_until
from .test_eval_cache import server_asks as _asks
from .test_evaluate import Faulty
from .test_pool_gate import _answer


def _chat(server: LocalServer, user: str, hooks: list[Any] | None = None,
          transport: httpx.AsyncBaseTransport | None = None, response_hooks: list[Any] | None = None) -> AsyncChat:
    http = httpx.AsyncClient(event_hooks={"request": hooks or [], "response": response_hooks or []},
                             transport=transport)
    api = AsyncClient(server.api_key, base_url=server.base_url, http_client=http)
    app = server.app("echo")
    return AsyncChat(api, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id=user)


async def test_the_transport_says_when_a_request_is_written_before_its_answer_is_read(server):
    user = f"sent-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []

    async def headers(response: httpx.Response) -> None:  # httpx calls it once the headers are read
        seen.append("headers")

    def sent() -> None:
        # Called on the client's loop with the loop held: the server can have the request only
        # if it was written before this call (else this wait runs out, with nothing sent).
        wait_until(lambda: _asks(server, user) == 1, 10, "the server to have the request")
        seen.append("sent")

    chat = _chat(server, user, response_hooks=[headers])
    token = REQUEST_SENT.set(sent)
    try:
        stream = await chat.backend.client.send_message(app_id=chat.app_id, trigger_id=chat.trigger_id,
                                                        query="written?", user_id=user)
    finally:
        REQUEST_SENT.reset(token)
    assert seen == ["sent", "headers"]  # once: when written, before the answer's headers were read
    async for _ in stream:
        pass
    await stream.close()
    assert seen == ["sent", "headers"]
    await chat.backend.client.close()


async def test_a_request_paused_by_a_429_says_so_before_it_waits(server):
    chat = _chat(server, f"paused-{uuid.uuid4().hex[:8]}")
    client = chat.backend.client
    client._paused_until = time.monotonic() + 0.5  # as a 429's Retry-After leaves it
    told: list[float] = []
    token = REQUEST_SENT.set(lambda: told.append(time.monotonic()))
    try:
        stream = await client.send_message(app_id=chat.app_id, trigger_id=chat.trigger_id, query="after the pause",
                                           user_id=chat.user_id)
    finally:
        REQUEST_SENT.reset(token)
    await stream.close()
    assert told and told[0] < client._paused_until  # told while paused, not once sent
    await client.close()


async def test_a_transport_without_trace_events_says_so_once_its_answer_has_come(server):
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append("answered")
        return _answer()

    chat = _chat(server, "mock", transport=httpx.MockTransport(handler))
    token = REQUEST_SENT.set(lambda: seen.append("sent"))
    try:
        stream = await chat.backend.client.send_message(app_id="a", trigger_id="t", query="q", user_id="u")
    finally:
        REQUEST_SENT.reset(token)
    assert seen == ["answered", "sent"]
    await stream.close()
    await chat.backend.client.close()


def test_at_concurrency_1_a_row_is_recorded_while_the_next_rows_request_is_out(server):
    user = f"overlap-{uuid.uuid4().hex[:8]}"
    rows = [f"overlap row {i}" for i in range(6)]
    results = evaluate(_chat(server, user), rows, concurrency=1)
    at_finish: dict[int, int] = {}
    lock = threading.Lock()

    def on_change(changed: Any) -> None:  # on the evaluation's loop, the loop held
        done = changed.progress()["done"]
        with lock:
            if done in at_finish or not done:
                return
            at_finish[done] = -1
        if done < len(rows):  # the next row's request is already out: the server has it
            with_next = done + 1
            try:
                wait_until(lambda: _asks(server, user) >= with_next, 3, "the next row's request")
            except AssertionError:
                return  # not sent before this row was recorded: the assertion below says so
        at_finish[done] = _asks(server, user)

    results.listeners.append(on_change)
    results.wait(60, bar=False)
    assert (results.df["status"] == "succeeded").all()
    seen = {done: asks for done, asks in at_finish.items() if done > 1}  # the first may end before it is watched
    assert seen == {done: min(done + 1, len(rows)) for done in range(2, len(rows) + 1)}, at_finish


def test_a_row_with_scorers_is_recorded_before_the_next_is_asked(server):
    user = f"scored-{uuid.uuid4().hex[:8]}"
    rows = [f"scored row {i}" for i in range(4)]
    asked_when_scored: list[int] = []

    def scorer(row: dict[str, Any], reply: Any) -> bool:
        asked_when_scored.append(_asks(server, user))  # a scorer may take any time: nothing waits on it
        return bool(exact(row, reply))

    results = evaluate(_chat(server, user), [{"query": q, "expected": q} for q in rows], scorers=[scorer],
                       concurrency=1).wait(60, bar=False)
    assert (results.df["status"] == "succeeded").all()
    assert asked_when_scored == [1, 2, 3, 4]


async def test_a_held_answer_is_folded_at_the_times_it_arrived(server):
    user = f"held-{uuid.uuid4().hex[:8]}"
    chat = _chat(server, user)
    plain = await chat.fresh(None).ask("held answer")
    reply, settle = await chat.fresh(None)._exchange("held answer", LEAF, None, None, hold=True)
    assert settle is not None and not reply.done and reply.message_id is not None  # named, not folded
    ended_by = reply.elapsed()
    await asyncio.sleep(0.3)  # folded well after the stream ended
    settle()
    assert reply.done and reply.status == "succeeded" and reply.text == plain.text == "held answer"
    assert reply.total_time is not None and reply.total_time <= ended_by  # the stream's end, not the fold's
    events = reply.events
    assert events.names() == plain.events.names()
    assert max(events.offset(i) for i in range(len(events))) <= reply.total_time
    assert [s.name for s in reply.nodes] == [s.name for s in plain.nodes]
    await chat.backend.client.close()


async def test_an_answer_past_the_hold_bound_is_folded_as_it_arrives(server, monkeypatch):
    monkeypatch.setattr(chat_module, "HOLD_BYTES", 64)
    chat = _chat(server, f"big-{uuid.uuid4().hex[:8]}")
    reply, settle = await chat._exchange("an answer longer than the bound " * 4, LEAF, None, None, hold=True)
    assert settle is None and reply.done and reply.status == "succeeded"
    assert reply.text == "an answer longer than the bound " * 4
    await chat.backend.client.close()


async def test_the_hold_bound_counts_an_answer_as_inflated(server, monkeypatch):
    """A compressed answer is bounded by what it inflates to (what is parsed and kept), not by
    its bytes on the wire."""
    monkeypatch.setattr(chat_module, "HOLD_BYTES", 4096)
    text = "word " * 2000
    body = (b'data: {"event":"message_created","data":{"message_id":"m1","conversation_id":"c1"}}\n\n'
            + b"".join(b'data: {"event":"chat_message","data":{"text":"%s"}}\n\n' % text[i:i + 100].encode()
                       for i in range(0, len(text), 100))
            + b'data: {"event":"execution_finished","data":{"resource_type":"execution",'
              b'"resource":{"id":"e1","status":"succeeded"}}}\n\n')
    packed = gzip.compress(body)
    assert len(packed) < 4096 < len(body)

    async def handler(request: httpx.Request) -> httpx.Response:
        async def stream() -> AsyncIterator[bytes]:
            yield packed

        return httpx.Response(200, headers={"content-type": "text/event-stream", "content-encoding": "gzip"},
                              content=stream())

    chat = _chat(server, "gzip", transport=httpx.MockTransport(handler))
    real = _chat(server, "gzip")  # the app read from the real server: the mock only answers
    chat.app = await real.load_app()
    await real.backend.client.close()
    reply, settle = await chat._exchange("q", LEAF, None, None, hold=True)
    assert settle is None and reply.done and reply.text == text  # past the bound inflated: folded as read
    await chat.backend.client.close()


def test_a_stop_before_the_next_request_is_written_keeps_the_row_answered_before(server, tmp_path):
    user = f"stop-{uuid.uuid4().hex[:8]}"
    cache = tmp_path / "eval.jsonl"
    held = threading.Event()

    async def hold_second(request: httpx.Request) -> None:  # before the transport: nothing written
        if request.method == "POST" and b"stop row 1" in request.content:
            held.set()
            await asyncio.sleep(60)

    results = evaluate(_chat(server, user, [hold_second]), [f"stop row {i}" for i in range(3)], concurrency=1,
                       cache=cache)
    assert held.wait(30)
    results.stop()
    results.wait(30, bar=False)
    assert results.df["status"].tolist() == ["succeeded", "stopped", "not run"]
    assert _asks(server, user) == 1
    kept = load_evaluation(cache).df
    assert kept["query"].tolist() == ["stop row 0"] and kept["status"].tolist() == ["succeeded"]


def test_a_row_that_fails_before_its_request_is_written_leaves_the_row_before_it_whole(server, tmp_path):
    user = f"unsent-{uuid.uuid4().hex[:8]}"
    rows = [{"query": "unsent row 0"}, {"query": "unsent row 1", "file": str(tmp_path / "missing.txt")},
            {"query": "unsent row 2"}]
    results = evaluate(_chat(server, user), rows, concurrency=1).wait(60, bar=False)
    df = results.df
    assert df["status"].tolist() == ["succeeded", "failed", "succeeded"]
    assert df["answer"][0] == "unsent row 0" and df["answer"][2] == "unsent row 2"
    assert "missing.txt" in df["error"][1] and _asks(server, user) == 2


def test_a_row_that_cannot_be_saved_stops_every_worker_at_once(server, tmp_path, monkeypatch):
    """The save of a row fails inside the next row's request: the run stops then, not when that
    row's answer ends (here a slow one), and the other worker asks nothing more."""
    from atomemo_notebook.evaluation._cache import Cache

    user = f"full-{uuid.uuid4().hex[:8]}"
    store = Cache.store

    def full_for_row_0(self: Any, key: str, record: dict[str, Any], replies: Any) -> None:
        if record.get("query") == "full row 0":
            raise OSError(28, "No space left on device")
        store(self, key, record, replies)

    monkeypatch.setattr(Cache, "store", full_for_row_0)
    slow = Faulty(by_query={"full row 2": "stall=3; stall_after=1"})
    rows = [f"full row {i}" for i in range(30)]
    results = evaluate(_chat(server, user, [slow]), rows, concurrency=2, cache=tmp_path / "eval.jsonl")
    with pytest.raises(OSError, match="No space left"):
        results.wait(60, bar=False)
    statuses = results.df["status"].tolist()
    assert statuses.count("not run") >= len(rows) - 4, statuses  # before: every row but two was asked
    assert slow.posts <= 4


def test_a_scripts_turns_end_in_order_when_one_fails(server, tmp_path):
    rows = [{"query": "turn 1", "conversation": "A", "file": str(tmp_path / "missing.txt")},
            {"query": "turn 2", "conversation": "A"}, {"query": "turn 3", "conversation": "A"},
            {"query": "other", "conversation": "B"}]
    results = evaluate(_chat(server, f"script-{uuid.uuid4().hex[:8]}"), rows, concurrency=1)
    ended: list[str] = []

    def on_change(changed: Any) -> None:
        for record in changed.records:
            if record["status"] not in ("running", "not run") and record["query"] not in ended:
                ended.append(record["query"])

    results.listeners.append(on_change)
    results.wait(60, bar=False)
    assert results.df["status"].tolist() == ["failed", "failed", "failed", "succeeded"]
    assert ended == ["turn 1", "turn 2", "turn 3", "other"]


def test_a_finished_evaluation_is_not_kept_alive_by_a_task_an_ask_started(server):
    """Pipelit's socket hub starts a long-lived task from inside an ask; it copies the ask's
    context, REQUEST_SENT included, which must not hold on to the evaluation once it ends."""
    import gc
    import weakref

    from atomemo_notebook.session import _runtime as runtime
    from atomemo_notebook.transport._pipelit import AsyncPipelitClient

    api = AsyncPipelitClient(server.pipelit_api_key, base_url=server.pipelit_base_url, http_client=httpx.AsyncClient())
    chat = AsyncChat(api, workflow="echo", user_id=f"kept-{uuid.uuid4().hex[:8]}")
    results = evaluate(chat, ["one", "two"], concurrency=1).wait(60, bar=False)
    assert (results.df["status"] == "succeeded").all()
    gone = weakref.ref(results)
    del results
    gc.collect()
    alive = gone() is not None
    runtime.submit(api.close()).result(10)  # its hub too
    assert not alive


GARBAGE = (b'data: {"event":"message_created","data":{"message_id":"m1","conversation_id":"c1"}}\n\n'
           b'data: {"event":"chat_message","data":"not an object"}\n\n'
           b'data: {"event":"no_such_event","data":{"x":[1,2,{"y":null}]}}\n\n'
           b'data: {"event":"node_finished","data":{"resource_type":"result","resource":"not an object"}}\n\n'
           b'data: {"event":"node_finished","data":{"resource_type":"result","resource":{"id":"r9",'
           b'"node_id":"never-started","status":"succeeded","json_output":{"a":"b"}}}}\n\n'
           b'data: {"event":"chat_message","data":{"text":"kept"}}\n\n'
           b'data: [1, 2, 3]\n\n'
           b'data: {"event":"execution_finished","data":{"resource_type":"execution",'
           b'"resource":{"id":"e1","status":"succeeded"}}}\n\n')


async def test_a_held_answer_of_garbage_folds_as_an_answer_folded_as_it_arrives(server):
    async def handler(request: httpx.Request) -> httpx.Response:
        async def stream() -> AsyncIterator[bytes]:
            yield GARBAGE[:200]  # two reads: the message is named in the first
            yield GARBAGE[200:]

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())

    real = _chat(server, "garbage")
    app = await real.load_app()
    await real.backend.client.close()
    folded: list[Any] = []
    for hold in (False, True):
        chat = _chat(server, "garbage", transport=httpx.MockTransport(handler))
        chat.app = app
        reply, settle = await chat._exchange("q", LEAF, None, None, hold=hold)
        assert (settle is not None) is hold
        if settle is not None:
            settle()
        folded.append(reply)
        await chat.backend.client.close()
    eager, held = folded
    assert held.done and held.status == eager.status == "succeeded"
    assert held.text == eager.text and "kept" in held.text
    assert held.anomalies == eager.anomalies and held.anomalies  # the garbage is named, not dropped
    assert held.events.names() == eager.events.names()
    assert [(s.node_id, s.status) for s in held.nodes] == [(s.node_id, s.status) for s in eager.nodes]
