"""Pipelit's WebSocket messages, from its orchestrator (platform/services/orchestrator.py,
`_publish_event`) and agent middleware (platform/components/_agent_shared.py): every event is
one JSON text message `{"type", "execution_id", "timestamp", "data", "channel"}` published on
the workflow's channel (`workflow:<slug>`), so one subscription sees every execution of the
workflow and a client routes by `execution_id`. Control messages (`subscribed`,
`unsubscribed`, `ping`) carry no execution."""

from __future__ import annotations

import json

from .._wire import Event, MalformedFrame

__all__ = ["CONTROL", "ENDINGS", "FIELDS", "Name", "parse_message"]


class Name:
    EXECUTION_STARTED = "execution_started"
    NODE_ENQUEUED = "node_enqueued"
    NODE_STATUS = "node_status"
    CHILD_NODE_STATUS = "child_node_status"
    CHAT_MESSAGE = "chat_message"
    TOKEN_USAGE = "token_usage"  # noqa: S105 - an event name, not a secret
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_FAILED = "execution_failed"
    EXECUTION_INTERRUPTED = "execution_interrupted"
    EXECUTION_CANCELLED = "execution_cancelled"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PING = "ping"
    PONG = "pong"
    ERROR = "error"
    # Added by this client, never sent by Pipelit:
    STARTED = "_execution_created"  # the POST answered: {execution_id, thread_id}
    GAP = "_socket_gap"  # the WebSocket dropped while the execution ran: events may be missing
    RECOVERED = "_history_recovered"  # the final answer, read from history after a gap


CONTROL = frozenset({Name.SUBSCRIBED, Name.UNSUBSCRIBED, Name.PING, Name.PONG, Name.ERROR})
ENDINGS = frozenset({Name.EXECUTION_COMPLETED, Name.EXECUTION_FAILED, Name.EXECUTION_CANCELLED,
                     Name.EXECUTION_INTERRUPTED, Name.RECOVERED})

_ENVELOPE = frozenset({"type", "execution_id", "timestamp", "data", "channel"})
_NODE = frozenset({"node_id", "status", "component_type", "display_name", "node_label", "duration_ms", "output",
                   "token_usage", "error", "error_code", "tool_name", "parent_node_id", "is_tool_call",
                   "child_execution_ids", "child_execution_id", "is_child_event"})
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # type: (keys of the message, keys of its `data`), as Pipelit's publishers write them.
    Name.EXECUTION_STARTED: (_ENVELOPE, frozenset({"workflow_id"})),
    Name.NODE_ENQUEUED: (_ENVELOPE, frozenset({"node_id"})),
    Name.NODE_STATUS: (_ENVELOPE, _NODE),
    Name.CHILD_NODE_STATUS: (_ENVELOPE, _NODE),
    Name.CHAT_MESSAGE: (_ENVELOPE, frozenset({"text", "node_id"})),
    Name.TOKEN_USAGE: (_ENVELOPE, frozenset({"input_tokens", "output_tokens", "total_tokens", "cost_usd",
                                             "llm_calls", "tool_invocations", "node_id"})),
    Name.EXECUTION_COMPLETED: (_ENVELOPE, frozenset({"output", "activity_summary"})),
    Name.EXECUTION_FAILED: (_ENVELOPE, frozenset({"error", "error_code"})),
    Name.EXECUTION_INTERRUPTED: (_ENVELOPE, frozenset({"node_id"})),
    Name.EXECUTION_CANCELLED: (_ENVELOPE, frozenset()),
    Name.SUBSCRIBED: (frozenset({"type", "channel"}), frozenset()),
    Name.UNSUBSCRIBED: (frozenset({"type", "channel"}), frozenset()),
    Name.PING: (frozenset({"type"}), frozenset()),
}

_decode = json.JSONDecoder().decode


def parse_message(text: str) -> Event:
    """One WebSocket text message -> an Event whose `.data` is the whole message. Never raises."""
    try:
        obj = _decode(text)
        name = obj["type"]
    except (ValueError, TypeError, KeyError) as exc:
        return MalformedFrame(MalformedFrame.NAME, {"raw": text[:2000], "error": f"{type(exc).__name__}: {exc}"})
    if not isinstance(name, str) or not isinstance(obj, dict):
        return MalformedFrame(MalformedFrame.NAME, {"raw": text[:2000], "error": "'type' is not a string"})
    return Event(name, obj)
