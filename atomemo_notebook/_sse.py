"""SSE framing: httpx-sse's line splitter and field parser, with its two departures from
the WHATWG event-stream rules corrected here (the only hand-written part):

- a leading U+FEFF must be skipped; httpx-sse glues it to the first field name, so the
  first event is lost;
- a block with no `data:` line must not be dispatched; httpx-sse dispatches it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

__all__ = ["FrameDecoder", "aiter_frames", "iter_frames"]

BOM = "\ufeff"


class FrameDecoder:
    """Text in, complete SSE events out. Feed any split of the stream; call flush() at EOF."""

    def __init__(self) -> None:
        self._lines = SSELineDecoder()
        self._fields = SSEDecoder()
        self._started = False

    def feed(self, text: str) -> list[ServerSentEvent]:
        if not self._started:
            if not text:
                return []
            self._started = True
            if text[0] == BOM:
                text = text[1:]
                if not text:
                    return []
        return self._decode(self._lines.decode(text))

    def _decode(self, lines: list[str]) -> list[ServerSentEvent]:
        fields = self._fields
        decode = fields.decode
        out = []
        for line in lines:
            if not line and not fields._data:
                # WHATWG "dispatch": an empty data buffer resets the block and dispatches nothing.
                fields._event, fields._retry = "", None
                continue
            sse = decode(line)
            if sse is not None:
                out.append(sse)
        return out

    def flush(self) -> list[ServerSentEvent]:
        # A CR held back (it might have been half of a CRLF) did end its line; any other
        # unterminated text is an incomplete line, dropped as the WHATWG rules say.
        complete = self._lines.trailing_cr
        lines = self._lines.flush()
        return self._decode(lines) if complete else []


def iter_frames(chunks: Iterable[str]) -> Iterator[ServerSentEvent]:
    decoder = FrameDecoder()
    for text in chunks:
        yield from decoder.feed(text)
    yield from decoder.flush()


async def aiter_frames(chunks: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = FrameDecoder()
    async for text in chunks:
        for sse in decoder.feed(text):
            yield sse
    for sse in decoder.flush():
        yield sse
