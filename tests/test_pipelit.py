"""Pipelit over loopback against the embedded server's Pipelit routes and its real WebSocket:
nodes that light up one by one and a whole answer at the end, events that race the POST,
a socket dropped mid-run, a node that fails (and is retried), 401/403/404, two chats on one
socket at once, history and clearing it, pings, and the key kept out of every log line."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import AsyncChat, AuthenticationError, Chat, ExecutionFailedError, NotFoundError, connect
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._wire import MalformedFrame
from atomemo_notebook.protocol.pipelit._adapter import PipelitTranslator, answer_text
from atomemo_notebook.protocol.pipelit.events import FIELDS, Name, parse_message
from atomemo_notebook.server import LocalServer
from atomemo_notebook.transport._pipelit import AsyncPipelitClient, PipelitClient

from .conftest import fault_key, maybe

AGENT_Q = "Where is order 1042? I'm in Berlin."


@pytest.fixture(scope="module")
def pipelit() -> Any:
    """A server of its own: Pipelit keeps one conversation per user and workflow."""
    with LocalServer(test_mode=True, chunk_size=8, chunk_delay=0, node_delay=0.01, heartbeat_interval=1.0,
                     pipelit_frame_gap=0) as srv:
        yield srv


def client(kind: str, server: LocalServer, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", None)
    key = kwargs.pop("api_key", server.pipelit_api_key)
    if kind == "sync":
        return PipelitClient(key, base_url=server.pipelit_base_url, http_client=httpx.Client(headers=headers),
                             **kwargs)
    return AsyncPipelitClient(key, base_url=server.pipelit_base_url, http_client=httpx.AsyncClient(headers=headers),
                              **kwargs)


def chat_of(kind: str, server: LocalServer, workflow: str, **kwargs: Any) -> Chat | AsyncChat:
    api = client(kind, server, **kwargs)
    return Chat(api, workflow=workflow, user_id="u") if kind == "sync" else AsyncChat(api, workflow=workflow,
                                                                                        user_id="u")


async def close(chat: Chat | AsyncChat) -> None:
    await maybe(chat.client.close())


async def test_nodes_light_up_and_the_answer_comes_whole(kind, pipelit):
    chat = chat_of(kind, pipelit, "agent")
    seen: list[tuple[str, int]] = []
    reply = await maybe(chat.ask(AGENT_Q, on_event=lambda r, e: seen.append((e.event, len(r.text)))))
    assert reply.status == "succeeded" and "A-1042" in reply.text
    # No answer tokens: the text appears only with execution_completed, all at once.
    assert [n for n, chars in seen if chars] == [Name.EXECUTION_COMPLETED]
    # The trigger is never reported, as by Pipelit; names come from the workflow's details.
    assert [(s.name, s.type, s.status) for s in reply.nodes] == [
        ("Order agent", "agent", "succeeded"), ("Reply", "reply_chat", "succeeded")]
    agent = reply.nodes[0]
    assert [t.tool_name for t in agent.tools] == ["lookup_order", "get_weather", "calculator"]
    assert agent.process_data and "A-1042" in agent.process_data[0]  # its chat_message, kept on the node
    assert agent.elapsed is not None and reply.message_id == reply.execution.id
    assert chat.capabilities.token_streaming is False and chat.capabilities.branching is False
    await close(chat)


async def test_events_that_race_the_post_answer_are_not_lost(kind, pipelit):
    # The POST answers 0.5 s late: every event of the run has been published before it.
    chat = chat_of(kind, pipelit, "support", headers={"X-Atomemo-Fault": f"answer_delay=0.5; path=/chat/; "
                                                                           f"key={fault_key()}"})
    reply = await maybe(chat.ask("How do I rotate my API key?"))
    assert reply.status == "succeeded" and "rotate an API key" in reply.text
    assert [s.name for s in reply.nodes] == ["Search help center", "Draft answer", "Reply"]
    assert not reply.anomalies
    await close(chat)


async def test_a_socket_dropped_mid_run_reconnects_and_the_answer_still_arrives(kind, pipelit):
    chat = chat_of(kind, pipelit, "echo", headers={"X-Atomemo-Fault": f"ws_drop_after=3; path=/chat/; "
                                                                        f"key={fault_key()}"})
    text = "dropped but not lost " * 5
    reply = await maybe(chat.ask(text))
    assert reply.text == text and reply.status in ("succeeded", "recovered")
    assert any("WebSocket dropped" in a for a in reply.anomalies)  # the timeline says it may be incomplete
    assert chat.client.hub.connects == 2
    again = await maybe(chat.ask("after the drop"))  # the reopened socket serves the next question
    assert again.status == "succeeded" and again.text == "after the drop" and not again.anomalies
    await close(chat)


async def test_a_failing_node_is_retried_then_the_execution_fails(kind, pipelit):
    chat = chat_of(kind, pipelit, "flaky")
    reply = await maybe(chat.ask("please fail"))
    assert reply.status == "failed" and isinstance(reply.error, ExecutionFailedError)
    assert reply.error.node_id == "http_request_fetch_inventory" and "HTTP 503" in reply.error.message
    assert not hasattr(reply.error, "status_code")  # not an HTTP answer: no status 0
    fetches = [s for s in reply.nodes if s.name == "Fetch inventory"]
    assert len(fetches) == 2 and all(s.status == "failed" and "HTTP 503" in (s.error or "") for s in fetches)
    assert reply.text == ""
    await close(chat)


async def test_errors_401_403_404(kind, pipelit):
    bad = client(kind, pipelit, api_key="pk-not-the-key-0000")
    with pytest.raises(AuthenticationError) as rest:
        await maybe(bad.history("echo"))
    assert rest.value.status_code == 401 and "pk-not-the-key" not in str(rest.value)
    with pytest.raises(AuthenticationError) as handshake:  # refused at the WebSocket's handshake
        await maybe(bad.chat("echo", "hello"))
    assert handshake.value.status_code == 403
    good = client(kind, pipelit)
    with pytest.raises(NotFoundError, match=r"Workflow not found\."):
        await maybe(good.chat("no-such-workflow", "hello"))
    await maybe(bad.close())
    await maybe(good.close())


def test_two_chats_share_one_socket_at_once(pipelit):
    api = client("sync", pipelit)
    chats = [Chat(api, workflow="echo", user_id="u"), Chat(api, workflow="agent", user_id="u")]
    questions = ["first of two " * 20, AGENT_Q]
    replies: list[Reply] = [None, None]  # type: ignore[list-item]

    def ask(i: int) -> None:
        replies[i] = chats[i].ask(questions[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert replies[0].text == questions[0] and "A-1042" in replies[1].text
    assert [s.name for s in replies[0].nodes] == ["Echo"]  # no node of the other execution
    assert api.hub.connects == 1
    hub = api.hub
    chats[0].close()
    assert not hub.closed  # another chat still uses the socket
    chats[1].close()
    assert hub.closed  # closed with the last chat on it
    with pytest.raises(ValueError, match="closed"):
        chats[1].ask("after close")
    third = Chat(api, workflow="echo", user_id="u")  # the client itself lives on: a new socket
    assert third.ask("again").text == "again" and api.hub is not hub
    api.close()


def test_one_chat_asked_from_several_threads_returns_each_its_own_reply(pipelit):
    # Chat's docstring: asks from several threads take turns, each returns the Reply it started.
    api = client("sync", pipelit)
    chat = Chat(api, workflow="echo", user_id="u")
    go = threading.Barrier(4)
    got: dict[str, Reply] = {}

    def ask(question: str) -> None:
        go.wait(10)
        got[question] = chat.ask(question)

    questions = [f"thread {i} asks" for i in range(4)]
    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == questions
    assert all(r.query == q and r.text == q and r.status == "succeeded" for q, r in got.items())
    assert len({id(r) for r in got.values()}) == 4
    # They took turns: one line of messages, each continuing the one before.
    rows = chat.history_records()
    assert sorted(r["depth"] for r in rows) == [0, 1, 2, 3]
    chat.close()
    api.close()


async def test_a_chat_from_connect_closes_its_client_and_socket(kind, pipelit):
    chat = connect("pipelit", api_key=pipelit.pipelit_api_key, base_url=pipelit.pipelit_base_url,
                   workflow="echo", asynchronous=kind == "async")
    assert (await maybe(chat.ask("once"))).text == "once"
    hub = chat.client.hub
    if kind == "sync":
        with chat:
            pass
    else:
        async with chat:
            pass
    assert hub.closed and chat.client._http.is_closed
    await maybe(chat.close())  # idempotent


async def test_two_async_chats_at_once(pipelit):
    api = client("async", pipelit)
    first, second = AsyncChat(api, workflow="echo", user_id="u"), AsyncChat(api, workflow="echo", user_id="u")
    a, b = await asyncio.gather(first.ask("alpha " * 30), second.ask("beta " * 30))
    assert a.text == "alpha " * 30 and b.text == "beta " * 30 and a.message_id != b.message_id
    await api.close()


async def test_history_pages_and_clearing_it(kind, pipelit):
    # As Pipelit: history is an agent's conversation memory; a workflow without one keeps none.
    echo = chat_of(kind, pipelit, "echo")
    await maybe(echo.ask("not remembered"))
    assert (await maybe(echo.client.history("echo"))).messages == []
    await close(echo)
    chat = chat_of(kind, pipelit, "agent")
    await maybe(chat.clear())
    asked = [await maybe(chat.ask(f"h{i}")) for i in range(12)]
    page = await maybe(chat.client.history("agent", limit=10))
    assert [m.text for m in page.messages][-2:] == ["h11", asked[-1].text] and page.has_more
    assert len({m.timestamp for m in page.messages[-2:]}) == 1  # a turn carries its question's time
    assert page.thread_id and page.thread_id.startswith("1:")
    reopened = chat_of(kind, pipelit, "agent")
    reopened.conversation_id = "agent"
    tree = await maybe(reopened.history())
    assert [m.query for m in tree.messages()] == [f"h{i}" for i in range(12)]
    mine = await maybe(chat.history())  # this session's questions keep their execution ids
    assert [m.id for m in mine.messages()] == [r.message_id for r in asked]
    assert len(mine) == 12
    await maybe(chat.clear())
    assert len(chat.tree) == 0 and (await maybe(chat.client.history("agent"))).messages == []
    await close(chat)
    await close(reopened)


async def test_pings_are_answered_and_keep_the_socket(kind):
    slow = LocalServer(test_mode=True, chunk_delay=0, node_delay=0.6, heartbeat_interval=0.2, pipelit_frame_gap=0).start()
    try:
        chat = chat_of(kind, slow, "echo")
        reply = await maybe(chat.ask("slow one"))
        assert reply.status == "succeeded" and chat.client.hub.connects == 1
        await close(chat)
    finally:
        slow.close()


def test_the_key_is_in_no_log_line(pipelit, caplog):
    key = pipelit.pipelit_api_key
    with caplog.at_level(logging.DEBUG):
        api = client("sync", pipelit)
        Chat(api, workflow="echo", user_id="u").ask("log me")
        api.close()
    assert caplog.records and key not in caplog.text
    assert key not in repr(api) and key not in repr(api.hub) if api._hub else True


def test_connect_offline_answers_and_refuses_files(monkeypatch):
    monkeypatch.delenv("PIPELIT_API_KEY", raising=False)
    with connect("pipelit", demo="echo") as chat:
        assert chat.system == "pipelit" and chat.ask("offline pipelit").text == "offline pipelit"
        with pytest.raises(ValueError, match="takes text only"):
            chat.ask(chat_file())
    with pytest.raises(ValueError, match="workflow"):
        connect("pipelit", api_key="pk-something-long")


def chat_file() -> Any:
    from atomemo_notebook import FileRef

    return FileRef(filename="a.txt", extension=".txt", mime_type="text/plain", size=1, res_key="k")


@pytest.mark.parametrize("slug", ["support", "agent", "flaky", "echo"])
def test_every_message_the_emulator_sends_is_documented(pipelit, slug):
    api = client("sync", pipelit)
    for query in ("hello", "please fail", "order 12 in Oslo"):
        with api.chat(slug, query) as stream:
            events = list(stream)
        for event in events[1:]:  # the first is this client's own `_execution_created`
            assert event.event in FIELDS, event
            keys, data_keys = FIELDS[event.event]
            message = event.data or {}
            assert set(message) <= keys and message["channel"] == f"workflow:{slug}", (event.event, message)
            assert set(message.get("data") or {}) <= data_keys, (event.event, sorted(message.get("data") or {}))
    api.close()


def test_answer_text_reads_every_output_shape():
    assert answer_text({"message": "hi"}) == "hi" and answer_text({"output": "out"}) == "out"
    assert answer_text("plain") == "plain" and answer_text(None) == ""
    assert json.loads(answer_text({"node_outputs": {"a": {"x": 1}}})) == {"node_outputs": {"a": {"x": 1}}}


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.one_of(
    st.text(max_size=40),
    st.builds(lambda kind, data, eid: json.dumps({"type": kind, "execution_id": eid, "data": data}),
              st.sampled_from([*sorted(FIELDS), Name.STARTED, Name.GAP, Name.RECOVERED]),
              st.dictionaries(st.sampled_from(["node_id", "status", "is_tool_call", "parent_node_id", "output",
                                               "error", "text", "duration_ms", "tool_name", "answer"]),
                              _JSON, max_size=6) | _JSON, st.sampled_from(["e1", "e2"]) | _JSON),
), max_size=14))
def test_fuzz_any_pipelit_messages_fold_without_raising(messages):
    reply = Reply("q", translate=PipelitTranslator())
    for text in messages:
        event = parse_message(text)
        # A JSON object with a string `type` must parse as that event; anything else is a
        # malformed frame (so a parser that refused everything fails here).
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("type"), str):
            assert type(event) is not MalformedFrame and event.event == obj["type"] and event.data == obj
        else:
            assert type(event) is MalformedFrame
        reply.apply(event)
    reply.close()
    assert reply.done and isinstance(reply.text, str)


@settings(max_examples=40, deadline=None)
@given(body=_JSON, slug=st.sampled_from(["echo", "nope", "%00", "a" * 300]), limit=st.text(max_size=6))
def test_fuzz_pipelit_routes_answer_properly(pipelit, body, slug, limit):
    headers = {"Authorization": f"Bearer {pipelit.pipelit_api_key}"}
    with httpx.Client(base_url=pipelit.pipelit_base_url, headers=headers, timeout=20) as http:
        for response in (http.post(f"/workflows/{slug}/chat/", content=json.dumps(body),
                                   headers={"Content-Type": "application/json"}),
                         http.get(f"/workflows/{slug}/chat/history", params={"limit": limit, "before": limit}),
                         http.get(f"/workflows/{slug}/")):
            assert response.status_code < 500, response.text
            if response.status_code >= 400:  # FastAPI's: a text, or for a 422 a list of problems
                detail = response.json().get("detail")
                assert isinstance(detail, str) or (response.status_code == 422 and isinstance(detail, list))


def test_the_widgets_async_twin_keeps_every_option(pipelit):
    from atomemo_notebook.session._connect import as_async

    api = PipelitClient(pipelit.pipelit_api_key, base_url=pipelit.pipelit_base_url, execution_timeout=7,
                        recover_poll=0.25, max_retries=1)
    twin = as_async(Chat(api, workflow="echo", user_id="u")).client
    assert isinstance(twin, AsyncPipelitClient)
    assert (twin.execution_timeout, twin.recover_poll, twin.max_retries) == (7.0, 0.25, 1)
    api.close()
