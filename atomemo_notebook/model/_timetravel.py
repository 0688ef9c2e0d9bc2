"""Time travel through a reply: the reply as it stood at a moment of its run, folded again
from its own event log by the same fold the live view uses (Reply.apply), never a second
implementation. A moment is an offset in seconds since the reply started, or a count of
events."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reply import Reply

__all__ = ["as_of", "event_index"]


def event_index(reply: Reply, seconds: float) -> int:
    """How many of the reply's events had arrived `seconds` after it started."""
    if seconds != seconds:  # NaN: no moment at all
        raise ValueError("seconds must be a number, got NaN")
    records = reply.events
    low, high = 0, len(records)
    while low < high:  # offsets never decrease: the first event later than `seconds`
        middle = (low + high) // 2
        if records[middle].offset <= seconds:
            low = middle + 1
        else:
            high = middle
    return low


def as_of(reply: Reply, *, seconds: float | None = None, event: int | None = None) -> Reply:
    """A new Reply: `reply` after its first `event` events, or as of `seconds` after it started
    (exactly one of the two). At the end of the log it is the reply as it ended (its status,
    its end time); before, it is still `streaming`, its open node runs running."""
    from .reply import Reply

    if (seconds is None) == (event is None):
        raise TypeError("as_of() takes exactly one of seconds= or event=")
    total = len(reply.events)
    if event is not None:
        if isinstance(event, bool) or not isinstance(event, int) or not 0 <= event <= total:
            raise ValueError(f"event must be a whole number from 0 to {total} (the reply's events), got {event!r}")
        count = event
    else:
        assert seconds is not None
        count = event_index(reply, float(seconds))
    then = Reply(reply.query, parent_id=reply.parent_id, node_names=dict(reply._node_names),
                 started_at=reply.started_at, translate=reply._fresh_translator(), clock=reply._clock)
    for record in reply.events[:count]:
        then.apply(record.event, record.offset)
    if count == total and reply.done:
        then.message_id = then.message_id or reply.message_id
        then.conversation_id = then.conversation_id or reply.conversation_id
        then.close(reply.status, reply.error, offset=reply.finished)
        then.anomalies = list(reply.anomalies)  # the end's own notes, not those of closing again
    return then
