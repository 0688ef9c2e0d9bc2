"""A Reply folds one message's event stream as it arrives: text, execution, one span per
node run, tool calls under their node, timings, and anything out of order, never a crash.

The event-name table at the bottom is the only Atomemo-specific part: another system's
stream can be folded by mapping its events onto the same few methods.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..protocol.atomemo.events import (
    EVENT_TYPES,
    ChatMessage,
    Event,
    ExecutionFinished,
    ExecutionStarted,
    MalformedFrame,
    MessageCreated,
    Name,
    NodeFinished,
    NodeStarted,
    StreamRecovered,
    ToolCallStarted,
    ToolResponse,
    event_from_wire,
)
from ..protocol.atomemo.models import FileRef

__all__ = ["EventRecord", "ExecutionSpan", "NodeSpan", "Reply", "ToolSpan"]

Listener = Callable[["Reply", "Event | None"], None]
FINAL_STATUSES = frozenset({"succeeded", "failed", "stopped", "recovered"})


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000.0, 3)


@dataclasses.dataclass
class ToolSpan:
    """One tool call of an AI Agent node. Offsets are seconds since the reply started."""

    tool_call_id: str
    node_id: str
    tool_name: str
    args: Any = None
    result: Any = None
    status: str = "running"  # running | succeeded
    started: float | None = None
    finished: float | None = None
    anomaly: str | None = None

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
    status: str = "running"  # running | succeeded | failed | break; "stopped" if we stopped first
    json_output: Any = None
    out_ports: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    tools: list[ToolSpan] = dataclasses.field(default_factory=list)
    anomaly: str | None = None

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.started, self.finished)


@dataclasses.dataclass
class ExecutionSpan:
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
    offset: float  # seconds since the reply started, measured at arrival
    event: Event


class Reply:
    """The growing answer to one query. Thread-safe to read while another thread applies."""

    def __init__(
        self,
        query: str | FileRef,
        *,
        parent_id: str | None = None,
        node_names: dict[str, tuple[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started_at: datetime | None = None,
    ) -> None:
        self.query = query
        self.parent_id = parent_id
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.status = "streaming"
        self.execution: ExecutionSpan | None = None
        self.nodes: list[NodeSpan] = []
        self.events: list[EventRecord] = []
        self.anomalies: list[str] = []
        self.error: BaseException | None = None
        self.recovered_status: str | None = None
        self.text_resets = 0  # times the text was replaced rather than extended (views redraw)
        self.started_at = started_at or datetime.now(timezone.utc)
        self.first_token: float | None = None
        self.finished: float | None = None
        self._node_names = node_names or {}
        self._clock = clock
        self._t0 = clock()
        self._parts: list[str] = []
        self._text = ""
        self._joined = 0
        self._text_lock = threading.Lock()
        self._spans_by_result: dict[str, NodeSpan] = {}
        self._tools_by_id: dict[str, ToolSpan] = {}
        self._listeners: list[Listener] = []
        self._done = threading.Event()

    def __repr__(self) -> str:
        text = self.text
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (f"Reply(status={self.status!r}, message_id={self.message_id!r}, "
                f"nodes={len(self.nodes)}, text={shown!r})")

    # -- reading ------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer so far. Joined lazily: appending stays O(1), reading is O(new text).
        Safe from any thread: the parts' length is read once, and readers take turns."""
        with self._text_lock:
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
        return self._done.is_set()

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
        return self._done.wait(timeout)

    def on_update(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(reply, event)` after each event, and with event=None at the end."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- folding ------------------------------------------------------------------------
    def apply(self, event: Event, offset: float | None = None) -> None:
        at = self._clock() - self._t0 if offset is None else offset
        if type(event) is Event and event.event in EVENT_TYPES:
            event = event_from_wire(event.event, event.data)  # a hand-made event: give it its type
        self.events.append(EventRecord(at, event))
        handler = _HANDLERS.get(event.event)
        if handler is not None:
            handler(self, event, at)
        for listener in list(self._listeners):
            listener(self, event)

    def close(self, status: str | None = None, error: BaseException | None = None,
              offset: float | None = None) -> None:
        """End the reply: the stream ended, was stopped, or failed with `error`."""
        if self._done.is_set():
            return
        self.finished = self._clock() - self._t0 if offset is None else offset
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status
        elif self.status == "streaming":
            self.anomalies.append("the stream ended without execution_finished")
            self.status = "failed"
        for span in self.nodes:
            if span.status != "running":
                continue
            if self.status == "stopped":
                # We stopped listening: the node's end is unknown, so the span ends at the stop.
                span.status, span.finished = "stopped", self.finished
            else:
                self.anomalies.append(f"node {span.name} ({span.node_id}) never finished")
        self._done.set()
        for listener in list(self._listeners):
            listener(self, None)

    def _names(self, node_id: str) -> tuple[str, str]:
        return self._node_names.get(node_id, (node_id, ""))

    def _message_created(self, event: MessageCreated, at: float) -> None:
        self.message_id = event.message_id
        self.conversation_id = event.conversation_id

    def _chat_message(self, event: ChatMessage, at: float) -> None:
        if self.first_token is None:
            self.first_token = at
        self._parts.append(event.text)

    def _execution_started(self, event: ExecutionStarted, at: float) -> None:
        self.execution = ExecutionSpan(
            id=event.execution_id, status=event.status or "running",
            trigger_id=event.trigger_id, app_version_id=event.app_version_id,
            started=at,
        )

    def _execution_finished(self, event: ExecutionFinished, at: float) -> None:
        if self.execution is None:
            self.anomalies.append("execution_finished without execution_started")
            self.execution = ExecutionSpan(id=event.execution_id)
        self.execution.status = event.status
        self.execution.finished = at
        if self.status == "streaming":
            self.status = "failed" if event.status == "failed" else "succeeded"

    def _node_started(self, event: NodeStarted, at: float) -> None:
        name, kind = self._names(event.node_id)
        span = NodeSpan(result_id=event.result_id, node_id=event.node_id,
                        name=name, type=kind, started=at)
        self.nodes.append(span)
        self._spans_by_result[span.result_id] = span

    def _node_finished(self, event: NodeFinished, at: float) -> None:
        span = self._spans_by_result.get(event.result_id) or self._running_span(
            event.node_id)
        if span is None:
            name, kind = self._names(event.node_id)
            span = NodeSpan(result_id=event.result_id, node_id=event.node_id,
                            name=name, type=kind, anomaly="node_finished without node_started")
            self.anomalies.append(f"node_finished without node_started for {name}")
            self.nodes.append(span)
            self._spans_by_result[span.result_id] = span
        span.status = event.status
        span.json_output = event.json_output
        span.out_ports = event.out_ports
        span.error = event.error
        span.finished = at

    def _running_span(self, node_id: str) -> NodeSpan | None:
        for span in reversed(self.nodes):
            if span.node_id == node_id and span.status == "running":
                return span
        return None

    def _node_for_tool(self, node_id: str, what: str) -> NodeSpan:
        span = self._running_span(node_id) or next(
            (s for s in reversed(self.nodes) if s.node_id == node_id), None)
        if span is None:
            name, kind = self._names(node_id)
            span = NodeSpan(result_id=f"missing:{node_id}", node_id=node_id, name=name, type=kind,
                            anomaly=f"{what} for a node that never started")
            self.anomalies.append(f"{what} for node {name}, which never started")
            self.nodes.append(span)
        return span

    def _tool_call_started(self, event: ToolCallStarted, at: float) -> None:
        tool = ToolSpan(tool_call_id=event.tool_call_id, node_id=event.node_id,
                        tool_name=event.tool_name, args=event.args, started=at)
        self._node_for_tool(tool.node_id, Name.TOOL_CALL_STARTED).tools.append(tool)
        self._tools_by_id[tool.tool_call_id] = tool

    def _tool_response(self, event: ToolResponse, at: float) -> None:
        tool = self._tools_by_id.get(event.tool_call_id)
        if tool is None:
            tool = ToolSpan(tool_call_id=event.tool_call_id, node_id=event.node_id,
                            tool_name=event.tool_name,
                            anomaly="tool_response without tool_call_started")
            self.anomalies.append(f"tool_response without tool_call_started for {tool.tool_name}")
            self._node_for_tool(tool.node_id, Name.TOOL_RESPONSE).tools.append(tool)
            self._tools_by_id[tool.tool_call_id] = tool
        tool.result = event.result
        tool.status = "succeeded"
        tool.finished = at

    def _recovered(self, event: StreamRecovered, at: float) -> None:
        message = event.message
        self.recovered_status = message.status
        self.status = "recovered"
        if message.answer is not None and message.answer != self.text:
            self.anomalies.append("recovered answer differs from the streamed text; kept the stored one")
            with self._text_lock:
                self._parts = [message.answer]
                self._text, self._joined = "", 0
            self.text_resets += 1

    def _malformed(self, event: MalformedFrame, at: float) -> None:
        self.anomalies.append(f"malformed frame: {event.error}")


# Each handler takes the typed event its name maps to in EVENT_TYPES.
_HANDLERS: dict[str, Callable[[Reply, Any, float], None]] = {
    Name.MESSAGE_CREATED: Reply._message_created,
    Name.CHAT_MESSAGE: Reply._chat_message,
    Name.EXECUTION_STARTED: Reply._execution_started,
    Name.EXECUTION_FINISHED: Reply._execution_finished,
    Name.NODE_STARTED: Reply._node_started,
    Name.NODE_FINISHED: Reply._node_finished,
    Name.TOOL_CALL_STARTED: Reply._tool_call_started,
    Name.TOOL_RESPONSE: Reply._tool_response,
    StreamRecovered.NAME: Reply._recovered,
    Name.MALFORMED: Reply._malformed,
}
