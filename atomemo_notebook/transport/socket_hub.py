"""One WebSocket shared by every chat of a client (Pipelit's `/ws/`): opened and subscribed
before a message is sent, so no event can be missed between the POST and the first event;
events routed by execution id (a workflow's channel carries every execution of it); pings
answered; reconnected with backoff when it drops, resubscribed, and every execution that was
running told that events may be missing; closed with the client.

It lives on its own thread and event loop, so sync and async chats share it alike; each
watcher gets its events through a thread-safe hand-off of its own choosing. Written by hand:
the `websockets` library speaks the protocol, but no library routes one channel's events to
many waiting consumers with the replay of what came before they asked."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..protocol.atomemo.events import Event, MalformedFrame
from ..protocol.bounded import guarded
from ..protocol.errors import APIConnectionError, AuthenticationError, PermissionDeniedError
from ..protocol.log import get_logger
from ..protocol.pipelit.events import CONTROL, Name, parse_message
from .retry import backoff_delay

__all__ = ["Hub", "Watch", "socket_url"]

log = get_logger("atomemo_notebook.transport.socket")
# websockets logs the request line (with ?token=...) at debug level: its logger stays quiet.
_quiet = logging.getLogger("atomemo_notebook.transport.socket.wire")
_quiet.setLevel(logging.WARNING)
_quiet.propagate = False

MAX_UNCLAIMED_EXECUTIONS = 64  # executions seen on a channel that nobody watches (yet)
MAX_UNCLAIMED_EVENTS = 2_000  # events kept for one of them, until its watcher comes
MAX_RECONNECT_DELAY = 30.0  # Pipelit's own frontend caps its backoff here


def socket_url(base_url: str) -> str:
    """The WebSocket endpoint of a REST base URL (http://host:port/api/v1 -> ws://host:port/ws/)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError("base_url must be an http(s) URL")
    return urlunsplit((scheme, parts.netloc, "/ws/", "", ""))


class Watch:
    """The events of one execution, handed to `deliver` (thread-safe) in order. `GAP` says the
    socket dropped meanwhile; an exception says the socket is gone for good."""

    def __init__(self, execution_id: str, deliver: Callable[[Event | BaseException], None]) -> None:
        self.execution_id = execution_id
        self.deliver = deliver


class Hub:
    def __init__(self, base_url: str, token: str, *, open_timeout: float = 10.0, max_message: int = 4 * 2**20,
                 max_reconnects: int = 8, idle_ping: float = 45.0, max_values: int = 2_000_000) -> None:
        self._url = socket_url(base_url)
        self._token = token
        self.open_timeout = open_timeout
        self.max_message = max_message
        self.max_reconnects = max_reconnects
        self.idle_ping = idle_ping  # silence after which we ping the server ourselves
        self._parse = guarded(parse_message, max_values)  # past Limits.json_values: not parsed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="atomemo-socket-hub", daemon=True)
        self._thread.start()
        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._channels: dict[str, asyncio.Future[None]] = {}  # channel -> subscribed (on this socket)
        self._watches: dict[str, Watch] = {}
        self._unclaimed: collections.OrderedDict[str, list[Event]] = collections.OrderedDict()
        self._fatal: BaseException | None = None
        self._closed = False
        self.connects = 0  # sockets opened (1 + reconnects)

    def __repr__(self) -> str:
        return f"Hub(url={self._url!r}, channels={sorted(self._channels)}, watching={len(self._watches)})"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- called from any thread ---------------------------------------------------------------
    def subscribe(self, channel: str, timeout: float) -> None:
        """Open the socket if needed and subscribe; return once the server confirmed it."""
        self._run(self._subscribe(channel), timeout + 1.0)

    async def subscribe_async(self, channel: str, timeout: float) -> None:
        if self._closed:
            raise APIConnectionError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(self._subscribe(channel, timeout), self._loop)
        await asyncio.wrap_future(future)

    def watch(self, execution_id: str, deliver: Callable[[Event | BaseException], None]) -> Watch:
        """Start watching an execution: what already came for it is delivered first."""
        watch = Watch(execution_id, deliver)
        self._loop.call_soon_threadsafe(self._claim, watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._loop.call_soon_threadsafe(self._watches.pop, watch.execution_id, None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)

    def _run(self, coro: Any, timeout: float) -> Any:
        if self._closed:
            coro.close()
            raise APIConnectionError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise APIConnectionError(f"the WebSocket did not confirm within {timeout:g} s") from None

    # -- on the hub's loop ----------------------------------------------------------------------
    async def _subscribe(self, channel: str, timeout: float | None = None) -> None:
        if isinstance(self._fatal, AuthenticationError | PermissionDeniedError):
            raise self._fatal  # the same token would be refused again
        self._fatal = None  # a socket that could not be reopened before: try afresh
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._keep_open())
        confirmed = self._channels.get(channel)
        if confirmed is None or (confirmed.done() and confirmed.exception() is not None):
            confirmed = self._channels[channel] = asyncio.get_running_loop().create_future()
            if self._ws is not None:
                await self._send({"type": "subscribe", "channel": channel})
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), timeout or self.open_timeout)
        except TimeoutError:
            raise APIConnectionError(f"the WebSocket did not confirm the subscription to {channel} within "
                                     f"{timeout or self.open_timeout:g} s") from None

    def _claim(self, watch: Watch) -> None:
        if self._fatal is not None:
            watch.deliver(self._fatal)
            return
        self._watches[watch.execution_id] = watch
        for event in self._unclaimed.pop(watch.execution_id, []):
            watch.deliver(event)

    async def _keep_open(self) -> None:
        failures = 0
        while not self._closed:
            try:
                async with connect(f"{self._url}?token={quote(self._token, safe='')}", open_timeout=self.open_timeout,
                                   max_size=self.max_message, ping_interval=None, logger=_quiet,
                                   close_timeout=2) as ws:
                    self._ws = ws
                    self.connects += 1
                    if self.connects > 1:
                        for watch in list(self._watches.values()):  # what ran meanwhile may be missing
                            watch.deliver(Event(Name.GAP, {"type": Name.GAP, "execution_id": watch.execution_id}))
                    for channel in list(self._channels):
                        if self._channels[channel].done():
                            self._channels[channel] = asyncio.get_running_loop().create_future()
                        await self._send({"type": "subscribe", "channel": channel})
                    failures = 0
                    await self._read(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):  # Pipelit refuses a bad token at the handshake, with 403
                    self._give_up(AuthenticationError(f"the WebSocket refused the token (HTTP {status})",
                                                      status_code=status))
                    return
                failures += 1
                cause: BaseException = exc
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                failures += 1
                cause = exc
            finally:
                self._ws = None
            if self.closed:
                return
            if failures > self.max_reconnects:
                self._give_up(APIConnectionError(
                    f"the WebSocket dropped and could not be reopened after {failures - 1} tries "
                    f"({type(cause).__name__})"))
                return
            log.info("WebSocket closed (%s); reconnecting", type(cause).__name__)
            await asyncio.sleep(min(backoff_delay(failures), MAX_RECONNECT_DELAY))

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.idle_ping)
            except TimeoutError:  # silence: is anybody there? (the server pings after 30 s idle)
                pong = await ws.ping()
                await asyncio.wait_for(pong, self.open_timeout)
                continue
            if isinstance(raw, bytes):
                continue  # Pipelit sends text only
            self._dispatch(self._parse(raw))

    def _dispatch(self, event: Event) -> None:
        message = event.data or {}
        if event.event in CONTROL:
            if event.event == Name.PING:
                asyncio.get_running_loop().create_task(self._send({"type": "pong"}))
            elif event.event == Name.SUBSCRIBED:
                confirmed = self._channels.get(str(message.get("channel")))
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
            return
        execution_id = message.get("execution_id")
        if not isinstance(execution_id, str):
            if type(event) is MalformedFrame:  # unreadable: it may be any watcher's, so all are told
                for each in list(self._watches.values()):
                    each.deliver(event)
            return  # workflow edits and the like: not a chat's business
        watch = self._watches.get(execution_id)
        if watch is not None:
            watch.deliver(event)
            return
        kept = self._unclaimed.setdefault(execution_id, [])
        self._unclaimed.move_to_end(execution_id)
        if len(kept) < MAX_UNCLAIMED_EVENTS:
            kept.append(event)
        while len(self._unclaimed) > MAX_UNCLAIMED_EXECUTIONS:
            self._unclaimed.popitem(last=False)

    async def _send(self, payload: dict[str, Any]) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(payload))

    def _give_up(self, error: BaseException) -> None:
        self._fatal = error
        for confirmed in self._channels.values():
            if not confirmed.done():
                confirmed.set_exception(error)
                confirmed.exception()  # retrieved: no "never retrieved" warning
        for watch in list(self._watches.values()):
            watch.deliver(error)
        self._watches.clear()

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner
        for watch in list(self._watches.values()):
            watch.deliver(APIConnectionError("the client was closed"))
        self._watches.clear()
