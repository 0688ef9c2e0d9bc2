"""Typed SSE events of the Chat API.

Every event keeps `.event` (the wire name) and `.data` (the wire payload dict, or None);
typed attributes are read from `.data` on access, so building an event costs one object.
Unknown names arrive as a plain `Event`; a frame that is not JSON as `MalformedFrame` (both
shared by every system: protocol/_wire.py, imported here too for code that reads them from here).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .._wire import MALFORMED, Event, MalformedFrame, Message, parse_datetime

__all__ = [
    "FIELDS",
    "ChatMessage",
    "Event",
    "ExecutionFinished",
    "ExecutionStarted",
    "Heartbeat",
    "MalformedFrame",
    "MessageCreated",
    "Name",
    "NodeFinished",
    "NodeStarted",
    "StreamRecovered",
    "ToolCallStarted",
    "ToolResponse",
    "event_from_wire",
    "parse_frame",
]


class Name:
    """Every event name of the Atomemo stream, in one place (and the two this client adds)."""

    MESSAGE_CREATED = "message_created"
    CHAT_MESSAGE = "chat_message"
    EXECUTION_STARTED = "execution_started"
    EXECUTION_FINISHED = "execution_finished"
    NODE_STARTED = "node_started"
    NODE_FINISHED = "node_finished"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_RESPONSE = "tool_response"
    HEARTBEAT = "heartbeat"
    MALFORMED = MALFORMED  # a data payload that was not a JSON event
    RECOVERED = "_stream_recovered"  # the end of an unresumable stream, from stored history


_EXECUTION = frozenset({"id", "status", "trigger_id", "app_version_id", "conversation_id", "created_at",
                        "error"})
_RESULT = frozenset({"id", "node_id", "execution_id", "status", "json_output", "out_ports", "error"})
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (keys of `data`, keys of `data.resource`), as the API reference documents them; the
    # execution's "error" is the embedded server's one addition (why a run failed).
    Name.MESSAGE_CREATED: (frozenset({"message_id", "conversation_id"}), frozenset()),
    Name.CHAT_MESSAGE: (frozenset({"text"}), frozenset()),
    Name.EXECUTION_STARTED: (frozenset({"resource_type", "resource"}), _EXECUTION),
    Name.EXECUTION_FINISHED: (frozenset({"resource_type", "resource"}), _EXECUTION),
    Name.NODE_STARTED: (frozenset({"resource_type", "resource"}), _RESULT),
    Name.NODE_FINISHED: (frozenset({"resource_type", "resource"}), _RESULT),
    Name.TOOL_CALL_STARTED: (frozenset({"resource_type", "resource"}),
                             frozenset({"id", "node_id", "tool_name", "args"})),
    Name.TOOL_RESPONSE: (frozenset({"resource_type", "resource"}),
                         frozenset({"id", "node_id", "tool_name", "result"})),
    Name.HEARTBEAT: (frozenset(), frozenset()),
}


class _ResourceEvent(Event):
    __slots__ = ()

    @property
    def resource_type(self) -> str | None:
        value = self._get("resource_type")
        return None if value is None else str(value)

    @property
    def resource(self) -> dict[str, Any]:
        value = self._get("resource")
        return value if isinstance(value, dict) else {}


class MessageCreated(Event):
    """`message_created`: the server stored the message; it carries the message and conversation ids."""

    __slots__ = ()

    @property
    def message_id(self) -> str:
        return str(self._get("message_id", ""))

    @property
    def conversation_id(self) -> str:
        return str(self._get("conversation_id", ""))


class ChatMessage(Event):
    """`chat_message`: one chunk of the answer's text."""

    __slots__ = ()

    @property
    def text(self) -> str:
        """The chunk; "" when the event has no text or something else in its place (the
        translator reports that as an anomaly: `str({})` is not a piece of the answer)."""
        value = self._get("text", "")
        return value if isinstance(value, str) else ""


class _ExecutionEvent(_ResourceEvent):
    __slots__ = ()

    @property
    def execution_id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def status(self) -> str:
        return str(self.resource.get("status", ""))

    @property
    def trigger_id(self) -> str | None:
        return self.resource.get("trigger_id")

    @property
    def app_version_id(self) -> str | None:
        return self.resource.get("app_version_id")

    @property
    def conversation_id(self) -> str | None:
        return self.resource.get("conversation_id")

    @property
    def created_at(self) -> datetime | None:
        return parse_datetime(self.resource.get("created_at"))


class ExecutionStarted(_ExecutionEvent):
    """`execution_started`: the workflow's execution began (the execution is its `resource`)."""

    __slots__ = ()


class ExecutionFinished(_ExecutionEvent):
    """`execution_finished`: the execution ended; its `resource` says with which status."""

    __slots__ = ()


class _NodeEvent(_ResourceEvent):
    __slots__ = ()

    @property
    def result_id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def node_id(self) -> str:
        return str(self.resource.get("node_id", ""))

    @property
    def execution_id(self) -> str | None:
        return self.resource.get("execution_id")

    @property
    def status(self) -> str:
        return str(self.resource.get("status", ""))

    @property
    def json_output(self) -> Any:
        return self.resource.get("json_output")

    @property
    def out_ports(self) -> list[int]:
        ports = self.resource.get("out_ports")
        return list(ports) if isinstance(ports, list) else []

    @property
    def error(self) -> str | None:
        return self.resource.get("error")


class NodeStarted(_NodeEvent):
    """`node_started`: one run of a node began."""

    __slots__ = ()


class NodeFinished(_NodeEvent):
    """`node_finished`: one run of a node ended, with its output, out ports or error."""

    __slots__ = ()


class _ToolEvent(_ResourceEvent):
    __slots__ = ()

    @property
    def tool_call_id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def node_id(self) -> str:
        return str(self.resource.get("node_id", ""))

    @property
    def tool_name(self) -> str:
        return str(self.resource.get("tool_name", ""))


class ToolCallStarted(_ToolEvent):
    """`tool_call_started`: an AI Agent node called a tool, with these `args`."""

    __slots__ = ()

    @property
    def args(self) -> Any:
        return self.resource.get("args")


class ToolResponse(_ToolEvent):
    """`tool_response`: the tool's `result` for an earlier call."""

    __slots__ = ()

    @property
    def result(self) -> Any:
        return self.resource.get("result")


class Heartbeat(Event):
    """`heartbeat`: a keep-alive; it counts as life for the stream's idle deadline."""

    __slots__ = ()


class StreamRecovered(Event):
    """Ends a stream whose resume window had passed: the message as the server stored it."""

    __slots__ = ()
    NAME = Name.RECOVERED

    @property
    def message(self) -> Message:
        return Message.from_wire(self._get("message") or {})

    @property
    def status(self) -> str:
        return self.message.status


EVENT_TYPES: dict[str, type[Event]] = {
    Name.MESSAGE_CREATED: MessageCreated,
    Name.CHAT_MESSAGE: ChatMessage,
    Name.EXECUTION_STARTED: ExecutionStarted,
    Name.EXECUTION_FINISHED: ExecutionFinished,
    Name.NODE_STARTED: NodeStarted,
    Name.NODE_FINISHED: NodeFinished,
    Name.TOOL_CALL_STARTED: ToolCallStarted,
    Name.TOOL_RESPONSE: ToolResponse,
    Name.HEARTBEAT: Heartbeat,
    MalformedFrame.NAME: MalformedFrame,
    StreamRecovered.NAME: StreamRecovered,
}

_decode_json = json.JSONDecoder().decode  # json.loads minus its per-call argument handling


def event_from_wire(name: str, data: Any) -> Event:
    cls = EVENT_TYPES.get(name, Event)
    return cls(name, data if isinstance(data, dict) else None)


def parse_frame(payload: str) -> Event:
    """One SSE `data` payload -> an Event. Never raises. (On the hot path: kept lean.)"""
    try:
        obj = _decode_json(payload)
        name = obj["event"]
        data = obj.get("data")
        cls = EVENT_TYPES.get(name, Event)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return MalformedFrame(
            MalformedFrame.NAME, {"raw": payload[:2000], "error": f"{type(exc).__name__}: {exc}"}
        )
    if name.__class__ is not str:
        return MalformedFrame(MalformedFrame.NAME,
                              {"raw": payload[:2000], "error": "'event' is not a string"})
    return cls(name, data if data.__class__ is dict else None)
