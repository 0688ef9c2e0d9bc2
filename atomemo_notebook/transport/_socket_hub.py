"""One WebSocket shared by every chat of a client (Pipelit's `/ws/`): opened and subscribed
before a message is sent, so no event can be missed between the POST and the first event;
events routed by execution id (a workflow's channel carries every execution of it); pings
answered; reconnected with backoff when it drops, resubscribed, and every execution that was
running told that events may be missing; closed with the client.

Reconnecting is bounded (`Reconnect`): failed opens are counted until a socket proves itself
(subscribed, and open for a while), so a server that accepts and closes at once cannot reset
the count with every handshake; the waits grow exponentially with jitter up to a ceiling; and
nothing is reopened while no chat waits on the socket (the next ask opens it again). A message
over the size limit is refused by the protocol (websockets' `max_size`) and fails the chats
waiting with a `LimitExceededError`, instead of being read again on every reconnect.

It lives on its own thread and event loop, so sync and async chats share it alike; each
watcher gets its events through a thread-safe hand-off of its own choosing. Written by hand:
the `websockets` library speaks the protocol, but no library routes one channel's events to
many waiting consumers with the replay of what came before they asked."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode

from ..protocol._bounded import guarded
from ..protocol._errors import (
    APIConnectionError,
    AuthenticationError,
    LimitExceededError,
    PermissionDeniedError,
)
from ..protocol._log import get_logger
from ..protocol._wire import Event, MalformedFrame
from ..protocol.pipelit.events import CONTROL, Name, parse_message
from ._base_client import redact
from ._retry import backoff_delay

__all__ = ["Hub", "Reconnect", "Watch", "socket_url"]

log = get_logger("atomemo_notebook.transport.socket")
# websockets logs the request line (with ?token=...) at debug level: its logger stays quiet.
_quiet = logging.getLogger("atomemo_notebook.transport.socket.wire")
_quiet.setLevel(logging.WARNING)
_quiet.propagate = False

MAX_UNCLAIMED_EXECUTIONS = 64  # executions seen on a channel that nobody watches (yet)
MAX_UNCLAIMED_EVENTS = 2_000  # events kept for one of them, until its watcher comes
MAX_RECONNECT_DELAY = 30.0  # Pipelit's own frontend caps its backoff here


@dataclasses.dataclass(frozen=True)
class Reconnect:
    """How the WebSocket is reopened after it drops: `PipelitClient(reconnect=Reconnect(...))`."""

    tries: int = 8
    """Failed opens in a row after which the chats waiting are told the socket is gone."""
    initial: float = 0.5
    """Seconds before the first reopen; each failure doubles it (less up to a quarter at random)."""
    ceiling: float = MAX_RECONNECT_DELAY
    """The longest wait between two opens."""
    proven_after: float = 10.0
    """Seconds a socket must stay open, subscribed, before its drop starts the count afresh."""

    def __post_init__(self) -> None:
        if not isinstance(self.tries, int) or isinstance(self.tries, bool) or self.tries < 0:
            raise ValueError(f"Reconnect.tries must be an int >= 0, got {self.tries!r}")
        for name in ("initial", "ceiling", "proven_after"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ValueError(f"Reconnect.{name} must be a positive number of seconds, got {value!r}")
        if self.ceiling < self.initial:
            raise ValueError("Reconnect.ceiling must be >= Reconnect.initial")

    def delay(self, failures: int) -> float:
        """Seconds before the open that follows `failures` failed ones in a row."""
        return backoff_delay(failures, initial=self.initial, ceiling=self.ceiling)


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
                 reconnect: Reconnect | None = None, idle_ping: float = 45.0, max_values: int = 2_000_000) -> None:
        self._url = socket_url(base_url)
        self._token = token
        self.open_timeout = open_timeout
        self.max_message = max_message  # bytes of one message: websockets refuses a bigger one unread
        self.reconnect = reconnect or Reconnect()
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
        self._subscribing = 0  # subscriptions being waited for: a chat about to ask
        self._confirmed_here = False  # the server confirmed a subscription on the current socket
        self._last_cause: str | None = None  # why the last socket closed or failed to open
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
        """Stop this watch (not another one of the same execution that replaced it since)."""
        with contextlib.suppress(RuntimeError):  # the hub's loop is closed: nothing is watched
            self._loop.call_soon_threadsafe(self._unwatch, watch)

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
        self._subscribing += 1
        try:
            self._ensure_runner()
            confirmed = self._channels.get(channel)
            if confirmed is None or (confirmed.done() and confirmed.exception() is not None):
                confirmed = self._channels[channel] = asyncio.get_running_loop().create_future()
                if self._ws is not None:
                    await self._send({"type": "subscribe", "channel": channel})
            try:
                await asyncio.wait_for(asyncio.shield(confirmed), timeout or self.open_timeout)
            except TimeoutError:
                why = f" (the last socket: {self._last_cause})" if self._last_cause else ""
                raise APIConnectionError(f"the WebSocket did not confirm the subscription to {channel} within "
                                         f"{timeout or self.open_timeout:g} s{why}") from None
        finally:
            self._subscribing -= 1
            self._stop_if_idle()

    def _ensure_runner(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._keep_open())

    @property
    def _waiting(self) -> bool:
        """A chat waits on the socket: for a subscription, or for an execution's events."""
        return bool(self._watches) or self._subscribing > 0

    def _stop_if_idle(self) -> None:
        """Nobody waits and the socket is down: stop reopening it (the next ask reopens it)."""
        if not self._waiting and self._ws is None and self._runner is not None and not self._runner.done():
            self._runner.cancel()

    def _claim(self, watch: Watch) -> None:
        if self._fatal is not None:
            watch.deliver(self._fatal)
            return
        self._watches[watch.execution_id] = watch
        for event in self._unclaimed.pop(watch.execution_id, []):
            watch.deliver(event)
        # The socket may have dropped between the subscription and now, with nobody waiting:
        # reopen it (the reopening tells this watch that events may be missing).
        self._ensure_runner()

    def _unwatch(self, watch: Watch) -> None:
        if self._watches.get(watch.execution_id) is watch:
            del self._watches[watch.execution_id]
        self._stop_if_idle()

    def _unconfirm(self) -> None:
        """The socket is gone, and its subscriptions with it: a new one must confirm them again."""
        loop = asyncio.get_running_loop()
        for channel, confirmed in list(self._channels.items()):
            if confirmed.done() and not confirmed.cancelled() and confirmed.exception() is None:
                self._channels[channel] = loop.create_future()

    async def _keep_open(self) -> None:
        policy = self.reconnect
        loop = asyncio.get_running_loop()
        failures = 0  # failed opens (and sockets that did not prove themselves) in a row
        while not self._closed:
            opened_at: float | None = None
            cause: BaseException
            try:
                async with connect(f"{self._url}?token={quote(self._token, safe='')}", open_timeout=self.open_timeout,
                                   max_size=self.max_message, ping_interval=None, logger=_quiet,
                                   close_timeout=2) as ws:
                    self._ws = ws
                    opened_at = loop.time()
                    self._confirmed_here = False
                    self.connects += 1
                    if self.connects > 1:
                        for watch in list(self._watches.values()):  # what ran meanwhile may be missing
                            watch.deliver(Event(Name.GAP, {"type": Name.GAP, "execution_id": watch.execution_id}))
                    for channel in list(self._channels):
                        if self._channels[channel].done():
                            self._channels[channel] = loop.create_future()
                        await self._send({"type": "subscribe", "channel": channel})
                    await self._read(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):  # Pipelit refuses a bad token at the handshake, with 403
                    self._give_up(AuthenticationError(f"the WebSocket refused the token (HTTP {status})",
                                                      status_code=status))
                    return
                cause = exc
            except ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    # Refused unread by websockets (max_size); the server would only send it again.
                    self._give_up(LimitExceededError("event", self.max_message, (
                        f"the WebSocket sent a message over {self.max_message:,} bytes (limit Limits.event; "
                        f"{exc.sent.reason or 'message too big'}); it was not read, and the socket was closed")))
                    return
                cause = exc
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                cause = exc
            finally:
                self._ws = None
                self._unconfirm()
            self._last_cause = redact(f"{type(cause).__name__}: {cause}", self._token)[:300]
            proven = opened_at is not None and self._confirmed_here and loop.time() - opened_at >= policy.proven_after
            failures = 1 if proven else failures + 1
            if self.closed:  # closed meanwhile (the property: not narrowed by the loop's test)
                return
            if failures > policy.tries:
                self._give_up(APIConnectionError(
                    f"the WebSocket dropped and could not be reopened after {failures - 1} tries "
                    f"({self._last_cause})"))
                return
            if not self._waiting:
                log.info("WebSocket closed (%s); no chat waits on it: not reopened", type(cause).__name__)
                return
            log.info("WebSocket closed (%s); reconnecting", type(cause).__name__)
            await asyncio.sleep(policy.delay(failures))

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.idle_ping)
            except TimeoutError:  # silence: is anybody there? (the server pings after 30 s idle)
                pong = await ws.ping()
                await asyncio.wait_for(pong, self.open_timeout)
                continue
            if isinstance(raw, bytes):  # Pipelit sends text only
                self._dispatch(MalformedFrame(MalformedFrame.NAME, {
                    "raw": raw[:200].hex(), "error": f"a binary message of {len(raw):,} bytes, not JSON text"}))
                continue
            self._dispatch(self._parse(raw))

    def _dispatch(self, event: Event) -> None:
        message = event.data or {}
        if type(event) is MalformedFrame:
            # Unreadable, so nobody can tell whose it was: every execution watched may miss an event.
            log.warning("WebSocket message dropped: %s", event.data.get("error") if event.data else "malformed")
            for each in list(self._watches.values()):
                each.deliver(event)
            return
        if event.event in CONTROL:
            if event.event == Name.PING:
                asyncio.get_running_loop().create_task(self._send({"type": "pong"}))
            elif event.event == Name.SUBSCRIBED:
                confirmed = self._channels.get(str(message.get("channel")))
                if confirmed is not None and not confirmed.done():
                    self._confirmed_here = True
                    confirmed.set_result(None)
            return
        execution_id = message.get("execution_id")
        if execution_id is None and isinstance(message.get("data"), dict):
            # execution_cancelled names its execution inside `data` only (Pipelit 0.3.16).
            execution_id = message["data"].get("execution_id")
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
