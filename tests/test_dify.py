"""The Dify adapter over loopback against the embedded server's Dify routes: streaming with
its whole event vocabulary, a thread that cannot branch, recovery when a stream breaks (Dify
cannot resume), its error bodies, the stop API, paging, files, and the app's parameters."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import (
    APIConnectionError,
    AsyncChat,
    AsyncDifyClient,
    AuthenticationError,
    BadRequestError,
    Chat,
    ConversationNotFoundError,
    DifyClient,
    InternalServerError,
    RateLimitError,
    connect,
)
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._wire import MalformedFrame
from atomemo_notebook.protocol.dify._adapter import DifyTranslator
from atomemo_notebook.protocol.dify.events import FIELDS, parse_frame
from atomemo_notebook.server import LocalServer

from .conftest import fault_key, maybe, wait_until, wait_until_async


def dify_client(kind: str, server: LocalServer, slug: str = "support", **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", None)
    key, base = server.app(slug)["dify_api_key"], server.dify_base_url
    if kind == "sync":
        return DifyClient(key, base_url=base, http_client=httpx.Client(headers=headers), **kwargs)
    return AsyncDifyClient(key, base_url=base, http_client=httpx.AsyncClient(headers=headers), **kwargs)


def dify_chat(kind: str, server: LocalServer, slug: str = "support", user: str = "dify-user",
              **kwargs: Any) -> Chat | AsyncChat:
    client = dify_client(kind, server, slug, **kwargs)
    return Chat(client, user_id=user) if kind == "sync" else AsyncChat(client, user_id=user)


async def test_a_streamed_answer_has_everything_dify_sends(kind, server):
    chat = dify_chat(kind, server)
    reply = await maybe(chat.ask("How do I rotate my API key?"))
    assert reply.status == "succeeded" and "rotate an API key" in reply.text
    assert [s.name for s in reply.nodes] == ["Chat Trigger", "Search help center", "Draft answer", "Reply"]
    assert [s.type for s in reply.nodes][:2] == ["start", "knowledge-retrieval"]
    assert reply.nodes[2].tokens and reply.nodes[2].elapsed is not None
    assert all(s.status == "succeeded" and s.finished is not None for s in reply.nodes)
    # message_end's retriever resources become citations; its usage, the reply's usage.
    assert reply.citations and reply.citations[0].title == "Creating and rotating API keys"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert reply.task_id and reply.message_id and reply.conversation_id
    # Suggested questions after the answer come from their own endpoint, asked once.
    assert reply.suggestions and "How do I rotate my API key?" not in reply.suggestions
    assert chat.app is not None and chat.app.name == "Support Assistant" and chat.app.opening


async def test_a_dify_conversation_is_one_thread_and_says_why_it_cannot_branch(kind, server):
    chat = dify_chat(kind, server, "echo", user="thread-user")
    first = await maybe(chat.ask("one"))
    second = await maybe(chat.ask("two"))
    assert second.parent_id == first.message_id and second.conversation_id == first.conversation_id
    with pytest.raises(ValueError, match="no parent_message_id"):
        await maybe(chat.regenerate(second.message_id))
    with pytest.raises(ValueError, match="no parent_message_id"):
        await maybe(chat.ask("from the start", parent_id=first.message_id))
    assert chat.capabilities.branching is False and chat.capabilities.stop == "server"
    reopened = dify_chat(kind, server, "echo", user="thread-user")
    reopened.conversation_id = first.conversation_id
    tree = await maybe(reopened.history())
    messages = tree.messages()
    assert [m.query for m in messages] == ["one", "two"] and messages[1].parent_id == messages[0].id
    assert [m.answer for m in messages] == ["one", "two"]


async def test_agent_tool_calls_nest_under_the_agent_and_loops_under_the_loop(kind, server):
    agent = await maybe(dify_chat(kind, server, "agent").ask("Where is order 1042? I'm in Berlin."))
    agent_node = next(s for s in agent.nodes if s.name == "Order agent")
    assert [t.tool_name for t in agent.tool_calls] == ["lookup_order", "get_weather", "calculator"]
    assert {t.node_id for t in agent.tool_calls} == {agent_node.node_id}
    assert all(t.status == "succeeded" for t in agent.tool_calls)
    flaky = await maybe(dify_chat(kind, server, "flaky").ask("Is the blue mug in stock?"))
    loop = next(s for s in flaky.nodes if s.name == "Retry loop")
    inner = [s for s in flaky.nodes if s.parent_run_id is not None]
    assert inner and loop.iterations >= 1 and {s.name for s in inner} >= {"Fetch inventory"}


async def test_a_failed_workflow_fails_the_reply_with_the_reason(kind, server):
    reply = await maybe(dify_chat(kind, server, "flaky").ask("Check the inventory and fail"))
    assert reply.status == "failed" and reply.run_error


async def test_a_dropped_stream_is_resumed_from_the_runs_events(kind, server):
    key = fault_key()
    chat = dify_chat(kind, server, "echo", headers={"X-Atomemo-Fault": f"drop_after=3; path=/chat-messages; key={key}"})
    reply = await maybe(chat.ask("a long answer " * 20))
    # The emulator serves the run's event stream (2026): the stream resumes from the run's state,
    # and the answer is whole (tests/test_dify_resume.py drops it everywhere, and without the route).
    assert reply.status == "succeeded" and not reply.anomalies
    assert reply.text == "a long answer " * 20


async def test_a_stream_that_breaks_before_naming_the_message_fails_clearly(kind, server):
    chat = dify_chat(kind, server, "echo", headers={"X-Atomemo-Fault": f"drop_after=0; path=/chat-messages; key={fault_key()}"})
    with pytest.raises(APIConnectionError, match="before Dify named the message"):
        await maybe(chat.ask("hello"))
    assert chat.last_reply is not None and chat.last_reply.status == "failed"


async def test_an_error_event_mid_stream_fails_the_reply_with_its_code(kind, server):
    chat = dify_chat(kind, server, "echo", headers={"X-Atomemo-Fault": f"error_after=4; path=/chat-messages; key={fault_key()}"})
    reply = await maybe(chat.ask("never finished " * 10))
    assert reply.status == "failed" and reply.error is not None
    assert reply.error.code == "internal_server_error" and "injected error" in str(reply.error)
    assert len(reply.text) < len("never finished " * 10)


@pytest.mark.parametrize(("fault", "error", "code"), [
    ("status=429", RateLimitError, "too_many_requests"),
    ("status=500", InternalServerError, "internal_server_error"),
])
async def test_http_errors_map_onto_the_exception_tree(kind, server, fault, error, code):
    api = dify_client(kind, server, headers={"X-Atomemo-Fault": f"{fault}; times=9; key={fault_key()}"},
                      max_retries=0)
    with pytest.raises(error) as caught:
        await maybe(api.parameters())
    assert caught.value.code == code and caught.value.body["status"] == caught.value.status_code


async def test_request_errors_are_dify_bodies(kind, server):
    api = dify_client(kind, server, "echo")
    with pytest.raises(BadRequestError) as bad:
        await maybe(api.chat_messages(query="hi", user="u", inputs={"nope": 1}))
    assert bad.value.status_code == 400 and bad.value.code == "invalid_param" and "nope" in str(bad.value)
    with pytest.raises(ConversationNotFoundError) as missing:
        await maybe(api.messages("no-such-conversation", "u"))
    assert missing.value.status_code == 404 and missing.value.code == "not_found"
    wrong = DifyClient("app-wrong", base_url=server.dify_base_url)
    with pytest.raises(AuthenticationError) as denied:
        wrong.info()
    assert denied.value.code == "unauthorized" and "app-wrong" not in str(denied.value)


def test_an_unknown_route_and_a_crash_answer_in_difys_shape(server):
    key = server.app()["dify_api_key"]
    with httpx.Client(base_url=server.dify_base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        # Dify 1.13 (tests/peers/dify): no route is Flask's 404 page, in HTML, not Dify's JSON.
        missing = http.get("/no-such-route")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        assert "<title>404 Not Found</title>" in missing.text
        crash = http.get("/info", headers={"X-Atomemo-Fault": f"crash=1; key={fault_key()}"})
        assert crash.status_code == 500 and crash.json() == {
            "code": "internal_server_error", "message": "internal server error", "status": 500}


def test_stop_cancels_the_run_on_the_server(server):
    slow = LocalServer(test_mode=True, chunk_size=2, chunk_delay=0.05, node_delay=0.05,
                       dify_close_delay=0.01).start()
    try:
        chat = dify_chat("sync", slow, "echo")

        def stop_once_streaming() -> None:  # from another thread, as a view's Stop button does
            wait_until(lambda: bool(chat.replies and chat.replies[-1].text), what="the answer to start")
            chat.stop()

        threading.Thread(target=stop_once_streaming, daemon=True).start()
        reply = chat.ask("stop me " * 40)
        assert reply.status == "stopped" and len(reply.text) < len("stop me " * 40)
        # The server really stopped: as Dify 1.13 does, it stores the text streamed until the
        # stop as a "normal" message, short of the whole text; the chat still says stopped.
        api = dify_client("sync", slow, "echo")

        def stored() -> Any:
            return api.messages(str(reply.conversation_id), "dify-user")[0][0]

        wait_until(lambda: bool(stored().answer), what="the stopped run to be stored")
        assert stored().status == "succeeded" and len(stored().answer or "") < len("stop me " * 40)
        chat.history()
        assert chat.history_records()[-1]["status"] == "stopped"
    finally:
        slow.close()


async def test_async_stop_cancels_the_run_on_the_server(server):
    slow = LocalServer(test_mode=True, chunk_size=2, chunk_delay=0.05, node_delay=0.05,
                       dify_close_delay=0.01).start()
    try:
        chat = dify_chat("async", slow, "echo")
        assert isinstance(chat, AsyncChat)
        task = asyncio.create_task(chat.ask("stop me " * 40))
        await wait_until_async(lambda: bool(chat.replies and chat.replies[-1].text), what="the answer to start")
        chat.stop()
        reply = await task
        assert reply.status == "stopped"
        api = dify_client("async", slow, "echo")
        for _ in range(200):
            page, _more = await api.messages(str(reply.conversation_id), "dify-user")
            if page[0].answer:
                break
            await asyncio.sleep(0.02)
        assert page[0].status == "succeeded" and len(page[0].answer or "") < len("stop me " * 40)
        await chat.history()
        assert chat.history_records()[-1]["status"] == "stopped"
    finally:
        slow.close()


async def test_messages_page_backwards_with_first_id(kind, server):
    api = dify_client(kind, server, "echo")
    user = f"pager-{fault_key()}"
    chat = Chat(dify_client("sync", server, "echo"), user_id=user)
    for i in range(23):
        chat.ask(f"q{i}")
    conv = str(chat.conversation_id)
    newest, more = await maybe(api.messages(conv, user, limit=10))
    assert [m.query for m in newest] == [f"q{i}" for i in range(13, 23)] and more
    middle, more = await maybe(api.messages(conv, user, first_id=newest[0].id, limit=10))
    assert [m.query for m in middle] == [f"q{i}" for i in range(3, 13)] and more
    oldest, more = await maybe(api.messages(conv, user, first_id=middle[0].id, limit=10))
    assert [m.query for m in oldest] == ["q0", "q1", "q2"] and not more
    # history() walks every page and threads them oldest first.
    reopened = Chat(dify_client("sync", server, "echo"), user_id=user, conversation_id=conv)
    assert [m.query for m in reopened.history().messages()] == [f"q{i}" for i in range(23)]


async def test_conversations_list_rename_and_delete(kind, server):
    api = dify_client(kind, server, "echo")
    user = f"lister-{fault_key()}"
    chat = Chat(dify_client("sync", server, "echo"), user_id=user)
    ids = []
    for i in range(3):
        chat.conversation_id = None
        ids.append(chat.ask(f"conversation {i}").conversation_id)
    first, more = await maybe(api.conversations(user, limit=2))
    assert len(first) == 2 and more
    rest, more = await maybe(api.conversations(user, last_id=first[-1].id, limit=2))
    assert len(rest) == 1 and not more and {c.id for c in first + rest} == set(ids)
    renamed = await maybe(api.rename_conversation(ids[0], user, name="Renamed"))
    assert renamed["name"] == "Renamed"
    auto = await maybe(api.rename_conversation(ids[1], user))
    assert auto["name"] == "conversation 1"
    await maybe(api.delete_conversation(ids[2], user))
    listed, _ = await maybe(api.conversations(user))
    assert {c.id for c in listed} == set(ids[:2])
    with pytest.raises(ConversationNotFoundError):
        await maybe(api.messages(ids[2], user))
    with pytest.raises(ConversationNotFoundError):  # another user's conversation is not found
        await maybe(api.messages(ids[0], "someone-else"))


async def test_upload_then_ask_with_the_file(kind, server):
    chat = dify_chat(kind, server, "echo")
    ref = await maybe(chat.backend.upload(b"%PDF-1.4 tiny", filename="notes.pdf", mime_type=None,
                                          user="dify-user"))
    assert ref.filename == "notes.pdf" and ref.size == len(b"%PDF-1.4 tiny") and ref.res_key
    reply = await maybe(chat.ask(ref))
    assert reply.status == "succeeded" and reply.text == "[file: notes.pdf]"
    api = dify_client(kind, server, "echo")
    with pytest.raises(BadRequestError, match="not an uploaded file"):
        await maybe(api.chat_messages(query="x", user="u", files=[
            {"type": "document", "transfer_method": "local_file", "upload_file_id": "nope"}]))


def test_an_upload_over_the_limit_is_refused_before_it_is_read():
    small = LocalServer(max_upload_bytes=1024).start()
    try:
        api = dify_client("sync", small, "echo")
        with pytest.raises(BadRequestError) as refused:
            api.upload(b"x" * 200_000, "u", filename="big.bin")
        assert refused.value.status_code == 413 and refused.value.code == "file_too_large"
        assert api.upload(b"x" * 1000, "u", filename="ok.bin")["size"] == 1000
    finally:
        small.close()


async def test_parameters_become_the_apps_form_and_chips(kind, server):
    chat = dify_chat(kind, server, "echo")
    app = await maybe(chat.load_app())
    assert app.name == "Echo" and app.version == "advanced-chat"
    assert [(v["variable"], v["type"], v["maxLength"]) for v in app.variables] == [
        ("tone", "string", 20), ("repeat", "number", None)]
    assert app.examples[0] == "Hello, echo!" and app.opening.startswith("Hi! I am the Echo")
    reply = await maybe(chat.ask("hey", inputs={"tone": "calm", "repeat": 2}))
    assert reply.text == "heyhey"


async def test_blocking_mode_answers_at_once(kind, server):
    api = dify_client(kind, server, "echo")
    answer = await maybe(api.chat_blocking(query="blocked", user="blocker"))
    assert answer["answer"] == "blocked" and answer["mode"] == "advanced-chat" and answer["task_id"]
    failed = dify_client(kind, server, "flaky")
    with pytest.raises(BadRequestError) as refused:
        await maybe(failed.chat_blocking(query="fail now", user="blocker"))
    assert refused.value.code == "invalid_param" and refused.value.message.startswith("Run failed: ")


async def test_pings_keep_a_slow_stream_alive(kind):
    # Chunks 1.5 s apart against a 1.2 s idle timeout; `event: ping` every 0.1 s (a margin of 12x:
    # at 5x, a CI run on a loaded machine once saw a gap of more than 0.5 s between pings).
    slow = LocalServer(test_mode=True, chunk_size=60, chunk_delay=1.5, node_delay=0, dify_ping_interval=0.1,
                       dify_close_delay=0.01)
    slow.start()
    try:
        api = dify_client(kind, slow, "echo", stream_idle_timeout=1.2)
        stream = await maybe(api.chat_messages(query="y" * 120, user="pinged"))
        events = [e async for e in stream] if kind == "async" else list(stream)
        text = "".join(e.data.get("answer", "") for e in events if e.event == "message")
        assert text == "y" * 120 and stream.resumes == 0
    finally:
        slow.close()


def test_connect_with_no_key_runs_the_dify_demo_offline(monkeypatch):
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    chat = connect("dify", demo="echo")
    assert chat.system == "dify" and chat.origin["offline"]
    assert chat.ask("offline dify").text == "offline dify"
    with pytest.raises(ValueError, match="unknown system 'nope'"):
        connect("nope")


def test_the_dify_key_stays_out_of_reprs_and_errors(server):
    key = server.app()["dify_api_key"]
    api = DifyClient(key, base_url=server.dify_base_url)
    assert key not in repr(api) and key not in repr(Chat(api, user_id="u"))
    with pytest.raises(BadRequestError) as bad:
        api.chat_blocking(query="x", user="u", inputs={key: 1})
    assert key not in str(bad.value)


# -- the adapter on its own: hostile frames ----------------------------------------------------

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.one_of(
    st.text(max_size=40),
    st.builds(lambda name, body: {"event": name, **body}, st.sampled_from(sorted(FIELDS)),
              st.dictionaries(st.sampled_from(["data", "answer", "message_id", "conversation_id", "task_id",
                                               "metadata", "workflow_run_id", "code", "message", "status", "id"]),
                              _JSON, max_size=6)).map(json.dumps),
), max_size=12))
def test_fuzz_any_dify_frames_fold_without_raising(frames):
    """Whatever Dify-like frames arrive, in any order and shape, the reply folds them; what it
    cannot read becomes an anomaly, never an exception."""
    reply = Reply("q", translate=DifyTranslator())
    for payload in frames:
        event = parse_frame(payload)
        # A JSON object with a string `event` must parse as that event, anything else is a
        # malformed frame (a parser that made anomalies of everything would fold without raising too).
        try:
            obj = json.loads(payload)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            assert type(event) is not MalformedFrame and event.event == obj["event"]
        else:
            assert type(event) is MalformedFrame
        reply.apply(event)
    reply.close()
    assert reply.done and reply.status in ("succeeded", "failed", "recovered", "stopped", "waiting")
    assert isinstance(reply.text, str)


def test_a_saved_dify_conversation_replays_through_difys_adapter(server, tmp_path):
    from atomemo_notebook import replay

    chat = dify_chat("sync", server, "agent")
    asked = chat.ask("Where is order 1042? I'm in Berlin.")
    path = chat.save_events(tmp_path / "dify.jsonl")
    assert server.app("agent")["dify_api_key"] not in path.read_text()
    (again,) = replay(path)
    assert again.text == asked.text and again.status == asked.status == "succeeded"
    assert [t.tool_name for t in again.tool_calls] == [t.tool_name for t in asked.tool_calls]
    assert [s.name for s in again.nodes] == [s.name for s in asked.nodes]
    lines = path.read_text().splitlines()
    path.write_text(lines[0].replace('"system": "dify"', '"system": "martian"') + "\n")
    with pytest.raises(ValueError, match="no adapter for system 'martian'"):
        replay(path)
