"""OdysseyAI over loopback against the embedded server's OdysseyAI route: one blocking JSON
answer whose steps become a timeline reported after the fact (grouped by agent), whose
source snippets become numbered citations and whose follow-ups become chips; a slow answer
abandoned by Stop; 400/403/404/500 and a malformed document mapped onto the exception tree."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomemo_notebook import (
    APIResponseValidationError,
    AsyncChat,
    BadRequestError,
    Chat,
    ChatWidget,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    connect,
    replay,
)
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._wire import Event, MalformedFrame
from atomemo_notebook.protocol.odyssey._adapter import OdysseyTranslator, answer_text
from atomemo_notebook.protocol.odyssey._calls import BODY
from atomemo_notebook.protocol.odyssey.events import DATA_FIELDS, SNIP_FIELDS, STEP_FIELDS, Name, parse_document
from atomemo_notebook.server import LocalServer
from atomemo_notebook.transport._odyssey import AsyncOdysseyClient, OdysseyClient

from .conftest import fault_key, maybe

SUPPORT_Q = "How do I rotate my API key?"
AGENT_Q = "Where is order 1042? I'm in Berlin."


@pytest.fixture(scope="module")
def odyssey() -> Any:
    with LocalServer(test_mode=True, chunk_size=64, chunk_delay=0, node_delay=0.005) as srv:
        yield srv


def client(kind: str, server: LocalServer, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", None)
    key = kwargs.pop("api_key", server.odyssey_api_key)
    if kind == "sync":
        return OdysseyClient(key, base_url=server.odyssey_base_url, http_client=httpx.Client(headers=headers),
                             **kwargs)
    return AsyncOdysseyClient(key, base_url=server.odyssey_base_url, http_client=httpx.AsyncClient(headers=headers),
                              **kwargs)


def chat_of(kind: str, server: LocalServer, agent: str = "support", **kwargs: Any) -> Chat | AsyncChat:
    workspace = kwargs.pop("workspace_id", server.odyssey_workspace_id)
    conversation_id = kwargs.pop("conversation_id", None)
    api = client(kind, server, **kwargs)
    kind_of = Chat if kind == "sync" else AsyncChat
    return kind_of(api, workspace_id=workspace, agent_id=agent, user_id="ody-user", conversation_id=conversation_id)


async def test_one_blocking_answer_becomes_steps_sources_and_follow_ups(kind, odyssey):
    chat = chat_of(kind, odyssey)
    seen: list[tuple[str, int]] = []
    reply = await maybe(chat.ask(SUPPORT_Q, on_event=lambda r, e: seen.append((e.event, len(r.text)))))
    assert reply.status == "succeeded" and reply.text.startswith("To rotate an API key")
    assert [name for name, _ in seen] == [Name.REQUEST, Name.RESPONSE]  # no tokens: the answer whole, at the end
    # Steps, grouped by agent, all reported after the fact: no times at all.
    assert [(s.name, s.type) for s in reply.nodes] == [
        ("Support Assistant", "agent"), ("Help center", "rag"), ("llm step", "llm"), ("response step", "response")]
    assert all(s.reported and s.started is None and s.duration_ms is None for s in reply.nodes)
    agent_run = reply.nodes[0].result_id
    assert all(s.parent_run_id == agent_run for s in reply.nodes[1:])
    assert [c.title for c in reply.citations][:1] == ["creating-and-rotating-api-keys.md"]
    assert reply.citations[0].url == "https://help.example.com/articles/creating-and-rotating-api-keys"
    assert SUPPORT_Q not in reply.suggestions and len(reply.suggestions) == 3
    # The records carry them: the steps (marked reported) and one row per source, numbered.
    steps = chat.timeline_records()
    assert [r["node_type"] for r in steps] == ["agent", "rag", "llm", "response"]
    assert all(r["reported"] and r["started_at"] is None for r in steps)
    sources = chat.source_records()
    assert [r["position"] for r in sources] == [1, 2, 3] and sources[0]["message_id"] == reply.message_id
    assert chat.sources_df()["url"].str.startswith("https://").all()
    await maybe(chat.client.close())


async def test_the_agent_is_shown_by_its_id_until_an_answer_names_it(kind, odyssey):
    """OdysseyAI publishes no agent description: the chat names the app by the agent's id, then
    by the root agent's name its first answer gives; the widget's header follows."""
    chat = chat_of(kind, odyssey)
    await maybe(chat.load_app())
    assert chat.app is not None and (chat.app.name, chat.app.provisional) == ("support", True)
    reply = await maybe(chat.ask(SUPPORT_Q))
    assert reply.app_name == "Support Assistant"
    assert (chat.app.name, chat.app.provisional) == ("Support Assistant", False)
    await maybe(chat.client.close())
    # The widget over the same server, as a real one (a key, a base URL): its header too.
    widget = ChatWidget(system="odyssey", api_key=odyssey.odyssey_api_key, base_url=odyssey.odyssey_base_url,
                        workspace_id=odyssey.odyssey_workspace_id, agent_id="support", user_id="ody-named")
    try:
        widget.booted.result(30)
        assert widget.header["app_name"] == "support" and widget.header["offline"] is False
        widget.ask(SUPPORT_Q).wait()
        widget.wait()
        assert widget.header["app_name"] == "Support Assistant"
    finally:
        widget.close()


async def test_the_next_question_continues_the_conversation(kind, odyssey):
    chat = chat_of(kind, odyssey)
    first = await maybe(chat.ask(SUPPORT_Q))
    conversation = chat.conversation_id
    assert conversation and first.conversation_id == conversation
    second = await maybe(chat.ask("What does it cost?"))
    assert chat.conversation_id == conversation and second.parent_id == first.message_id
    # The server knew the first question: it is no longer suggested.
    assert SUPPORT_Q not in second.suggestions and "What does it cost?" not in second.suggestions
    assert [r["status"] for r in chat.history_records()] == ["succeeded", "succeeded"]
    await maybe(chat.client.close())


async def test_an_agents_tool_calls_are_its_own_steps(kind, odyssey):
    chat = chat_of(kind, odyssey, "agent")
    reply = await maybe(chat.ask(AGENT_Q))
    assert "A-1042" in reply.text
    names = [(s.name, s.type) for s in reply.nodes]
    assert names[:2] == [("Order Agent", "agent"), ("response step", "response")]  # the root agent first
    assert names[2:] == [("Order agent", "agent"), ("lookup_order", "tool"), ("get_weather", "tool"),
                         ("calculator", "tool"), ("agent step", "agent")]
    await maybe(chat.client.close())


async def test_errors_map_onto_the_exception_tree(kind, odyssey):
    bad = chat_of(kind, odyssey, api_key="ody-wrong")
    with pytest.raises(PermissionDeniedError, match="Invalid API key"):
        await maybe(bad.ask("hello"))
    assert bad.last_reply is not None and bad.last_reply.status == "failed"
    nowhere = chat_of(kind, odyssey, workspace_id="ws-nowhere")
    with pytest.raises(NotFoundError, match="Workspace not found"):
        await maybe(nowhere.ask("hello"))
    lost = chat_of(kind, odyssey, conversation_id=str(uuid.uuid4()))  # never started: not first, not known
    with pytest.raises(NotFoundError, match="Conversation not found"):
        await maybe(lost.ask("hello"))
    unknown = chat_of(kind, odyssey, agent="martian")
    with pytest.raises(BadRequestError, match="not an agent"):
        await maybe(unknown.ask("hello"))
    broken = chat_of(kind, odyssey, headers={"X-Atomemo-Fault": f"status=500; key={fault_key()}"})
    with pytest.raises(InternalServerError, match="injected HTTP 500"):
        await maybe(broken.ask("hello"))
    busy = chat_of(kind, odyssey, headers={"X-Atomemo-Fault": f"status=503; retry_after=0; key={fault_key()}"})
    assert (await maybe(busy.ask(SUPPORT_Q))).status == "succeeded"  # "not taken on": asked again, once
    await maybe(busy.client.close())
    cut = chat_of(kind, odyssey, headers={"X-Atomemo-Fault": f"malformed_after=0; key={fault_key()}"})
    with pytest.raises(APIResponseValidationError):
        await maybe(cut.ask("hello"))
    assert cut.last_reply is not None and cut.last_reply.status == "failed"
    failing = chat_of(kind, odyssey, "flaky")
    with pytest.raises(InternalServerError, match="Internal server error"):
        await maybe(failing.ask("Check the inventory and fail"))
    for chat in (bad, nowhere, lost, unknown, broken, cut, failing):
        await maybe(chat.client.close())


def test_error_bodies_are_odysseys_own(odyssey):
    url = odyssey.odyssey_base_url + "/chat/message"
    good = {"x-api-key": odyssey.odyssey_api_key, "userId": "u"}
    body = {BODY["workspace"]: odyssey.odyssey_workspace_id, BODY["conversation"]: "c-1", BODY["message"]: "hi",
            BODY["first"]: True}
    with httpx.Client() as http:
        refused = http.post(url, json=body, headers={"userId": "u", "x-api-key": "nope"})
        assert refused.status_code == 403 and refused.json() == {"error": {"message": "Invalid API key."}}
        no_user = http.post(url, json=body, headers={"x-api-key": odyssey.odyssey_api_key})
        assert no_user.status_code == 400 and no_user.json() == {"error": "userId header is required"}
        empty = http.post(url, json={**body, BODY["message"]: " "}, headers=good)
        assert empty.status_code == 400 and empty.json() == {"error": "message is required"}
        flag = http.post(url, json={**body, BODY["no_memory"]: "yes"}, headers=good)
        assert flag.status_code == 400 and "disableMemory" in flag.json()["error"]
        surrogate = http.post(url, content=json.dumps({**body, BODY["message"]: "x\ud800"}).encode(),
                              headers={**good, "content-type": "application/json"})
        assert surrogate.status_code == 400 and "surrogate" in surrogate.json()["error"]
        crash = http.post(url, json=body, headers={**good, "X-Atomemo-Fault": f"status=503; key={fault_key()}"})
        assert crash.status_code == 503 and crash.json() == {"message": "injected HTTP 503"}
        other = http.post(url, json={**body, BODY["first"]: False}, headers={**good, "userId": "someone-else"})
        assert http.post(url, json=body, headers=good).status_code == 200
        taken = http.post(url, json=body, headers={**good, "userId": "someone-else"})
        assert other.status_code in (200, 404) and taken.status_code == 400 and "taken" in taken.json()["error"]
        missing = http.get(odyssey.odyssey_base_url + "/nothing")
        assert missing.status_code == 404 and "message" in missing.json()["error"]


def test_stop_abandons_a_slow_answer_at_once(odyssey):
    chat = chat_of("sync", odyssey, headers={"X-Atomemo-Fault": f"answer_delay=20; key={fault_key()}"})
    result: list[Reply] = []
    asker = threading.Thread(target=lambda: result.append(chat.ask(SUPPORT_Q)))
    began = time.monotonic()
    asker.start()
    deadline = time.monotonic() + 10
    while chat.last_reply is None or chat.last_reply.message_id is None:  # the request left
        assert time.monotonic() < deadline, "the request never left"
        time.sleep(0.01)
    chat.stop()
    asker.join(10)
    assert not asker.is_alive() and result[0].status == "stopped" and result[0].text == ""
    assert time.monotonic() - began < 15  # the server would have answered after 20 s
    chat.client.close()


async def test_async_stop_cancels_the_request(odyssey):
    chat = chat_of("async", odyssey, headers={"X-Atomemo-Fault": f"answer_delay=20; key={fault_key()}"})
    assert isinstance(chat, AsyncChat)
    task = asyncio.ensure_future(chat.ask(SUPPORT_Q))
    for _ in range(1000):
        if chat.last_reply is not None and chat.last_reply.message_id is not None:
            break
        await asyncio.sleep(0.01)
    chat.stop()
    reply = await asyncio.wait_for(task, 10)
    assert reply.status == "stopped"
    await chat.client.close()


def test_connect_offline_and_bad_input_is_refused_before_sending(monkeypatch):
    for name in ("ODYSSEY_API_KEY", "ODYSSEY_BASE_URL", "ODYSSEY_WORKSPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    chat = connect("odyssey", demo="echo")
    first = chat.ask("offline odyssey")
    assert chat.system == "odyssey" and first.text == "offline odyssey"
    chat.user_id = "two\nlines"  # sent as a header: refused here, never sent
    with pytest.raises(ValueError, match="printable ASCII"):
        chat.ask("hello")
    with pytest.raises(ValueError, match="workspace_id"):
        connect("odyssey", api_key="ody-something", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="no default address"):
        connect("odyssey", api_key="ody-something", workspace_id="w")
    with pytest.raises(ValueError, match="regenerate and edit are not possible"):
        chat.regenerate(first.message_id)


def test_the_key_is_in_no_log_line_repr_or_widget_state(odyssey, caplog):
    key = odyssey.odyssey_api_key
    with caplog.at_level(logging.DEBUG):
        widget = ChatWidget(system="odyssey", api_key=key, base_url=odyssey.odyssey_base_url,
                            workspace_id=odyssey.odyssey_workspace_id, agent_id="support", user_id="w")
        widget.booted.result(10)
        widget.ask(SUPPORT_Q).wait()
        widget.wait()
    assert caplog.records and key not in caplog.text
    assert key not in repr(widget) and key not in repr(widget.chat.client)
    assert key not in json.dumps(widget.get_state(), default=str)
    widget.close()


def test_every_field_the_emulator_sends_is_in_the_schema(odyssey):
    with client("sync", odyssey) as api:
        for agent, question in (("support", SUPPORT_Q), ("agent", AGENT_Q), ("echo", "hi")):
            data = api.send_message(workspace_id=odyssey.odyssey_workspace_id, conversation_id=str(uuid.uuid4()),
                                    message=question, user_id="contract", agent_id=agent, first=True)
            assert set(data) == DATA_FIELDS and data["type"] == "response"
            assert all(set(step) == STEP_FIELDS for step in data["stepsBreakdown"])
            assert all(set(snip) == SNIP_FIELDS for snip in data["sourceSnips"])
            assert set(data["followUps"]) == {"id", "questions"}


def test_a_saved_odyssey_conversation_replays(odyssey, tmp_path):
    chat = chat_of("sync", odyssey)
    asked = chat.ask(SUPPORT_Q)
    path = chat.save_events(tmp_path / "odyssey.jsonl")
    assert odyssey.odyssey_api_key not in path.read_text()
    (again,) = replay(path)
    assert again.text == asked.text and again.status == "succeeded"
    assert again.citations == asked.citations and again.suggestions == asked.suggestions
    assert [(s.name, s.reported) for s in again.nodes] == [(s.name, s.reported) for s in asked.nodes]
    chat.client.close()


def test_answer_text_reads_every_shape():
    assert answer_text({"answer": "top"}) == "top"
    steps = [{"agentname": "Helper", "content": {"response": "not me"}},
             {"agentname": "Root", "content": {"text": "the answer"}},
             {"agentname": "Helper", "content": "nor me"}]
    assert answer_text({"rootAgentName": "Root", "stepsBreakdown": steps}) == "the answer"
    assert answer_text({"stepsBreakdown": [{"content": "plain"}]}) == "plain"
    assert json.loads(answer_text({"stepsBreakdown": [{"content": {"n": 1}}]})) == {"n": 1}
    assert answer_text({}) == "" and answer_text({"stepsBreakdown": "nope"}) == ""


def test_a_hostile_document_is_bounded():
    data = {"stepsBreakdown": [{"agentname": "a", "type": "t"}] * 2000,
            "sourceSnips": [{"filename": "f", "url": "javascript:alert(1)"}] * 500,
            "followUps": {"questions": ["q"] * 100 + [None, 3, " "]}}
    reply = Reply("q", translate=OdysseyTranslator())
    reply.apply(Event(Name.REQUEST, {"request_id": "r"}))
    reply.apply(Event(Name.RESPONSE, data))
    reply.close()
    assert len(reply.nodes) == 501 and any("2000 steps" in a for a in reply.anomalies)
    assert len(reply.citations) == 50 and len(reply.suggestions) == 10


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(sorted(DATA_FIELDS | STEP_FIELDS | SNIP_FIELDS | {"questions", "answer"})),
                        inner, max_size=6), max_leaves=30))
def test_fuzz_any_document_folds_without_raising(document):
    reply = Reply("q", translate=OdysseyTranslator())
    reply.apply(Event(Name.REQUEST, {"request_id": "r", "conversation_id": "c"}))
    event = parse_document(json.dumps({"data": document}))
    # An object under `data` is the answer and must parse as one; anything else is malformed.
    if isinstance(document, dict):
        assert type(event) is not MalformedFrame and event.event == Name.RESPONSE and event.data == document
    else:
        assert type(event) is MalformedFrame
    reply.apply(event)
    reply.close()
    assert reply.done and isinstance(reply.text, str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from([*BODY.values(), "other"]),
                            st.none() | st.booleans() | st.integers() | st.text(max_size=30), max_size=7),
       user=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=10))
def test_fuzz_the_route_always_answers_properly(odyssey, body, user):
    headers = {"x-api-key": odyssey.odyssey_api_key, "X-Atomemo-Pace": "chunk_size=64; chunk_delay=0; node_delay=0"}
    if user:
        headers["userId"] = user
    with httpx.Client(timeout=10) as http:
        answer = http.post(odyssey.odyssey_base_url + "/chat/message", json=body, headers=headers)
    assert answer.status_code in (200, 400, 404), answer.text
    payload = answer.json()
    assert ("data" in payload) if answer.status_code == 200 else ("error" in payload)


def test_the_widgets_async_twin_keeps_every_option(odyssey):
    from atomemo_notebook.session._connect import as_async

    api = client("sync", odyssey, answer_timeout=42, max_retries=0)
    twin = as_async(Chat(api, workspace_id="ws-demo", agent_id="echo", user_id="u")).client
    assert isinstance(twin, AsyncOdysseyClient) and (twin.answer_timeout, twin.max_retries) == (42.0, 0)
    api.close()
