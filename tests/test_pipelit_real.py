"""What a user sees of the real Pipelit 0.3.16: each recording of tests/peers/pipelit served back
by the replay server and driven through our client, the model, the records and the widget's
kernel side. The recording is the truth. Frames come 20 times faster than recorded (the
timeline's times are the server's `timestamp` fields, so they do not shrink with them); a test
that needs the real spacing says so. `server.unmatched` holds only requests named here."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest

from atomemo_notebook import (
    AsyncChat,
    AsyncPipelitClient,
    AuthenticationError,
    Chat,
    ChatWidget,
    ExecutionFailedError,
    NotFoundError,
    PipelitClient,
)
from atomemo_notebook.evaluation._inputs import EvalRow
from atomemo_notebook.evaluation._records import row_record
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol.pipelit import _calls as calls
from atomemo_notebook.transport._pipelit import _Watching
from atomemo_notebook.transport._socket_hub import Reconnect

from .peers.replay import KEY, ReplayServer, recording

SPEED = 20.0
ANSWER = 'MOCK_REPLY to "Where is my order?": your order is on its way.'
SYSTEM_PROMPT = {"system_prompt": "You are a helpful order assistant."}
WAIT = 10.0  # seconds a test waits for what the replay sends; it comes in well under one


def app_load(slug: str) -> str:
    """A chat loads its workflow's details first; the recordings never asked (names: node ids)."""
    return f"GET /api/v1/workflows/{slug}/"


def replay(name: str, **kwargs: Any) -> ReplayServer:
    return ReplayServer(recording("pipelit", name), **{"speed": SPEED, **kwargs})


def client_on(server: ReplayServer, **options: Any) -> PipelitClient:
    # The server's root, as Pipelit's docs write the host: the client adds /api/v1 itself.
    return PipelitClient(KEY, base_url=server.origin, **{"execution_timeout": 30.0, **options})


def done(*chats: Chat) -> None:
    for chat in chats:
        chat.close()
    for chat in chats:
        chat.client.close()


def nodes(reply: Reply) -> list[tuple[str, str, str]]:
    return [(s.node_id, s.type, s.status) for s in reply.nodes]


def noted(reply: Reply, words: str, timeout: float = WAIT) -> bool:
    """Wait (on the reply's own updates, no fixed sleep) for an anomaly holding `words`."""
    seen = threading.Event()

    def check(r: Reply, event: Any) -> None:
        if any(words in a for a in r.anomalies):
            seen.set()

    remove = reply.on_update(check)
    try:
        check(reply, None)
        return seen.wait(timeout)
    finally:
        remove()


# -- tool-turn ---------------------------------------------------------------------------------

def test_a_tool_turn_answers_with_its_last_message_on_the_servers_clock():
    with replay("tool-turn") as server:
        chat = Chat(client_on(server), workflow="agent-chat", user_id="u")
        chat.clear()
        reply = chat.ask("Where is my order?")
        assert reply.status == "succeeded" and reply.text == ANSWER and not reply.anomalies
        assert nodes(reply) == [("agent_1", "agent", "succeeded")]  # the trigger is never reported
        agent = reply.nodes[0]
        assert [(t.tool_name, t.status) for t in agent.tools] == [("whoami", "succeeded")]
        assert agent.process_data == ["Let me check.", ANSWER]  # each AI message, kept on the node
        # The server's times: the agent measured 23 ms and its events are 37.2 ms apart by their
        # timestamps; the frames came 50 ms apart (252 ms from running to success), here 20x less.
        assert agent.elapsed == 0.023
        assert agent.duration_ms == pytest.approx(37.2, abs=0.5)
        assert agent.tools[0].duration_ms == pytest.approx(4.8, abs=0.5)
        usage = reply.usage
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.price, usage.currency) == (
            20, 10, 30, 0.0, "USD")
        # History holds "Let me check." and the answer, both stamped with the question's time:
        # the turn's answer is its last message.
        chat.history()
        (row,) = chat.history_records()
        assert (row["query_text"], row["answer"], row["status"], row["message_id"]) == (
            "Where is my order?", ANSWER, "succeeded", reply.message_id)
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"], row["cost"]) == (20, 10, 30, 0.0)
        assert [r["tokens"] for r in chat.timeline_records() if r["kind"] == "node"] == [30]
        evaluated = row_record(EvalRow(0, "k", "Where is my order?", {}, None, None, None, {}), reply)
        assert (evaluated["prompt_tokens"], evaluated["total_tokens"], evaluated["cost"]) == (20, 30, 0.0)
        record = chat.client.execution(str(reply.execution_id))
        assert (record.status, record.total_tokens, record.llm_calls, record.final_output) == (
            "completed", 30, 2, {"output": ANSWER})
        assert record.logs[0]["input"] == SYSTEM_PROMPT
        done(chat)
    assert server.unmatched == [app_load("agent-chat")]


def test_a_dropped_socket_ends_from_the_execution_record():
    # Real spacing (speed 1): the socket is dropped at the first frame, 400 ms before the end.
    with replay("tool-turn", speed=1.0) as server:
        api = client_on(server, reconnect=Reconnect(tries=0), recover_poll=0.05)
        chat = Chat(api, workflow="agent-chat", user_id="u")
        hub = api.hub

        def drop(reply: Reply, event: Any) -> None:
            if event.event == "execution_started" and hub._ws is not None:
                asyncio.run_coroutine_threadsafe(hub._ws.close(), hub._loop).result(WAIT)

        reply = chat.ask("Where is my order?", on_event=drop)
        assert (reply.status, reply.recovered_status, reply.text) == ("recovered", "succeeded", ANSWER)
        # The record fills what the socket lost: the agent's run, with its input and usage.
        agent = next(s for s in reply.nodes if s.node_id == "agent_1")
        assert agent.status == "succeeded" and agent.inputs == SYSTEM_PROMPT and agent.elapsed == 0.023
        assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.total_tokens) == (20, 30)
        assert any("read from its record" in a for a in reply.anomalies)
        done(chat)
    # The record was read instead of history; the DELETE and the history page were not asked.
    assert server.unmatched == [app_load("agent-chat")]
    assert "GET /api/v1/executions/c7636f78-b05c-4d6a-a8b9-88d6d150fa42/" in server.requests


def test_a_run_still_going_is_never_taken_for_its_end():
    state = _Watching("wf", "q", calls.Executed("e1", "pending"), timeout=5.0, poll=0.1)
    for status in ("pending", "running"):
        assert state.from_record(calls.Execution("e1", status)) is None
    assert state.from_record(calls.Execution("another", "completed")) is None
    ended = state.from_record(calls.Execution("e1", "completed", {"output": "x"}))
    assert ended is not None and ended.data is not None and ended.data["data"]["final_output"] == {"output": "x"}


async def test_the_widgets_kernel_side_shows_the_tool_turns_answer():
    with replay("tool-turn") as server:
        widget = ChatWidget(system="pipelit", api_key=KEY, base_url=server.origin, workflow="agent-chat",
                            user_id="u")
        widget.send = lambda *a, **k: None  # type: ignore[method-assign]  # no browser
        widget.booted.result(WAIT)
        widget._on_custom(widget, {"type": "command", "id": 1, "name": "send",
                                   "args": {"text": "Where is my order?"}}, [])
        widget.wait()
        turns = widget.transcript["turns"]
        assert [(t["query"], t["status"], t["answer"]) for t in turns] == [
            ("Where is my order?", "succeeded", ANSWER)]
        widget.close()
    assert set(server.unmatched) <= {app_load("agent-chat")}


# -- history-two-turns -------------------------------------------------------------------------

SECOND = 'MOCK_REPLY to "And when will it arrive?": your order is on its way.'


def test_two_tool_turns_pair_by_turn_and_clearing_empties_them():
    with replay("history-two-turns") as server:
        chat = Chat(client_on(server), workflow="agent-hist", user_id="u")
        assert len(chat.history()) == 0
        first, second = chat.ask("Where is my order?"), chat.ask("And when will it arrive?")
        assert (first.text, second.text) == (ANSWER, SECOND)
        assert second.parent_id == first.message_id
        # The page of the last two: both assistant messages of the second turn, no question.
        page = chat.client.history("agent-hist", limit=2)
        assert [m.role for m in page.messages] == ["assistant", "assistant"] and page.has_more
        # `before` is strict: the first turn only, its three messages with the question's time.
        before = chat.client.history("agent-hist", limit=20, before="2026-12-04T14:04:10.448956Z")
        assert [m.text for m in before.messages] == ["Where is my order?", "Let me check.", ANSWER]
        assert len({m.timestamp for m in before.messages}) == 1
        chat.clear()
        assert len(chat.history()) == 0
        done(chat)
    # The full page after the two turns was not needed: this chat knows its own replies.
    assert server.unmatched == [app_load("agent-hist")] * 2  # once per ask: it stays unloaded


def test_a_reopened_conversation_pairs_each_question_with_its_final_answer():
    with replay("history-two-turns") as server:
        reopened = Chat(client_on(server), workflow="agent-hist", user_id="u", conversation_id="agent-hist")
        reopened.history()  # the recording's first page: empty
        reopened.history()  # then the six messages of two tool turns
        rows = reopened.history_records()
        assert [(r["query_text"], r["answer"], r["status"], r["depth"]) for r in rows] == [
            ("Where is my order?", ANSWER, "succeeded", 0), ("And when will it arrive?", SECOND, "succeeded", 1)]
        assert rows[1]["parent_id"] == rows[0]["message_id"]
        done(reopened)
    assert server.unmatched == []


# -- execution-record ----------------------------------------------------------------------------

def test_records_answer_for_workflows_without_memory_and_name_an_unknown_execution():
    with replay("execution-record") as server:
        api = client_on(server)
        echo, code = Chat(api, workflow="echo-chat", user_id="u"), Chat(api, workflow="code-chat", user_id="u")
        said = echo.ask("Hello, I need help with my order")
        assert said.text == "Echo: Hello, I need help with my order" and said.status == "succeeded"
        assert nodes(said) == [("reply_chat_1", "reply_chat", "succeeded")]
        assert api.execution(str(said.execution_id)).final_output == {"output": said.text}
        done_code = code.ask("Hello there")
        assert done_code.text == "Done: chars=11"
        assert nodes(done_code) == [("code_1", "code", "succeeded"), ("reply_chat_1", "reply_chat", "succeeded")]
        assert done_code.nodes[0].elapsed == 0.022 and done_code.nodes[1].elapsed == 0.0
        assert done_code.usage is not None and done_code.usage.total_tokens == 0
        record = api.execution(str(done_code.execution_id))
        assert record.status == "completed" and [(log["node_id"], log["input"]) for log in record.logs] == [
            ("code_1", None), ("reply_chat_1", None)]
        # No conversation memory: Pipelit keeps no history for this workflow.
        code.history()
        assert [r["answer"] for r in code.history_records()] == ["Done: chars=11"]  # this session's reply only
        with pytest.raises(NotFoundError) as unknown:
            api.execution("00000000-0000-0000-0000-000000000000")
        assert unknown.value.message == "Execution not found."
        done(echo, code)
    assert server.unmatched == [app_load("echo-chat"), app_load("code-chat")]


# -- failing-node-retries ----------------------------------------------------------------------

def test_a_failing_node_shows_each_attempt_and_fails_with_the_node_and_its_error():
    with replay("failing-node-retries") as server:
        chat = Chat(client_on(server), workflow="code-fail", user_id="u")
        reply = chat.ask("Please fail")
        assert reply.status == "failed" and reply.text == ""
        error = reply.error
        assert isinstance(error, ExecutionFailedError) and not hasattr(error, "status_code")
        assert (error.node_id, error.code) == ("code_1", "RuntimeError")
        assert str(error).startswith("node code_1 failed (RuntimeError): Code execution failed (exit 1)")
        assert str(error).endswith("ValueError: boom from code node")
        assert "<PIPELIT_DIR>" not in str(error) and "…/__wrapper__.py" in str(error)
        assert reply.run_error is not None and reply.run_error.startswith("node code_1: Code execution failed")
        # Four attempts, each its own run, queued once; the waits between are the server's.
        assert nodes(reply) == [("code_1", "code", "failed")] * 4
        assert all("<PIPELIT_DIR>" not in (s.error or "") for s in reply.nodes)
        starts = [s.started or 0.0 for s in reply.nodes]
        gaps = [round(b - a, 1) for a, b in itertools.pairwise(starts)]
        assert gaps == [0.8, 2.0, 4.0]
        assert all(s.duration_ms is not None and 20 < s.duration_ms < 30 for s in reply.nodes)
        record = chat.client.execution(str(reply.execution_id))
        assert record.status == "failed" and record.error_message.startswith("Node code_1: ")
        assert len(record.logs) == 4 and record.final_output is None
        chat.history()  # a failed turn leaves no history
        assert [r["status"] for r in chat.history_records()] == ["failed"]  # the reply this session saw
        done(chat)
    assert server.unmatched == [app_load("code-fail")]


# -- cancels -----------------------------------------------------------------------------------

def test_stop_mid_node_cancels_then_shows_that_pipelit_went_on():
    with replay("cancel") as server:
        chat = Chat(client_on(server), workflow="slow-chat", user_id="u")

        def stop_when_running(reply: Reply, event: Any) -> None:
            if any(s.status == "running" for s in reply.nodes):
                chat.stop()

        reply = chat.ask("Take your time", on_event=stop_when_running)
        assert reply.status == "stopped" and nodes(reply) == [("code_1", "code", "stopped")]
        # The server ran the node to its end regardless, and completed: said, never a success.
        assert noted(reply, "went on and the execution completed anyway")
        assert reply.status == "stopped"
        assert "cancelled outside this chat" not in " ".join(reply.anomalies)
        assert chat.client.execution(str(reply.execution_id)).status == "completed"
        done(chat)
    assert server.unmatched == [app_load("slow-chat")]


async def test_an_async_stop_mid_node_is_told_in_the_chats_loop_that_pipelit_went_on():
    # The widget's path: AsyncChat.stop() in the loop; what Pipelit did next arrives in the loop.
    with replay("cancel") as server:
        api = AsyncPipelitClient(KEY, base_url=server.origin, execution_timeout=30.0)
        chat = AsyncChat(api, workflow="slow-chat", user_id="u")
        went_on = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_when_running(reply: Reply, event: Any) -> None:
            if any(s.status == "running" for s in reply.nodes) and not chat._stopping:
                chat.stop()

        def told(reply: Reply, event: Any) -> None:
            assert asyncio.get_running_loop() is loop  # listeners hear it in the chat's loop
            if any("went on" in a for a in reply.anomalies):
                went_on.set()

        reply = await chat.ask("Take your time", on_event=stop_when_running)
        reply.on_update(told)
        told(reply, None)  # it may have come already
        assert reply.status == "stopped"
        await asyncio.wait_for(went_on.wait(), WAIT)
        assert reply.status == "stopped" and "Done: slept 10 s" not in reply.text
        await chat.close()
        await api.close()
    assert server.unmatched == [app_load("slow-chat")]


def test_stop_before_the_first_node_stops_the_run():
    with replay("cancel-before-first-node") as server:
        chat = Chat(client_on(server), workflow="slow-chat", user_id="u")
        reply = chat.ask("Cancel me before I start", on_event=lambda r, e: chat.stop())
        assert reply.status == "stopped" and reply.nodes == []
        # Stop read the record after its cancel (cancelled, no logs): nothing ran, nothing to say.
        assert not any("went on" in a or "already" in a for a in reply.anomalies)
        done(chat)
    assert server.unmatched == [app_load("slow-chat")]
    assert "GET /api/v1/executions/250ac5a2-3830-438a-8bad-594148fb3fce/" in server.requests


def test_a_cancel_from_elsewhere_ends_the_reply_stopped_and_says_so():
    with replay("cancel-before-first-node") as server:
        api = client_on(server, execution_timeout=5.0)  # the old client waited to this deadline
        chat = Chat(api, workflow="slow-chat", user_id="u")
        other = PipelitClient(KEY, base_url=server.origin + "/api/v1")

        def cancel_elsewhere(reply: Reply, event: Any) -> None:
            if event.event == "_execution_created":
                other.cancel(str(reply.execution_id))

        reply = chat.ask("Cancel me before I start", on_event=cancel_elsewhere)
        assert reply.status == "stopped" and reply.execution is not None and reply.execution.status == "stopped"
        assert any("cancelled outside this chat" in a for a in reply.anomalies)
        other.close()
        done(chat)
    assert server.unmatched == [app_load("slow-chat")]


def test_a_queued_execution_stopped_still_runs_and_that_is_shown():
    with replay("cancel-queued") as server:
        api = client_on(server)
        busy, queued = Chat(api, workflow="slow-chat", user_id="u"), Chat(api, workflow="slow-chat", user_id="u")
        first: list[Reply] = []
        running = threading.Event()

        def on_first(reply: Reply, event: Any) -> None:
            if any(s.status == "running" for s in reply.nodes):
                running.set()

        worker = threading.Thread(target=lambda: first.append(busy.ask("Keep the one worker busy",
                                                                       on_event=on_first)))
        worker.start()
        assert running.wait(WAIT)
        second = queued.ask("Cancel me while I wait in the queue", on_event=lambda r, e: queued.stop())
        assert second.status == "stopped" and second.nodes == []
        assert noted(second, "went on and the execution completed anyway")
        assert "Done: slept 10 s" in " ".join(second.anomalies)
        worker.join(WAIT)
        assert first[0].status == "succeeded" and first[0].text == "Done: slept 10 s"
        assert first[0].message_id != second.message_id  # interleaved on one socket, kept apart
        done(busy, queued)
    assert server.unmatched == [app_load("slow-chat")] * 2


# -- concurrent ----------------------------------------------------------------------------------

async def test_three_workflows_at_once_on_one_socket_each_get_their_own_answer():
    with replay("concurrent") as server:
        api = AsyncPipelitClient(KEY, base_url=server.origin, execution_timeout=30.0)
        chats = {slug: AsyncChat(api, workflow=slug, user_id="u") for slug in ("echo-chat", "code-chat", "agent-conc")}
        # The subscriptions first, as recorded; then the three questions together.
        for slug in chats:
            await api.hub.subscribe_async(f"workflow:{slug}", 5.0)
        echo, code, agent = await asyncio.gather(chats["echo-chat"].ask("first, echo"),
                                                 chats["code-chat"].ask("second, code"),
                                                 chats["agent-conc"].ask("third, agent"))
        assert (echo.text, code.text) == ("Echo: first, echo", "Done: chars=12")
        assert agent.text == 'MOCK_REPLY to "third, agent": your order is on its way.'
        assert [s.node_id for s in code.nodes] == ["code_1", "reply_chat_1"]
        assert agent.usage is not None and agent.usage.total_tokens == 60  # the execution's total
        assert api.hub.connects == 1
        for chat in chats.values():
            await chat.close()
        await api.close()
    assert sorted(server.unmatched) == sorted(app_load(s) for s in ("echo-chat", "code-chat", "agent-conc"))


# -- base-urls -----------------------------------------------------------------------------------

def test_both_base_url_forms_bad_keys_and_unknown_workflows():
    with replay("base-urls") as server:
        root = PipelitClient(KEY, base_url=server.origin)
        api = PipelitClient(KEY, base_url=server.origin + "/api/v1/")
        assert root.base_url == api.base_url == server.origin + "/api/v1"
        assert root.history("echo-chat", limit=5).messages == []
        assert api.workflow("echo-chat")["slug"] == "echo-chat"
        # A base URL that is neither form: the 404 names the URL tried and the forms expected.
        wrong = PipelitClient(KEY, base_url=server.origin + "/api")
        with pytest.raises(NotFoundError) as lost:
            wrong.workflow("echo-chat")
        text = str(lost.value)
        assert f"{server.origin}/api/workflows/echo-chat/ is not a pipelit API route" in text
        assert "http://localhost:8000" in text and "/api/v1" in text
        # Pipelit's own 404s are not about the base URL.
        with pytest.raises(NotFoundError) as missing:
            api.chat("no-such-wf", "hi")
        assert missing.value.message == "Workflow not found." and "route" not in str(missing.value)
        with pytest.raises(NotFoundError, match="Workflow not found"):
            api.clear_history("no-such-wf")
        bogus = PipelitClient("bogus-key", base_url=server.origin)
        with pytest.raises(AuthenticationError) as refused:
            bogus.workflow("echo-chat")
        assert refused.value.message == "Invalid or missing API key." and "bogus-key" not in str(refused.value)
        with pytest.raises(AuthenticationError, match="refused the token"):
            bogus.chat("echo-chat", "hi")  # the WebSocket refuses it at the handshake (403)
        for client in (root, api, wrong, bogus):
            client.close()
    assert server.unmatched == ["GET /api/workflows/echo-chat/"]
