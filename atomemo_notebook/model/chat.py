"""Chat and AsyncChat: one conversation, remembered, with any system. `ask` continues from
the current leaf; `regenerate` and `edit` branch from the right parent (where the system can
branch); records come out flat.

A chat talks through its system's backend (plans with no I/O, protocol/<system>/backend.py),
run by a sync or an async driver (model/_backend.py); everything but waiting lives in
ChatBase; the two classes only run the stream and stop it, each in its own way."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol import _neutral as n
from ..protocol._call import Open, Pause, Plan
from ..protocol._errors import APIConnectionError, APITimeoutError, AtomemoError
from ..protocol._forms import check_answer
from ..protocol._limits import Limits
from ..protocol._wire import Conversation, Event, FileRef, Message
from ..protocol.backend import AppInfo, inputs_message
from ..transport import _watchdog as watchdog
from ..transport._client import AsyncHttp, SyncHttp
from ._backend import AsyncDriver, SyncDriver, backend_for
from ._compare import COMPARE_COLUMNS, compare_records
from ._records import (
    EVENT_COLUMNS,
    HISTORY_COLUMNS,
    SOURCE_COLUMNS,
    TIMELINE_COLUMNS,
    event_records,
    history_records,
    source_records,
    timeline_records,
    to_dataframe,
)
from ._replay import save_replies
from .reply import Reply
from .tree import MessageTree

if TYPE_CHECKING:
    import pandas as pd

    from ..transport._streams import AsyncStream, SyncStream

__all__ = ["LEAF", "AsyncChat", "Chat"]


STORE_DEADLINE = 600.0  # seconds a run answered without an event stream is watched for its end
RESPOND_DEADLINE = 600.0  # seconds a run may take, after its form is answered, to end or pause again
HOLD_BYTES = 32 * 1024  # of an answer (inflated) read before it is folded, at most (AsyncChat._exchange)

class _Leaf:
    def __repr__(self) -> str:
        return "LEAF"


LEAF: Any = _Leaf()  # "continue from the current leaf", the default parent of ask()
"""The default `parent_id` of `ask`: continue from the conversation's current leaf."""
IN_PROGRESS = frozenset({"querying", "answering"})
OnEvent = Callable[[Reply, Event], None]


def _too_long(seconds: float) -> str:
    return (f"the run did not end or pause again within {seconds:g} s of its form's answer "
            "(chat.respond_deadline); history() shows how it goes on")


class ChatBase:
    backend: SyncDriver | AsyncDriver
    _stopping: bool
    respond_deadline = RESPOND_DEADLINE  # seconds: see respond()

    def __init__(
        self,
        *,
        user_id: str,
        inputs: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        source: str | None = None,
    ) -> None:
        self.user_id = user_id
        self.inputs = dict(inputs or {})
        self.source = source
        self.conversation_id = conversation_id
        self.leaf_id: str | None = None
        self.tree = MessageTree()
        self.replies: list[Reply] = []
        self.app: AppInfo | None = None
        self._node_names: dict[str, tuple[str, str]] | None = None
        self._lock = threading.Lock()
        self.origin: dict[str, Any] = {"offline": False, "demo": None}  # set by connect()
        self.owns_client = False  # connect() built the client: close() closes it too
        self.closed = False
        # Views register here to follow every reply from its first moment.
        self.reply_listeners: list[Callable[[Reply], None]] = []

    def __repr__(self) -> str:
        demo = f", offline demo {self.origin['demo']!r}" if self.origin.get("offline") else ""
        return (f"{type(self).__name__}(system={self.system!r}{demo}, conversation_id={self.conversation_id!r}, "
                f"messages={len(self.tree)})")

    @property
    def system(self) -> str:
        return self.backend.system

    @property
    def capabilities(self) -> n.Capabilities:
        """What this system can do."""
        return self.backend.capabilities

    @property
    def app_id(self) -> str | None:
        return self.backend.coordinates().get("app_id")

    @property
    def trigger_id(self) -> str | None:
        return self.backend.coordinates().get("trigger_id")

    def select(self, message_id: str) -> str:
        """Make the newest leaf under `message_id` current (sibling navigation); returns it."""
        leaf = self.tree.latest_leaf(self.tree[message_id].id)
        self.leaf_id = leaf.id if leaf else message_id
        return self.leaf_id

    @property
    def last_reply(self) -> Reply | None:
        return self.replies[-1] if self.replies else None

    # -- decisions shared by sync and async ----------------------------------------------
    def _parent(self, parent_id: Any) -> str | None:
        parent = self.leaf_id if parent_id is LEAF else parent_id
        if not self.capabilities.branching and parent != self._thread_end():
            raise ValueError(self.capabilities.branching_reason or
                             f"{self.system} continues only from a conversation's last message")
        return parent

    def _thread_end(self) -> str | None:
        """A system without branches: the conversation's last message, the only valid parent."""
        leaf = self.tree.latest_leaf()
        return leaf.id if leaf else None

    def branch_point(self, message_id: str) -> tuple[str | None, str | FileRef]:
        """For regenerate/edit: the parent of `message_id`, and its query."""
        if not self.capabilities.branching:
            raise ValueError(self.capabilities.branching_reason or f"{self.system} cannot branch")
        message = self.tree[message_id]
        return message.parent_id, message.query

    def _start(self, query: str | FileRef, parent_id: str | None) -> Reply:
        if self.closed:
            raise ValueError("this chat is closed: connect() again to go on")
        reply = Reply(query, parent_id=parent_id, node_names=self._node_names,
                      translate=self.backend.translator(), memory=self._limits().reply_memory)
        reply.responder = self._responder
        with self._lock:
            self.replies.append(reply)
        for listener in list(self.reply_listeners):
            listener(reply)
        return reply

    def _run_inputs(self, inputs: dict[str, Any] | None, named: dict[str, Any]) -> dict[str, Any]:
        if not self.backend.plans.takes_inputs:
            raise ValueError(f"run() is for an app whose runs take inputs (connect(\"dify\", app_type=\"workflow\")); "
                             f"ask {self.system}'s app a question with ask()")
        return {**self.inputs, **(inputs or {}), **named}

    def _limits(self) -> Limits:
        return self.backend.client.limits

    def _let_go(self) -> None:
        """On close: the chat lets go of its replies (what they keep of the server's values goes
        with them, unless the caller holds a reply); the tree keeps each message's answer and status."""
        with self._lock:
            for message in self.tree.messages():
                message.refresh_from_reply()
                message.reply = None
            self.replies = []

    def _asked(self, reply: Reply, inputs: dict[str, Any] | None) -> Open:
        """The stream that answers `reply`, as the backend describes it (nothing opened yet)."""
        return self.backend.plans.send(query=reply.query, user=self.user_id, conversation_id=self.conversation_id,
                                       parent_id=reply.parent_id, inputs=self.inputs if inputs is None else inputs,
                                       source=self.source)

    def _apply_all(self, reply: Reply, events: list[Event], on_event: OnEvent | None,
                   inputs: dict[str, Any] | None, offset: float | None = None) -> None:
        if on_event is not None:
            for event in events:
                self._apply(reply, event, on_event, inputs)
            return
        start = self._name(reply, events, inputs)
        if start < len(events):
            reply.apply_all(events[start:] if start else events, offset)  # the rest in one go

    def _name(self, reply: Reply, events: list[Event], inputs: dict[str, Any] | None) -> int:
        """Apply `events` one by one until the message is named (the chat learns its
        conversation then); how many were applied."""
        start = 0
        while reply.message_id is None and start < len(events):
            self._apply(reply, events[start], None, inputs)
            start += 1
        return start

    def _apply(self, reply: Reply, event: Event, on_event: OnEvent | None,
               inputs: dict[str, Any] | None) -> None:
        known = reply.message_id is not None
        reply.apply(event)
        if not known and reply.message_id is not None:
            self.conversation_id = reply.conversation_id
            self.leaf_id = reply.message_id
            self.tree.add_reply(reply, user_id=self.user_id, source=self.source,
                                inputs=self.inputs if inputs is None else inputs)
        if on_event is not None:
            on_event(reply, event)

    def _finish(self, reply: Reply, status: str | None = None,
                error: BaseException | None = None, offset: float | None = None) -> None:
        reply.close(status, error, offset)
        if reply.message_id is not None:
            self.tree.add_reply(reply)
        app = self.app
        if app is not None and app.provisional and reply.app_name and reply.app_name != app.name:
            # Named now: the views show it from their next settle.
            self.app = dataclasses.replace(app, name=reply.app_name, provisional=False)

    def _forget(self) -> None:
        with self._lock:
            self.tree, self.replies, self.leaf_id = MessageTree(), [], None

    def _wants_suggestions(self, reply: Reply) -> bool:
        return bool(self.capabilities.suggestions and reply.status == "succeeded" and reply.message_id
                    and not reply.suggestions and not self._stopping)

    def _merge_history(self, messages: list[Message]) -> MessageTree:
        for message in messages:
            self.tree.add_server(message)
        for reply in self.replies:
            if reply.message_id is not None:
                self.tree.add_reply(reply)
        if self.leaf_id is None or self.leaf_id not in self.tree:
            leaf = self.tree.latest_leaf()
            self.leaf_id = leaf.id if leaf else None
        return self.tree

    def running_on_server(self, message_ids: Any = None) -> list[str]:
        """Messages the server last called in progress ('querying'/'answering') that this session
        is not streaming, or that it stopped listening to: their real end is still to come."""
        out = []
        for message in self.tree.messages():
            if message_ids is not None and message.id not in message_ids:
                continue
            reply = message.reply
            live_here = reply is not None and not reply.done
            stopped = reply is not None and reply.status == "stopped" and \
                message.server_status not in ("succeeded", "failed")
            if stopped or (not live_here and message.server_status in IN_PROGRESS):
                out.append(message.id)
        return out

    def _merge_final(self, message_id: str, messages: list[Message]) -> bool:
        """Fold the stored message in; True when the server says how it ended."""
        for message in messages:
            if message.id == message_id:
                self.tree.add_server(message)
                return message.status not in IN_PROGRESS
        return False

    def _responder(self, reply: Reply, action: str, inputs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _form_answer(self, reply: Reply, action: str, inputs: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The form's id and the inputs to send, checked against the form (ValueError: nothing sent)."""
        form = reply.pending_input
        if form is None or reply.message_id is None:
            raise ValueError("this reply waits on no form")
        if reply not in self.replies:
            raise ValueError("this reply is another chat's: answer it with reply.respond()")
        return form.form_id, check_answer(form, action, inputs)

    def _feedback(self, message_id: str, rating: str | None, comment: str | None) -> Plan[None]:
        """Rate an answer where the system takes it (capabilities.feedback); the history's
        `feedback` column says it."""
        if not self.capabilities.feedback:
            raise ValueError(self.capabilities.feedback_reason or f"{self.system} takes no rating of an answer")
        if rating not in ("like", "dislike", None):
            raise ValueError(f"rating must be 'like', 'dislike' or None (taken back), got {rating!r}")
        if message_id not in self.tree:
            raise ValueError(f"no message {message_id!r} in this conversation")
        yield from self.backend.plans.feedback(message_id, self.user_id, rating, comment)
        self.tree[message_id].feedback = rating

    def _reopened(self, message_id: str) -> tuple[Reply, Open]:
        """A fresh reply for a message the server says waits on a form (read from history), and
        the stream of its run's state that folds into it (its form included)."""
        if message_id not in self.tree:
            raise ValueError(f"no message {message_id!r} here (history() first)")
        message = self.tree[message_id]
        if message.status != "waiting" or not message.execution_id:
            raise ValueError(f"message {message_id!r} is not a run waiting on a form here (history() first)")
        if message.reply is not None and message.reply.pending_input is not None:
            raise ValueError("this message's reply already holds its form: reply.respond()")
        spec = self.backend.plans.run_state(message.execution_id, self.user_id)
        if spec is None:
            raise ValueError(f"{self.system} cannot reopen a paused run")
        reply = Reply(message.query, parent_id=message.parent_id, node_names=self._node_names,
                      translate=self.backend.translator(), memory=self._limits().reply_memory)
        reply.responder = self._responder
        with self._lock:
            self.replies.append(reply)
        message.reply = reply
        return reply, spec

    def _reopen(self, reply: Reply) -> None:
        """The form is answered: the reply streams again, and views follow it as a new one."""
        reply.reopen()
        for listener in list(self.reply_listeners):
            listener(reply)

    def _resumed_from_store(self, reply: Reply) -> Plan[None]:
        """No event stream of the run here (Dify 1.13.2's service API has none): the stored
        message, once the run has ended, ends the reply."""
        if reply.message_id is None:
            return
        deadline, pause = time.monotonic() + STORE_DEADLINE, 0.25
        # The stored message may still say "waiting" just after the answer went in: asked again.
        while not (yield from self._follow(reply.message_id)) or self.tree[reply.message_id].server_status == "waiting":
            if time.monotonic() + pause > deadline:
                raise APIConnectionError(f"the run of message {reply.message_id} did not end within "
                                         f"{STORE_DEADLINE:g} s of its form's answer; history() shows it once it does")
            yield Pause(pause)
            pause = min(pause * 2, 5.0)
        if reply.message_id in self.tree:
            message = self.tree[reply.message_id]
            reply.fold(n.Recovered(message.server_status or "succeeded", message.server_answer or message.answer),
                       reply.elapsed())

    def _set_app(self, app: AppInfo | None) -> None:
        self.app = app
        self._node_names = app.node_names if app else {}

    # -- the chat's own plans: the backend's, and what the chat makes of their answers; the
    # -- driver runs them (sync or async), so each is written once --------------------------
    def _load_app(self) -> Plan[AppInfo | None]:
        if self.app is None:
            with contextlib.suppress(AtomemoError):  # failure is not fatal: names stay raw
                self._set_app((yield from self.backend.plans.app()))
        return self.app

    def _history(self) -> Plan[MessageTree]:
        if self.conversation_id is not None:
            self._merge_history((yield from self.backend.plans.history(self.conversation_id, self.user_id)))
        return self.tree

    def _follow(self, message_id: str) -> Plan[bool]:
        conversation_id = self.tree[message_id].conversation_id or self.conversation_id
        if conversation_id is None:
            return False
        return self._merge_final(message_id, (yield from self.backend.plans.follow(message_id, conversation_id,
                                                                                    self.user_id)))

    def _clear(self) -> Plan[None]:
        yield from self.backend.plans.clear(self.user_id)
        self._forget()

    def _suggest(self, reply: Reply) -> Plan[None]:
        """The questions suggested after an answer, folded in before the reply closes (views
        draw them with the end); a failure leaves the answer without them."""
        if self._wants_suggestions(reply):
            with contextlib.suppress(AtomemoError):
                questions = yield from self.backend.plans.suggestions(str(reply.message_id), self.user_id)
                reply.fold(n.Suggestions(tuple(questions)), reply.elapsed())

    # -- records ------------------------------------------------------------------------
    def history_records(self) -> list[dict[str, Any]]:
        """One flat dict per message (see HISTORY_COLUMNS); call history() first to load all."""
        return history_records(self.tree)

    def timeline_records(self) -> list[dict[str, Any]]:
        """One row per node run and per tool call of the replies this session streamed."""
        return timeline_records(self.replies)

    def event_records(self) -> list[dict[str, Any]]:
        return event_records(self.replies)

    def _reply_and_answer(self, message_id: str) -> tuple[Reply | None, str]:
        if message_id not in self.tree:
            raise KeyError(f"no message {message_id!r} in this conversation")
        message = self.tree[message_id]
        reply = message.reply or next((r for r in reversed(self.replies) if r.message_id == message_id), None)
        return reply, (reply.text if reply is not None else message.answer or "")

    def compare_records(self, a: str, b: str) -> list[dict[str, Any]]:
        """Two replies side by side (by message id): the answers, then their node runs aligned
        (a node's k-th run beside its k-th run; runs in only one shown as `a only` / `b only`)."""
        reply_a, text_a = self._reply_and_answer(a)
        reply_b, text_b = self._reply_and_answer(b)
        return compare_records(text_a, reply_a, text_b, reply_b)

    def compare(self, a: str, b: str) -> pd.DataFrame:
        """`compare_records` as a DataFrame: what the widget's Compare view shows."""
        return to_dataframe(self.compare_records(a, b), COMPARE_COLUMNS)

    def source_records(self) -> list[dict[str, Any]]:
        """One row per source each answer cites (numbered as under the answer)."""
        return source_records(self.replies)

    def history_df(self) -> pd.DataFrame:
        return to_dataframe(self.history_records(), HISTORY_COLUMNS)

    def timeline_df(self) -> pd.DataFrame:
        return to_dataframe(self.timeline_records(), TIMELINE_COLUMNS)

    def events_df(self) -> pd.DataFrame:
        return to_dataframe(self.event_records(), EVENT_COLUMNS)

    def sources_df(self) -> pd.DataFrame:
        return to_dataframe(self.source_records(), SOURCE_COLUMNS)

    def save_events(self, path: str | Path) -> Path:
        """Save every reply's raw events (with arrival offsets) as JSON Lines; no key inside."""
        return save_replies(path, self.replies, **self.backend.coordinates(),
                            conversation_id=self.conversation_id,
                            app_name=self.app.name if self.app else None,
                            node_names={k: list(v) for k, v in (self._node_names or {}).items()})

    def export_spans(self, endpoint: str | None = None, **options: Any) -> int:
        """Every reply this session streamed as OpenTelemetry spans, one trace per run, sent over
        OTLP/HTTP to Phoenix, Langfuse, Jaeger... (see `export_spans`; the key never goes)."""
        from ._spans import export_spans  # spans reads chats: imported here, not at the top

        return export_spans(self, endpoint=endpoint, **options)


class Chat(ChatBase):
    """A conversation over the sync `Client`. `ask` blocks until the answer is complete;
    `stop()` (from another thread) ends it within milliseconds, keeping the partial text.

    A Chat may be asked from several threads: the asks take turns (one conversation is one
    line of messages, each continuing the one before), and each `ask` returns the Reply it
    started, never another thread's. `stop()` stops the ask running at that moment. An
    `on_event` callback must not ask the same Chat again (it would wait for itself)."""

    backend: SyncDriver

    def __init__(self, client: SyncHttp | SyncDriver, *, app_id: str | None = None, trigger_id: str | None = None,
                 workflow: str | None = None, workspace_id: str | None = None, agent_id: str | None = None,
                 web_app_code: str | None = None,
                 memory: bool = True, app_type: str | None = None, **kwargs: Any) -> None:
        """`client`: a sync client of any system (Atomemo's needs app_id and trigger_id,
        Pipelit's a workflow, OdysseyAI's a workspace_id and maybe an agent_id, Dify's app_type
        "workflow" for a workflow app and maybe a web_app_code), or another chat's driver
        (`chat.backend`). `connect()` builds one for you."""
        super().__init__(**kwargs)
        self.backend = client if isinstance(client, SyncDriver) else SyncDriver(backend_for(client, {
            "app_id": app_id, "trigger_id": trigger_id, "workflow": workflow, "workspace_id": workspace_id,
            "agent_id": agent_id, "memory": memory, "app_type": app_type, "web_app_code": web_app_code}), client)
        self._stream: SyncStream | None = None
        self._stopping = False
        self._turn = threading.Lock()  # held by the ask streaming now: asks from several threads take turns

    @property
    def client(self) -> SyncHttp:
        return self.backend.client

    def close(self) -> None:
        """Done with this chat: a WebSocket it shares closes with the last chat on it, a
        client that connect() built for it is closed, and the chat lets go of its replies (the
        tree keeps each message's answer and status; a Reply you hold stays whole). Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._let_go()
        self.backend.release()
        if self.owns_client:
            self.client.close()

    def __enter__(self) -> Chat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_app(self) -> AppInfo | None:
        """Fetch the app once, for names in the timeline and the views. Failure is not fatal."""
        return self.backend.run(self._load_app())

    def history(self) -> MessageTree:
        """Load the whole tree from the server and merge what this session saw."""
        return self.backend.run(self._history())

    def conversations(self) -> list[Conversation]:
        """This user's past conversations with the app, newest first."""
        return self.backend.run(self.backend.plans.conversations(self.user_id))

    def follow(self, message_id: str) -> bool:
        """Wait for a message the server is still answering (one reopened mid-run, or one we
        stopped listening to) to end, quietly, then fold the stored message in: its status and
        whole answer replace what we saw. True when the server reported the end."""
        return self.backend.run(self._follow(message_id))

    def ask(self, query: str | FileRef, *, parent_id: Any = LEAF, inputs: dict[str, Any] | None = None,
            on_event: OnEvent | None = None) -> Reply:
        """Send `query` as a child of `parent_id` (default: the current leaf) and stream the reply."""
        started: list[Reply] = []
        for _ in self._stream_turn(query, parent_id, inputs, on_event, started.append):
            pass
        return started[0]  # this ask's own: last_reply may already be another thread's

    def run(self, inputs: dict[str, Any] | None = None, *, on_event: OnEvent | None = None,
            **named: Any) -> Reply:
        """A run of a workflow app (connect("dify", app_type="workflow")): `inputs` and the named
        ones over the chat's. Its inputs are the turn's message; its outputs, `reply.outputs`."""
        given = self._run_inputs(inputs, named)
        return self.ask(inputs_message(given), inputs=given, on_event=on_event)

    def stream(self, query: str | FileRef, *, parent_id: Any = LEAF,
               inputs: dict[str, Any] | None = None, on_event: OnEvent | None = None) -> Iterator[Event]:
        """Like ask(), but yields each event as it is folded into `last_reply`."""
        return self._stream_turn(query, parent_id, inputs, on_event, None)

    def _stream_turn(self, query: str | FileRef, parent_id: Any, inputs: dict[str, Any] | None,
                     on_event: OnEvent | None, started: Callable[[Reply], None] | None) -> Iterator[Event]:
        with self._turn:  # released when the stream ends, however it ends (a dropped generator too)
            yield from self._stream_one(query, parent_id, inputs, on_event, started)

    def _stream_one(self, query: str | FileRef, parent_id: Any, inputs: dict[str, Any] | None,
                    on_event: OnEvent | None, started: Callable[[Reply], None] | None) -> Iterator[Event]:
        if self.app is None:  # once it is known, not a plan run per ask
            self.load_app()
        reply = self._start(query, self._parent(parent_id))
        if started is not None:
            started(reply)
        self._stopping = False
        try:
            self._stream = self.backend.open(self._asked(reply, inputs))
            with self._stream as events:
                for event in events:
                    self._apply(reply, event, on_event, inputs)
                    yield event
                    if self._stopping:
                        break
            if self._wants_suggestions(reply):
                self.backend.run(self._suggest(reply))
        except Exception as exc:
            if not self._stopping:
                self._finish(reply, "failed", exc)
                raise
        finally:
            self._stream = None
            self._finish(reply, "stopped" if self._stopping else None)

    def respond(self, reply: Reply, action: str, **inputs: Any) -> Reply:
        """Answer the form `reply` waits on (`reply.pending_input`): the kernel sends `action`
        and `inputs`, then the run's further events fold into the same reply (the timeline keeps
        the pause). Returns when the run has ended, or paused again."""
        form_id, answer = self._form_answer(reply, action, inputs)
        with self._turn:
            # The run's event stream first, then the answer, as Dify's own web app does: what the
            # run says as soon as it goes on is in the stream (None: the server has no such stream).
            opened = self.backend.run_events(str(reply.execution_id), self.user_id)
            try:
                self.backend.run(self.backend.plans.answer_form(form_id, action, answer, self.user_id))
            except BaseException:
                if opened is not None:
                    opened.close()
                raise  # refused: the turn still waits, as it was
            self._reopen(reply)
            try:
                if opened is None:
                    self.backend.run(self._resumed_from_store(reply))
                else:
                    with opened as events:
                        # A deadline on the whole: keep-alives alone keep a stream's idle timer happy.
                        watch = watchdog.watch(time.monotonic() + self.respond_deadline, events.close)
                        try:
                            for event in events:
                                self._apply(reply, event, None, None)
                        finally:
                            watch.cancel()
                        if watch.expired and not reply.done and reply.status == "streaming":
                            raise APITimeoutError(_too_long(self.respond_deadline))
            except Exception as exc:
                self._finish(reply, "failed", exc)
                raise
            finally:
                self._finish(reply)
        return reply

    def _responder(self, reply: Reply, action: str, inputs: dict[str, Any]) -> Any:
        return self.respond(reply, action, **inputs)

    def reopen(self, message_id: str) -> Reply:
        """A run that waits on a form, read from history (another session asked it): its state
        replayed from the server into a reply whose `pending_input` can be answered."""
        reply, spec = self._reopened(message_id)
        try:
            with self.backend.open(spec) as events:
                for event in events:
                    reply.apply(event)
        finally:
            reply.close()
        return reply

    def feedback(self, message_id: str, rating: str | None, comment: str | None = None) -> None:
        """Rate the answer `message_id`: "like", "dislike", or None to take the rating back,
        with an optional comment, where the system takes it (`capabilities.feedback`)."""
        self.backend.run(self._feedback(message_id, rating, comment))

    def regenerate(self, message_id: str, **kwargs: Any) -> Reply:
        """A new answer to `message_id`'s query: a sibling of it, under the same parent."""
        parent_id, query = self.branch_point(message_id)
        return self.ask(query, parent_id=parent_id, **kwargs)

    def edit(self, message_id: str, new_query: str | FileRef, **kwargs: Any) -> Reply:
        """Ask `new_query` in place of `message_id`'s: a sibling under the same parent."""
        parent_id, _ = self.branch_point(message_id)
        return self.ask(new_query, parent_id=parent_id, **kwargs)

    def clear(self) -> None:
        """Delete the conversation on the server, for a system with only one (Pipelit); the
        chat starts empty."""
        self.backend.run(self._clear())

    def stop(self) -> None:
        """Stop the answer being streamed, from any thread (and the run, where the system can)."""
        self._stopping = True
        stream = self._stream
        if stream is not None:
            stream.close()
        reply = self.last_reply
        if reply is not None and self.capabilities.stop == "server":
            reply.stopped_on_server = True  # the run ends too: a stored "normal" later is its partial text
            self.backend.stop(reply.task_id, self.user_id)
        elif reply is not None and self.capabilities.cancel:
            # Asked to cancel, without the server's word that the run ends (Pipelit): the
            # backend watches on and says on this reply what the run did afterwards.
            self.backend.cancel(reply)


class AsyncChat(ChatBase):
    """A conversation over `AsyncClient`; `stop()` cancels the running ask. Use it from the
    one event loop it runs on (not from other threads: `Chat` is the one for threads); each
    `ask` returns the Reply it started."""

    backend: AsyncDriver

    def __init__(self, client: AsyncHttp | AsyncDriver, *, app_id: str | None = None, trigger_id: str | None = None,
                 workflow: str | None = None, workspace_id: str | None = None, agent_id: str | None = None,
                 web_app_code: str | None = None,
                 memory: bool = True, app_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = client if isinstance(client, AsyncDriver) else AsyncDriver(backend_for(client, {
            "app_id": app_id, "trigger_id": trigger_id, "workflow": workflow, "workspace_id": workspace_id,
            "agent_id": agent_id, "memory": memory, "app_type": app_type, "web_app_code": web_app_code}), client)
        self._task: asyncio.Task[Any] | None = None
        self._cancels: set[asyncio.Task[Any]] = set()  # cancels sent by stop(), until they finish
        self._stopping = False

    @property
    def client(self) -> AsyncHttp:
        return self.backend.client

    async def close(self) -> None:
        """`Chat.close`, awaited."""
        if self.closed:
            return
        self.closed = True
        self._let_go()
        await self.backend.release()
        if self.owns_client:
            await self.client.close()

    async def __aenter__(self) -> AsyncChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def load_app(self) -> AppInfo | None:
        return await self.backend.run(self._load_app())

    async def history(self) -> MessageTree:
        return await self.backend.run(self._history())

    async def conversations(self) -> list[Conversation]:
        return await self.backend.run(self.backend.plans.conversations(self.user_id))

    def fresh(self, conversation_id: str | None = None) -> AsyncChat:
        """Another conversation with the same app, user and inputs (a new one, or one to reopen)."""
        chat = AsyncChat(self.backend, user_id=self.user_id, inputs=self.inputs, source=self.source,
                         conversation_id=conversation_id)
        chat.origin = self.origin
        chat.app, chat._node_names = self.app, self._node_names
        return chat

    async def follow(self, message_id: str) -> bool:
        """`Chat.follow`, awaited."""
        return await self.backend.run(self._follow(message_id))

    async def run(self, inputs: dict[str, Any] | None = None, *, on_event: OnEvent | None = None,
                  **named: Any) -> Reply:
        """`Chat.run`, awaited."""
        given = self._run_inputs(inputs, named)
        return await self.ask(inputs_message(given), inputs=given, on_event=on_event)

    async def ask(self, query: str | FileRef, *, parent_id: Any = LEAF,
                  inputs: dict[str, Any] | None = None, on_event: OnEvent | None = None) -> Reply:
        reply, _ = await self._exchange(query, parent_id, inputs, on_event, hold=False)
        return reply

    async def _exchange(self, query: str | FileRef, parent_id: Any, inputs: dict[str, Any] | None,
                        on_event: OnEvent | None, *, hold: bool) -> tuple[Reply, Callable[[], None] | None]:
        """`ask`. With `hold`, the answer is read to its end (its connection let go) before most
        of it is folded: what arrives after the message is named is kept with its arrival time,
        and the callable returned folds it and ends the reply, at the times the events arrived
        and the stream ended. evaluate() folds a row so while the next row's request is out: at
        concurrency 1 the client is otherwise idle then. Only a plain ask holds (no listener, no
        suggestions asked for next), over a stream that counts what it read, and only within
        HOLD_BYTES: past them, what was held is folded at once and the rest as it arrives. None
        instead of the callable: the reply is folded and ended."""
        if self.app is None:  # once it is known, not a plan run per ask
            await self.load_app()
        reply = self._start(query, self._parent(parent_id))
        self._stopping = False
        self._task = asyncio.current_task()
        stream: AsyncStream | None = None
        ended = False
        held: list[tuple[list[Event], float]] | None = None
        ended_at = 0.0
        try:
            stream = await self.backend.open(self._asked(reply, inputs))
            if hold and on_event is None and not self.reply_listeners and not self.capabilities.suggestions \
                    and stream.received is not None:
                held = []
            async for batch in stream.batches():  # what arrived together, folded in one go
                if held is None:
                    self._apply_all(reply, batch, on_event, inputs)
                    continue
                start = self._name(reply, batch, inputs) if reply.message_id is None else 0
                if (stream.received or 0) <= HOLD_BYTES:
                    if start < len(batch):
                        held.append((batch[start:] if start else batch, reply.elapsed()))
                    continue
                self._fold_held(reply, held, inputs)  # past the bound: fold as it arrives from here
                held = None
                self._apply_all(reply, batch[start:] if start else batch, None, inputs)
            ended = True
            ended_at = reply.elapsed()
            if self._wants_suggestions(reply):
                await self.backend.run(self._suggest(reply))
        except asyncio.CancelledError:
            if not self._stopping:
                self._fold_held_failing(reply, held, inputs)
                self._finish(reply, "failed", asyncio.CancelledError("cancelled"))
                raise
            # Our own stop(): the reply ends stopped and the caller gets it back.
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # 3.11+
            if uncancel is not None:
                uncancel()
        except Exception as exc:
            self._fold_held_failing(reply, held, inputs)
            self._finish(reply, "failed", exc)
            raise
        finally:
            self._task = None
            if stream is not None:
                # A stream that ended on its own has closed what it held: its close() does not
                # wait, so no cancel can cut it short. One cut short may: its close runs
                # shielded, in a task of its own (a task per row otherwise, for nothing).
                await (stream.close() if ended else asyncio.shield(stream.close()))
            if not held or not ended or self._stopping:
                self._fold_held(reply, held, inputs)
                self._finish(reply, "stopped" if self._stopping else None)
                held = None
        return reply, None if held is None else functools.partial(self._settle, reply, held, inputs, ended_at)

    def _fold_held(self, reply: Reply, held: list[tuple[list[Event], float]] | None,
                   inputs: dict[str, Any] | None) -> None:
        """Fold what was held, each read at its arrival; a read is taken off as it is folded."""
        if not held:
            return
        done = 0
        try:
            for events, offset in held:
                done += 1
                self._apply_all(reply, events, None, inputs, offset)
        finally:
            del held[:done]

    def _fold_held_failing(self, reply: Reply, held: list[tuple[list[Event], float]] | None,
                           inputs: dict[str, Any] | None) -> None:
        """What was held, folded as far as it can be: the reply fails with the error being raised."""
        with contextlib.suppress(Exception):
            self._fold_held(reply, held, inputs)

    def _settle(self, reply: Reply, held: list[tuple[list[Event], float]], inputs: dict[str, Any] | None,
                ended_at: float) -> None:
        """The held reads folded at the times they arrived, then the reply ended at the stream's end."""
        try:
            self._fold_held(reply, held, inputs)
        except Exception as exc:
            self._fold_held_failing(reply, held, inputs)
            self._finish(reply, "failed", exc)
            raise
        self._finish(reply, None, None, ended_at)

    async def respond(self, reply: Reply, action: str, **inputs: Any) -> Reply:
        """`Chat.respond`, awaited."""
        form_id, answer = self._form_answer(reply, action, inputs)
        stream = await self.backend.run_events(str(reply.execution_id), self.user_id)  # first, as in Chat.respond
        try:
            await self.backend.run(self.backend.plans.answer_form(form_id, action, answer, self.user_id))
        except BaseException:
            if stream is not None:
                await asyncio.shield(stream.close())
            raise
        self._reopen(reply)
        try:
            if stream is None:
                await self.backend.run(self._resumed_from_store(reply))
            else:
                opened = stream

                async def consume() -> None:
                    async for event in opened:
                        self._apply(reply, event, None, None)

                try:  # a deadline on the whole: keep-alives alone keep a stream's idle timer happy
                    await asyncio.wait_for(consume(), self.respond_deadline)
                except asyncio.TimeoutError:
                    raise APITimeoutError(_too_long(self.respond_deadline)) from None
        except Exception as exc:
            self._finish(reply, "failed", exc)
            raise
        finally:
            if stream is not None:
                await asyncio.shield(stream.close())
            self._finish(reply)
        return reply

    def _responder(self, reply: Reply, action: str, inputs: dict[str, Any]) -> Any:
        return self.respond(reply, action, **inputs)

    async def reopen(self, message_id: str) -> Reply:
        """`Chat.reopen`, awaited."""
        reply, spec = self._reopened(message_id)
        stream = None
        try:
            stream = await self.backend.open(spec)
            async for event in stream:
                reply.apply(event)
        finally:
            if stream is not None:
                await asyncio.shield(stream.close())
            reply.close()
        return reply

    async def feedback(self, message_id: str, rating: str | None, comment: str | None = None) -> None:
        """`Chat.feedback`, awaited."""
        await self.backend.run(self._feedback(message_id, rating, comment))

    async def regenerate(self, message_id: str, **kwargs: Any) -> Reply:
        parent_id, query = self.branch_point(message_id)
        return await self.ask(query, parent_id=parent_id, **kwargs)

    async def edit(self, message_id: str, new_query: str | FileRef, **kwargs: Any) -> Reply:
        parent_id, _ = self.branch_point(message_id)
        return await self.ask(new_query, parent_id=parent_id, **kwargs)

    async def clear(self) -> None:
        """`Chat.clear`, awaited."""
        await self.backend.run(self._clear())

    def stop(self) -> None:
        """Stop the running ask (and the run, where the system can). Call it in the chat's event
        loop (or via call_soon_threadsafe)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        reply = self.last_reply
        if reply is not None and not reply.done and self.capabilities.stop == "server":
            reply.stopped_on_server = True
            asyncio.get_running_loop().create_task(self.backend.stop(reply.task_id, self.user_id))
        elif reply is not None and not reply.done and self.capabilities.cancel:
            task = asyncio.get_running_loop().create_task(self.backend.cancel(reply))
            self._cancels.add(task)  # kept until done: a task only the loop references may vanish
            task.add_done_callback(self._cancels.discard)
