"""SQLite persistence of the embedded server: apps, conversations, the message tree,
executions, node results, the event log for resume, and uploaded files.

Every write is all-or-nothing: one statement, or one `transaction()` that rolls back on
any error, so a failed write never leaves the connection inside an open transaction."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, trigger_id TEXT NOT NULL, user_id TEXT NOT NULL,
    name TEXT NOT NULL, inputs TEXT NOT NULL, started_at TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (app_id, trigger_id, user_id);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    conversation_id TEXT NOT NULL, parent_id TEXT, dialogue_count INTEGER NOT NULL,
    status TEXT NOT NULL, query TEXT NOT NULL, answer TEXT, execution_id TEXT,
    user_id TEXT NOT NULL, source TEXT, inputs TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, stream_ended REAL);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, seq);
-- What a POST asks of a conversation (how many siblings asked this before; which examples were
-- asked) is one index search, not a scan: an ask costs the same at 10 messages and at 100,000.
-- IF NOT EXISTS: a database file written before this index gets it when next opened.
CREATE INDEX IF NOT EXISTS messages_query ON messages (conversation_id, query, parent_id);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, message_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    trigger_id TEXT NOT NULL, app_version_id TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, finished_at TEXT);
CREATE TABLE IF NOT EXISTS node_results (
    id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, node_id TEXT NOT NULL, status TEXT NOT NULL,
    json_output TEXT, out_ports TEXT NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS events (
    message_id TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (message_id, seq));
CREATE TABLE IF NOT EXISTS files (
    res_key TEXT PRIMARY KEY, filename TEXT NOT NULL, mime_type TEXT NOT NULL,
    size INTEGER NOT NULL, content BLOB NOT NULL, created_at TEXT NOT NULL);
"""

MESSAGE_COLUMNS = (
    "id, conversation_id, parent_id, dialogue_count, status, query, answer, execution_id, "
    "user_id, source, inputs, created_at, updated_at"
)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message_wire(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "query": json.loads(row["query"]),
        "answer": row["answer"],
        "executionId": row["execution_id"],
        "dialogueCount": row["dialogue_count"],
        "userId": row["user_id"],
        "source": row["source"],
        "inputs": json.loads(row["inputs"]),
        "parentId": row["parent_id"],
        "conversationId": row["conversation_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _conversation_wire(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "appId": row["app_id"],
        "triggerId": row["trigger_id"],
        "userId": row["user_id"],
        "inputs": json.loads(row["inputs"]),
        "startedAt": row["started_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


class Store:
    """One connection, used from the server's event loop thread (and the test thread)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.recover_interrupted()

    def recover_interrupted(self) -> int:
        """A run cannot outlive its process: what was in flight when it stopped (a SIGKILL
        too) has failed, its messages and its executions alike. Returns the messages ended."""
        ts, now = now_iso(), time.time()
        with self.transaction() as db:
            ended = db.execute(
                "UPDATE messages SET status='failed', stream_ended=?, updated_at=? "
                "WHERE status IN ('querying','answering')", (now, ts)).rowcount
            db.execute("UPDATE executions SET status='failed', finished_at=? WHERE status='running'", (ts,))
        return int(ended)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN .. COMMIT, or ROLLBACK on any error (then re-raised)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # -- meta -------------------------------------------------------------------------
    def secret(self) -> bytes:
        """The signing key of upload tokens and download URLs: kept, so URLs survive restarts."""
        row = self._one("SELECT value FROM meta WHERE key='signing_secret'")
        if row is None:
            value = secrets.token_hex(32)
            self._write("INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_secret', ?)", (value,))
            row = self._one("SELECT value FROM meta WHERE key='signing_secret'")
        assert row is not None
        return bytes.fromhex(row["value"])

    # -- apps -------------------------------------------------------------------------
    def put_app(self, app: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO apps (id, body) VALUES (?, ?)", (app["id"], json.dumps(app)))

    def get_app(self, app_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT body FROM apps WHERE id=?", (app_id,))
        return None if row is None else dict(json.loads(row["body"]))

    # -- conversations ----------------------------------------------------------------
    def get_conversation(self, conv_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM conversations WHERE id=?", (conv_id,))
        return None if row is None else _conversation_wire(row)

    def list_conversations(self, app_id: str, trigger_id: str, user_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT * FROM conversations WHERE app_id=? AND trigger_id=? AND user_id=? "
            "ORDER BY created_at DESC, rowid DESC",
            (app_id, trigger_id, user_id),
        )
        return [_conversation_wire(r) for r in rows]

    def rename_conversation(self, conv_id: str, name: str) -> None:
        self._write("UPDATE conversations SET name=?, updated_at=? WHERE id=?", (name, now_iso(), conv_id))

    def delete_conversation(self, conv_id: str) -> None:
        """The conversation and everything under it, in one transaction."""
        with self.transaction() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM messages WHERE conversation_id=?", (conv_id,))]
            for table, column in (("events", "message_id"), ("executions", "message_id")):
                db.executemany(f"DELETE FROM {table} WHERE {column}=?", [(i,) for i in ids])
            db.execute("DELETE FROM node_results WHERE execution_id NOT IN (SELECT id FROM executions)")
            db.execute("DELETE FROM messages WHERE conversation_id=?", (conv_id,))
            db.execute("DELETE FROM conversations WHERE id=?", (conv_id,))

    # -- messages ---------------------------------------------------------------------
    def create_message_in(self, msg_id: str, conv_id: str | None, *, app_id: str, trigger_id: str,
                          user_id: str, name: str, parent_id: str | None, dialogue_count: int,
                          query: Any, source: str | None, inputs: dict[str, Any],
                          new_conversation_id: str | None = None) -> str:
        """The message, and its conversation when `conv_id` is None (with `new_conversation_id`
        when the client chose it, as OdysseyAI's do), in one transaction. Returns the conversation id."""
        ts = now_iso()
        with self.transaction() as db:
            if conv_id is None:
                conv_id = new_conversation_id or str(uuid.uuid4())
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (conv_id, app_id, trigger_id, user_id, name, json.dumps(inputs), ts, ts, ts))
            else:
                db.execute("UPDATE conversations SET inputs=?, updated_at=? WHERE id=?",
                           (json.dumps(inputs), ts, conv_id))
            db.execute(
                "INSERT INTO messages (id, conversation_id, parent_id, dialogue_count, status, query, "
                "answer, execution_id, user_id, source, inputs, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'querying', ?, NULL, NULL, ?, ?, ?, ?, ?)",
                (msg_id, conv_id, parent_id, dialogue_count, json.dumps(query), user_id, source,
                 json.dumps(inputs), ts, ts),
            )
        return conv_id

    def get_message(self, msg_id: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=?", (msg_id,))
        return None if row is None else _message_wire(row)

    def messages(self, conv_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id=? ORDER BY seq", (conv_id,)
        )
        return [_message_wire(r) for r in rows]

    def last_message(self, conv_id: str) -> dict[str, Any] | None:
        """The conversation's newest message (the parent of a system without branches): one
        row by the (conversation_id, seq) index, however long the conversation."""
        row = self._one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id=? "
                        "ORDER BY seq DESC LIMIT 1", (conv_id,))
        return None if row is None else _message_wire(row)

    def count_asked(self, conv_id: str, parent_id: str | None, query: Any) -> int:
        """How many messages under `parent_id` (None: the roots) asked `query` already.
        Queries are stored as json.dumps of the request's value, so the same value compares
        equal as text (a file reference's keys in the order its client sends them)."""
        row = self._one("SELECT COUNT(*) AS n FROM messages WHERE conversation_id=? AND query=? "
                        "AND parent_id IS ?", (conv_id, json.dumps(query), parent_id))
        return 0 if row is None else int(row["n"])

    def asked_among(self, conv_id: str, queries: Iterable[str]) -> set[str]:
        """Which of these text queries the conversation asked: one index search per query,
        never a read of the conversation."""
        wanted = {json.dumps(q): q for q in queries}
        if not wanted:
            return set()
        marks = ", ".join("?" * len(wanted))
        rows = self._all(f"SELECT DISTINCT query FROM messages WHERE conversation_id=? AND query IN ({marks})",
                         (conv_id, *wanted))
        return {wanted[r["query"]] for r in rows}

    def path_to(self, msg_id: str) -> list[dict[str, Any]]:
        """Root .. msg_id along parentId, as the tree endpoint returns it."""
        rows = self._all(
            "WITH RECURSIVE path(id, parent_id, depth) AS ("
            " SELECT id, parent_id, 0 FROM messages WHERE id=?"
            " UNION ALL SELECT m.id, m.parent_id, path.depth + 1"
            " FROM messages m JOIN path ON m.id = path.parent_id)"
            f" SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))}"
            " FROM path JOIN messages m ON m.id = path.id ORDER BY path.depth DESC",
            (msg_id,),
        )
        return [_message_wire(r) for r in rows]

    def start_answering(self, msg_id: str, execution: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET status='answering', execution_id=?, updated_at=? WHERE id=?",
                (execution["id"], now_iso(), msg_id),
            )
            db.execute(
                "INSERT INTO executions VALUES (?, ?, ?, ?, ?, 'running', ?, NULL)",
                (execution["id"], msg_id, execution["conversation_id"], execution["trigger_id"],
                 execution["app_version_id"], execution["created_at"]),
            )

    def finish_message(self, msg_id: str, *, status: str, answer: str | None,
                       execution_id: str | None, results: list[dict[str, Any]],
                       events: list[str]) -> None:
        """One transaction at the end of a run: message, execution, node results, event log."""
        ts = now_iso()
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET status=?, answer=?, updated_at=?, stream_ended=? WHERE id=?",
                (status, answer, ts, time.time(), msg_id),
            )
            if execution_id:
                db.execute("UPDATE executions SET status=?, finished_at=? WHERE id=?",
                           (status, ts, execution_id))
            db.executemany(
                "INSERT OR REPLACE INTO node_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r["id"], r["execution_id"], r["node_id"], r["status"], json.dumps(r["json_output"]),
                  json.dumps(r["out_ports"]), r["error"]) for r in results],
            )
            db.executemany("INSERT INTO events VALUES (?, ?, ?)",
                           [(msg_id, i, payload) for i, payload in enumerate(events)])

    def fail_message(self, msg_id: str, execution_id: str | None) -> None:
        """The last resort when a run's results cannot be stored: the message ends failed."""
        ts = now_iso()
        with self.transaction() as db:
            db.execute("UPDATE messages SET status='failed', updated_at=?, stream_ended=? WHERE id=?",
                       (ts, time.time(), msg_id))
            if execution_id:
                db.execute("UPDATE executions SET status='failed', finished_at=? WHERE id=?",
                           (ts, execution_id))

    def stream_ended(self, msg_id: str) -> float | None:
        row = self._one("SELECT stream_ended FROM messages WHERE id=?", (msg_id,))
        return None if row is None else row["stream_ended"]

    def events(self, msg_id: str) -> list[str]:
        rows = self._all("SELECT payload FROM events WHERE message_id=? ORDER BY seq", (msg_id,))
        return [r["payload"] for r in rows]

    def node_results(self, execution_id: str) -> list[dict[str, Any]]:
        rows = self._all("SELECT * FROM node_results WHERE execution_id=?", (execution_id,))
        return [dict(r) for r in rows]

    def execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM executions WHERE id=?", (execution_id,))
        return None if row is None else dict(row)

    # -- files ------------------------------------------------------------------------
    def put_file(self, res_key: str, filename: str, mime_type: str, content: bytes) -> None:
        self._write(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
            (res_key, filename, mime_type, len(content), content, now_iso()),
        )

    def get_file(self, res_key: str) -> tuple[str, str, bytes] | None:
        row = self._one("SELECT filename, mime_type, content FROM files WHERE res_key=?", (res_key,))
        return None if row is None else (row["filename"], row["mime_type"], bytes(row["content"]))
