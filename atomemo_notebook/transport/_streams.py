"""Event streams of one message: iterate events as they arrive; resume transparently.

The decisions live in `StreamState`; these two classes only wait, in their own way. A
stream is idle when no event (heartbeats and data-less keep-alives included) arrived for `stream_idle_timeout`
seconds, however many bytes trickled in: that ends the connection and resumes.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import httpx

from ..protocol._bounded import guarded
from ..protocol._errors import (
    APITimeoutError,
)
from ..protocol._log import get_logger
from ..protocol._sse import FrameDecoder
from ..protocol._wire import Event
from . import _watchdog as watchdog
from ._inflate import Inflater
from ._resume import StreamPolicy, after_break

if TYPE_CHECKING:
    from ._client import AsyncHttp, SyncHttp

__all__ = ["AsyncEventStream", "AsyncStream", "EventStream", "SyncStream", "shutdown_socket"]

log = get_logger("atomemo_notebook.stream")


# Each connection's socket, by its network stream: httpcore's stream asks anyio, which builds
# every attribute of the socket anew on each question (a getpeername() among them, ~15 us),
# and a kept-alive connection carries answer after answer.
_SOCKETS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_SOCKETS_LOCK = threading.Lock()


def socket_of(response: httpx.Response) -> Any:
    """The socket a response is read from, where its transport says (httpx's own transports do;
    on an event loop, asyncio's wrapper of it, which can shut it down too)."""
    network = response.extensions.get("network_stream")
    if network is None:
        return None
    try:
        with _SOCKETS_LOCK:
            return _SOCKETS[network]
    except KeyError:
        pass
    except TypeError:  # a stream that cannot be weakly referred to: asked each time
        return _socket(network)
    sock = _socket(network)
    with _SOCKETS_LOCK:
        _SOCKETS[network] = sock
    return sock


def _socket(network: Any) -> Any:
    sock = network.get_extra_info("socket")
    return sock if callable(getattr(sock, "shutdown", None)) else None


def shutdown_socket(response: httpx.Response) -> None:
    """Wake a recv() blocked in another thread: closing a socket does not, shutdown does."""
    sock = socket_of(response)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class SyncStream(Protocol):
    """What a chat reads one answer from, whatever the system: its events, until the end or
    `close()` (from any thread)."""

    @property
    def message_id(self) -> str | None: ...
    def __iter__(self) -> Iterator[Event]: ...
    def __enter__(self) -> SyncStream: ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...


class AsyncStream(Protocol):
    """`SyncStream`, awaited. `received`: bytes of the answer read so far, for a stream that
    counts them (None: one that does not; a chat holds back folding only what it can bound)."""

    @property
    def received(self) -> int | None: ...
    @property
    def message_id(self) -> str | None: ...
    def __aiter__(self) -> AsyncIterator[Event]: ...
    def batches(self) -> AsyncIterator[list[Event]]: ...
    async def __aenter__(self) -> AsyncStream: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def close(self) -> None: ...


def _idle(state: StreamPolicy, default: float) -> float:
    """The silence allowed now: a policy may allow less for a while (Dify, before the message
    is named)."""
    shorter = state.idle_timeout
    return min(default, shorter) if shorter is not None and shorter > 0 else default


def _idle_error(seconds: float) -> APITimeoutError:
    return APITimeoutError(f"no event for {seconds:g} s (stream_idle_timeout)")


def _parser(client: SyncHttp | AsyncHttp) -> Callable[[str], Event]:
    """The system's frame parser, refusing a frame past Limits.json_values or nested too deep."""
    return guarded(client.DIALECT.parse_frame, client.limits.json_values)


class _StreamBase:
    _state: StreamPolicy

    @property
    def message_id(self) -> str | None:
        return self._state.message_id

    @property
    def conversation_id(self) -> str | None:
        return self._state.conversation_id

    @property
    def resumes(self) -> int:
        """How many times the stream was resumed after a broken connection."""
        return self._state.resumes

    @property
    def recovered(self) -> bool:
        """True when the end came from stored history because the stream was unresumable."""
        return self._state.recovered

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message_id={self.message_id!r}, resumes={self.resumes})"


class EventStream(_StreamBase):
    """Iterator of `Event`s and a context manager; `close()` ends it early."""

    def __init__(self, client: SyncHttp, response: httpx.Response, state: StreamPolicy) -> None:
        self._client = client
        self._response = response
        self._state = state
        self._closed = False
        self._iterator = self._events()

    def __iter__(self) -> Iterator[Event]:
        return self._iterator  # the generator itself: no extra call per event

    def __next__(self) -> Event:
        return next(self._iterator)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the stream now; safe to call from another thread (e.g. a Stop button)."""
        self._closed = True
        shutdown_socket(self._response)
        self._response.close()

    def _decoder(self) -> FrameDecoder:
        limits = self._client.limits
        return FrameDecoder(max_line=limits.line, max_event=limits.event)

    def _events(self) -> Iterator[Event]:
        state, accept, parse = self._state, self._state.accept, _parser(self._client)
        idle = _idle(state, self._client.stream_idle_timeout)
        expiry = watchdog.watch(time.monotonic() + idle, lambda: shutdown_socket(self._response))
        try:
            while True:
                cause: BaseException | None = None
                decoder = self._decoder()
                try:
                    inflater = Inflater(self._response.headers.get("content-encoding", ""))
                    for raw in self._response.iter_raw():
                        for chunk in inflater.feed(raw):
                            seen = decoder.blocks
                            frames = decoder.feed(chunk)
                            if decoder.blocks != seen:
                                idle = _idle(state, self._client.stream_idle_timeout)
                                expiry.deadline = time.monotonic() + idle
                            for sse in frames:
                                event = parse(sse.data)
                                if accept(event):
                                    yield event
                                if state.final:  # nothing more matters (see StreamPolicy.final)
                                    return
                    for sse in decoder.flush():
                        event = parse(sse.data)
                        if accept(event):
                            yield event
                except httpx.TransportError as exc:
                    cause = exc
                finally:
                    self._response.close()
                if expiry.expired:
                    cause = _idle_error(idle)
                if self._closed or state.finished:
                    return
                after = self._client._drive(after_break(state, cause), shared=False)
                if not isinstance(after, httpx.Response):
                    yield from after
                    return
                self._response = after
                if expiry.expired:  # a watch fires once: arm a new one for the resumed connection
                    expiry = watchdog.watch(time.monotonic() + idle, lambda: shutdown_socket(self._response))
                else:
                    expiry.deadline = time.monotonic() + idle
        finally:
            expiry.cancel()


class AsyncEventStream(_StreamBase):
    """Async iterator of `Event`s and an async context manager; `await close()` ends it early."""

    received = 0  # bytes of the answer read so far, inflated (across resumes): see AsyncStream

    def __init__(self, client: AsyncHttp, response: httpx.Response, state: StreamPolicy) -> None:
        self._client = client
        self._response = response
        self._state = state
        self._closed = False
        self._reader: AsyncGenerator[list[Event], None] | None = None  # made by the first read
        self._iterator = self._events()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterator

    async def __anext__(self) -> Event:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        await self._response.aclose()

    def batches(self) -> AsyncGenerator[list[Event], None]:
        """The events as they arrive together: one list per network read (what a chat folds in
        one go; iterating the stream itself gives them one at a time, from the same reader)."""
        if self._reader is None:
            self._reader = self._batches()
        return self._reader

    async def _events(self) -> AsyncIterator[Event]:
        async with contextlib.aclosing(self.batches()) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        state, accept, parse = self._state, self._state.accept, _parser(self._client)
        idle = _idle(state, self._client.stream_idle_timeout)
        limits = self._client.limits
        while True:
            cause: BaseException | None = None
            decoder = FrameDecoder(max_line=limits.line, max_event=limits.event)
            chunks = self._response.aiter_raw().__aiter__()
            # The idle deadline: a timer of the loop's that shuts the socket, which ends the read
            # (one per connection); a transport with no socket of its own gets a cancel scope per read.
            abort = functools.partial(shutdown_socket, self._response)
            expiry = watchdog.watch_on_loop(time.monotonic() + idle, abort) if socket_of(self._response) else None
            deadline = time.monotonic() + idle
            try:
                inflater = Inflater(self._response.headers.get("content-encoding", ""))
                while True:
                    if expiry is not None:
                        try:
                            raw = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                    else:
                        with anyio.CancelScope(deadline=deadline) as scope:
                            try:
                                raw = await chunks.__anext__()
                            except StopAsyncIteration:
                                break
                        if scope.cancelled_caught:
                            cause = _idle_error(idle)
                            break
                    for chunk in inflater.feed(raw):
                        self.received += len(chunk)  # as inflated: what is held is bounded in what it parses to
                        seen = decoder.blocks
                        frames = decoder.feed(chunk)
                        if decoder.blocks != seen:  # the deadline moves when whole events arrive, not bytes
                            idle = _idle(state, self._client.stream_idle_timeout)
                            deadline = time.monotonic() + idle
                            if expiry is not None:
                                expiry.deadline = deadline
                        batch: list[Event] = []
                        for sse in frames:
                            event = parse(sse.data)
                            if accept(event):
                                batch.append(event)
                            if state.final:  # nothing more matters (see StreamPolicy.final)
                                if batch:
                                    yield batch
                                return
                        if batch:
                            yield batch
                if cause is None:
                    batch = [event for sse in decoder.flush() if accept(event := parse(sse.data))]
                    if batch:
                        yield batch
            except httpx.TransportError as exc:
                cause = exc
            finally:
                if expiry is not None:
                    expiry.cancel()
                await self._response.aclose()
            if expiry is not None and expiry.expired:
                cause = _idle_error(idle)
            if self._closed or state.finished:
                return
            after = await self._client._drive(after_break(state, cause), shared=False)
            if not isinstance(after, httpx.Response):
                if after:
                    yield list(after)
                return
            self._response = after
