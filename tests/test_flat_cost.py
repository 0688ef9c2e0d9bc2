"""The work of one ask does not grow with the conversation: counted, not timed.

What is counted: lines of this package's code run (on the server's thread and on the widget's
loop), SQLite virtual-machine steps and message rows the store converts per POST, and bytes
sent toward the browser. Each is compared between a short and a long conversation; an O(n)
step anywhere on the path (a scan, a walk of the tree, a rebuilt record per message) shows up
as thousands of extra lines or steps, whatever the machine's speed."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

import atomemo_notebook
from atomemo_notebook.server import LocalServer, _store
from atomemo_notebook.server._store import Store

PACKAGE = str(Path(atomemo_notebook.__file__).parent)
SHORT, LONG = 40, 3_000  # messages: both fill the widget's window of 20 turns


class Work:
    """Counts, while `on`: package lines run on the threads it traces, SQLite VM steps (in
    hundreds) of the server's store, and message rows the store turns into wire dicts."""

    def __init__(self) -> None:
        self.on = False
        self.lines = 0
        self.vm = 0
        self.rows = 0

    def tracer(self, frame: FrameType, event: str, arg: Any) -> Any:
        if not self.on or not frame.f_code.co_filename.startswith(PACKAGE):
            return None
        return self._line

    def _line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and self.on:
            self.lines += 1
        return self._line

    def _step(self) -> int:
        if self.on:
            self.vm += 1
        return 0  # 0: go on

    def reset(self) -> None:
        self.lines = self.vm = self.rows = 0


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[LocalServer, Work]]:
    """A server whose thread runs under the counting tracer (installed before it starts)."""
    work = Work()
    previous = threading.gettrace()
    threading.settrace(work.tracer)
    try:
        server = LocalServer(chunk_size=64, chunk_delay=0, node_delay=0, heartbeat_interval=60).start()
    finally:
        threading.settrace(previous)  # type: ignore[arg-type]
    store = server.asgi_app.state.emulator.store
    store._db.set_progress_handler(work._step, 100)
    wire = _store._message_wire

    def counted(row: sqlite3.Row) -> dict[str, Any]:
        if work.on:
            work.rows += 1
        return wire(row)

    _store._message_wire = counted  # type: ignore[assignment]
    try:
        yield server, work
    finally:
        _store._message_wire = wire  # type: ignore[assignment]
        server.close()


def grow(store: Store, conversation: str | None, count: int, *, app_id: str, trigger_id: str,
         user_id: str) -> tuple[str, str]:
    """Append `count` answered messages to a conversation (a new one when None), each the child
    of the one before, straight into the store; returns (conversation id, last message id)."""
    parent: str | None = None
    depth = 0
    if conversation is not None:
        last = store.last_message(conversation)
        parent, depth = (last["id"], int(last["dialogueCount"])) if last else (None, 0)
    for i in range(count):
        message_id = str(uuid.uuid4())
        conversation = store.create_message_in(
            message_id, conversation, app_id=app_id, trigger_id=trigger_id, user_id=user_id, name="grown",
            parent_id=parent, dialogue_count=depth + i + 1, query=f"question {i}", source="test", inputs={})
        store._write("UPDATE messages SET status='succeeded', answer=?, stream_ended=0 WHERE id=?",
                     (f"answer {i}", message_id))
        parent = message_id
    assert conversation is not None and parent is not None
    return conversation, parent


# -- the store ------------------------------------------------------------------------------

def test_an_existing_database_gets_the_new_index_when_opened(tmp_path):
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)  # the schema as it was, without messages_query, and a message in it
    old.executescript(_store.SCHEMA.replace(
        "CREATE INDEX IF NOT EXISTS messages_query ON messages (conversation_id, query, parent_id);", ""))
    assert "messages_query" not in {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
    old.execute("INSERT INTO messages (id, conversation_id, parent_id, dialogue_count, status, query, user_id, "
                "inputs, created_at, updated_at) VALUES ('m1', 'c1', NULL, 1, 'succeeded', '\"hi\"', 'u', '{}', "
                "'t', 't')")
    old.commit()
    old.close()
    store = Store(path)
    try:
        names = {r["name"] for r in store._all("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "messages_query" in names
        assert store.count_asked("c1", None, "hi") == 1
        plan = store._all("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM messages WHERE conversation_id=? AND query=? "
                          "AND parent_id IS ?", ("c1", '"hi"', None))
        assert "messages_query" in " ".join(str(r["detail"]) for r in plan)
    finally:
        store.close()


def test_what_a_post_asks_of_the_store_is_answered_exactly():
    store = Store()
    try:
        ids = {"app_id": "a", "trigger_id": "t", "user_id": "u"}
        conv, last = grow(store, None, 3, **ids)
        root = store.messages(conv)[0]["id"]
        assert store.last_message(conv)["id"] == last  # type: ignore[index]
        assert store.last_message("nowhere") is None
        assert store.count_asked(conv, None, "question 0") == 1  # the root, under no parent
        assert store.count_asked(conv, root, "question 1") == 1
        assert store.count_asked(conv, root, "question 2") == 0  # asked, but under another parent
        assert store.count_asked(conv, None, "question 1") == 0
        file_ref = {"__type__": "file_ref", "filename": "a.txt", "resKey": "k"}
        store.create_message_in("f1", conv, **ids, name="f", parent_id=last, dialogue_count=4, query=file_ref,
                                source=None, inputs={})
        assert store.count_asked(conv, last, dict(file_ref)) == 1
        assert store.asked_among(conv, ["question 2", "never asked", "question 0"]) == {"question 0", "question 2"}
        assert store.asked_among(conv, []) == set()
        assert store.asked_among("nowhere", ["question 0"]) == set()
    finally:
        store.close()


def _post(server: LocalServer, app: dict[str, str], conversation: str, parent: str, query: str) -> None:
    body = {"appId": app["app_id"], "triggerId": app["trigger_id"], "userId": "flat", "query": query,
            "conversationId": conversation, "parentId": parent}
    with httpx.stream("POST", f"{server.base_url}/chat/messages", json=body,
                      headers={"X-Api-Key": server.api_key}, timeout=30) as response:
        assert response.status_code == 200
        for _ in response.iter_lines():
            pass


def test_a_post_reads_as_much_of_a_long_conversation_as_of_a_short_one(traced):
    """The emulator's POST (a regenerate counts its earlier samples) on 10 and on 3,000 messages:
    the same rows converted, the same SQLite steps, the same lines run on the server."""
    server, work = traced
    store = server.asgi_app.state.emulator.store
    app = server.app("echo")
    counts = []
    for size in (10, LONG):
        conversation, last = grow(store, None, size, app_id=app["app_id"], trigger_id=app["trigger_id"],
                                  user_id="flat")
        parent = store.get_message(last)["parentId"]  # type: ignore[index]
        _post(server, app, conversation, parent, f"question {size - 1}")  # warm: a regenerate of the last
        work.reset()
        work.on = True
        _post(server, app, conversation, parent, f"question {size - 1}")  # the third sample
        work.on = False
        counts.append((work.rows, work.vm, work.lines))
        sample = [m for m in store.messages(conversation) if m["parentId"] == parent]
        assert len(sample) == 3
    (rows_short, vm_short, lines_short), (rows_long, vm_long, lines_long) = counts
    assert rows_long == rows_short <= 2  # the parent, looked up by id
    assert vm_long <= vm_short * 1.2 + 5, counts
    assert lines_long <= lines_short * 1.1 + 20, counts


def _system_chat(server: LocalServer, system: str) -> Any:
    from atomemo_notebook import connect

    if system == "dify":
        return connect("dify", api_key=server.app("support")["dify_api_key"], base_url=server.dify_base_url,
                       user_id="flat")
    if system == "odyssey":
        return connect("odyssey", api_key=server.odyssey_api_key, base_url=server.odyssey_base_url,
                       workspace_id=server.odyssey_workspace_id, agent_id="support", user_id="flat")
    return connect("pipelit", api_key=server.pipelit_api_key, base_url=server.pipelit_base_url, workflow="support")


@pytest.mark.parametrize("system", ["dify", "odyssey", "pipelit"])
def test_the_other_systems_posts_do_not_read_the_conversation(traced, system):
    """Dify, OdysseyAI and Pipelit continue from the conversation's last message (and Dify's and
    OdysseyAI's follow-up questions leave out examples already asked): one row and index
    searches, not the conversation, whether it holds 2 messages or 3,002."""
    server, work = traced
    store = server.asgi_app.state.emulator.store
    with _system_chat(server, system) as chat:
        chat.ask("What does it cost?")
        chat.ask("Where are my invoices?")
        conversation = store._one("SELECT conversation_id FROM messages ORDER BY seq DESC LIMIT 1")[0]
        counts = []
        for grown in (0, LONG):
            if grown:
                owner = store.get_conversation(conversation)
                grow(store, conversation, grown, app_id=owner["appId"], trigger_id=owner["triggerId"],
                     user_id=owner["userId"])
            work.reset()
            work.on = True
            reply = chat.ask("How do I rotate my API key?")
            work.on = False
            assert reply.status == "succeeded", reply.error
            counts.append((work.rows, work.vm, work.lines))
        messages = store.messages(conversation)
        assert messages[-1]["parentId"] == messages[-2]["id"]  # continued from the grown end
        assert messages[-1]["dialogueCount"] == len(messages)
    (rows_short, vm_short, lines_short), (rows_long, vm_long, lines_long) = counts
    assert rows_long <= rows_short + 1 and rows_long <= 4, counts
    assert vm_long <= vm_short * 1.2 + 5, counts
    assert lines_long <= lines_short * 1.2 + 50, counts
