"""Record & replay: a conversation's raw events as JSON Lines (arrival offsets kept, the
key never: only events, queries and ids are written), replayed into Replies with no server,
at real speed, N times faster, or at once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..protocol._files import write_atomic
from ..protocol._systems import event_for, translator_for
from ..protocol._wire import Event, FileRef, format_datetime, parse_datetime
from .reply import Reply

__all__ = [
    "EventLog",
    "ReplyLog",
    "event_wires",
    "load_events",
    "log_lines",
    "replay",
    "replay_async",
    "reply_log",
    "reply_wire",
    "save_replies",
]

FORMAT = "atomemo-notebook/events"
VERSION = 2  # 2: each event line carries `seq`, its index in its reply, so gaps and repeats show
MAX_LINE = 64 * 1024 * 1024  # characters of one line of a log


@dataclasses.dataclass
class ReplyLog:
    query: str | FileRef
    parent_id: str | None
    message_id: str | None
    started_at: datetime
    status: str
    finished: float | None
    events: list[tuple[float, Event]] = dataclasses.field(default_factory=list)
    anomalies: list[str] = dataclasses.field(default_factory=list)
    next_seq: int = 0
    system: str | None = None  # whose events these are (the header says)

    def add(self, number: int, item: dict[str, Any]) -> None:
        """One event line, checked against the ones before it: a repeat is reported and
        skipped, a gap reported (the text may then be incomplete)."""
        offset = float(item["offset"])
        seq = item.get("seq")
        if seq is not None:
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError(f"'seq' must be a whole number, got {seq!r}")
            if seq < self.next_seq:
                self.anomalies.append(f"line {number} repeats event #{seq}; skipped")
                return
            if seq > self.next_seq:
                missing = f"#{self.next_seq}" if seq == self.next_seq + 1 else f"#{self.next_seq}..#{seq - 1}"
                self.anomalies.append(f"event {missing} missing before line {number}: "
                                      "the replayed answer may be incomplete")
            self.next_seq = seq + 1
        elif self.events and offset < self.events[-1][0]:
            self.anomalies.append(f"line {number} goes back in time ({offset:g} s after "
                                  f"{self.events[-1][0]:g} s)")
        self.events.append((offset, event_for(self.system, item["event"], item.get("data"))))


@dataclasses.dataclass
class EventLog:
    """A saved log as `load_events` reads it: its header and each reply's events, not yet folded."""

    header: dict[str, Any]
    replies: list[ReplyLog]


def _query_wire(query: str | FileRef) -> Any:
    return query.to_wire() if isinstance(query, FileRef) else query


def _query_from_wire(value: Any) -> str | FileRef:
    return FileRef.from_wire(value) if FileRef.is_file_ref(value) else str(value)


def reply_wire(reply: Reply) -> dict[str, Any]:
    """A reply's own line of a log (the evaluation cache stores the same)."""
    return {"type": "reply", "message_id": reply.message_id, "parent_id": reply.parent_id,
            "query": _query_wire(reply.query), "started_at": format_datetime(reply.started_at),
            "status": reply.status, "finished": reply.finished}


def event_wires(reply: Reply) -> list[dict[str, Any]]:
    """A reply's event lines, numbered, with their arrival offsets."""
    return [{"type": "event", "message_id": reply.message_id, "seq": seq, "offset": record.offset,
             **record.event.to_wire()} for seq, record in enumerate(reply.events)]


def reply_log(item: dict[str, Any], system: str | None) -> ReplyLog:
    """A reply line read back, ready for its events."""
    return ReplyLog(query=_query_from_wire(item["query"]), parent_id=item.get("parent_id"),
                    message_id=item.get("message_id"),
                    started_at=parse_datetime(item.get("started_at")) or datetime.now(timezone.utc),
                    status=item.get("status", "succeeded"), finished=item.get("finished"), system=system)


def save_replies(path: str | Path, replies: Iterable[Reply], **header: Any) -> Path:
    path = Path(path)
    lines = [{"type": "header", "format": FORMAT, "version": VERSION,
              "saved_at": format_datetime(datetime.now(timezone.utc)), **header}]
    for reply in replies:
        lines.append(reply_wire(reply))
        lines.extend(event_wires(reply))
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a hostile answer's "\ud800"): escaped, it round-trips
        data = "".join(json.dumps(line) + "\n" for line in lines).encode("ascii")
    # All or nothing: a failure leaves the file that was there, never half a log.
    return write_atomic(path, data)


def log_lines(path: str | Path, *, errors: str = "strict") -> Iterator[tuple[int, str]]:
    """The non-blank lines of a JSONL file with their numbers, read one at a time and each
    bounded, so a big or hostile file never sits whole in memory. `errors` is open()'s: the
    evaluation cache reads bytes that are not UTF-8 as "surrogateescape", to skip that one line."""
    with Path(path).open(encoding="utf-8", errors=errors) as lines:
        number = 0
        while line := lines.readline(MAX_LINE + 1):
            number += 1
            if len(line) > MAX_LINE:
                raise ValueError(f"{path}:{number}: line longer than {MAX_LINE:,} characters")
            if line.strip():
                yield number, line


def load_events(path: str | Path) -> EventLog:
    """Read a log written by save_events(); a clear ValueError names the first bad line."""
    header: dict[str, Any] | None = None
    replies: list[ReplyLog] = []
    for number, line in log_lines(path):
        try:
            item = json.loads(line)
            kind = item["type"]
            if kind == "header":
                if item.get("format") != FORMAT:
                    raise ValueError(f"not an {FORMAT} log")
                if not isinstance(item.get("version"), int) or item["version"] > VERSION:
                    raise ValueError(f"log version {item.get('version')!r} is newer than this "
                                     f"package reads ({VERSION}); upgrade atomemo-notebook")
                translator_for(item.get("system"))  # a system this package cannot read is refused here
                header = item
            elif kind == "reply":
                replies.append(reply_log(item, (header or {}).get("system")))
            elif kind == "event":
                if not replies:
                    raise ValueError("an event before any reply line")
                replies[-1].add(number, item)
            else:
                raise ValueError(f"unknown line type {kind!r}")
        except RecursionError:
            raise ValueError(f"{path}:{number}: JSON nested too deeply") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    if header is None:
        raise ValueError(f"{path}: no header line; was it written by save_events()?")
    return EventLog(header, replies)


OnEvent = Callable[[Reply, Event], None]


def _play(log: EventLog, speed: float | None, on_event: OnEvent | None,
          replies: list[Reply]) -> Iterator[float]:
    """Fold the log into `replies`, yielding each wait (in seconds) for the caller to sleep."""
    names = {k: (str(v[0]), str(v[1])) for k, v in (log.header.get("node_names") or {}).items()}
    for entry in log.replies:
        reply = Reply(entry.query, parent_id=entry.parent_id, started_at=entry.started_at, node_names=names,
                      translate=translator_for(log.header.get("system")))
        reply.anomalies.extend(entry.anomalies)
        replies.append(reply)
        previous = 0.0
        for offset, event in entry.events:
            if speed:
                yield max(0.0, offset - previous) / speed
            previous = offset
            reply.apply(event, offset)
            if on_event is not None:
                on_event(reply, event)
        # Only a stop is not visible in the events themselves.
        reply.close("stopped" if entry.status == "stopped" else None, offset=entry.finished)


def _log(source: str | Path | EventLog) -> EventLog:
    return source if isinstance(source, EventLog) else load_events(source)


def replay(source: str | Path | EventLog, *, speed: float | None = None,
           on_event: OnEvent | None = None, sleep: Callable[[float], None] = time.sleep) -> list[Reply]:
    """Fold a saved log into Replies. speed=None: at once; 1.0: real time; 4.0: four times faster."""
    replies: list[Reply] = []
    for wait in _play(_log(source), speed, on_event, replies):
        sleep(wait)
    return replies


async def replay_async(source: str | Path | EventLog, *, speed: float | None = None,
                       on_event: OnEvent | None = None) -> list[Reply]:
    """replay() for an event loop: waits with asyncio.sleep."""
    replies: list[Reply] = []
    for wait in _play(_log(source), speed, on_event, replies):
        await asyncio.sleep(wait)
    return replies
