"""The backend seam: one object per system that a Chat talks through, in the neutral terms
of the model (Message, Conversation, AppInfo, streams whose events the system's adapter
translates). Each system has a sync and an async flavour over its own client; the Chat, the
fold, the tree, the records and the views never learn which system spoke."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..protocol import neutral as n
from ..protocol.atomemo.adapter import translator as atomemo_translator
from ..protocol.atomemo.models import App
from ..protocol.dify.adapter import DifyTranslator
from ..protocol.errors import AtomemoError, trim_paths
from ..protocol.odyssey.adapter import OdysseyTranslator
from ..protocol.pipelit import calls as pipelit_calls
from ..protocol.pipelit.adapter import PipelitTranslator, answer_text
from ..protocol.pipelit.events import Name as PipelitName
from ..protocol.systems import SYSTEMS
from ..protocol.wire import Conversation, Event, FileRef, Message
from .client import AsyncClient, Client
from .dify import AsyncDifyClient, DifyClient
from .odyssey import AsyncOdysseyClient, OdysseyClient
from .pipelit import AsyncPipelitClient, PipelitClient
from .streams import AsyncEventStream, EventStream

__all__ = ["AppInfo", "AsyncBackend", "SyncBackend", "async_backend", "sync_backend"]

Translate = Callable[[Event], Sequence[n.Neutral]]
Upload = str | os.PathLike[str] | bytes


@dataclasses.dataclass
class AppInfo:
    """What the views show about the app, whatever the system."""

    name: str
    version: str = ""
    description: str | None = None
    emoji: str = ""
    color: str | None = None
    variables: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    examples: list[str] = dataclasses.field(default_factory=list)
    opening: str | None = None
    node_names: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    graph: dict[str, Any] | None = None  # nodes and edges, where the system publishes them


class SyncBackend(Protocol):
    system: str
    capabilities: n.Capabilities

    def translator(self) -> Translate: ...
    def coordinates(self) -> dict[str, Any]: ...
    def app(self) -> AppInfo | None: ...
    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> EventStream: ...
    def stop(self, task_id: str | None, user: str) -> None: ...
    def history(self, conversation_id: str, user: str) -> list[Message]: ...
    def conversations(self, user: str) -> list[Conversation]: ...
    def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]: ...
    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
               user: str) -> FileRef: ...
    def suggestions(self, message_id: str, user: str) -> list[str]: ...
    def clear(self, user: str) -> None: ...

    def release(self) -> None: ...


class AsyncBackend(Protocol):
    system: str
    capabilities: n.Capabilities

    def translator(self) -> Translate: ...
    def coordinates(self) -> dict[str, Any]: ...
    async def app(self) -> AppInfo | None: ...
    async def send(self, *, query: str | FileRef, user: str, conversation_id: str | None,
                   parent_id: str | None, inputs: dict[str, Any], source: str | None) -> AsyncEventStream: ...
    async def stop(self, task_id: str | None, user: str) -> None: ...
    async def history(self, conversation_id: str, user: str) -> list[Message]: ...
    async def conversations(self, user: str) -> list[Conversation]: ...
    async def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]: ...
    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef: ...
    async def suggestions(self, message_id: str, user: str) -> list[str]: ...
    async def clear(self, user: str) -> None: ...

    async def release(self) -> None: ...


# -- Atomemo ----------------------------------------------------------------------------------

ATOMEMO = SYSTEMS["atomemo"].capabilities


def atomemo_app(app: App) -> AppInfo:
    """Name, version and the chat trigger's variables and examples, read defensively from the
    app's snapshot (its shape is not public)."""
    version = app.active_version
    variables: list[dict[str, Any]] = []
    examples: list[str] = []
    graph: dict[str, Any] | None = None
    if version is not None and isinstance(version.snapshot, dict):
        nodes = version.snapshot.get("nodes")
        for node in (nodes.values() if isinstance(nodes, dict) else nodes or []):
            if isinstance(node, dict) and node.get("type") == "chat_trigger":
                data: dict[str, Any] = node["data"] if isinstance(node.get("data"), dict) else {}
                variables = [v for v in data.get("variables") or [] if isinstance(v, dict)]
                examples = [str(e)[:200] for e in data.get("examples") or [] if isinstance(e, str)][:6]
        graph = version.snapshot
    return AppInfo(name=app.name or app.id, version=version.name if version else "",
                   description=app.description, emoji=str((app.icon or {}).get("emoji", "")),
                   color=app.color, variables=variables, examples=examples,
                   node_names=version.node_names() if version else {}, graph=graph)


class AtomemoSync:
    system = "atomemo"
    capabilities = ATOMEMO

    def __init__(self, client: Client, app_id: str, trigger_id: str) -> None:
        self.client, self.app_id, self.trigger_id = client, app_id, trigger_id

    def translator(self) -> Translate:
        return atomemo_translator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "app_id": self.app_id, "trigger_id": self.trigger_id}

    def app(self) -> AppInfo | None:
        return atomemo_app(self.client.get_app(self.app_id))

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> EventStream:
        return self.client.send_message(app_id=self.app_id, trigger_id=self.trigger_id, query=query,
                                        user_id=user, conversation_id=conversation_id, parent_id=parent_id,
                                        inputs=inputs, source=source)

    def stop(self, task_id: str | None, user: str) -> None:
        return None  # Atomemo has no way to cancel a run: Stop only stops listening

    def history(self, conversation_id: str, user: str) -> list[Message]:
        return self.client.get_messages(conversation_id)

    def conversations(self, user: str) -> list[Conversation]:
        return self.client.list_conversations(app_id=self.app_id, trigger_id=self.trigger_id, user_id=user)

    def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        with contextlib.suppress(AtomemoError), self.client.resume_stream(message_id) as stream:
            for _ in stream:
                pass
        return self.client.get_messages(conversation_id, end_message_id=message_id, include_end=True)

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> FileRef:
        return self.client.upload_file(source, filename=filename, mime_type=mime_type)

    def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    def clear(self, user: str) -> None:
        raise ValueError("Atomemo keeps every conversation: start a new one instead of clearing")

    def release(self) -> None:
        return None  # nothing is held per chat: plain HTTP


class AtomemoAsync:
    system = "atomemo"
    capabilities = ATOMEMO

    def __init__(self, client: AsyncClient, app_id: str, trigger_id: str) -> None:
        self.client, self.app_id, self.trigger_id = client, app_id, trigger_id

    def translator(self) -> Translate:
        return atomemo_translator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "app_id": self.app_id, "trigger_id": self.trigger_id}

    async def app(self) -> AppInfo | None:
        return atomemo_app(await self.client.get_app(self.app_id))

    async def send(self, *, query: str | FileRef, user: str, conversation_id: str | None,
                   parent_id: str | None, inputs: dict[str, Any], source: str | None) -> AsyncEventStream:
        return await self.client.send_message(app_id=self.app_id, trigger_id=self.trigger_id, query=query,
                                              user_id=user, conversation_id=conversation_id,
                                              parent_id=parent_id, inputs=inputs, source=source)

    async def stop(self, task_id: str | None, user: str) -> None:
        return None

    async def history(self, conversation_id: str, user: str) -> list[Message]:
        return await self.client.get_messages(conversation_id)

    async def conversations(self, user: str) -> list[Conversation]:
        return await self.client.list_conversations(app_id=self.app_id, trigger_id=self.trigger_id,
                                                    user_id=user)

    async def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        with contextlib.suppress(AtomemoError):
            stream = await self.client.resume_stream(message_id)
            async with stream:
                async for _ in stream:
                    pass
        return await self.client.get_messages(conversation_id, end_message_id=message_id, include_end=True)

    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef:
        return await self.client.upload_file(source, filename=filename, mime_type=mime_type)

    async def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    async def clear(self, user: str) -> None:
        raise ValueError("Atomemo keeps every conversation: start a new one instead of clearing")

    async def release(self) -> None:
        return None


# -- Dify -------------------------------------------------------------------------------------

DIFY = SYSTEMS["dify"].capabilities

MAX_SUGGESTIONS = 5  # chips under an answer; a server may send any number
INPUT_TYPES = {"text-input": "string", "paragraph": "string", "select": "string", "number": "number"}


def dify_app(info: dict[str, Any], parameters: dict[str, Any]) -> AppInfo:
    variables: list[dict[str, Any]] = []
    for entry in parameters.get("user_input_form") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((kind, spec),) = entry.items()
        if isinstance(spec, dict) and kind in INPUT_TYPES and isinstance(spec.get("variable"), str):
            limit = spec.get("max_length")
            variables.append({"label": str(spec.get("label") or spec["variable"]),
                              "variable": spec["variable"], "type": INPUT_TYPES[kind],
                              "required": bool(spec.get("required")),
                              "maxLength": limit if isinstance(limit, int) else None,
                              "hidden": bool(spec.get("hide"))})
    examples = [str(q)[:200] for q in parameters.get("suggested_questions") or [] if isinstance(q, str)][:6]
    opening = parameters.get("opening_statement")
    return AppInfo(name=str(info.get("name") or "Dify app"), version=str(info.get("mode") or ""),
                   description=info.get("description") if isinstance(info.get("description"), str) else None,
                   variables=variables, examples=examples,
                   opening=opening if isinstance(opening, str) and opening else None)


def dify_thread(items: list[Message], user: str = "") -> list[Message]:
    """Dify's conversation is one thread: oldest first, each message the parent of the next
    (Dify's nil parent means just that), numbered in it, and the asking user's.

    `items`: pages oldest first, each in time order (calls.same_second_reversed); a stable sort
    keeps that order among messages of the same second."""
    ordered = sorted(items, key=lambda m: (m.created_at is None, m.created_at))
    ids = {m.id for m in ordered}
    parent: str | None = None
    for count, message in enumerate(ordered, 1):
        if message.parent_id not in ids:  # no parent named, or one outside the conversation
            message.parent_id = parent
        message.dialogue_count = count
        message.user_id = message.user_id or user
        parent = message.id
    return ordered


FOLLOW_DEADLINE = 600.0  # seconds follow() waits for a resumed run to end
FOLLOW_POLL = (0.5, 5.0)  # first and longest pause between two looks at the run


def dify_waits(messages: list[Message], message_id: str) -> str | None:
    """The run to watch when `message_id` is stored paused with its form answered (the run
    went on in the worker; only the run record says how it is doing)."""
    message = next((m for m in messages if m.id == message_id), None)
    return message.execution_id if message is not None and message.status == "answering" else None


def dify_suggests(parameters: dict[str, Any]) -> bool:
    setting = parameters.get("suggested_questions_after_answer")
    return isinstance(setting, dict) and setting.get("enabled") is True


def _dify_file(ref: dict[str, Any], source: Upload, filename: str | None, mime: str | None) -> FileRef:
    return FileRef(filename=str(ref.get("name") or filename or "file"),
                   extension=str(ref.get("extension") or ""),
                   mime_type=str(ref.get("mime_type") or mime or ""),
                   size=int(ref.get("size") or 0), res_key=str(ref.get("id") or ""), source="dify",
                   extra={"upload_file_id": ref.get("id")})


def _dify_query(query: str | FileRef) -> tuple[str, list[dict[str, Any]] | None]:
    """A Dify message is text with files beside it: a file on its own goes with a short text."""
    if isinstance(query, FileRef):
        kind = "image" if query.mime_type.startswith("image/") else "document"
        return (f"[file: {query.filename}]",
                [{"type": kind, "transfer_method": "local_file", "upload_file_id": query.res_key}])
    return query, None


class DifySync:
    system = "dify"
    capabilities = DIFY

    def __init__(self, client: DifyClient) -> None:
        self.client = client
        self.suggests = False  # the app's parameters say it suggests questions after an answer

    def translator(self) -> Translate:
        return DifyTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "base_url": self.client.base_url}

    def app(self) -> AppInfo | None:
        info, parameters = self.client.info(), self.client.parameters()
        self.suggests = dify_suggests(parameters)
        return dify_app(info, parameters)

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> EventStream:
        text, files = _dify_query(query)
        return self.client.chat_messages(query=text, user=user, inputs=inputs,
                                         conversation_id=conversation_id, files=files)

    def stop(self, task_id: str | None, user: str) -> None:
        if task_id:
            with contextlib.suppress(AtomemoError):
                self.client.stop(task_id, user)

    def history(self, conversation_id: str, user: str) -> list[Message]:
        items: list[Message] = []
        more, first = True, None
        while more and len(items) < 10_000:  # first_id pages backwards, 100 at a time
            page, more = self.client.messages(conversation_id, user, first_id=first, limit=100)
            if not page:
                break
            items = page + items
            first = page[0].id
        return dify_thread(items, user)

    def conversations(self, user: str) -> list[Conversation]:
        return list(self.client.conversations(user, limit=100)[0])

    def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        """The stored message; if its run paused and was resumed (stored `paused`, form answered),
        the run record is watched until the run ends (or FOLLOW_DEADLINE), then read again."""
        messages = self.history(conversation_id, user)
        run_id = dify_waits(messages, message_id)
        if run_id is None:
            return messages
        deadline, pause = time.monotonic() + FOLLOW_DEADLINE, FOLLOW_POLL[0]
        while time.monotonic() + pause < deadline and self.client.workflow_run(run_id).get("status") == "running":
            time.sleep(pause)
            pause = min(pause * 2, FOLLOW_POLL[1])
        return self.history(conversation_id, user)

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> FileRef:
        return _dify_file(self.client.upload(source, user, filename=filename, mime_type=mime_type), source,
                          filename, mime_type)

    def suggestions(self, message_id: str, user: str) -> list[str]:
        if not self.suggests:  # Dify answers 400 when the app has them off: not asked
            return []
        return self.client.suggested(message_id, user)[:MAX_SUGGESTIONS]

    def clear(self, user: str) -> None:
        raise ValueError("Dify keeps every conversation: start a new one instead of clearing")

    def release(self) -> None:
        return None  # nothing is held per chat: plain HTTP


class DifyAsync:
    system = "dify"
    capabilities = DIFY

    def __init__(self, client: AsyncDifyClient) -> None:
        self.client = client
        self.suggests = False

    def translator(self) -> Translate:
        return DifyTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "base_url": self.client.base_url}

    async def app(self) -> AppInfo | None:
        info, parameters = await self.client.info(), await self.client.parameters()
        self.suggests = dify_suggests(parameters)
        return dify_app(info, parameters)

    async def send(self, *, query: str | FileRef, user: str, conversation_id: str | None,
                   parent_id: str | None, inputs: dict[str, Any], source: str | None) -> AsyncEventStream:
        text, files = _dify_query(query)
        return await self.client.chat_messages(query=text, user=user, inputs=inputs,
                                               conversation_id=conversation_id, files=files)

    async def stop(self, task_id: str | None, user: str) -> None:
        if task_id:
            with contextlib.suppress(AtomemoError):
                await self.client.stop(task_id, user)

    async def history(self, conversation_id: str, user: str) -> list[Message]:
        items: list[Message] = []
        more, first = True, None
        while more and len(items) < 10_000:
            page, more = await self.client.messages(conversation_id, user, first_id=first, limit=100)
            if not page:
                break
            items = page + items
            first = page[0].id
        return dify_thread(items, user)

    async def conversations(self, user: str) -> list[Conversation]:
        return list((await self.client.conversations(user, limit=100))[0])

    async def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        messages = await self.history(conversation_id, user)
        run_id = dify_waits(messages, message_id)
        if run_id is None:
            return messages
        deadline, pause = time.monotonic() + FOLLOW_DEADLINE, FOLLOW_POLL[0]
        while time.monotonic() + pause < deadline and \
                (await self.client.workflow_run(run_id)).get("status") == "running":
            await asyncio.sleep(pause)
            pause = min(pause * 2, FOLLOW_POLL[1])
        return await self.history(conversation_id, user)

    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef:
        ref = await self.client.upload(source, user, filename=filename, mime_type=mime_type)
        return _dify_file(ref, source, filename, mime_type)

    async def suggestions(self, message_id: str, user: str) -> list[str]:
        if not self.suggests:
            return []
        return (await self.client.suggested(message_id, user))[:MAX_SUGGESTIONS]

    async def clear(self, user: str) -> None:
        raise ValueError("Dify keeps every conversation: start a new one instead of clearing")

    async def release(self) -> None:
        return None


# -- Pipelit ------------------------------------------------------------------------------------

PIPELIT = SYSTEMS["pipelit"].capabilities
MAX_HISTORY = 10_000  # messages read back from one conversation


def pipelit_app(details: dict[str, Any], workflow: str) -> AppInfo:
    nodes = [d for d in details.get("nodes") or [] if isinstance(d, dict) and isinstance(d.get("node_id"), str)]
    names = {d["node_id"]: (str(d.get("label") or d["node_id"]), str(d.get("component_type") or ""))
             for d in nodes}
    description = details.get("description")
    return AppInfo(name=str(details.get("name") or workflow), version="",
                   description=description if isinstance(description, str) else None, node_names=names,
                   graph={"nodes": nodes, "edges": [e for e in details.get("edges") or [] if isinstance(e, dict)]})


def pipelit_thread(items: list[pipelit_calls.HistoryItem], workflow: str,
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


class Stopped(Protocol):
    """What a backend's cancel needs of the stopped reply (the model's Reply; transport does not
    import the model)."""

    @property
    def execution_id(self) -> str | None: ...
    def note_after_end(self, text: str) -> None: ...


def _late_text(event: Event) -> str | None:
    """What a stopped execution did afterwards, said plainly (None: nothing worth saying)."""
    data = event.data.get("data") if isinstance(event.data, dict) else None
    data = data if isinstance(data, dict) else {}
    if event.event == PipelitName.EXECUTION_COMPLETED:
        answer = answer_text(data.get("output"))
        return ("after Stop, Pipelit went on and the execution completed anyway (a cancel does not stop a node "
                f"already running); its output: {answer[:500]}")
    if event.event == PipelitName.EXECUTION_FAILED:
        error = data.get("error")
        return f"after Stop, Pipelit went on and the execution failed: {trim_paths(str(error))[:500]}"
    return None


def watch_after_stop(client: PipelitClient | AsyncPipelitClient, execution_id: str,
                     note: Callable[[str], None]) -> None:
    """Keep watching a stopped execution until it ends (or the client's execution_timeout):
    Pipelit may run it on after the cancel, and that is said on the stopped turn, never taken
    for a success."""
    hub = client.hub

    def deliver(item: Event | BaseException) -> None:
        if isinstance(item, BaseException):
            hub.unwatch(watch)  # the socket is gone: nothing more will be learned this way
            return
        text = _late_text(item)
        if text is not None:
            hub.unwatch(watch)
            note(text)

    watch = hub.watch(execution_id, deliver)
    timer = threading.Timer(client.execution_timeout, hub.unwatch, (watch,))
    timer.daemon = True
    timer.start()


def _cancelled_text(record: pipelit_calls.Execution) -> str | None:
    if record.status == "completed":
        return ("the execution had already completed when Stop reached Pipelit: its output is "
                f"{answer_text(record.final_output)[:500]}")
    if record.status == "failed":
        return f"the execution had already failed when Stop reached Pipelit: {trim_paths(record.error_message)[:500]}"
    return None


def _pipelit_text(query: str | FileRef) -> str:
    if isinstance(query, FileRef):
        raise ValueError("Pipelit's chat API takes text only: send the file's content or a link instead")
    return query


class PipelitSync:
    system = "pipelit"
    capabilities = PIPELIT

    def __init__(self, client: PipelitClient, workflow: str) -> None:
        self.client, self.workflow = client, workflow
        self.asked: list[tuple[str, str]] = []  # (text, execution id) of this session's questions
        client.hold()

    def release(self) -> None:
        self.client.release()

    def translator(self) -> Translate:
        return PipelitTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "workflow": self.workflow, "base_url": self.client.base_url}

    def app(self) -> AppInfo | None:
        return pipelit_app(self.client.workflow(self.workflow), self.workflow)

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Any:
        text = _pipelit_text(query)
        stream = self.client.chat(self.workflow, text)
        self.asked.append((text, stream.execution_id))
        return stream

    def stop(self, task_id: str | None, user: str) -> None:
        return None  # Stop cancels through cancel(reply): the reply must hear what happens next

    def cancel(self, reply: Stopped) -> None:
        """Stop: watch what the execution does next, then ask Pipelit to cancel it."""
        execution_id = reply.execution_id
        if not execution_id:
            return  # the POST had not answered: there is nothing to cancel yet
        watch_after_stop(self.client, execution_id, reply.note_after_end)
        with contextlib.suppress(AtomemoError):
            self.client.cancel(execution_id)
            # The record after the cancel is what the stopped turn knows (the cancel's answer
            # carries no output): an execution that had already ended says so at once.
            text = _cancelled_text(self.client.execution(execution_id))
            if text is not None:
                reply.note_after_end(text)

    def history(self, conversation_id: str, user: str) -> list[Message]:
        items: list[pipelit_calls.HistoryItem] = []
        before: str | None = None
        while len(items) < MAX_HISTORY:  # `before` pages backwards, 100 at a time
            page = self.client.history(self.workflow, limit=100, before=before)
            items = page.messages + items
            oldest = page.messages[0].timestamp if page.messages else None
            if not page.has_more or oldest is None:
                break
            before = oldest.replace(tzinfo=None).isoformat()
        return pipelit_thread(items, self.workflow, self.asked)

    def conversations(self, user: str) -> list[Conversation]:
        return [Conversation(id=self.workflow, name=self.workflow)]  # one per user and workflow

    def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        return self.history(conversation_id, user)

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> FileRef:
        raise ValueError("Pipelit's chat API takes no files")

    def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    def clear(self, user: str) -> None:
        self.client.clear_history(self.workflow)
        self.asked.clear()


class PipelitAsync:
    system = "pipelit"
    capabilities = PIPELIT

    def __init__(self, client: AsyncPipelitClient, workflow: str) -> None:
        self.client, self.workflow = client, workflow
        self.asked: list[tuple[str, str]] = []
        client.hold()

    async def release(self) -> None:
        await self.client.release()

    def translator(self) -> Translate:
        return PipelitTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "workflow": self.workflow, "base_url": self.client.base_url}

    async def app(self) -> AppInfo | None:
        return pipelit_app(await self.client.workflow(self.workflow), self.workflow)

    async def send(self, *, query: str | FileRef, user: str, conversation_id: str | None,
                   parent_id: str | None, inputs: dict[str, Any], source: str | None) -> Any:
        text = _pipelit_text(query)
        stream = await self.client.chat(self.workflow, text)
        self.asked.append((text, stream.execution_id))
        return stream

    async def stop(self, task_id: str | None, user: str) -> None:
        return None

    async def cancel(self, reply: Stopped) -> None:
        """`PipelitSync.cancel`, awaited; what the execution does next is told in this loop."""
        execution_id = reply.execution_id
        if not execution_id:
            return
        loop = asyncio.get_running_loop()

        def note(text: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to tell
                loop.call_soon_threadsafe(reply.note_after_end, text)

        watch_after_stop(self.client, execution_id, note)
        with contextlib.suppress(AtomemoError):
            await self.client.cancel(execution_id)
            text = _cancelled_text(await self.client.execution(execution_id))
            if text is not None:
                reply.note_after_end(text)

    async def history(self, conversation_id: str, user: str) -> list[Message]:
        items: list[pipelit_calls.HistoryItem] = []
        before: str | None = None
        while len(items) < MAX_HISTORY:
            page = await self.client.history(self.workflow, limit=100, before=before)
            items = page.messages + items
            oldest = page.messages[0].timestamp if page.messages else None
            if not page.has_more or oldest is None:
                break
            before = oldest.replace(tzinfo=None).isoformat()
        return pipelit_thread(items, self.workflow, self.asked)

    async def conversations(self, user: str) -> list[Conversation]:
        return [Conversation(id=self.workflow, name=self.workflow)]

    async def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        return await self.history(conversation_id, user)

    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef:
        raise ValueError("Pipelit's chat API takes no files")

    async def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    async def clear(self, user: str) -> None:
        await self.client.clear_history(self.workflow)
        self.asked.clear()


# -- OdysseyAI ----------------------------------------------------------------------------------

ODYSSEY = SYSTEMS["odyssey"].capabilities


def _odyssey_text(query: str | FileRef) -> str:
    if isinstance(query, FileRef):
        raise ValueError("OdysseyAI's chat API takes text only: its agents read the workspace's documents")
    return query


def odyssey_app(agent_id: str | None, workspace_id: str) -> AppInfo:
    """OdysseyAI publishes no app description: the agent and workspace name the chat."""
    return AppInfo(name=agent_id or "OdysseyAI", version="", description=f"workspace {workspace_id}",
                   node_names={}, graph=None)


class _OdysseyBase:
    system = "odyssey"
    capabilities = ODYSSEY

    def __init__(self, client: Any, workspace_id: str, agent_id: str | None, memory: bool) -> None:
        self.client, self.workspace_id, self.agent_id, self.memory = client, workspace_id, agent_id, memory

    def translator(self) -> Translate:
        return OdysseyTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "workspace_id": self.workspace_id, "agent_id": self.agent_id,
                "memory": self.memory, "base_url": self.client.base_url}

    def _ask(self, query: str | FileRef, user: str, conversation_id: str | None) -> dict[str, Any]:
        return {"workspace_id": self.workspace_id, "conversation_id": conversation_id,
                "message": _odyssey_text(query), "user_id": user, "agent_id": self.agent_id, "memory": self.memory}


class OdysseySync(_OdysseyBase):
    """No history, conversation list or suggestions endpoint: what a chat knows of its
    conversation is what it asked this session; follow-ups come with each answer."""

    def app(self) -> AppInfo | None:
        return odyssey_app(self.agent_id, self.workspace_id)

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Any:
        return self.client.chat(**self._ask(query, user, conversation_id))

    def stop(self, task_id: str | None, user: str) -> None:
        return None  # no cancel in the API: Stop abandons the wait

    def history(self, conversation_id: str, user: str) -> list[Message]:
        return []

    def conversations(self, user: str) -> list[Conversation]:
        return []

    def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        return []

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> FileRef:
        raise ValueError("OdysseyAI's chat API takes no files")

    def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    def clear(self, user: str) -> None:
        raise ValueError("OdysseyAI's chat API cannot delete a conversation: start a new one instead")

    def release(self) -> None:
        return None


class OdysseyAsync(_OdysseyBase):
    async def app(self) -> AppInfo | None:
        return odyssey_app(self.agent_id, self.workspace_id)

    async def send(self, *, query: str | FileRef, user: str, conversation_id: str | None,
                   parent_id: str | None, inputs: dict[str, Any], source: str | None) -> Any:
        return await self.client.chat(**self._ask(query, user, conversation_id))

    async def stop(self, task_id: str | None, user: str) -> None:
        return None

    async def history(self, conversation_id: str, user: str) -> list[Message]:
        return []

    async def conversations(self, user: str) -> list[Conversation]:
        return []

    async def follow(self, message_id: str, conversation_id: str, user: str) -> list[Message]:
        return []

    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef:
        raise ValueError("OdysseyAI's chat API takes no files")

    async def suggestions(self, message_id: str, user: str) -> list[str]:
        return []

    async def clear(self, user: str) -> None:
        raise ValueError("OdysseyAI's chat API cannot delete a conversation: start a new one instead")

    async def release(self) -> None:
        return None



def _workspace(where: dict[str, Any]) -> str:
    if not where.get("workspace_id"):
        raise ValueError("an OdysseyAI chat needs workspace_id=<the workspace's id>")
    return str(where["workspace_id"])


def sync_backend(client: Any, **where: Any) -> SyncBackend:
    """The backend for a sync client of any system (Atomemo needs app_id and trigger_id)."""
    if isinstance(client, DifyClient):
        return DifySync(client)
    if isinstance(client, PipelitClient):
        if not where.get("workflow"):
            raise ValueError("a Pipelit chat needs workflow=<the workflow's slug>")
        return PipelitSync(client, where["workflow"])
    if isinstance(client, OdysseyClient):
        return OdysseySync(client, _workspace(where), where.get("agent_id"), where.get("memory", True))
    if isinstance(client, Client):
        return AtomemoSync(client, where["app_id"], where["trigger_id"])
    return client  # type: ignore[no-any-return]  # a backend already


def async_backend(client: Any, **where: Any) -> AsyncBackend:
    if isinstance(client, AsyncDifyClient):
        return DifyAsync(client)
    if isinstance(client, AsyncPipelitClient):
        if not where.get("workflow"):
            raise ValueError("a Pipelit chat needs workflow=<the workflow's slug>")
        return PipelitAsync(client, where["workflow"])
    if isinstance(client, AsyncOdysseyClient):
        return OdysseyAsync(client, _workspace(where), where.get("agent_id"), where.get("memory", True))
    if isinstance(client, AsyncClient):
        return AtomemoAsync(client, where["app_id"], where["trigger_id"])
    return client  # type: ignore[no-any-return]

