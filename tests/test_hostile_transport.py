"""Hostile transports: a WebSocket that closes at once or sends a huge message, redirects to
another host, a Retry-After of an hour, a Dify stream that mixes in another message, frames
that are not JSON. Each probe runs against a real loopback server (uvicorn or
websockets.serve on 127.0.0.x) and counts what reached it; each is bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve

import atomemo_notebook as an
from atomemo_notebook.protocol import _neutral as n
from atomemo_notebook.protocol._wire import MalformedFrame
from atomemo_notebook.protocol.pipelit._adapter import PipelitTranslator
from atomemo_notebook.transport._pipelit import AsyncPipelitClient, PipelitClient
from atomemo_notebook.transport._socket_hub import Hub, Reconnect, Watch

from .conftest import maybe, wait_until

# -- loopback servers ----------------------------------------------------------------------------


@contextlib.contextmanager
def asgi_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """`app` served by uvicorn on `host` and a free port, on a thread; yields its origin."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        thread.join(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


class SocketServer:
    """websockets.serve on 127.0.0.1 on a thread of its own; counts and times every connection."""

    def __init__(self, handler: Callable[[ServerConnection], Awaitable[None]], **options: Any) -> None:
        self.opened: list[float] = []  # time.monotonic() of each connection
        self.arrived = threading.Event()  # set on every connection (cleared by whoever waits)
        self._handler, self._options = handler, options
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        async def counted(ws: ServerConnection) -> None:
            self.opened.append(time.monotonic())
            self.arrived.set()
            with contextlib.suppress(Exception):
                await self._handler(ws)

        self._stop = self._loop.create_future()
        async with serve(counted, "127.0.0.1", 0, **self._options) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def __enter__(self) -> SocketServer:
        self._thread.start()
        assert self._ready.wait(10), "the WebSocket server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(lambda: self._stop is not None and self._stop.set_result(None))
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def quiet_for(self, seconds: float) -> bool:
        """True if no connection arrives within `seconds` from now."""
        self.arrived.clear()
        return not self.arrived.wait(seconds)


async def close_at_once(ws: ServerConnection) -> None:
    await ws.close(1011)


async def confirm(ws: ServerConnection) -> None:
    """Answer the first subscription."""
    request = json.loads(await ws.recv())
    await ws.send(json.dumps({"type": "subscribed", "channel": request["channel"]}))


def take_until(got: queue.Queue[Any], done: Callable[[list[Any]], bool], timeout: float = 10.0) -> list[Any]:
    """What a watch received, until `done(items)` holds, within a deadline."""
    deadline = time.monotonic() + timeout
    items: list[Any] = []
    while not done(items):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no last item within {timeout:g} s; got {items[:20]!r}")
        with contextlib.suppress(queue.Empty):
            items.append(got.get(timeout=left))
    return items


def pipelit(kind: str, base_url: str, **options: Any) -> PipelitClient | AsyncPipelitClient:
    cls = PipelitClient if kind == "sync" else AsyncPipelitClient
    return cls("pipelit-key", base_url=base_url, **options)


# -- 4. the Pipelit reconnect storm ----------------------------------------------------------------

async def test_a_socket_closed_at_once_is_reopened_with_growing_waits_and_not_after_the_ask_failed(kind):
    policy = Reconnect(tries=50, initial=0.1, ceiling=0.4, proven_after=5.0)
    with SocketServer(close_at_once) as server:
        api = pipelit(kind, server.base_url, timeout=1.5, reconnect=policy)
        try:
            with pytest.raises(an.APIConnectionError, match="did not confirm") as info:
                await maybe(api.chat("wf", "hello"))
            failed = len(server.opened)
            server.quiet_for(0.2)  # an open already on its way when the ask failed may still land
            assert len(server.opened) <= failed + 1
            # No chat waits any more: nothing is reopened.
            assert server.quiet_for(4 * policy.ceiling), f"{len(server.opened) - failed} opens after the ask failed"
            gaps = [b - a for a, b in zip(server.opened, server.opened[1:], strict=False)]
        finally:
            await maybe(api.close())
    assert "1011" in str(info.value)  # the error says why: the server's close code
    # 1.5 s at 0.1 s doubling to 0.4 s (less up to a quarter): about 5 opens, not 15 or more.
    assert 3 <= failed <= 8, gaps
    assert gaps[2] > 2 * gaps[0], gaps  # the waits grow...
    assert max(gaps) < policy.ceiling + 0.5, gaps  # ...up to the ceiling


def test_a_socket_that_closes_after_confirming_is_not_a_success_the_count_runs_out():
    async def confirm_then_close(ws: ServerConnection) -> None:
        await confirm(ws)
        await ws.close(1011)

    policy = Reconnect(tries=3, initial=0.05, ceiling=0.2, proven_after=5.0)
    with SocketServer(confirm_then_close) as server:
        hub = Hub(server.base_url, "key", open_timeout=5.0, reconnect=policy)
        try:
            got: queue.Queue[Any] = queue.Queue()
            hub.watch("e1", got.put)  # a chat waits for an execution's events
            hub.subscribe("workflow:wf", 5.0)
            *items, error = take_until(got, lambda items: bool(items) and isinstance(items[-1], BaseException))
            assert isinstance(error, an.APIConnectionError) and "after 3 tries" in str(error)
            # each reopen told the watch that events may be missing
            assert [item.event for item in items] == ["_socket_gap"] * 3
            assert len(server.opened) == 1 + policy.tries
            assert server.quiet_for(4 * policy.ceiling)
        finally:
            hub.close()


def test_a_socket_that_proves_itself_starts_the_count_afresh():
    async def confirm_then_close_later(ws: ServerConnection) -> None:
        await confirm(ws)
        if len(server.opened) <= 4:
            await asyncio.sleep(0.3)  # longer than proven_after: a working socket that dropped
            await ws.close(1011)
        else:
            await ws.wait_closed()

    policy = Reconnect(tries=1, initial=0.05, ceiling=0.1, proven_after=0.2)
    with SocketServer(confirm_then_close_later) as server:
        hub = Hub(server.base_url, "key", open_timeout=5.0, reconnect=policy)
        try:
            got: queue.Queue[Any] = queue.Queue()
            hub.watch("e1", got.put)
            hub.subscribe("workflow:wf", 5.0)
            # four drops, each after a proven socket: never given up
            items = take_until(got, lambda items: len(items) == 4 or any(isinstance(i, BaseException) for i in items))
            assert [getattr(item, "event", item) for item in items] == ["_socket_gap"] * 4
            wait_until(lambda: len(server.opened) == 5, what="the fifth socket, seen by the server")
            assert got.empty()  # the fifth stays open: nothing more to tell
        finally:
            hub.close()


def test_a_socket_dropped_while_no_chat_waits_is_reopened_only_by_the_next_ask():
    release = threading.Event()

    async def confirm_then_close_on_cue(ws: ServerConnection) -> None:
        await confirm(ws)
        await asyncio.to_thread(release.wait, 10)
        await ws.close(1011)

    with SocketServer(confirm_then_close_on_cue) as server:
        hub = Hub(server.base_url, "key", open_timeout=5.0,
                  reconnect=Reconnect(initial=0.05, ceiling=0.1, proven_after=5.0))
        try:
            hub.subscribe("workflow:wf", 5.0)
            release.set()  # the socket drops; nobody waits on it
            assert server.quiet_for(1.0), "reopened with no chat waiting"
            assert len(server.opened) == 1
            release.clear()
            hub.subscribe("workflow:wf", 5.0)  # the next ask opens it again and subscribes afresh
            assert len(server.opened) == 2
            release.set()
        finally:
            hub.close()


def test_reconnect_policy_is_validated():
    for bad in ({"tries": -1}, {"tries": 1.5}, {"initial": 0}, {"ceiling": float("inf")},
                {"proven_after": -1}, {"initial": 2.0, "ceiling": 1.0}):
        with pytest.raises(ValueError, match="Reconnect"):
            Reconnect(**bad)


# -- 5. a WebSocket message over the limit ----------------------------------------------------------

LIMIT = 64 * 1024


@pytest.mark.parametrize(("size", "compress", "refused"), [
    (LIMIT - 1024, "deflate", False),  # under the limit: read as usual
    (LIMIT + 1, None, True),
    (50 * LIMIT, None, True),
    (50 * LIMIT, "deflate", True),  # tiny on the wire, over the limit once inflated
])
async def test_a_websocket_message_over_the_limit_is_refused_unread_and_named(kind, size, compress, refused):
    def message(pad: str) -> str:
        return json.dumps({"type": "node_status", "execution_id": "other", "data": {"pad": pad}})

    big = message("x" * (size - len(message(""))))
    assert len(big) == size

    async def big_then_confirm(ws: ServerConnection) -> None:
        request = json.loads(await ws.recv())
        await ws.send(big)
        await ws.send(json.dumps({"type": "subscribed", "channel": request["channel"]}))
        await ws.wait_closed()

    with SocketServer(big_then_confirm, compression=compress, max_size=None) as server:
        api = pipelit(kind, server.base_url, timeout=10.0, limits=an.Limits(event=LIMIT),
                      reconnect=Reconnect(initial=0.05, ceiling=0.1))
        hub = api.hub
        started = time.monotonic()
        try:
            if refused:
                with pytest.raises(an.LimitExceededError) as info:
                    await maybe(hub.subscribe_async("workflow:wf", 10.0) if kind == "async"
                                else hub.subscribe("workflow:wf", 10.0))
                assert info.value.limit_name == "event" and "Limits.event" in str(info.value)
                assert f"{LIMIT:,} bytes" in str(info.value)
                assert time.monotonic() - started < 5  # at once, not at the subscription's deadline
                assert server.quiet_for(0.5) and len(server.opened) == 1  # not read again on a reconnect
            else:
                await maybe(hub.subscribe_async("workflow:wf", 10.0) if kind == "async"
                            else hub.subscribe("workflow:wf", 10.0))
        finally:
            await maybe(api.close())


# -- 9. a Pipelit message that is not JSON is an anomaly, not a silent drop ---------------------------

UNREADABLE = ["not json", "{\"type\": ", "[1, 2]", "{\"no_type\": 1}", "{\"type\": 5}", "\"text\"", ""]


def test_a_websocket_message_that_is_not_json_reaches_the_watching_execution_as_an_anomaly():
    async def confirm_then_garbage(ws: ServerConnection) -> None:
        await confirm(ws)
        for text in UNREADABLE:
            await ws.send(text)
        await ws.send(b"\x00\x01binary")
        await ws.send(json.dumps({"type": "execution_completed", "execution_id": "e1", "data": {"output": "ok"}}))
        await ws.wait_closed()

    with SocketServer(confirm_then_garbage) as server:
        hub = Hub(server.base_url, "key", open_timeout=5.0)
        try:
            got: queue.Queue[Any] = queue.Queue()
            hub.watch("e1", got.put)
            hub.subscribe("workflow:wf", 5.0)
            *events, _ = take_until(got, lambda items: bool(items) and items[-1].event == "execution_completed")
        finally:
            hub.close()
    assert len(events) == len(UNREADABLE) + 1 and all(type(e) is MalformedFrame for e in events)
    translate = PipelitTranslator()
    anomalies = [neutral for e in events for neutral in translate(e)]
    assert all(isinstance(a, n.Anomaly) and "malformed" in a.text for a in anomalies)
    assert len(anomalies) == len(events)
    assert "binary" in anomalies[-1].text


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=60), st.binary(max_size=40),
                      st.builds(json.dumps, st.dictionaries(st.sampled_from(["type", "execution_id", "data"]),
                                                            st.one_of(st.none(), st.integers(), st.text(max_size=8),
                                                                      st.just("e1")), max_size=3))))
def test_fuzz_every_websocket_message_is_routed_or_reported_never_raised(text):
    hub = _FUZZ_HUB()  # never opened: the execution is watched by hand, so nothing connects
    got: list[Any] = []
    message = MalformedFrame(MalformedFrame.NAME, {"raw": "", "error": "binary"}) if isinstance(text, bytes) else None

    async def dispatch() -> None:
        from atomemo_notebook.protocol.pipelit.events import parse_message

        hub._unclaimed.clear()
        hub._watches = {"e1": Watch("e1", got.append)}
        try:
            hub._dispatch(message or parse_message(text))
        finally:
            hub._watches = {}

    asyncio.run_coroutine_threadsafe(dispatch(), hub._loop).result(5)
    assert hub._runner is None
    translate = PipelitTranslator()
    for event in got:  # what reached the execution is its own event, or an anomaly saying one was lost
        out = translate(event)
        assert type(event) is not MalformedFrame or [type(x) for x in out] == [n.Anomaly]
        assert type(event) is MalformedFrame or (event.data or {}).get("execution_id") == "e1"
    try:
        parsed = None if isinstance(text, bytes) else json.loads(text)
    except ValueError:
        parsed = None
    readable = isinstance(parsed, dict) and isinstance(parsed.get("type"), str)
    if not readable:
        assert len(got) == 1  # never dropped silently
    elif parsed.get("execution_id") == "e1":  # a readable message of the watched execution reaches it as itself
        assert [(type(e), e.event, e.data) for e in got] == [(an.Event, parsed["type"], parsed)]


class _FuzzHub:
    """One hub for every example of the fuzz (closed at the end of the module)."""

    hub: Hub | None = None

    def __call__(self) -> Hub:
        if self.hub is None or self.hub.closed:
            self.hub = Hub("http://127.0.0.1:9/api", "key")
        return self.hub


_FUZZ_HUB = _FuzzHub()


@pytest.fixture(autouse=True)
def _close_the_fuzz_hub() -> Iterator[None]:
    yield
    if _FUZZ_HUB.hub is not None:
        _FUZZ_HUB.hub.close()
        _FUZZ_HUB.hub = None


# -- 6. the key never follows a redirect to another origin -----------------------------------------

REDIRECTS = [301, 302, 303, 307, 308]
# Each system's auth header, and a call of its client that sends it.
SYSTEMS: dict[str, tuple[type[Any], type[Any], str, Callable[[Any], Any]]] = {
    "atomemo": (an.Client, an.AsyncClient, "x-api-key", lambda api: api.get_messages("c1")),
    "dify": (an.DifyClient, an.AsyncDifyClient, "authorization", lambda api: api.conversations("u")),
    "pipelit": (an.PipelitClient, an.AsyncPipelitClient, "authorization", lambda api: api.history("wf")),
    "odyssey": (an.OdysseyClient, an.AsyncOdysseyClient, "x-api-key",
                lambda api: api.send_message(workspace_id="w", conversation_id="c", message="hi", user_id="u")),
}
SECRET = "sk-redirect-secret-0123456789"


def recorder(seen: list[tuple[str, dict[str, str]]], redirect_to: str | None = None) -> Starlette:
    """Records each request's path and headers; `/r/<status>` redirects to `redirect_to`."""

    async def anything(request: Request) -> Response:
        seen.append((request.url.path, dict(request.headers)))
        if redirect_to is not None and request.url.path.startswith("/r/"):
            status = int(request.url.path.split("/")[2])
            return RedirectResponse(f"{redirect_to}/landed", status_code=status)
        return JSONResponse({})

    return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"])])


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[tuple[list[tuple[str, dict[str, str]]], list[str]]]:
    """Two servers of another origin: 127.0.0.2, and 127.0.0.1 on another port."""
    seen: list[tuple[str, dict[str, str]]] = []
    with asgi_server(recorder(seen), "127.0.0.2") as other_host, asgi_server(recorder(seen)) as other_port:
        yield seen, [other_host, other_port]


@pytest.mark.parametrize("system", list(SYSTEMS))
@pytest.mark.parametrize("status", REDIRECTS)
async def test_the_key_never_follows_a_redirect_to_another_origin(kind, system, status, elsewhere):
    seen_elsewhere, targets = elsewhere
    sync_cls, async_cls, header, call = SYSTEMS[system]
    for target in targets:
        seen_here: list[tuple[str, dict[str, str]]] = []
        seen_elsewhere.clear()
        with asgi_server(recorder(seen_here, redirect_to=target)) as api_origin:
            # The caller's own HTTP client, which follows redirects.
            http = (httpx.Client if kind == "sync" else httpx.AsyncClient)(follow_redirects=True)
            api = (sync_cls if kind == "sync" else async_cls)(SECRET, base_url=f"{api_origin}/r/{status}",
                                                              http_client=http, max_retries=0)
            with contextlib.suppress(an.AtomemoError):
                await maybe(call(api))
            await maybe(http.close() if kind == "sync" else http.aclose())
        assert seen_here and SECRET in seen_here[0][1].get(header, "")  # the API's own host has it
        assert [path for path, _ in seen_elsewhere] == ["/landed"], (target, seen_elsewhere)  # followed...
        assert all(SECRET not in json.dumps(headers) for _, headers in seen_elsewhere), target  # ...keyless


async def test_a_same_origin_redirect_keeps_the_key(kind):
    # One server redirecting to itself: /r/307/... -> /landed on the same origin.
    seen: list[tuple[str, dict[str, str]]] = []
    holder: list[str] = []

    async def here(request: Request) -> Response:
        seen.append((request.url.path, dict(request.headers)))
        if request.url.path.startswith("/r/"):
            return RedirectResponse(f"{holder[0]}/landed", status_code=307)
        return JSONResponse({"data": [], "has_more": False, "limit": 20})

    with asgi_server(Starlette(routes=[Route("/{path:path}", here)])) as api_origin:
        holder.append(api_origin)
        http = (httpx.Client if kind == "sync" else httpx.AsyncClient)(follow_redirects=True)
        api = (an.DifyClient if kind == "sync" else an.AsyncDifyClient)(SECRET, base_url=f"{api_origin}/r/307",
                                                                          http_client=http)
        await maybe(api.conversations("u"))
        await maybe(http.close() if kind == "sync" else http.aclose())
    assert [path for path, _ in seen] == ["/r/307/conversations", "/landed"]
    assert all(headers.get("authorization") == f"Bearer {SECRET}" for _, headers in seen)


async def test_a_redirect_loop_ends_at_the_http_clients_max_redirects(kind):
    seen: list[tuple[str, dict[str, str]]] = []
    holder: list[str] = []

    async def loop(request: Request) -> Response:
        seen.append((request.url.path, dict(request.headers)))
        return RedirectResponse(f"{holder[0]}/again", status_code=302)

    with asgi_server(Starlette(routes=[Route("/{path:path}", loop)])) as api_origin:
        holder.append(api_origin)
        http = (httpx.Client if kind == "sync" else httpx.AsyncClient)(follow_redirects=True, max_redirects=3)
        api = (an.Client if kind == "sync" else an.AsyncClient)(SECRET, base_url=api_origin, http_client=http,
                                                                max_retries=0)
        with pytest.raises(an.APIConnectionError, match="more than 3 redirects"):
            await maybe(api.get_messages("c1"))
        await maybe(http.close() if kind == "sync" else http.aclose())
    assert len(seen) == 4


# -- 8. a Retry-After longer than a client waits ------------------------------------------------------

def limiter(seen: list[str], status: int, headers: dict[str, str]) -> Starlette:
    async def refuse(request: Request) -> Response:
        seen.append(request.method)
        return JSONResponse({"code": "RATE_LIMITED", "message": "slow down"}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])


def _hour_from_now() -> str:
    import email.utils

    return email.utils.formatdate(time.time() + 3600, usegmt=True)


@pytest.mark.parametrize("headers", [{"Retry-After": "3600"}, {"Retry-After": "61"}, {"retry-after-ms": "3600000"},
                                     "date"], ids=["3600", "61", "ms", "date"])
async def test_a_429_asking_for_longer_than_a_client_waits_fails_at_once_and_holds_the_client(kind, headers):
    headers = {"Retry-After": _hour_from_now()} if headers == "date" else headers
    seen: list[str] = []
    with asgi_server(limiter(seen, 429, headers)) as origin:
        api = (an.Client if kind == "sync" else an.AsyncClient)(SECRET, base_url=origin)
        ask = {"app_id": "a", "trigger_id": "t", "query": "hi", "user_id": "u"}
        started = time.monotonic()
        with pytest.raises(an.RateLimitError) as info:
            await maybe(api.send_message(**ask))
        assert seen == ["POST"]  # one POST, not three in 1.4 s
        assert time.monotonic() - started < 1.0
        asked = 61 if headers.get("Retry-After") == "61" else 3600
        assert info.value.retry_after == pytest.approx(asked, abs=5) and "Retry-After" in str(info.value)
        with pytest.raises(an.RateLimitError) as again:  # the next call is not sent at all
            await maybe(api.get_messages("c1"))
        assert seen == ["POST"] and again.value.retry_after == pytest.approx(asked, abs=5)
        await maybe(api.close())
        fresh = (an.Client if kind == "sync" else an.AsyncClient)(SECRET, base_url=origin)
        with pytest.raises(an.RateLimitError):
            await maybe(fresh.get_messages("c1"))
        assert seen == ["POST", "GET"]  # a new client may ask again
        await maybe(fresh.close())


async def test_a_503_asking_for_an_hour_fails_at_once_and_a_sane_hint_is_still_honoured(kind):
    seen: list[str] = []
    with asgi_server(limiter(seen, 503, {"Retry-After": "3600"})) as origin:
        api = (an.Client if kind == "sync" else an.AsyncClient)(SECRET, base_url=origin)
        with pytest.raises(an.InternalServerError) as info:
            await maybe(api.get_messages("c1"))
        assert seen == ["GET"] and info.value.retry_after == 3600
        await maybe(api.close())
    seen.clear()
    with asgi_server(limiter(seen, 429, {"Retry-After": "0.1"})) as origin:
        api = (an.Client if kind == "sync" else an.AsyncClient)(SECRET, base_url=origin, max_retries=2)
        with pytest.raises(an.RateLimitError) as info:
            await maybe(api.get_messages("c1"))
        assert seen == ["GET"] * 3 and info.value.retry_after == 0.1  # waited as asked, then gave up
        await maybe(api.close())


# -- 7. Dify: events of another message are dropped and said, never merged ----------------------------

def sse(*frames: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(frame)}\n\n" for frame in frames)


def ours(event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "task_id": "t1", "message_id": "m1", "conversation_id": "c1", **fields}


MIXED = [
    ours("message", answer="Hel"),
    ours("message", message_id="m2", answer="XXX"),  # another message of the conversation
    ours("message", conversation_id="c2", answer="YYY"),  # another conversation
    ours("agent_message", message_id=7, answer="QQQ"),  # an id of the wrong type is not ours either
    ours("message_replace", message_id="m2", answer="ZZZ"),  # would have replaced our whole answer
    ours("message_end", message_id="m2"),  # would have ended ours early
    ours("message", answer={"not": "text"}),  # ours, but no text: dropped and said
    ours("message", answer="lo"),
    ours("message_end", metadata={}),
]


async def test_a_dify_stream_that_mixes_in_another_messages_events_keeps_only_its_own(kind):
    async def chat_messages(request: Request) -> Response:
        return Response(sse(*MIXED), media_type="text/event-stream")

    with asgi_server(Starlette(routes=[Route("/v1/chat-messages", chat_messages, methods=["POST"])])) as origin:
        api = (an.DifyClient if kind == "sync" else an.AsyncDifyClient)(SECRET, base_url=f"{origin}/v1")
        chat = an.Chat(api, user_id="u") if kind == "sync" else an.AsyncChat(api, user_id="u")
        reply = await maybe(chat.ask("hello"))
        await maybe(api.close())
    assert reply.text == "Hello" and reply.status == "succeeded"
    assert reply.message_id == "m1"
    foreign = [a for a in reply.anomalies if "another message" in a]
    assert len(foreign) == 5, reply.anomalies
    assert any("message_id is 'm2'" in a for a in foreign) and any("conversation_id is 'c2'" in a for a in foreign)
    assert any("a dict, not text" in a for a in reply.anomalies)


IDS = st.sampled_from(["m1", "m2", None, ""])
CONVERSATIONS = st.sampled_from(["c1", "c2", None])


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.tuples(IDS, CONVERSATIONS, st.text(max_size=5)), max_size=12))
def test_fuzz_a_dify_answer_is_exactly_its_own_messages_chunks(chunks):
    from atomemo_notebook.protocol.dify._adapter import DifyTranslator
    from atomemo_notebook.transport._dify import DifyStreamState

    frames = [ours("message", answer="<")]
    frames += [{"event": "message", "message_id": m, "conversation_id": c, "answer": text} for m, c, text in chunks]
    translate, state = DifyTranslator(), DifyStreamState("u")
    out = []
    for frame in frames:
        event = an.Event(frame["event"], frame)
        state.accept(event)
        out.extend(translate(event))
    mine = [(m, c, t) for m, c, t in chunks if m in ("m1", "", None) and c in ("c1", None)]
    expected = "<" + "".join(t for _, _, t in mine)
    assert "".join(x.text for x in out if isinstance(x, n.Text)) == expected
    assert state._text and "".join(state._text) == expected  # the recovery state agrees
    assert sum(isinstance(x, n.Anomaly) for x in out) == len(chunks) - len(mine)
    assert (state.message_id, state.conversation_id) == ("m1", "c1")


# -- 9. replay, sources: nothing changes an answer or a link silently -------------------------------

@pytest.mark.parametrize("bad", [{}, [], 5, None, True, "missing"], ids=repr)
def test_replaying_a_chat_message_whose_text_is_not_text_is_an_anomaly(tmp_path, server, echo, bad):
    with an.Client(server.api_key, base_url=server.base_url) as api:
        chat = an.Chat(api, app_id=echo["app_id"], trigger_id=echo["trigger_id"], user_id="replay-text")
        asked = chat.ask("replay me exactly")
        lines = chat.save_events(tmp_path / "log.jsonl").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"chat_message"' in line)
    item = json.loads(lines[index])
    chunk = item["data"].pop("text")
    if bad != "missing":
        item["data"]["text"] = bad
    lines[index] = json.dumps(item)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    (reply,) = an.replay(tmp_path / "bad.jsonl")
    assert reply.text == asked.text.replace(chunk, "", 1)  # the chunk is missing, nothing stands in for it
    assert any("chat_message" in a and "dropped" in a for a in reply.anomalies), reply.anomalies


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                      max_size=3), max_leaves=8))
def test_fuzz_an_atomemo_chunk_is_its_text_or_an_anomaly(value):
    from atomemo_notebook.protocol.atomemo._adapter import translate
    from atomemo_notebook.protocol.atomemo.events import ChatMessage, event_from_wire

    event = event_from_wire("chat_message", {"text": value})
    assert isinstance(event, ChatMessage) and isinstance(event.text, str)
    (out,) = translate(event)
    if isinstance(value, str):
        assert out == n.Text(value) and event.text == value
    else:
        assert isinstance(out, n.Anomaly) and event.text == ""


LINKS = {
    "https://ok.example/a": True,
    "HTTPS://OK.EXAMPLE/B": True,
    "http://ok.example/c?x=javascript:1": True,
    "javascript:alert(1)": False,
    "JaVaScRiPt:alert(1)": False,
    " javascript:alert(1)": False,
    "data:text/html,<script>alert(1)</script>": False,
    "vbscript:msgbox(1)": False,
    "/relative/path": False,
    "https://long.example/" + "a" * 3000: False,
}


def test_source_records_link_exactly_what_the_views_link():
    from atomemo_notebook.model.reply import Reply
    from atomemo_notebook.protocol.dify._adapter import DifyTranslator
    from atomemo_notebook.views._view_state import _citations

    resources = [{"document_name": f"doc {i}", "url": url} for i, url in enumerate(LINKS)]
    reply = Reply("q", translate=DifyTranslator())
    reply.apply(an.Event("message", ours("message", answer="a")), 0.0)
    reply.apply(an.Event("message_end", ours("message_end", metadata={"retriever_resources": resources})), 0.1)
    reply.close()
    rows = an.source_records([reply])
    assert [row["url"] for row in rows] == [url if ok else None for url, ok in LINKS.items()]
    assert [row["url"] for row in rows] == [c["url"] for c in _citations(reply)]  # one decision, both places
