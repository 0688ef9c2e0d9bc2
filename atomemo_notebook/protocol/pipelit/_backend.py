"""Pipelit's backend, with no I/O: the workflow read as AppInfo, history's role/text items
paired into Messages, and Stop's cancel as a plan; the WebSocket that carries the events and
watches a stopped execution is the client's (transport/_pipelit.py). See protocol/backend.py."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from .._call import Custom, Open, Plan, just
from .._errors import AtomemoError, trim_paths
from .._system import Translate
from .._wire import Conversation, Event, FileRef, Message
from ..backend import AppInfo, BackendBase
from . import _calls as calls
from ._adapter import PipelitTranslator, answer_text
from .events import Name

__all__ = ["MAX_HISTORY", "PipelitBackend", "Watch", "cancelled_text", "late_text", "pipelit_app", "pipelit_thread"]

MAX_HISTORY = 10_000  # messages read back from one conversation


def pipelit_app(details: dict[str, Any], workflow: str) -> AppInfo:
    nodes = [d for d in details.get("nodes") or [] if isinstance(d, dict) and isinstance(d.get("node_id"), str)]
    names = {d["node_id"]: (str(d.get("label") or d["node_id"]), str(d.get("component_type") or ""))
             for d in nodes}
    description = details.get("description")
    return AppInfo(name=str(details.get("name") or workflow), version="",
                   description=description if isinstance(description, str) else None, node_names=names,
                   graph={"nodes": nodes, "edges": [e for e in details.get("edges") or [] if isinstance(e, dict)]})


def pipelit_thread(items: list[calls.HistoryItem], workflow: str,
                   asked: list[tuple[str, str]]) -> list[Message]:
    """History's messages as Messages, one thread, paired by turn: a user message and every
    assistant message up to the next user message (a tool turn stores "Let me check." before
    its answer, all stamped with the question's time); the answer is the last of them.
    History has no ids: a question this session asked keeps its execution id (matched newest
    first), the others get a stable one."""
    messages: list[Message] = []
    i = 0
    while i < len(items):
        item = items[i]
        if item.role != "user":
            i += 1  # assistant messages before any question (a page cut mid-turn): no turn to join
            continue
        j = i + 1
        while j < len(items) and items[j].role != "user":
            j += 1
        answers = items[i + 1:j]
        answer = answers[-1] if answers else None
        stable = hashlib.sha256(f"{len(messages)}|{item.timestamp}|{item.text}".encode()).hexdigest()[:16]
        messages.append(Message(id=f"pipelit-{stable}", status="succeeded" if answer else "failed",
                                query=item.text, answer=answer.text if answer else None, conversation_id=workflow,
                                created_at=item.timestamp, updated_at=answer.timestamp if answer else item.timestamp,
                                extra={"steps": [a.text for a in answers[:-1]]} if len(answers) > 1 else
                                ({} if answer else {"error": "no answer in the chat history"})))
        i = j
    unmatched = list(asked)
    for message in reversed(messages):
        hit = next((k for k in range(len(unmatched) - 1, -1, -1) if unmatched[k][0] == message.query), None)
        if hit is not None:
            message.id = unmatched.pop(hit)[1]
    parent: str | None = None
    for message in messages:
        message.parent_id, parent = parent, message.id
    return messages


def late_text(event: Event) -> str | None:
    """What a stopped execution did afterwards, said plainly (None: nothing worth saying)."""
    data = event.data.get("data") if isinstance(event.data, dict) else None
    data = data if isinstance(data, dict) else {}
    if event.event == Name.EXECUTION_COMPLETED:
        answer = answer_text(data.get("output"))
        return ("after Stop, Pipelit went on and the execution completed anyway (a cancel does not stop a node "
                f"already running); its output: {answer[:500]}")
    if event.event == Name.EXECUTION_FAILED:
        error = data.get("error")
        return f"after Stop, Pipelit went on and the execution failed: {trim_paths(str(error))[:500]}"
    return None


def cancelled_text(record: calls.Execution) -> str | None:
    """What the record read after a cancel says of an execution that had already ended."""
    if record.status == "completed":
        return ("the execution had already completed when Stop reached Pipelit: its output is "
                f"{answer_text(record.final_output)[:500]}")
    if record.status == "failed":
        return f"the execution had already failed when Stop reached Pipelit: {trim_paths(record.error_message)[:500]}"
    return None


def pipelit_text(query: str | FileRef) -> str:
    if isinstance(query, FileRef):
        raise ValueError("Pipelit's chat API takes text only: send the file's content or a link instead")
    return query


@dataclasses.dataclass(frozen=True)
class Watch(Custom):
    """Keep watching a stopped execution on the socket until it ends (or the client's
    execution_timeout), and tell `note` what `late_text` makes of its end (answered None)."""

    execution_id: str
    note: Callable[[str], None]


class PipelitBackend(BackendBase):
    """One workflow: one conversation per user, kept by Pipelit, read back paired by turn."""

    system = "pipelit"
    no_files = "Pipelit's chat API takes no files"

    def __init__(self, workflow: str, base_url: str) -> None:
        self.workflow, self.base_url = workflow, base_url
        self.asked: list[tuple[str, str]] = []  # (text, execution id) of this session's questions

    @classmethod
    def create(cls, base_url: str, where: Mapping[str, Any]) -> PipelitBackend:
        if not where.get("workflow"):
            raise ValueError("a Pipelit chat needs workflow=<the workflow's slug>")
        return cls(where["workflow"], base_url)

    def translator(self) -> Translate:
        return PipelitTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "workflow": self.workflow, "base_url": self.base_url}

    def app(self) -> Plan[AppInfo | None]:
        return pipelit_app((yield calls.workflow(self.workflow)), self.workflow)

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open:
        text = pipelit_text(query)
        return Open(calls.chat(self.workflow, text), topic=self.workflow, text=text,
                    opened=lambda execution_id: self.asked.append((text, execution_id)))

    def cancel(self, execution_id: str, note: Callable[[str], None]) -> Plan[None]:
        """Stop: watch what the execution does next, then ask Pipelit to cancel it."""
        yield Watch(execution_id, note)
        with contextlib.suppress(AtomemoError):
            yield calls.cancel(execution_id)
            # The record after the cancel is what the stopped turn knows (the cancel's answer
            # carries no output): an execution that had already ended says so at once.
            text = cancelled_text((yield calls.execution(execution_id)))
            if text is not None:
                note(text)

    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]:
        items: list[calls.HistoryItem] = []
        before: str | None = None
        while len(items) < MAX_HISTORY:  # `before` pages backwards, 100 at a time
            page: calls.History = yield calls.history(self.workflow, limit=100, before=before)
            items = page.messages + items
            oldest = page.messages[0].timestamp if page.messages else None
            if not page.has_more or oldest is None:
                break
            before = oldest.replace(tzinfo=None).isoformat()
        return pipelit_thread(items, self.workflow, self.asked)

    def conversations(self, user: str) -> Plan[list[Conversation]]:
        return just([Conversation(id=self.workflow, name=self.workflow)])  # one per user and workflow

    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]:
        return (yield from self.history(conversation_id, user))

    def clear(self, user: str) -> Plan[None]:
        yield calls.clear_history(self.workflow)
        self.asked.clear()
