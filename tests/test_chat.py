"""Conversations: the leaf, branches against the server's tree (M1..M5), stop, reopen."""

from __future__ import annotations

import asyncio
import threading

import pytest

from atomemo_notebook import AsyncChat, AsyncClient, Chat, Client
from atomemo_notebook.server import LocalServer

from .conftest import chat_of, ids, wait_until, wait_until_async


@pytest.fixture
def slow_server():
    with LocalServer(chunk_size=2, chunk_delay=0.02, node_delay=0, heartbeat_interval=0.5) as srv:
        yield srv


def test_ask_continues_from_the_leaf_and_branches_match_the_server(server, support):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(support), user_id="branches")
        m1 = chat.ask("M1").message_id
        m2 = chat.ask("M2").message_id
        assert chat.tree[m2].parent_id == m1 and chat.leaf_id == m2
        m3 = chat.ask("M3", parent_id=m1).message_id
        m4 = chat.ask("M4", parent_id=m2).message_id
        m5 = chat.regenerate(m4).message_id
        assert chat.leaf_id == m5
        server_view = {m.id: m.parent_id for m in client.get_messages(str(chat.conversation_id))}
        assert server_view == {m1: None, m2: m1, m3: m1, m4: m2, m5: m2}
        tree = chat.history()
        assert [m.id for m in tree.siblings(m4)] == [m4, m5]
        assert tree.sibling_index(m5) == 1 and tree.depth(m5) == 2
        assert [m.id for m in tree.path_to(m5)] == [m1, m2, m5]
        assert tree.children(m1)[1].id == m3
        assert tree[m5].query == "M4" and tree[m5].reply is not None
        edited = chat.edit(m2, "M2 edited")
        assert tree[edited.message_id].parent_id == m1
        assert [m.id for m in tree.siblings(m2)] == [m2, m3, edited.message_id]
        root_edit = chat.edit(m1, "M1 again")
        assert tree[root_edit.message_id].parent_id is None
        assert client.get_messages(str(chat.conversation_id))[-1].dialogue_count == 1


def test_five_lines_three_questions_a_regenerate_and_two_dataframes(server, support):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(support), user_id="five-lines")
        first, second, _third = (chat.ask(q) for q in ["Hello", "What does it cost?", "Thanks"])
        chat.regenerate(second.message_id)
        history, timeline = chat.history_df(), chat.timeline_df()
    assert len(history) == 4
    regen = history.iloc[-1]
    assert regen["parent_id"] == first.message_id and regen["sibling_index"] == 1
    assert regen["query_text"] == "What does it cost?" and regen["sibling_count"] == 2
    assert str(history["created_at"].dtype) == "datetime64[ns, UTC]" or "UTC" in str(history["created_at"].dtype)
    assert set(timeline["message_id"]) == {r.message_id for r in chat.replies}
    assert (timeline["kind"] == "node").sum() == 16
    assert set(timeline["node_name"]) == {"Chat Trigger", "Search help center", "Draft answer", "Reply"}
    assert "UTC" in str(timeline["started_at"].dtype)


def test_reopen_a_conversation_from_the_server(server, support):
    with Client(server.api_key, base_url=server.base_url) as client:
        first = chat_of(client, **ids(support), user_id="reopen")
        first.ask("one")
        last = first.ask("two")
        again = chat_of(client, **ids(support), user_id="reopen", conversation_id=first.conversation_id)
        assert len(again.tree) == 2 and again.leaf_id == last.message_id
        follow = again.ask("three")
        assert again.tree[follow.message_id].parent_id == last.message_id
        records = again.history_records()
        assert [r["dialogue_count"] for r in records] == [1, 2, 3]


def test_sync_stop_ends_the_answer_and_keeps_partial_text(slow_server, echo):
    query = "abcdefghij" * 40  # 200 chunks at 20 ms: about 4 s if not stopped
    with Client(slow_server.api_key, base_url=slow_server.base_url) as client:
        chat = chat_of(client, **ids(echo), user_id="stopper")
        result = {}

        def run() -> None:
            result["reply"] = chat.ask(query)

        worker = threading.Thread(target=run)
        worker.start()
        wait_until(lambda: chat.last_reply is not None and chat.last_reply.chunks >= 5, what="5 chunks")
        chat.stop()
        worker.join(10)
        assert not worker.is_alive()  # ask() returned: the blocked read was woken (speed: bench/)
        reply = result["reply"]
        assert reply.status == "stopped" and 0 < len(reply.text) < len(query)
        assert query.startswith(reply.text)
        assert reply.nodes[-1].status == "stopped" and reply.nodes[-1].finished == reply.finished
        history = chat.history()
        assert history[reply.message_id].reply is reply


async def test_async_stop_cancels_the_ask(slow_server, echo):
    query = "0123456789" * 40
    async with AsyncClient(slow_server.api_key, base_url=slow_server.base_url) as client:
        chat = chat_of(client, **ids(echo), user_id="async-stopper")
        task = asyncio.create_task(chat.ask(query))
        await wait_until_async(lambda: chat.last_reply is not None and chat.last_reply.chunks >= 5,
                               what="5 chunks")
        chat.stop()
        reply = await asyncio.wait_for(task, 10)
        assert reply.status == "stopped" and query.startswith(reply.text) and reply.text
        again = await chat.ask("after stop")  # the chat is still usable
        assert again.status == "succeeded" and again.text == "after stop"
        assert again.parent_id == reply.message_id


async def test_async_chat_branches_like_the_sync_one(server, support):
    async with AsyncClient(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(support), user_id="async-branches")
        first = await chat.ask("first")
        second = await chat.ask("second")
        regen = await chat.regenerate(second.message_id)
        await chat.history()
        assert chat.tree[regen.message_id].parent_id == first.message_id
        assert chat.tree.sibling_index(regen.message_id) == 1
        rows = chat.timeline_records()
        assert {r["message_id"] for r in rows} == {first.message_id, second.message_id, regen.message_id}


def test_errors_mark_the_reply_failed_and_raise(server, echo):
    from atomemo_notebook import TriggerInputsError

    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(echo), user_id="err", inputs={"bogus": 1})
        with pytest.raises(TriggerInputsError):
            chat.ask("x")
        assert chat.last_reply is not None and chat.last_reply.status == "failed"
        assert isinstance(chat.last_reply.error, TriggerInputsError)
        assert len(chat.tree) == 0
        chat.inputs = {}
        assert chat.ask("fine").status == "succeeded"


def test_regenerate_unknown_message_is_a_clear_key_error(server, support):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(support), user_id="unknown")
        with pytest.raises(KeyError, match="not in this conversation"):
            chat.regenerate("nope")


def test_after_stop_the_server_s_end_reconciles_status_and_answer(slow_server, echo):
    query = "reconcile " * 30
    with Client(slow_server.api_key, base_url=slow_server.base_url) as client:
        chat = Chat(client, **ids(echo), user_id="reconcile")
        worker = threading.Thread(target=lambda: chat.ask(query))
        worker.start()
        wait_until(lambda: chat.last_reply is not None and chat.last_reply.chunks >= 3, what="3 chunks")
        chat.stop()
        worker.join(10)
        reply = chat.last_reply
        assert reply is not None and reply.status == "stopped"
        (record,) = chat.history_records()
        assert record["status"] == "stopped" and record["answer"] == reply.text  # one vocabulary
        assert chat.running_on_server() == [reply.message_id]
        assert chat.follow(reply.message_id)  # the run went on on the server: wait for its end
        (record,) = chat.history_records()
        assert record["status"] == "succeeded" and record["answer"] == query
        assert chat.running_on_server() == []


async def test_a_conversation_reopened_mid_run_follows_it_to_its_end(slow_server, echo):
    async with AsyncClient(slow_server.api_key, base_url=slow_server.base_url) as client:
        first = AsyncChat(client, **ids(echo), user_id="mid-run")
        task = asyncio.create_task(first.ask("still running " * 20))
        await wait_until_async(lambda: first.last_reply is not None and first.last_reply.chunks >= 2,
                               what="2 chunks")
        reopened = AsyncChat(client, **ids(echo), user_id="mid-run", conversation_id=first.conversation_id)
        await reopened.history()
        (message,) = reopened.tree.messages()
        assert message.status == "answering"
        assert reopened.running_on_server() == [message.id]
        assert await reopened.follow(message.id)
        assert reopened.tree[message.id].status == "succeeded"
        assert reopened.tree[message.id].answer == "still running " * 20
        await task
