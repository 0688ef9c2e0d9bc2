"""A Reply folds one message's stream as it arrives: text, execution, one span per node
run, tool calls under their node, citations, usage, timings, and anything out of order,
never a crash.

It folds the neutral events (protocol/_neutral.py) a system's adapter makes of each wire
event; it keeps the wire events too (the inspector, save_events and replay show those).

What it keeps of the server's values (raw event data, node inputs and outputs, tool
arguments and results, notes, errors) is bounded by its share `memory` (Limits.reply_memory):
past it, values are kept as previews marked where they were cut (protocol/_bounded.py) and an
anomaly says so. The answer text is kept whole.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar, overload

from ..protocol import _neutral as n
from ..protocol._bounded import Keeper
from ..protocol._errors import APIError, ExecutionFailedError
from ..protocol._limits import Limits
from ..protocol._system import Translate
from ..protocol._systems import translator_for
from ..protocol._wire import Event, FileRef
from ._agent_log import AgentLog

__all__ = ["EventRecord", "ExecutionSpan", "NodeSpan", "Reply", "ReplyEvents", "ToolSpan"]

Listener = Callable[["Reply", "Event | None"], None]
T = TypeVar("T")
FINAL_STATUSES = frozenset({"succeeded", "failed", "stopped", "recovered", "waiting"})
MAX_NOTES = 50  # messages a node said while running, kept on its span
MAX_REASONING = 1_000_000  # characters of thinking one reply keeps, over all its nodes
MAX_ANOMALIES = 500  # anomalies kept; the rest are counted in the last one
DEFAULT_MEMORY = Limits.reply_memory
MAX_LISTED = 1_000  # citations, suggestions and files kept of one reply
ERROR_CHARS = 20_000  # characters of an error, a title or a link kept
# A server time further than this from its arrival (both from the first one's) is not believed:
# the arrival time is used. Loose on purpose: a server's own times may run ahead of a client
# that receives its frames paced (Pipelit) or replays them compressed.
SERVER_TIME_SLACK = 300.0


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000.0, 3)


_MAKING = threading.Lock()


class _Made(Generic[T]):
    """A list attribute made when first read or written. A reply without citations, files,
    anomalies, pauses or thinking (most of them), a node run without tools, thinking or out
    ports, keeps no empty list for each: each would be one more object the garbage collector
    walks again on every full collection, for every reply an evaluation keeps."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_made_{name}"

    @overload
    def __get__(self, reply: None, owner: type) -> _Made[T]: ...

    @overload
    def __get__(self, reply: object, owner: type) -> list[T]: ...

    # By getattr/setattr on a private name, not through `__dict__`: reading an instance's
    # __dict__ makes one (a dict object per instance, where its values were kept inline).
    def __get__(self, reply: object | None, owner: type) -> _Made[T] | list[T]:
        if reply is None:
            return self
        made: list[T] | None = getattr(reply, self._key, None)
        if made is None:
            with _MAKING:  # two threads reading at once make one list
                made = getattr(reply, self._key, None)
                if made is None:
                    made = []
                    setattr(reply, self._key, made)
        return made

    def __set__(self, reply: object, value: list[T]) -> None:
        setattr(reply, self._key, value)

    def __delete__(self, reply: object) -> None:
        if getattr(reply, self._key, None) is not None:
            setattr(reply, self._key, None)  # empty again (made anew when read)


@dataclasses.dataclass
class ToolSpan:
    """One tool call of an AI Agent node. Offsets are seconds since the reply started."""

    tool_call_id: str
    node_id: str
    tool_name: str
    args: Any = None
    result: Any = None
    status: str = "running"  # running | succeeded | failed
    started: float | None = None
    finished: float | None = None
    anomaly: str | None = None
    error: str | None = None

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.started, self.finished)


@dataclasses.dataclass
class NodeSpan:
    """One run of one node (a node in a loop runs, and appears, more than once)."""

    result_id: str
    node_id: str
    name: str
    type: str
    # waiting | running | succeeded | failed | break | skipped; "stopped" if we stopped first
    status: str = "running"
    json_output: Any = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    anomaly: str | None = None
    parent_run_id: str | None = None  # the Loop/Iteration run this one ran inside
    iterations: int = 0  # rounds of a Loop/Iteration run
    inputs: Any = None
    process_data: Any = None
    tokens: int | None = None
    elapsed: float | None = None  # seconds, as the server measured them
    predecessor_id: str | None = None
    reported: bool = False  # known only after the fact: no live timing
    reasoning_final: bool = False
    agent_log: AgentLog | None = None  # an agent's log entries as a tree (Dify's agent_log)
    # Made when first used (not fields: no empty list kept for a run without them).
    out_ports = _Made[int]()  # the ports the run went on by
    tools = _Made[ToolSpan]()  # an agent's tool calls
    reasoning_parts = _Made[str]()  # the model's thinking as it streamed (Dify's reasoning_chunk)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.started, self.finished)


@dataclasses.dataclass
class ExecutionSpan:
    """The workflow execution behind a reply. Offsets are seconds since the reply started."""

    id: str
    status: str = "running"
    trigger_id: str | None = None
    app_version_id: str | None = None
    started: float | None = None
    finished: float | None = None

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.started, self.finished)


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """One raw event of a reply, with its arrival offset."""

    offset: float  # seconds since the reply started, measured at arrival
    event: Event


# A reply keeps its events in columns (offsets, kinds, names, data), not as an object per event:
# Python's cyclic garbage collector walks every container object that lives, on each full
# collection, and an evaluation keeps thousands of replies; in columns most events' data (a dict
# of a text chunk: atoms only) is left alone by it. `kind` is the event's class as a number in
# this registry: the systems' classes are few and fixed. Bounded all the same (a caller may apply
# events of classes it makes on the fly): past MAX_KINDS a new class is kept as a plain Event,
# its name and data whole.
MAX_KINDS = 1_000
_KINDS: list[type[Event]] = [Event]
_KIND_OF: dict[type[Event], int] = {Event: 0}


def _kind(cls: type[Event]) -> int:
    kind = _KIND_OF.get(cls)
    if kind is None:
        with _REGISTERING:
            kind = _KIND_OF.get(cls)
            if kind is None:
                if len(_KINDS) >= MAX_KINDS:
                    return 0
                _KINDS.append(cls)
                kind = _KIND_OF[cls] = len(_KINDS) - 1
    return kind


class ReplyEvents(Sequence[EventRecord]):
    """A reply's events as they arrived, read as `EventRecord`s (each made when read, from the
    reply's columns). Readers of many events that need only some of each (a name to filter on,
    an offset to search by) read those alone: `name(i)`, `offset(i)`, `data(i)`, `event(i)`.
    Not `atomemo_notebook.EventLog`, the saved log `replay()` reads (`save_events` writes it)."""

    __slots__ = ("_columns",)

    def __init__(self, columns: tuple[array[float], array[int], list[str], list[Any]]) -> None:
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns[3])  # the column filled last: every other one is as long

    def _at(self, index: int) -> int:
        count = len(self)
        if not -count <= index < count:
            raise IndexError("event index out of range")
        return index % count

    def name(self, index: int) -> str:
        return self._columns[2][self._at(index)]

    def names(self) -> list[str]:
        """Every event's name, in order (a copy: the reply may go on streaming)."""
        return self._columns[2][:len(self)]

    def offset(self, index: int) -> float:
        """Seconds from the reply's start to the event's arrival."""
        return self._columns[0][self._at(index)]

    def data(self, index: int) -> Any:
        return self._columns[3][self._at(index)]

    def event(self, index: int) -> Event:
        """The event, of its own class (the class it was applied as)."""
        _, kinds, names, data = self._columns
        index = self._at(index)
        return _KINDS[kinds[index]](names[index], data[index])

    def first(self, count: int) -> ReplyEvents:
        """The first `count` events, kept apart from the reply (it may go on streaming)."""
        offsets, kinds, names, data = self._columns
        count = max(0, min(count, len(self)))
        return ReplyEvents((offsets[:count], kinds[:count], names[:count], data[:count]))

    def _record(self, index: int) -> EventRecord:
        return EventRecord(self._columns[0][index], self.event(index))

    def __iter__(self) -> Iterator[EventRecord]:
        for index in range(len(self)):  # the length now: another thread may be appending
            yield self._record(index)

    @overload
    def __getitem__(self, index: int) -> EventRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[EventRecord]: ...

    def __getitem__(self, index: int | slice) -> EventRecord | list[EventRecord]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        return self._record(self._at(index))

    def __eq__(self, other: object) -> bool:
        """Equal to the same records in a list, a tuple or another reply's events."""
        if isinstance(other, ReplyEvents | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReplyEvents({len(self)} events)"


_REGISTERING = threading.Lock()
# One lock for every reply's lazily joined text, and one for making a reply's waiter: a lock (and
# an Event's condition, lock and deque) per reply would be objects the collector walks per reply,
# for critical sections of a few instructions.
_TEXT_LOCK = threading.Lock()
_WAITER_LOCK = threading.Lock()


class Reply:
    """The growing answer to one query. Thread-safe to read while another thread applies.

    Its events are read by the translator of the system they come from: `system` names it
    ("dify": a fresh translator of that system's), or `translate` is one (a `Chat` passes its
    backend's)."""

    # What the answer said besides its text, and what happened to it: made when first used.
    anomalies = _Made[str]()
    citations = _Made[n.Citation]()
    suggestions = _Made[str]()
    files = _Made[dict[str, Any]]()
    reasoning_parts = _Made[str]()  # thinking inside the answer's own `<think>` blocks
    pauses = _Made[tuple[float, "float | None"]]()  # each pause for a person, (from, to) offsets

    def __init__(
        self,
        query: str | FileRef,
        *,
        parent_id: str | None = None,
        node_names: dict[str, tuple[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started_at: datetime | None = None,
        translate: Translate | None = None,
        system: str | None = None,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        if translate is None:
            if system is None:
                raise TypeError("Reply needs the system its events come from: system='atomemo' (or 'dify', "
                                "'pipelit', 'odyssey'), or translate=<that system's translator>")
            translate = translator_for(system)
        self.query = query
        self.parent_id = parent_id
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.status = "streaming"
        self.execution: ExecutionSpan | None = None
        self.nodes: list[NodeSpan] = []
        # The events (see ReplyEvents): arrival offsets, classes (a number each), names and data.
        self._columns: tuple[array[float], array[int], list[str], list[Any]] = (array("d"), array("H"), [], [])
        self.error: BaseException | None = None
        self.recovered_status: str | None = None
        # The run was stopped on the server (its stream said so, or the stop API was called),
        # not only by our closing the stream: a stored "normal" after it does not mean it finished.
        self.stopped_on_server = False
        self.text_resets = 0  # times the text was replaced rather than extended (views redraw)
        self.changes = 0  # times anything but the text changed (views redraw the timeline)
        self.task_id: str | None = None
        self.run_error: str | None = None  # why the server says the run failed
        self.app_name: str | None = None  # the app as the answer names it (n.AppNamed), where it does
        self.usage: n.Usage | None = None
        self.outputs: dict[str, Any] | None = None  # a run's result, where it gives one (a Dify workflow app)
        # Thinking inside the answer's own `<think>` blocks (reasoning_parts): never in `text`.
        self.reasoning_final = False
        self._reasoning_chars = 0
        # A person's turn (Dify's Human Input): the form waiting for an answer, how the last one
        # ended ("filled: Approve", or expired); each pause is in `pauses`.
        self.pending_input: n.InputRequested | None = None
        self.input_outcome: str | None = None
        self.responder: Callable[[Reply, str, dict[str, Any]], Any] | None = None  # set by the chat
        self.started_at = started_at or datetime.now(timezone.utc)
        self.first_token: float | None = None
        self.finished: float | None = None
        self._node_names = node_names or {}
        self._translate = translate
        # A system whose plain text chunks need nothing but appending says which events are one
        # (`text_of` on its translator): most of an answer's events, folded without a neutral
        # event each (apply_all). Set with the translator, always (_use).
        self._text_of: Callable[[Event], str | None] | None = getattr(translate, "text_of", None)
        # A fresh translator folds the same events again (as_of): a stateless function is its own,
        # a translator that keeps state per reply is made anew from its class.
        self._translator_kind: Any = translate if inspect.isfunction(translate) else type(translate)
        self._clock = clock
        self._t0 = clock()
        self._parts: list[str] = []
        self._text = ""
        self._joined = 0
        self._spans_by_result: dict[str, NodeSpan] = {}
        self._tools_by_id: dict[str, ToolSpan] = {}
        self._listeners: list[Listener] | None = None  # made by the first on_update
        self._finished = False
        self._waiter: threading.Event | None = None  # made when a thread first waits
        self._keeper = Keeper(memory)
        self._memo: dict[int, Any] | None = None  # values kept while one event is applied
        self._anomalies_over = 0
        self._cut_note: int | None = None  # the anomaly that says what was cut
        self._cut_where = ""
        self._server_anchor: tuple[float, float] | None = None  # (server seconds, our offset) of the first

    def __repr__(self) -> str:
        text = self.text
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (f"Reply(status={self.status!r}, message_id={self.message_id!r}, "
                f"nodes={len(self.nodes)}, text={shown!r})")

    # -- reading ------------------------------------------------------------------------
    @property
    def events(self) -> ReplyEvents:
        """Every wire event of this reply as it arrived (kept within its share of memory)."""
        return ReplyEvents(self._columns)

    def _fresh_translator(self) -> Translate:
        kind = self._translator_kind
        return kind if inspect.isfunction(kind) else kind()

    @property
    def text(self) -> str:
        """The answer so far. Joined lazily: appending stays O(1), reading is O(new text).
        Safe from any thread: the parts' length is read once, and readers take turns."""
        with _TEXT_LOCK:
            count = len(self._parts)
            if self._joined != count:
                self._text += "".join(self._parts[self._joined:count])
                self._joined = count
            return self._text

    @property
    def chunks(self) -> int:
        return len(self._parts)

    @property
    def done(self) -> bool:
        return self._finished

    @property
    def execution_id(self) -> str | None:
        return self.execution.id if self.execution else None

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from the request to the first chat_message."""
        return self.first_token

    @property
    def total_time(self) -> float | None:
        return self.finished

    @property
    def tool_calls(self) -> list[ToolSpan]:
        return [tool for node in self.nodes for tool in node.tools]

    def at(self, offset: float | None) -> datetime | None:
        """A wall-clock UTC datetime for an offset of this reply."""
        return None if offset is None else self.started_at + timedelta(seconds=offset)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply is final; True if it is."""
        with _WAITER_LOCK:
            if self._finished:
                return True
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = threading.Event()
        return waiter.wait(timeout)

    def on_update(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(reply, event)` after each event, and with event=None at the end."""
        listeners = self._listeners
        if listeners is None:
            listeners = self._listeners = []
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def elapsed(self) -> float:
        """Seconds since the question was sent."""
        return self._clock() - self._t0

    # -- folding ------------------------------------------------------------------------
    @property
    def memory(self) -> dict[str, int]:
        """What this reply keeps of the server's values: its share (Limits.reply_memory), the
        bytes of it spent, and what was left out (values, and characters of strings)."""
        keeper = self._keeper
        return {"limit": keeper.budget, "kept": keeper.budget - keeper.left,
                "cut_values": keeper.cut_values, "cut_chars": keeper.cut_chars}

    def apply(self, event: Event, offset: float | None = None) -> None:
        """Fold one wire event (through the system's adapter) and tell the listeners. The
        adapter reads the whole event; the reply keeps it, and what it folds, within its share."""
        self.apply_all((event,), offset)

    def apply_all(self, events: Sequence[Event], offset: float | None = None) -> None:
        """`apply` each of `events`, in order: events that arrived together (one read of the
        stream), so one reading of the clock places them all."""
        arrived = self._clock() - self._t0 if offset is None else offset
        keeper = self._keeper
        offsets, kinds, names, values = self._columns
        for event in events:
            at = arrived
            cut = keeper.cut_values
            memo: dict[int, Any] = {}
            self._memo = memo
            text_of = self._text_of  # per event: a listener may close the reply mid-batch
            text = None if text_of is None else text_of(event)
            if text is not None:
                self._add_text(text, at)
            else:
                for neutral in self._translate(event):
                    if type(neutral) is n.ServerTime:
                        at = self._server_offset(neutral.seconds, arrived)
                        continue
                    self.fold(neutral, at)
            data = event.data
            if data is not None:
                kept_data = keeper.keep(data, memo)
                if kept_data is not data:
                    event = type(event)(event.event, kept_data)
            self._memo = None
            offsets.append(at)
            kinds.append(_kind(type(event)))
            names.append(event.event)
            values.append(event.data)  # last: a reader counts the events by this column
            if keeper.cut_values != cut:
                self._note_cut(event.event)
            if self._listeners:
                for listener in list(self._listeners):
                    listener(self, event)

    def _use(self, translate: Translate) -> None:
        self._translate = translate
        self._text_of = getattr(translate, "text_of", None)

    def _keep(self, value: Any) -> Any:
        return self._keeper.keep(value, self._memo)

    def _server_offset(self, seconds: float, arrived: float) -> float:
        """The offset of a server time: the first one seen is placed at its arrival, each later
        one as far from it as the server says (so a node's span is the server's, not the
        spacing of the frames). A time past SERVER_TIME_SLACK of its arrival is not believed."""
        if self._server_anchor is None:
            self._server_anchor = (seconds, arrived)
            return arrived
        server0, offset0 = self._server_anchor
        placed = offset0 + (seconds - server0)
        return placed if abs(placed - arrived) <= SERVER_TIME_SLACK and placed >= 0.0 else arrived

    def _note_cut(self, name: str) -> None:
        """One anomaly per reply says what was cut, updated as more is."""
        keeper = self._keeper
        text = (f"values past this reply's share of memory (Limits.reply_memory={keeper.budget:,} bytes) "
                f"were kept as previews marked where cut, first in {name[:100]}: {keeper.cut_values:,} values "
                f"and {keeper.cut_chars:,} characters left out")
        if self._cut_note is not None and self.anomalies[self._cut_note].startswith("values past"):
            self.anomalies[self._cut_note] = text.replace(f", first in {name[:100]}", self._cut_where)
            return
        self._cut_where = f", first in {name[:100]}"
        self._cut_note = len(self.anomalies)
        self._anomaly(text)

    def _anomaly(self, text: str) -> None:
        if len(self.anomalies) < MAX_ANOMALIES - 1:
            self.anomalies.append(self._keeper.keep_text(text, 2000))
            return
        self._anomalies_over += 1
        summary = f"... and {self._anomalies_over:,} more anomalies, not kept"
        if len(self.anomalies) < MAX_ANOMALIES:
            self.anomalies.append(summary)
        else:
            self.anomalies[-1] = summary

    def fold(self, event: n.Neutral, at: float) -> None:
        handler = _FOLD.get(type(event))
        if handler is not None:
            if type(event) is not n.Text:
                self.changes += 1
            handler(self, event, at)

    def close(self, status: str | None = None, error: BaseException | None = None,
              offset: float | None = None) -> None:
        """End the reply: the stream ended, was stopped, or failed with `error`."""
        if self._finished:
            return
        self.finished = self._clock() - self._t0 if offset is None else offset
        if error is not None:
            # Kept with its traceback, but not the locals of its finished frames: those may
            # hold the whole body or event that failed a limit.
            traceback.clear_frames(error.__traceback__)
            self.error = error
        if status is not None:
            self.status = status
        elif self.status == "streaming":
            self._anomaly("the stream ended without execution_finished")
            self.status = "failed"
        for span in self.nodes:
            if span.status not in ("running", "waiting"):
                continue
            if self.status == "stopped":
                # We stopped listening: the node's end is unknown, so the span ends at the stop.
                span.status, span.finished = "stopped", self.finished
            elif self.status == "waiting" and span.status == "waiting":
                continue  # it waits for a person: not finished, and not lost either
            else:
                self._anomaly(f"node {span.name} ({span.node_id}) never finished")
        self._use(_closed)  # the adapter's state (ids, runs) is no longer needed
        if self.pending_input is None:
            # No form to answer: let go of the chat (a finished reply that held it kept every
            # reply of its conversation alive in a cycle only the garbage collector could end).
            self.responder = None
        with _WAITER_LOCK:  # set under the lock: a reopen() from another thread comes before or after
            self._finished = True
            if self._waiter is not None:
                self._waiter.set()
        for listener in list(self._listeners or ()):
            listener(self, None)

    def respond(self, action: str, **inputs: Any) -> Any:
        """Answer the form this reply waits on (`pending_input`) with `action` and `inputs`: the
        kernel sends it (the form's token never leaves it), and the run goes on in this same
        reply. With a `Chat`, returns when the run has ended or paused again; with an
        `AsyncChat`, returns the awaitable that does."""
        if self.pending_input is None:
            raise ValueError(f"this reply waits on no form (status {self.status!r}); reply.pending_input is None")
        if self.responder is None:
            raise ValueError("this reply was not made by a chat that can answer forms (replayed or saved)")
        return self.responder(self, action, dict(inputs))

    def reopen(self) -> None:
        """A reply that ended waiting for a person streams again (its form answered): the run's
        further events fold into it, and its timeline keeps the pause."""
        with _WAITER_LOCK:
            if not self._finished:
                return
            self._finished = False
            if self._waiter is not None:
                self._waiter.clear()
        self.error = None
        self.resume_at(self.elapsed())
        for listener in list(self._listeners or ()):
            listener(self, None)

    def resume_at(self, offset: float) -> None:
        """The run goes on at `offset` after a pause (its form answered): its further events are
        read by a fresh translator, as the continuation of this same message. Time travel calls
        it where the live reply was reopened (each pause's end), so a refold resumes there too."""
        translator: Any = self._fresh_translator()
        if hasattr(translator, "resumed"):
            translator.resumed = True  # what the run says at its end is the whole answer
        if hasattr(translator, "ids") and self.message_id:  # the same message: its events are this reply's
            translator.ids.message_id = self.message_id
            translator.ids.conversation_id = self.conversation_id
            translator.announced = True
        self._use(translator)
        self.fold(n.RunResumed(self.execution_id or "run"), offset)

    def as_of(self, *, seconds: float | None = None, event: int | None = None) -> Reply:
        """The reply as it stood `seconds` after it started, or after its first `event` events:
        its text, node runs and statuses then (time travel). The same fold as live, over the
        event log; a moment before the end is `streaming`, the end is the reply as it ended."""
        from ._timetravel import as_of

        return as_of(self, seconds=seconds, event=event)

    def note_after_end(self, text: str) -> None:
        """Something the server did after this reply ended (a run that went on after Stop):
        kept as an anomaly, never folded as a success; the listeners are told (event=None, as
        at the end) so views redraw. From any thread."""
        self._anomaly(text)
        self.changes += 1
        for listener in list(self._listeners or ()):
            listener(self, None)

    def _on_started(self, event: n.Started, at: float) -> None:
        self.message_id = event.message_id
        self.conversation_id = event.conversation_id
        self.task_id = event.task_id

    def _on_text(self, event: n.Text, at: float) -> None:
        self._add_text(event.text, at)

    def _add_text(self, text: str, at: float) -> None:
        if self.first_token is None:
            self.first_token = at
        self._parts.append(text)

    def _on_text_replaced(self, event: n.TextReplaced, at: float) -> None:
        if event.text == self.text:
            return  # nothing changes: no redraw, nothing to note
        if self.first_token is None:
            self.first_token = at
        with _TEXT_LOCK:
            self._parts = [event.text]
            self._text, self._joined = "", 0
        self.text_resets += 1
        if event.reason:
            self._anomaly(f"the answer was replaced ({event.reason})")

    def _on_run_started(self, event: n.RunStarted, at: float) -> None:
        self.execution = ExecutionSpan(
            id=event.execution_id, status=event.status or "running",
            trigger_id=event.trigger_id, app_version_id=event.version_id, started=at,
        )

    def _on_run_finished(self, event: n.RunFinished, at: float) -> None:
        if self.execution is None:
            self._anomaly("execution_finished without execution_started")
            self.execution = ExecutionSpan(id=event.execution_id)
        self.execution.status = event.status
        self.execution.finished = at
        if event.error:
            self.run_error = self._short(event.error)
        if event.status == "stopped":
            self.stopped_on_server = True
        if self.status in ("streaming", "waiting"):
            self.status = "failed" if event.status == "failed" else (
                "stopped" if event.status == "stopped" else "succeeded")

    def _on_outputs(self, event: n.Outputs, at: float) -> None:
        self.outputs = self._keep(event.value)

    def _on_run_paused(self, event: n.RunPaused, at: float) -> None:
        # The stream ends here and the reply is final, but the turn is not: "waiting" (for a
        # person), until the server's stored message says how the run went on.
        if self.execution is None:
            self.execution = ExecutionSpan(id=event.execution_id, started=at)
        self.execution.status = "waiting"
        if not self.pauses or self.pauses[-1][1] is not None:
            self.pauses.append((at, None))
        if self.status == "streaming":
            self.status = "waiting"
        for span in self.nodes:
            if span.node_id in event.node_ids and span.status == "running":
                span.status = "waiting"

    def _on_input_requested(self, event: n.InputRequested, at: float) -> None:
        self.pending_input = event
        self.input_outcome = None

    def _on_input_ended(self, event: n.InputEnded, at: float) -> None:
        pending = self.pending_input
        if pending is not None and event.node_id in ("", pending.node_id):
            self.pending_input = None
        if event.how == "filled":
            self.input_outcome = f"answered: {event.action}" if event.action else "answered"
        else:  # said plainly: which form, and that the run did not go on from an answer
            title = f" “{pending.node_title[:80]}”" if pending is not None and pending.node_title else ""
            self.input_outcome = f"the form{title} expired before anyone answered it: no answer was sent"

    def _on_run_resumed(self, event: n.RunResumed, at: float) -> None:
        self.pending_input = None
        if self.pauses and self.pauses[-1][1] is None:
            self.pauses[-1] = (self.pauses[-1][0], at)
        if self.execution is not None and self.execution.status == "waiting":
            self.execution.status = "running"
        if self.status == "waiting":
            self.status = "streaming"
        for span in self.nodes:
            if span.status == "waiting":  # the pause stays on the timeline: a bar until now
                span.status, span.finished = "paused", at

    def _on_message_ended(self, event: n.MessageEnded, at: float) -> None:
        # Without a run around the answer (a plain chat app), the answer's end is the reply's.
        if self.execution is None and self.status == "streaming":
            self.status = "succeeded"

    def _names(self, node_id: str, name: str | None, kind: str | None) -> tuple[str, str]:
        known = self._node_names.get(node_id, (node_id, ""))
        return name or known[0], kind or known[1]

    def _on_node_started(self, event: n.NodeStarted, at: float) -> None:
        name, kind = self._names(event.node_id, event.name, event.type)
        span = NodeSpan(result_id=event.run_id, node_id=event.node_id, name=name, type=kind,
                        started=None if event.reported else at, parent_run_id=event.parent_run_id,
                        inputs=self._keep(event.inputs), predecessor_id=event.predecessor_id,
                        reported=event.reported,
                        status=event.status)
        self.nodes.append(span)
        self._spans_by_result[span.result_id] = span

    def _on_node_status(self, event: n.NodeStatus, at: float) -> None:
        span = self._spans_by_result.get(event.run_id)
        if span is None:
            self._anomaly(f"a status for node run {event.run_id}, which never started")
            return
        if span.status == "waiting" and event.status == "running":
            span.started = at  # its time runs from when it ran, not from when it was queued
        span.status = event.status
        if event.type and not span.type:
            span.type = event.type

    def _on_node_note(self, event: n.NodeNote, at: float) -> None:
        span = self._spans_by_result.get(event.run_id)
        if span is not None:
            notes = span.process_data if isinstance(span.process_data, list) else []
            span.process_data = [*notes, self._keeper.keep_text(event.text)][-MAX_NOTES:]

    def _on_reasoning(self, event: n.Reasoning, at: float) -> None:
        span = None
        if event.node_id is not None:
            span = self._running_span(event.node_id) or next(
                (s for s in reversed(self.nodes) if s.node_id == event.node_id), None)
        parts = span.reasoning_parts if span is not None else self.reasoning_parts
        text = event.text
        if self._reasoning_chars + len(text) > MAX_REASONING:  # bounded like every input
            text = text[:max(0, MAX_REASONING - self._reasoning_chars)]
            if self._reasoning_chars < MAX_REASONING:
                self._anomaly(f"reasoning past {MAX_REASONING:,} characters was left out")
        if text:
            self._reasoning_chars += len(text)
            parts.append(self._keeper.keep_text(text))
        if event.final:
            if span is not None:
                span.reasoning_final = True
            else:
                self.reasoning_final = True

    def retried_runs(self) -> set[int]:
        """Indexes of the node runs another run of the same node followed: failed attempts of a
        retried node (Dify's node_retry, Pipelit's retries). They failed nothing by themselves."""
        later: set[str] = set()
        out: set[int] = set()
        for index in range(len(self.nodes) - 1, -1, -1):
            node_id = self.nodes[index].node_id
            if node_id in later:
                out.add(index)
            later.add(node_id)
        return out

    @property
    def reasoning(self) -> str:
        """The answer's own thinking (`<think>` blocks), never part of `text`; a node's is on its run."""
        return "".join(self.reasoning_parts)

    def _on_node_finished(self, event: n.NodeFinished, at: float) -> None:
        span = self._spans_by_result.get(event.run_id) or self._running_span(event.node_id)
        if span is None:
            name, kind = self._names(event.node_id, event.name, event.type)
            span = NodeSpan(result_id=event.run_id, node_id=event.node_id,
                            name=name, type=kind, anomaly="node_finished without node_started")
            self._anomaly(f"node_finished without node_started for {name}")
            self.nodes.append(span)
            self._spans_by_result[span.result_id] = span
        span.status = event.status
        if event.type and not span.type:  # queued by id alone (Pipelit's node_enqueued): named at its end
            span.type = event.type
        span.json_output = self._keep(event.output)
        if event.ports:
            span.out_ports = list(event.ports[:1000])
        else:
            del span.out_ports
        span.error = self._short(event.error)
        span.finished = None if span.reported else at
        if event.inputs is not None:
            span.inputs = self._keep(event.inputs)
        if event.process_data is not None or not isinstance(span.process_data, list):
            # notes said while running stay, unless the end says more
            span.process_data = self._keep(event.process_data)
        span.tokens = event.tokens
        span.elapsed = event.elapsed

    def _on_iteration_next(self, event: n.IterationNext, at: float) -> None:
        span = self._spans_by_result.get(event.run_id)
        if span is not None:
            span.iterations = max(span.iterations, event.index + 1)

    def _running_span(self, node_id: str | None) -> NodeSpan | None:
        for span in reversed(self.nodes):
            if (node_id is None or span.node_id == node_id) and span.status == "running":
                return span
        return None

    def _node_for_tool(self, node_id: str | None, parent_run_id: str | None, what: str) -> NodeSpan:
        span = self._spans_by_result.get(parent_run_id) if parent_run_id else None
        if span is None and node_id:
            span = self._running_span(node_id) or next(
                (s for s in reversed(self.nodes) if s.node_id == node_id), None)
        if span is None and not node_id and not parent_run_id:
            span = self._running_span(None)  # only "the agent running now" is known
        if span is None:
            key = node_id or parent_run_id or "unknown"
            name, kind = self._names(key, None, None)
            span = NodeSpan(result_id=f"missing:{key}", node_id=key, name=name, type=kind,
                            anomaly=f"{what} for a node that never started")
            self._anomaly(f"{what} for node {name}, which never started")
            self.nodes.append(span)
        return span

    def _on_tool_started(self, event: n.ToolStarted, at: float) -> None:
        parent = self._node_for_tool(event.node_id, event.parent_run_id, "tool_call_started")
        tool = ToolSpan(tool_call_id=event.call_id, node_id=parent.node_id, tool_name=event.tool_name,
                        args=self._keep(event.args), started=at)
        parent.tools.append(tool)
        self._tools_by_id[tool.tool_call_id] = tool

    def _on_tool_finished(self, event: n.ToolFinished, at: float) -> None:
        tool = self._tools_by_id.get(event.call_id)
        if tool is None:
            parent = self._node_for_tool(event.node_id, event.parent_run_id, "tool_response")
            tool = ToolSpan(tool_call_id=event.call_id, node_id=parent.node_id, tool_name=event.tool_name,
                            anomaly="tool_response without tool_call_started")
            self._anomaly(f"tool_response without tool_call_started for {tool.tool_name}")
            parent.tools.append(tool)
            self._tools_by_id[tool.tool_call_id] = tool
        tool.result = self._keep(event.result)
        tool.error = self._short(event.error)
        tool.status = "failed" if event.error else "succeeded"
        tool.finished = at

    def _on_agent_logged(self, event: n.AgentLogged, at: float) -> None:
        parent = self._node_for_tool(event.node_id, event.parent_run_id, "agent_log")
        if parent.agent_log is None:
            parent.agent_log = AgentLog()
        problem = parent.agent_log.update(self._short(event.entry_id) or "", self._short(event.parent_id),
                                          self._short(event.label) or "", self._short(event.status) or "",
                                          self._keep(event.data), self._short(event.error), at)
        if problem:
            self._anomaly(problem)

    def _on_citations(self, event: n.Citations, at: float) -> None:
        keep = self._short
        self.citations = [dataclasses.replace(c, title=keep(c.title) or "", snippet=keep(c.snippet), url=keep(c.url),
                                              source=keep(c.source))
                          for c in event.items[:MAX_LISTED]]

    def _on_app_named(self, event: n.AppNamed, at: float) -> None:
        self.app_name = self._keeper.keep_text(event.name, 200)

    def _on_suggestions(self, event: n.Suggestions, at: float) -> None:
        self.suggestions = [self._keeper.keep_text(q, 2000) for q in event.questions[:MAX_LISTED]]

    def _on_usage(self, event: n.Usage, at: float) -> None:
        self.usage = event

    def _on_files(self, event: n.Files, at: float) -> None:
        room = MAX_LISTED - len(self.files)
        self.files.extend(self._keep(f) for f in event.files[:max(room, 0)])

    def _on_failed(self, event: n.Failed, at: float) -> None:
        if event.run:
            self.error = ExecutionFailedError(self._short(event.message) or "", code=self._short(event.code),
                                              node_id=self._short(event.node_id))
        else:
            self.error = APIError(self._short(event.message) or "", status_code=event.status or 0,
                                  code=self._short(event.code))
        self.status = "failed"

    def _on_recovered(self, event: n.Recovered, at: float) -> None:
        self.recovered_status = event.status
        self.status = "recovered"
        if event.answer is not None and event.answer != self.text:
            self._anomaly("recovered answer differs from the streamed text; kept the stored one")
            with _TEXT_LOCK:
                self._parts = [event.answer]
                self._text, self._joined = "", 0
            self.text_resets += 1

    def _on_anomaly(self, event: n.Anomaly, at: float) -> None:
        self._anomaly(event.text)

    def _short(self, text: str | None) -> str | None:
        return None if text is None else self._keeper.keep_text(text, ERROR_CHARS)

    def export_spans(self, endpoint: str | None = None, **options: Any) -> int:
        """This reply's run as OpenTelemetry spans, sent over OTLP/HTTP (see `export_spans`)."""
        from ._spans import export_spans  # spans reads replies: imported here, not at the top

        return export_spans(self, endpoint=endpoint, **options)


def _closed(event: Event) -> Sequence[n.Neutral]:
    return ()


_FOLD: dict[type, Callable[[Reply, Any, float], None]] = {
    n.Started: Reply._on_started,
    n.Text: Reply._on_text,
    n.TextReplaced: Reply._on_text_replaced,
    n.RunStarted: Reply._on_run_started,
    n.RunFinished: Reply._on_run_finished,
    n.RunPaused: Reply._on_run_paused,
    n.Outputs: Reply._on_outputs,
    n.RunResumed: Reply._on_run_resumed,
    n.InputRequested: Reply._on_input_requested,
    n.InputEnded: Reply._on_input_ended,
    n.MessageEnded: Reply._on_message_ended,
    n.NodeStarted: Reply._on_node_started,
    n.NodeStatus: Reply._on_node_status,
    n.NodeNote: Reply._on_node_note,
    n.Reasoning: Reply._on_reasoning,
    n.NodeFinished: Reply._on_node_finished,
    n.IterationNext: Reply._on_iteration_next,
    n.ToolStarted: Reply._on_tool_started,
    n.ToolFinished: Reply._on_tool_finished,
    n.AgentLogged: Reply._on_agent_logged,
    n.Citations: Reply._on_citations,
    n.Suggestions: Reply._on_suggestions,
    n.AppNamed: Reply._on_app_named,
    n.Usage: Reply._on_usage,
    n.Files: Reply._on_files,
    n.Failed: Reply._on_failed,
    n.Recovered: Reply._on_recovered,
    n.Anomaly: Reply._on_anomaly,
}
