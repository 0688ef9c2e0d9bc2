"""Atomemo's wire events -> the neutral events. The only place that reads Atomemo's event
names and fields on behalf of the fold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import _neutral as n
from .._wire import Event, MalformedFrame
from .events import (
    ChatMessage,
    ExecutionFinished,
    ExecutionStarted,
    MessageCreated,
    Name,
    NodeFinished,
    NodeStarted,
    StreamRecovered,
    ToolCallStarted,
    ToolResponse,
    event_from_wire,
)

__all__ = ["Translator", "translator"]

Translator = Callable[[Event], Sequence[n.Neutral]]
NONE: tuple[n.Neutral, ...] = ()


def _created(e: MessageCreated) -> Sequence[n.Neutral]:
    return (n.Started(e.message_id, e.conversation_id or None),)


def text_of(e: Event) -> str | None:
    """The chunk of a plain text event (one `translate` makes a lone `n.Text` of), else None:
    a reply appends it to the answer without the neutral event (the hot path)."""
    data = e.data
    if e.event == Name.CHAT_MESSAGE and data.__class__ is dict:  # a hand-made event may hold anything
        value = data.get("text")
        if value.__class__ is str:
            return value
    return None


def _text(e: ChatMessage) -> Sequence[n.Neutral]:
    value = text_of(e)
    if value is not None:
        return (n.Text(value),)
    value = e.data.get("text") if e.data else None
    what = "no text" if value is None else f"a {type(value).__name__} for its text"
    return (n.Anomaly(f"a chat_message with {what} was dropped: the answer may miss a chunk"),)


def _run_started(e: ExecutionStarted) -> Sequence[n.Neutral]:
    return (n.RunStarted(e.execution_id, e.status or "running", e.trigger_id, e.app_version_id),)


def _run_finished(e: ExecutionFinished) -> Sequence[n.Neutral]:
    error = e.resource.get("error")
    return (n.RunFinished(e.execution_id, e.status, error if isinstance(error, str) else None),)


def _node_started(e: NodeStarted) -> Sequence[n.Neutral]:
    return (n.NodeStarted(e.result_id, e.node_id),)


def _node_finished(e: NodeFinished) -> Sequence[n.Neutral]:
    return (n.NodeFinished(e.result_id, e.node_id, e.status, e.json_output, e.error, tuple(e.out_ports)),)


def _tool_started(e: ToolCallStarted) -> Sequence[n.Neutral]:
    return (n.ToolStarted(e.tool_call_id, e.tool_name, e.args, node_id=e.node_id),)


def _tool_response(e: ToolResponse) -> Sequence[n.Neutral]:
    return (n.ToolFinished(e.tool_call_id, e.tool_name, e.result, node_id=e.node_id),)


def _recovered(e: StreamRecovered) -> Sequence[n.Neutral]:
    message = e.message
    return (n.Recovered(message.status, message.answer),)


def _malformed(e: MalformedFrame) -> Sequence[n.Neutral]:
    return (n.Anomaly(f"malformed frame: {e.error}"),)


_TABLE: dict[str, Callable[..., Sequence[n.Neutral]]] = {
    Name.MESSAGE_CREATED: _created,
    Name.CHAT_MESSAGE: _text,
    Name.EXECUTION_STARTED: _run_started,
    Name.EXECUTION_FINISHED: _run_finished,
    Name.NODE_STARTED: _node_started,
    Name.NODE_FINISHED: _node_finished,
    Name.TOOL_CALL_STARTED: _tool_started,
    Name.TOOL_RESPONSE: _tool_response,
    Name.RECOVERED: _recovered,
    Name.MALFORMED: _malformed,
}


def translate(event: Event) -> Sequence[n.Neutral]:
    """One wire event -> its neutral events (none for a heartbeat or an unknown name)."""
    handler = _TABLE.get(event.event)
    if handler is None:
        return NONE
    if type(event) is Event:  # a hand-made event: give it its typed class first
        event = event_from_wire(event.event, event.data)
    return handler(event)


translate.text_of = text_of  # type: ignore[attr-defined]  # see Reply.apply_all


def translator() -> Translator:
    """Atomemo's translation keeps no state between events."""
    return translate
