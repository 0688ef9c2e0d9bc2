"""What a user sees of the real Dify 1.13.2: each recording of tests/peers/dify served back by
the replay server and driven through our client, the model, the records and the widget's
kernel side. The recording is the truth; where a scenario's script cannot be played by our
client (polling every 4 s, the web-app API, 25 s reads), the test drives what our client does
against the parts it uses, and says so. `server.unmatched` holds only requests named here."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

import pytest

from atomemo_notebook import (
    AsyncChat,
    AsyncDifyClient,
    AuthenticationError,
    BadRequestError,
    Chat,
    ChatWidget,
    ConversationNotFoundError,
    DifyClient,
    NotFoundError,
)
from atomemo_notebook.model.chat import LEAF
from atomemo_notebook.protocol.dify import _calls as calls
from atomemo_notebook.protocol.dify.events import REDACTED

from .peers.replay import KEY, ReplayServer, recording

SPEED = 20.0  # the recordings' times, twenty times faster
APP_LOAD = ["GET /v1/info"]  # a chat loads its app first; these recordings did not ask (info fails first)


def replay(name: str, **kwargs: Any) -> ReplayServer:
    return ReplayServer(recording("dify", name), **{"speed": SPEED, **kwargs})


def chat_on(server: ReplayServer, user: str, **options: Any) -> Chat:
    # The server's root, not /v1: the client adds the service API's path itself.
    return Chat(DifyClient(KEY, base_url=server.origin, **options), user_id=user)


def without_queries(requests: list[str]) -> list[str]:
    return [r.split("?")[0] for r in requests]


def history(chat: Chat) -> list[dict[str, Any]]:
    chat.history()
    return chat.history_records()


def layout(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["query_text"], r["depth"], r["dialogue_count"], r["sibling_count"], r["status"]) for r in rows]


def nodes(reply: Any) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in reply.nodes]


# -- chatflow-two-turns ------------------------------------------------------------------------

def test_two_turns_stream_thread_and_end_at_workflow_finished():
    with replay("chatflow-two-turns", speed=1.0) as server:  # real time: the 1 s close would show
        chat = chat_on(server, "rec-user-1")
        started = time.monotonic()
        first = chat.ask("hello there")
        took = time.monotonic() - started
        # The stream's last event came at 0.10 s, the close at 1.10 s: the reply is final at the event.
        assert took < 0.8, took
        assert first.status == "succeeded" and first.text == "Hi there! You said: hello there (turn 1)"
        assert first.chunks == 5  # one per template segment, as sent
        assert nodes(first) == [("Start", "succeeded"), ("Is greeting", "succeeded"), ("Greeting", "succeeded")]
        assert all(s.elapsed is not None and s.elapsed < 0.01 for s in first.nodes)
        assert first.usage is not None and first.usage.total_tokens == 0 and first.usage.price == 0.0
        second = chat.ask("and a second question")
        assert second.text == "Echo: and a second question (turn 2)" and second.parent_id == first.message_id
        rows = history(chat)
        # Dify says the nil UUID for both parents: one thread, not two roots under a missing parent.
        assert layout(rows) == [("hello there", 0, 1, 1, "succeeded"), ("and a second question", 1, 2, 1, "succeeded")]
        assert rows[1]["parent_id"] == rows[0]["message_id"] and rows[0]["parent_id"] is None
        assert {r["user_id"] for r in rows} == {"rec-user-1"}
        # The same conversation reopened by someone who only knows its id lays it out the same.
        reopened = Chat(DifyClient(KEY, base_url=server.origin), user_id="rec-user-1",
                        conversation_id=first.conversation_id)
        assert reopened.conversations()[0].id == first.conversation_id
        reopened.client.rename_conversation(str(first.conversation_id), "rec-user-1", name="Renamed chat")
        assert reopened.conversations()[0].name == "Renamed chat"
        with pytest.raises(ConversationNotFoundError) as foreign:  # another user's view
            reopened.client.messages(str(first.conversation_id), "someone-else")
        assert foreign.value.message == "Conversation Not Exists."  # Flask's "did you mean" cut off
        reopened.client.delete_conversation(str(first.conversation_id), "rec-user-1")
        assert reopened.conversations() == []
        with pytest.raises(ConversationNotFoundError):
            reopened.history()
    assert without_queries(server.unmatched) == APP_LOAD * 2  # one per ask: the app stays unloaded


async def test_two_turns_async_and_the_widgets_kernel_side():
    with replay("chatflow-two-turns") as server:
        widget = ChatWidget(system="dify", api_key=KEY, base_url=server.origin, user_id="rec-user-1")
        widget.send = lambda *a, **k: None  # type: ignore[method-assign]  # no browser
        widget.booted.result(10)
        widget._on_custom(widget, {"type": "command", "id": 1, "name": "send", "args": {"text": "hello there"}}, [])
        widget.wait()
        widget._on_custom(widget, {"type": "command", "id": 2, "name": "send",
                                   "args": {"text": "and a second question"}}, [])
        widget.wait()
        turns = widget.transcript["turns"]
        assert [(t["query"], t["status"], t["answer"]) for t in turns] == [
            ("hello there", "succeeded", "Hi there! You said: hello there (turn 1)"),
            ("and a second question", "succeeded", "Echo: and a second question (turn 2)")]
        assert turns[1]["parent_id"] == turns[0]["id"]
        widget.close()


async def test_an_evaluation_folds_difys_recorded_answer_as_it_arrives():
    """evaluate() holds an answer back (to fold it while the next row's request is out) only where
    nothing is asked after it: Dify's chat asks for the suggested questions next, so its recorded
    answer is folded as it arrives, as ask() folds it."""
    with replay("chatflow-two-turns") as server:
        chat = AsyncChat(AsyncDifyClient(KEY, base_url=server.origin), user_id="rec-user-1")
        reply, settle = await chat._exchange("hello there", LEAF, None, None, hold=True)
        assert settle is None and reply.done and reply.status == "succeeded"
        assert reply.text == "Hi there! You said: hello there (turn 1)"
        await chat.backend.client.close()


# -- human-input-pause ---------------------------------------------------------------------------

def test_a_paused_run_waits_then_history_tells_how_it_went_on():
    with replay("human-input-pause") as server:
        chat = chat_on(server, "rec-user-2")
        reply = chat.ask("please approve my refund of 42 EUR")
        assert reply.status == "waiting" and reply.execution is not None and reply.execution.status == "waiting"
        assert reply.text == "Sending your request for review: please approve my refund of 42 EUR\n"
        assert nodes(reply)[-1] == ("Review request", "waiting")
        assert not any("never finished" in a for a in reply.anomalies), reply.anomalies
        # The form's token answers the form: it reaches no event, record or saved file.
        required = next(e.event.data for e in reply.events if e.event.event == "human_input_required")
        assert required["data"]["form_token"] == REDACTED
        assert layout(history(chat)) == [("please approve my refund of 42 EUR", 0, 1, 1, "waiting")]
        for records in (chat.event_records(), chat.history_records(), chat.timeline_records()):
            assert "<KEY>" not in json.dumps(records, default=str)
        # The run record answers for a chatflow run too (our client's call for "how did it go on").
        run = chat.client.workflow_run(str(reply.execution_id))
        assert run["status"] == "paused" and run["finished_at"] is None
        # The form was answered on the web app (not our client) and the run finished: the stored
        # message is the truth now, its whole text included.
        rows = history(chat)
        assert layout(rows) == [("please approve my refund of 42 EUR", 0, 1, 1, "succeeded")]
        assert rows[0]["answer"].endswith("Approved with priority high: refund ok, customer is right")
        second = chat.ask("second request: reject me")
        assert second.status == "waiting" and second.parent_id == reply.message_id
        assert [r["status"] for r in history(chat)] == ["succeeded", "waiting"]
        rows = history(chat)  # the rejection was submitted meanwhile
        assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
        assert rows[1]["answer"].endswith("Rejected: not this time") and rows[1]["dialogue_count"] == 2
    # Not asked by our client: the form and event endpoints (web-app API), the conversation list,
    # and one run record (of the second turn). Asked and not recorded: the app's info.
    assert without_queries(server.unmatched) == APP_LOAD * 2


def test_a_paused_reply_in_the_widget_says_waiting_and_carries_no_token():
    with replay("human-input-pause") as server:
        widget = ChatWidget(system="dify", api_key=KEY, base_url=server.origin, user_id="rec-user-2")
        widget.send = lambda *a, **k: None  # type: ignore[method-assign]
        widget.booted.result(10)
        widget._on_custom(widget, {"type": "command", "id": 1, "name": "send",
                                   "args": {"text": "please approve my refund of 42 EUR"}}, [])
        widget.wait()
        (turn,) = widget.transcript["turns"]
        assert turn["status"] == "waiting"
        state = json.dumps(widget.get_state(), default=str)
        assert "<KEY>" not in state and "form_token" not in state.replace(f'"form_token": "{REDACTED}"', "")
        widget.close()


# -- human-input-resume-streams ------------------------------------------------------------------

def test_follow_watches_a_resumed_run_until_it_ends():
    with replay("human-input-resume-streams") as server:
        chat = chat_on(server, "rec-user-9")
        reply = chat.ask("run the nightly job")
        assert reply.status == "waiting" and reply.text == "Queued: run the nightly job\n"
        # Someone answered the form on the web app (the recording's passport, web streams and
        # submit are not our client's). follow(): the stored message still says paused with its
        # form submitted, so the run record is asked until the run ends, then history again.
        assert chat.follow(str(reply.message_id)) is True
        (row,) = chat.history_records()
        assert row["status"] == "succeeded"
        assert row["answer"] == ('Queued: run the nightly job\nJob done for nightly: '
                                 '{"slept": 8.0, "note": "slow service answered"}')
    assert without_queries(server.unmatched) == APP_LOAD


# -- slow-quiet-node ----------------------------------------------------------------------------

async def test_pings_keep_a_40_s_node_alive_and_its_duration_is_the_servers():
    with replay("slow-quiet-node") as server:
        # 10 s between pings is 0.5 s here; 0.8 s of silence would end the stream: only pings keep it.
        client = AsyncDifyClient(KEY, base_url=server.origin + "/v1", stream_idle_timeout=0.8)
        chat = AsyncChat(client, user_id="rec-user-3")
        reply = await chat.ask("do the slow thing", inputs={"delay": "40"})
        assert reply.status == "succeeded"
        assert reply.text == 'Working on it...\nDone (200): {"slept": 40.0, "note": "slow service answered"}'
        http = next(s for s in reply.nodes if s.name == "HTTP")
        assert http.status == "succeeded" and http.elapsed is not None and 39.9 < http.elapsed < 41
        assert http.duration_ms is not None and http.duration_ms > 1500  # 40 s at 20x, as it came
        pings = [e for e in reply.events if e.event.event == "ping"]
        assert pings == []  # keep-alives are life, not events: the fold never sees them
        await client.close()
    # The recording polled the history every 4 s; our client does not poll while it streams.
    assert without_queries(server.unmatched) == APP_LOAD


# -- stop-mid-answer -----------------------------------------------------------------------------

async def test_a_stop_mid_answer_stays_stopped_after_history():
    with replay("stop-mid-answer") as server:
        client = AsyncDifyClient(KEY, base_url=server.origin)
        chat = AsyncChat(client, user_id="rec-user-4")
        running = asyncio.Event()

        def on_event(reply: Any, event: Any) -> None:
            if any(s.name == "HTTP" and s.status == "running" for s in reply.nodes):
                running.set()

        task = asyncio.create_task(chat.ask("start then stop me", inputs={"delay": "25"}, on_event=on_event))
        await asyncio.wait_for(running.wait(), 10)
        chat.stop()  # what the recording did 4 s in: POST .../stop with the task id
        reply = await task
        assert reply.status == "stopped" and reply.stopped_on_server
        assert reply.text.startswith("Working on it...\n")
        # The stored message says "normal" with the partial text (the run record: "running" for
        # minutes); the stop is what happened.
        stop = "POST /v1/chat-messages/0ea5b3cf-e969-4e71-8741-15f6aa708ffc/stop"
        for _ in range(500):  # the stop goes out as a task of this loop: yield to it
            if stop in server.requests:
                break
            await asyncio.sleep(0.01)
        assert stop in server.requests
        await chat.history()
        (row,) = chat.history_records()
        assert row["status"] == "stopped"
        run = await client.workflow_run(str(reply.execution_id))
        assert run["status"] == "running"  # Dify 1.13 never finishes a stopped run's record
        # Stopping again, or a task that does not exist, is a success too.
        assert await client.stop("0ea5b3cf-e969-4e71-8741-15f6aa708ffc", "rec-user-4") == {"result": "success"}
        await client.close()
    # The recording's 4-second polls of history and run record: our client asked one of each.
    assert without_queries(server.unmatched) == APP_LOAD


# -- unknown conversations -----------------------------------------------------------------------

def test_a_question_into_an_unknown_conversation_raises_conversation_not_found():
    with replay("unknown-conversation") as server:
        chat = chat_on(server, "rec-user-5", start_timeout=0.3)
        chat.conversation_id = "d17ff803-e4d6-4f52-922f-33b81536dbdd"
        started = time.monotonic()
        with pytest.raises(ConversationNotFoundError) as missing:
            chat.ask("hello?")
        # One ping, then silence (the real server's, 300 s): the lookup after start_timeout answers.
        assert time.monotonic() - started < 5
        assert missing.value.status_code == 404 and missing.value.message == "Conversation Not Exists."
        assert chat.last_reply is not None and chat.last_reply.status == "failed"
        with pytest.raises(ConversationNotFoundError):  # blocking: 404 at once
            chat.client.chat_blocking(query="hello?", user="rec-user-5", conversation_id=chat.conversation_id)
        with pytest.raises(BadRequestError, match="must be a valid UUID") as malformed:
            list(chat.client.chat_messages(query="hello?", user="rec-user-5", conversation_id="not-a-uuid"))
        assert malformed.value.code == "invalid_param"
    # The lookup took the recorded history request (limit 1 where the recording asked 20).
    assert without_queries(server.unmatched) == APP_LOAD


def test_an_unknown_conversation_the_server_closes_on_is_looked_up_at_once():
    # The server closed the silent stream at 301 s (here: at max_gap): the lookup follows at
    # once. The recording holds no lookup, so the replay's marked 404 answers it.
    with replay("unknown-conversation-300s", max_gap=0.3) as server:
        chat = chat_on(server, "rec-user-5b", start_timeout=30)
        chat.conversation_id = "b732d53f-6f6e-415a-97d1-b6e15f3cec66"
        started = time.monotonic()
        with pytest.raises(NotFoundError):
            chat.ask("hello? (waiting for the server to close)")
        assert time.monotonic() - started < 5  # not the 60 s idle timeout
    assert without_queries(server.unmatched) == [*APP_LOAD, "GET /v1/messages"]


# -- failing-node, plain-500-node ------------------------------------------------------------------

def test_a_failed_node_shows_what_ran_and_the_error():
    with replay("failing-node") as server:
        chat = chat_on(server, "rec-user-6")
        reply = chat.ask("call the broken service")
        assert reply.status == "failed"
        # "Got: " was streamed ahead by the answer node that never ran: not the answer.
        assert reply.text == "Calling the failing service...\n"
        assert reply.run_error == "Reached maximum retries for URL http://127.0.0.1:58080/fail500"
        # Each attempt of the HTTP node is a run of its own, one after the other (two retries:
        # three attempts, each failed); the answer node after it never started.
        assert nodes(reply) == [("Start", "succeeded"), ("Before failing call", "succeeded"), ("HTTP", "failed"),
                                ("HTTP", "failed"), ("HTTP", "failed")]
        attempts = [s for s in reply.nodes if s.name == "HTTP"]
        assert [s.result_id.partition("#")[2] for s in attempts] == ["", "attempt2", "attempt3"]
        # Each retry says its attempt's time; the node's end says all three's: the last is the rest.
        assert [s.elapsed for s in attempts] == pytest.approx([0.31349, 0.305712, 0.631437 - 0.31349 - 0.305712])
        assert all(s.error == reply.run_error for s in attempts)
        # One after another on the timeline: no attempt starts before the one before it ended.
        assert all(a.finished is not None and b.started is not None and a.finished <= b.started
                   for a, b in itertools.pairwise(attempts))
        assert attempts[-1].finished is not None
        assert not any(e.event.event in ("error", "message_end") for e in reply.events)
        assert layout(history(chat)) == [("call the broken service", 0, 1, 1, "failed")]
        with pytest.raises(BadRequestError) as blocking:
            chat.client.chat_blocking(query="blocking this time", user="rec-user-6",
                                      conversation_id=chat.conversation_id)
        assert blocking.value.code == "invalid_param" and blocking.value.message.startswith("Run failed: ")
        rows = history(chat)
        # Both landed in the same second: Dify lists them newest first; the thread is in time order.
        assert layout(rows) == [("call the broken service", 0, 1, 1, "failed"),
                                ("blocking this time", 1, 2, 1, "failed")]
        assert rows[0]["answer"] == "Calling the failing service...\n" and rows[1]["answer"] == ""
    assert without_queries(server.unmatched) == APP_LOAD


def test_a_plain_500_keeps_no_text_of_a_node_that_never_ran():
    with replay("plain-500-node") as server:
        chat = chat_on(server, "rec-user-6b")
        reply = chat.ask("call the broken service")
        assert reply.status == "failed" and reply.text == ""  # "Status " was the unrun node's prefix
        assert nodes(reply) == [("Start", "succeeded"), ("HTTP", "failed")]
        assert reply.nodes[1].error == reply.run_error == "Reached maximum retries for URL http://127.0.0.1:58080/fail500"
        assert layout(history(chat)) == [("call the broken service", 0, 1, 1, "failed")]
    # The recording's blocking retry and second history are not asked here.
    assert without_queries(server.unmatched) == APP_LOAD


# -- blocking-feedback-meta ---------------------------------------------------------------------

def test_blocking_turns_app_info_and_base_url_forms():
    with replay("blocking-feedback-meta") as server:
        api = DifyClient(KEY, base_url=server.origin)
        assert api.base_url == server.origin + "/v1"
        first = api.chat_blocking(query="hello blocking", user="rec-user-7")
        second = api.chat_blocking(query="second blocking turn", user="rec-user-7",
                                   conversation_id=first["conversation_id"])
        assert second["answer"] == "Echo: second blocking turn (turn 3)"  # Dify's own count
        chat = Chat(api, user_id="rec-user-7", conversation_id=first["conversation_id"])
        rows = history(chat)  # the two share their second: listed newest first, threaded in order
        assert layout(rows) == [("hello blocking", 0, 1, 1, "succeeded"),
                                ("second blocking turn", 1, 2, 1, "succeeded")]
        assert api.parameters()["suggested_questions_after_answer"] == {"enabled": False}
        assert api.info()["mode"] == "advanced-chat"
        with pytest.raises(AuthenticationError, match="Access token is invalid"):
            DifyClient("app-bad-key-000000", base_url=server.origin + "/v1").parameters()  # as recorded
        with pytest.raises(BadRequestError) as refused:
            api._call(calls.run_workflow(inputs={}, user="rec-user-7", streaming=False))
        assert refused.value.code == "not_workflow_app"
    # Not asked by our client: feedbacks, meta, site, the roots, the no-key request, the history
    # pages with limit 1 and the suggestions (off in this app: our client does not ask).
    assert server.unmatched == []


def test_a_wrong_base_url_says_which_url_and_which_form():
    with replay("blocking-feedback-meta") as server:
        wrong = DifyClient(KEY, base_url=server.origin + "/dify-app")
        with pytest.raises(NotFoundError) as caught:
            wrong.info()
        text = str(caught.value)
        assert f"{server.origin}/dify-app/info" in text and "https://api.dify.ai/v1" in text
        assert KEY not in text


# -- workflow-app ---------------------------------------------------------------------------------

def test_a_workflow_app_streams_text_chunks_and_refuses_chat():
    with replay("workflow-app") as server:
        api = DifyClient(KEY, base_url=server.origin)
        chat = Chat(api, user_id="rec-user-8", app_type="workflow")
        reply = chat.run(name="Ada", delay="1")
        assert reply.status == "succeeded" and reply.query == "name: Ada\ndelay: 1"
        # The End node's outputs streamed as text; the outputs themselves are the run's result.
        assert reply.text == 'Ada\n{"slept": 1.0, "note": "slow service answered"}\n200'
        assert reply.outputs == {"name": "Ada", "body": '{"slept": 1.0, "note": "slow service answered"}',
                                 "status": 200}
        assert reply.message_id == reply.execution_id == "c06822d4-9d4e-4221-84e2-edb26792ef8d"
        assert nodes(reply) == [("Start", "succeeded"), ("HTTP", "succeeded"), ("End", "succeeded")]
        (row,) = chat.history_records()
        assert row["conversation_id"] is None and json.loads(row["outputs"])["status"] == 200
        assert api.workflow_run(str(reply.execution_id))["status"] == "succeeded"
        blocking = api.run_workflow_blocking(inputs={"name": "Grace", "delay": "1"}, user="rec-user-8")
        assert blocking["data"]["outputs"]["name"] == "Grace"
        with pytest.raises(BadRequestError, match="name is required in input form"):
            api.run_workflow_blocking(inputs={"delay": "1"}, user="rec-user-8")
        # A slow run stopped from the chat, as recorded: its record read while it runs, then the
        # stop, which names the run's task; the run's record says running ever after (Dify's own).
        seen: list[str] = []

        def watch_then_stop() -> None:
            while chat.last_reply is None or chat.last_reply.execution_id != "792f6711-c541-46b6-bdab-b3e6e8f7f261":
                time.sleep(0.01)  # a poll for the run's id, as a user's second thread would do
            seen.append(api.workflow_run(chat.last_reply.execution_id)["status"])
            chat.stop()

        stopper = threading.Thread(target=watch_then_stop)
        stopper.start()
        stopped = chat.run(name="Linus", delay="20")
        stopper.join()
        assert seen == ["running"]
        assert stopped.status == "stopped" and stopped.stopped_on_server and stopped.outputs is None
        assert stopped.task_id == "e7c0b786-c309-43c1-956a-fab9664260ea"
        assert [api.workflow_run(str(stopped.execution_id))["status"] for _ in range(6)] == ["running"] * 6
        logs, more = api.workflow_logs(limit=10)
        assert not more and [r["workflow_run"]["status"] for r in logs] == ["running", "succeeded", "succeeded"]
        with pytest.raises(BadRequestError) as refused:
            api.chat_blocking(query="hi", user="rec-user-8")
        assert refused.value.code == "not_chat_app"
    # The app's description (asked by a chat before each run until it has it) was not recorded.
    assert without_queries(server.unmatched) == APP_LOAD * 2


# -- paging ----------------------------------------------------------------------------------------

def test_paging_backwards_and_conversations_by_last_id():
    with replay("paging") as server:
        api = DifyClient(KEY, base_url=server.origin)
        conv = api.chat_blocking(query="question 1", user="rec-user-10")["conversation_id"]
        for i in (2, 3, 4):
            api.chat_blocking(query=f"question {i}", user="rec-user-10", conversation_id=conv)
        newest, more = api.messages(conv, "rec-user-10", limit=2)
        assert [m.query for m in newest] == ["question 3", "question 4"] and more
        older, more = api.messages(conv, "rec-user-10", first_id=newest[0].id, limit=2)
        assert [m.query for m in older] == ["question 1", "question 2"] and not more
        for i in (1, 2):
            api.chat_blocking(query=f"another conversation {i}", user="rec-user-10")
        page, more = api.conversations("rec-user-10", limit=2)
        assert [c.name for c in page] == ["another conversation 2", "another conversation 1"] and more
        rest, more = api.conversations("rec-user-10", last_id=page[-1].id, limit=2)
        assert [c.name for c in rest] == ["question 1"] and not more
        assert api.rename_conversation(conv, "rec-user-10")["name"] == "question 1"  # no model: unchanged
    # Not asked: the conversation's variables.
    assert server.unmatched == []


def test_the_recorded_form_is_answered_from_the_kernel_and_the_turn_ends_as_the_server_says():
    """Dify 1.13.2 has neither the form nor the run's events on its service API (404): the
    answer goes to the web-app API's form route (no key sent), and the run's end is read from
    the stored message, in the same reply."""
    with replay("human-input-pause") as server:
        chat = chat_on(server, "rec-user-2")
        reply = chat.ask("please approve my refund of 42 EUR")
        form = reply.pending_input
        assert reply.status == "waiting" and form is not None and form.node_title == "Review request"
        assert [(f["name"], f["default"]) for f in form.fields] == [("comment", "looks fine"), ("priority", None)]
        assert [(a["id"], a["title"], a["style"]) for a in form.actions] == [
            ("approve", "Approve", "primary"), ("reject", "Reject", "default")]
        assert form.expires_at == 1796398569 and "{{#$output.comment#}}" in form.content
        reply.respond("approve", comment="refund ok, customer is right", priority="high")
        assert reply.done and reply.pending_input is None
        assert reply.text.endswith("Approved with priority high: refund ok, customer is right")
        assert [(s.name, s.status) for s in reply.nodes][-1] == ("Review request", "paused")
        (row,) = chat.history_records()
        assert row["status"] == "succeeded"
        asked = without_queries(server.unmatched)
        assert "POST /v1/form/human_input/<KEY>" not in asked and "POST /api/form/human_input/<KEY>" not in asked


def test_with_the_web_app_code_the_answered_run_is_followed_live_on_the_web_app_api():
    """Dify 1.13.2 with connect()'s web_app_code: after the answer, a passport for the user and
    the run's web-app event stream carry the rest of the run into the same reply (resumption,
    the form filled, the answer's rest), as the real server sent it."""
    from atomemo_notebook import connect

    with replay("human-input-pause") as server:
        chat = connect("dify", api_key=KEY, base_url=server.origin, user_id="rec-user-2",
                       web_app_code="<APP_CODE>")
        reply = chat.ask("please approve my refund of 42 EUR")
        assert reply.status == "waiting"
        reply.respond("approve", comment="refund ok, customer is right", priority="high")
        assert reply.status == "succeeded" and reply.input_outcome == "answered: Approve"
        assert reply.text == ("Sending your request for review: please approve my refund of 42 EUR\n"
                              "Approved with priority high: refund ok, customer is right")
        statuses = [(s.name, s.status) for s in reply.nodes]
        assert ("Review request", "paused") in statuses and statuses[-1][1] == "succeeded"
        assert len(reply.pauses) == 1 and reply.pauses[0][1] is not None
        asked = without_queries(server.unmatched)
        assert not [a for a in asked if "/api/" in a], asked  # passport and web stream were the recorded ones
        chat.close()
