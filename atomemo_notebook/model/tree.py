"""The message tree of a conversation: what the server says, merged with what this session
saw stream by. Siblings are alternative answers (regenerate) or edited questions."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ..protocol._wire import FileRef, Message
from .reply import Reply

__all__ = ["MessageTree", "TreeMessage", "public_status"]


@dataclasses.dataclass
class TreeMessage:
    """One message of the tree: what the server stored, merged with this session's `reply`."""

    id: str
    parent_id: str | None
    conversation_id: str | None = None
    dialogue_count: int | None = None
    status: str = "querying"
    query: str | FileRef = ""
    answer: str | None = None
    execution_id: str | None = None
    user_id: str | None = None
    source: str | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    reply: Reply | None = dataclasses.field(default=None, repr=False)
    server_status: str | None = None  # the status the server last reported, if it did
    server_answer: str | None = None
    feedback: str | None = None  # like | dislike, as rated here or as the server keeps it

    def refresh_from_reply(self) -> None:
        """Fold what this session saw into the message. The statuses (docs/reference/limits-and-statuses.md):
        streaming while we receive it; stopped when we stopped listening, until the server
        reports how the run really ended, which then wins, answer included."""
        reply = self.reply
        if reply is None:
            return
        self.execution_id = reply.execution_id or self.execution_id
        if reply.done:
            if reply.status == "stopped" and self.server_status in ("succeeded", "failed") \
                    and not reply.stopped_on_server:
                self.status, self.answer = self.server_status, self.server_answer
                return
            # A reply that ended waiting for a person is only where the run paused: once the
            # server says it went on (or ended), its stored message is the truth, text included.
            if reply.status == "waiting" and self.server_status not in (None, "waiting"):
                self.status, self.answer = str(self.server_status), self.server_answer
                return
            self.status = public_status(reply)
        else:
            self.status = "streaming"
        self.answer = reply.text or self.answer


def public_status(reply: Reply) -> str:
    """A reply's status in the one vocabulary of views and records: a stream finished from
    stored history reports the stored status (its Reply.status is "recovered", and
    Reply.recovered_status says how it ended)."""
    if reply.status == "recovered":
        return reply.recovered_status or "succeeded"
    return reply.status


class MessageTree:
    """A conversation's messages by id, with each message's children (its siblings are the
    other versions made by regenerate or edit); `history_records` reads it."""

    def __init__(self) -> None:
        self._messages: dict[str, TreeMessage] = {}
        self._children: dict[str | None, list[str]] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._messages

    def __getitem__(self, message_id: str) -> TreeMessage:
        try:
            return self._messages[message_id]
        except KeyError:
            raise KeyError(f"message {message_id!r} is not in this conversation's tree") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.messages())

    def messages(self) -> list[TreeMessage]:
        """Every message, in the order they were created."""
        return list(self._messages.values())

    # -- building -----------------------------------------------------------------------
    def _link(self, message: TreeMessage) -> None:
        siblings = self._children.setdefault(message.parent_id, [])
        if message.id not in siblings:
            siblings.append(message.id)

    def add_server(self, message: Message) -> TreeMessage:
        """Merge one message as the server returned it; the server's fields win."""
        known = self._messages.get(message.id)
        node = known or TreeMessage(id=message.id, parent_id=message.parent_id)
        node.parent_id = message.parent_id
        node.conversation_id = message.conversation_id
        node.dialogue_count = message.dialogue_count
        node.status = node.server_status = message.status
        node.query = message.query
        node.answer = node.server_answer = message.answer
        node.execution_id = message.execution_id
        node.user_id = message.user_id
        node.source = message.source
        node.inputs = dict(message.inputs)
        node.created_at = message.created_at
        node.updated_at = message.updated_at
        node.feedback = message.feedback
        if known is None:
            self._messages[node.id] = node
        self._link(node)
        return node

    def add_reply(self, reply: Reply, *, user_id: str | None = None, source: str | None = None,
                  inputs: dict[str, Any] | None = None) -> TreeMessage:
        """Add (or update) the message a live reply answers, once its id is known."""
        if reply.message_id is None:
            raise ValueError("the reply has no message id yet")
        node = self._messages.get(reply.message_id)
        if node is None:
            parent = self._messages.get(reply.parent_id) if reply.parent_id else None
            node = TreeMessage(
                id=reply.message_id, parent_id=reply.parent_id,
                conversation_id=reply.conversation_id,
                dialogue_count=(parent.dialogue_count or self.depth(parent.id) + 1) + 1 if parent else 1,
                query=reply.query, user_id=user_id, source=source, inputs=dict(inputs or {}),
                created_at=reply.started_at,
            )
            self._messages[node.id] = node
            self._link(node)
        node.reply = reply
        node.refresh_from_reply()
        return node

    # -- reading ------------------------------------------------------------------------
    def parent(self, message_id: str) -> TreeMessage | None:
        parent_id = self[message_id].parent_id
        return self._messages.get(parent_id) if parent_id else None

    def children(self, message_id: str | None) -> list[TreeMessage]:
        """Children of a message; of None: the roots."""
        return [self._messages[i] for i in self._children.get(message_id, [])]

    def siblings(self, message_id: str) -> list[TreeMessage]:
        """The message and its alternatives (same parent), in creation order."""
        return self.children(self[message_id].parent_id)

    def sibling_index(self, message_id: str) -> int:
        return [m.id for m in self.siblings(message_id)].index(message_id)

    def path_to(self, message_id: str) -> list[TreeMessage]:
        """Root .. message, following parent ids."""
        path: list[TreeMessage] = []
        seen: set[str] = set()
        current: str | None = message_id
        while current is not None and current in self._messages and current not in seen:
            seen.add(current)
            path.append(self._messages[current])
            current = self._messages[current].parent_id
        return path[::-1]

    def path_tail(self, message_id: str, limit: int) -> tuple[list[TreeMessage], int]:
        """The last `limit` messages of the path root .. message, and the whole path's length,
        in O(limit): the rest of the length is read from the first message left out (its
        dialogue count is its depth + 1), walked only if the server did not say."""
        tail: list[TreeMessage] = []
        seen: set[str] = set()
        current: str | None = message_id
        while current is not None and current in self._messages and current not in seen and len(tail) < limit:
            seen.add(current)
            tail.append(self._messages[current])
            current = self._messages[current].parent_id
        tail.reverse()
        if current is None or current not in self._messages or current in seen:
            return tail, len(tail)
        top = self._messages[current]
        known = top.dialogue_count is not None and top.dialogue_count > 0
        above = top.dialogue_count if known and top.dialogue_count else len(self.path_to(current))
        return tail, len(tail) + above

    def depth(self, message_id: str) -> int:
        """0 for a root message."""
        return len(self.path_to(message_id)) - 1

    def latest_leaf(self, message_id: str | None = None) -> TreeMessage | None:
        """Follow the newest child from `message_id` (from the newest root if None) to a leaf.
        A loop, not recursion: a conversation may be 100,000 messages deep."""
        current = message_id
        seen: set[str | None] = set()
        while current not in seen:
            seen.add(current)
            kids = self._children.get(current)
            if not kids:
                break
            current = kids[-1]
        return self._messages.get(current) if current else None

    def depths(self) -> dict[str, int]:
        """Every message's depth in one O(n) pass, whatever order the messages arrived in."""
        out: dict[str, int] = {}
        for message_id in self._messages:
            chain: list[str] = []
            on_chain: set[str] = set()
            current: str | None = message_id
            while current is not None and current in self._messages and current not in out \
                    and current not in on_chain:
                chain.append(current)
                on_chain.add(current)
                current = self._messages[current].parent_id
            base = out[current] if current is not None and current in out else -1
            for offset, walked in enumerate(reversed(chain), 1):
                out[walked] = base + offset
        return out

    def sibling_indexes(self) -> dict[str, int]:
        return {child: i for kids in self._children.values() for i, child in enumerate(kids)}
