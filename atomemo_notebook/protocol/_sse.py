"""SSE framing, owned outright: bytes in, complete events out, following the WHATWG
event-stream rules step by step, with a bound on every buffer.

Why by hand: httpx-sse's public API reads `response.iter_lines()`, which decodes with the
Content-Type's charset (an event stream is always UTF-8), has no bound on a line, glues a
leading BOM to the first field and dispatches blocks without data. Each of those is a rule
below, and tests/test_sse.py checks each with the spec's own examples.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator

from ._errors import LimitExceededError

__all__ = ["FrameDecoder", "ServerSentEvent", "iter_frames"]

BOM = "\ufeff"
DEFAULT_MAX_LINE = 16 * 1024 * 1024  # characters of one line
DEFAULT_MAX_EVENT = 32 * 1024 * 1024  # characters of one event's data


class ServerSentEvent:
    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event: str, data: str, id: str, retry: int | None) -> None:
        self.event, self.data, self.id, self.retry = event, data, id, retry

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r})"


class FrameDecoder:
    """Feed any split of the byte stream; call flush() at its end.

    Raises LimitExceededError when a line or an event's data grows past its bound, so a
    server that never sends a line break cannot grow memory without end.
    """

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        self.max_line = max_line
        self.max_event = max_event
        self.last_event_id = ""
        self.retry: int | None = None
        # The stream is UTF-8 whatever the headers say; bad bytes become U+FFFD.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._partial = ""  # an unterminated line
        self._after_cr = False  # the last chunk ended with CR: a leading LF now is its pair
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._in_block = False  # a field or comment since the last blank line
        self.blocks = 0  # blocks ended, with data or not: a keep-alive (`event: ping`) is life too

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        return self._feed_text(self._utf8.decode(chunk))

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: a line ended by a final CR counts; an unfinished event is dropped."""
        out = self._feed_text(self._utf8.decode(b"", final=True))
        self._partial = ""
        self._event, self._data, self._data_size = "", [], 0
        return out

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == BOM:
                text = text[1:]
        if self._after_cr:
            self._after_cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._partial += text
            self._check_line()
            return []
        lines = text.split("\n")
        if self._partial:
            lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        self._check_line()
        out: list[ServerSentEvent] = []
        for line in lines:
            if line:
                self._in_block = True
                if line[:6] == "data: ":  # nearly every line: no field parsing (see _field)
                    self._add_data(line[6:])
                else:
                    self._field(line)
                continue
            if self._in_block:
                self.blocks += 1
                self._in_block = False
            if self._data:
                out.append(self._dispatch())
            else:
                self._event = ""  # a block with no data dispatches nothing
        return out

    def _check_line(self) -> None:
        if len(self._partial) > self.max_line:
            size = len(self._partial)
            self._partial = ""
            raise LimitExceededError("max_line", self.max_line, f"an SSE line grew past {size:,} characters "
                                     f"without a line break (limit max_line={self.max_line:,})")

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if not name and colon:
            return  # a comment
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._add_data(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _add_data(self, value: str) -> None:
        self._data.append(value)
        self._data_size += len(value) + 1
        if self._data_size > self.max_event:
            size, self._data, self._data_size = self._data_size, [], 0
            raise LimitExceededError("max_event", self.max_event,
                                     f"an SSE event's data grew past {size:,} characters "
                                     f"(limit max_event={self.max_event:,})")

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(self._event or "message", data, self.last_event_id, self.retry)
        self._event, self._data, self._data_size = "", [], 0
        return event


def iter_frames(chunks: Iterable[bytes], **limits: int) -> Iterator[ServerSentEvent]:
    decoder = FrameDecoder(**limits)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
