"""Time travel through a reply: the reply as it stood at a moment of its run, folded again
from its own event log by the same fold the live view uses (Reply.apply), never a second
implementation. A moment is an offset in seconds since the reply started, or a count of
events."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reply import Reply

__all__ = ["Refold", "as_of", "event_index"]


def event_index(reply: Reply, seconds: float) -> int:
    """How many of the reply's events had arrived `seconds` after it started."""
    if seconds != seconds:  # NaN: no moment at all
        raise ValueError("seconds must be a number, got NaN")
    events = reply.events
    low, high = 0, len(events)
    while low < high:  # offsets never decrease: the first event later than `seconds`
        middle = (low + high) // 2
        if events.offset(middle) <= seconds:
            low = middle + 1
        else:
            high = middle
    return low


def as_of(reply: Reply, *, seconds: float | None = None, event: int | None = None) -> Reply:
    """A new Reply: `reply` after its first `event` events, or as of `seconds` after it started
    (exactly one of the two). At the end of the log it is the reply as it ended (its status,
    its end time); before, it is still `streaming`, its open node runs running."""
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
    then = _fresh(reply)
    events = reply.events
    resumes = _resumes(reply)
    for seq in range(count):
        offset = events.offset(seq)
        while resumes and resumes[0] <= offset:  # the run went on (its form answered) before this event
            then.resume_at(resumes.pop(0))
        then.apply(events.event(seq), offset)
    while seconds is not None and resumes and resumes[0] <= seconds:
        then.resume_at(resumes.pop(0))
    if count == total and reply.done:
        _end_like(then, reply)
    return then


class Refold:
    """The reply's event log folded again one event at a time by the live fold (Reply.apply),
    into one fresh Reply (`then`) that only moves forward: time travel's tape is read from it,
    so each moment costs one event, not a fold from the start. A reply still streaming can be
    followed: `step()` again once more events arrived. Once the log is whole and the reply done,
    `then` is the reply as it ended, as in as_of()."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.then = _fresh(reply)
        self.count = 0  # events folded
        self.resumed = 0  # of the reply's pauses, those whose end was folded
        self.ended = False

    def step(self) -> bool:
        """Fold the next event (or, after the last one of a finished reply, the end); False when
        there is nothing new yet."""
        events = self.reply.events
        if self.count < len(events):
            offset = events.offset(self.count)
            resumes = _resumes(self.reply)
            while self.resumed < len(resumes) and resumes[self.resumed] <= offset:
                self.then.resume_at(resumes[self.resumed])
                self.resumed += 1
            self.then.apply(events.event(self.count), offset)
            self.count += 1
        elif self.reply.done and not self.ended and self.count == len(events):
            self.ended = True
            _end_like(self.then, self.reply)
            return True
        else:
            return False
        if self.count == len(events) and self.reply.done and not self.ended:
            self.ended = True
            _end_like(self.then, self.reply)
        return True


def _resumes(reply: Reply) -> list[float]:
    """Where the live reply went on after each pause (its form answered): a refold resumes there.
    Not in the event log: the answer was the kernel's own request, not an event of the stream."""
    return [end for _, end in list(reply.pauses) if end is not None]


def _fresh(reply: Reply) -> Reply:
    from .reply import Reply

    return Reply(reply.query, parent_id=reply.parent_id, node_names=dict(reply._node_names),
                 started_at=reply.started_at, translate=reply._fresh_translator(), clock=reply._clock)


def _end_like(then: Reply, reply: Reply) -> None:
    then.message_id = then.message_id or reply.message_id
    then.conversation_id = then.conversation_id or reply.conversation_id
    then.close(reply.status, reply.error, offset=reply.finished)
    then.anomalies = list(reply.anomalies)  # the end's own notes, not those of closing again
