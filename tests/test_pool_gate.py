"""Requests that start together each get a connection of their own at the first try.

httpcore's pool gives the same idle connection to every request that starts in the same turn
of the loop; all but one then raise ConnectionNotAvailable inside the pool and redo the whole
assignment, which checks every idle connection's socket each time (at concurrency 8, ~2.5
times a request: most of what a row of evaluate() cost more than a bare loop). The async
client lets one request start at a time, until its first trace event. Counted here over
loopback against the embedded server, not timed; and the gate never serializes a transport
that sends no trace events, nor outlives a cancelled request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from atomemo_notebook import AsyncChat, AsyncClient
from atomemo_notebook.protocol.backend import AppInfo
from atomemo_notebook.server import LocalServer

from .conftest import ids

WORKERS = 8


@pytest.fixture
def lost(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a request found its assigned connection taken (ConnectionNotAvailable),
    counted where httpcore raises it."""
    count = [0]
    original = httpcore.AsyncHTTP11Connection.handle_async_request

    async def counted(self: httpcore.AsyncHTTP11Connection, request: httpcore.Request) -> httpcore.Response:
        try:
            return await original(self, request)
        except httpcore.ConnectionNotAvailable:
            count[0] += 1
            raise

    monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "handle_async_request", counted)
    return count


def _pool() -> httpx.AsyncClient:
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=WORKERS))


async def test_asks_that_start_together_never_take_each_others_connection(
        server: LocalServer, echo: dict[str, str], lost: list[int]) -> None:
    async with _pool() as http:
        chat = AsyncChat(AsyncClient(server.api_key, base_url=server.base_url, http_client=http),
                         **ids(echo), user_id="gate")
        for round_ in range(3):  # the first opens the 8 connections; the next two find them all idle
            replies = await asyncio.gather(*(chat.fresh(None).ask(f"round {round_} ask {i}")
                                             for i in range(WORKERS)))
            assert [r.status for r in replies] == ["succeeded"] * WORKERS
            assert [r.text.strip() for r in replies] == [f"round {round_} ask {i}" for i in range(WORKERS)]
        assert len(http._transport._pool.connections) == WORKERS  # type: ignore[attr-defined]
    assert lost[0] == 0


async def test_the_same_requests_sent_bare_do_take_each_others_connection(
        server: LocalServer, echo: dict[str, str], lost: list[int]) -> None:
    """What the count above would see without the gate: 8 requests started in one turn over 8
    idle connections all get the first one, and 7 retry (then 6 of them again...)."""
    async def one(http: httpx.AsyncClient, query: str) -> None:
        body = {"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": query, "userId": "bare"}
        async with http.stream("POST", f"{server.base_url}/chat/messages", json=body,
                               headers={"X-Api-Key": server.api_key}) as response:
            assert response.status_code == 200
            async for _ in response.aiter_raw():
                pass

    async with _pool() as http:
        for round_ in range(3):
            await asyncio.gather(*(one(http, f"bare {round_} {i}") for i in range(WORKERS)))
    assert lost[0] >= WORKERS - 1


def _answer() -> httpx.Response:
    body = (b'data: {"event":"message_created","data":{"message_id":"m1","conversation_id":"c1"}}\n\n'
            b'data: {"event":"chat_message","data":{"text":"hi"}}\n\n'
            b'data: {"event":"execution_finished","data":{"resource_type":"execution",'
            b'"resource":{"id":"e1","status":"succeeded"}}}\n\n')

    async def stream() -> AsyncIterator[bytes]:  # read as a socket gives it, not all at once
        yield body

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())


async def test_a_transport_that_is_not_httpxs_own_is_never_gated() -> None:
    """A mock (any transport but httpx's own might answer without a trace event, or buffer a whole
    answer first) is not gated: 8 requests at once all arrive before any is answered, the first
    included."""
    inside = 0
    all_in = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal inside
        inside += 1
        if inside == WORKERS:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 10)  # a gated second request would never come
        return _answer()

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = AsyncClient("sk-test", base_url="http://mock", http_client=http)
        chat = AsyncChat(api, app_id="a", trigger_id="t", user_id="u")
        chat.app = AppInfo(name="mock")  # as loaded: the mock serves no app description
        replies = await asyncio.gather(*(chat.fresh(None).ask(f"q{i}") for i in range(WORKERS)))
    assert [r.status for r in replies] == ["succeeded"] * WORKERS and inside == WORKERS


def _post(http: httpx.AsyncClient, server: LocalServer, app: dict[str, str], query: str) -> httpx.Request:
    body = {"appId": app["app_id"], "triggerId": app["trigger_id"], "query": query, "userId": "gate"}
    return http.build_request("POST", f"{server.base_url}/chat/messages", json=body,
                              headers={"X-Api-Key": server.api_key, "Accept": "text/event-stream"})


async def _until(predicate: object, what: str) -> None:
    for _ in range(1000):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 10 s: {what}")


async def test_a_request_waiting_for_a_connection_holds_only_its_origins_gate(
        server: LocalServer, seeded: LocalServer, echo: dict[str, str]) -> None:
    """One connection to the server, held by an open answer; a second request to it waits in the
    pool, holding that origin's gate. A request to another origin (with a pool of its own) goes
    at once, and when the second is cancelled its gate is free for the next."""
    other = f"{seeded.base_url.split('/api')[0]}"
    mounted = {f"{other.rstrip('/')}": httpx.AsyncHTTPTransport()}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1), mounts=mounted) as http:
        api = AsyncClient(server.api_key, base_url=server.base_url, http_client=http)
        held = await api._send_one(_post(http, server, echo, "held open"))  # the pool's one connection
        waiting = asyncio.ensure_future(api._send_one(_post(http, server, echo, "waits for it")))
        await _until(lambda: any(g.locked() for g in api._gates.values()), "the second request holds its gate")
        elsewhere = await asyncio.wait_for(
            api._send_one(_post(http, seeded, seeded.app("echo"), "another origin")), 10)
        assert elsewhere.status_code == 200 and not waiting.done()
        await elsewhere.aclose()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not any(g.locked() for g in api._gates.values())  # the cancelled request let go
        await held.aclose()
        after = await asyncio.wait_for(api._send_one(_post(http, server, echo, "after")), 10)
        assert after.status_code == 200
        await after.aclose()


async def test_an_httpx_transport_that_sends_no_trace_events_is_gated_once_then_never() -> None:
    """A subclass of httpx's transport that answers without trace events holds the gate through
    its first answer (nothing says when it took a connection); the client notes it, and its
    later requests are not gated: 8 at once all arrive before any is answered."""
    inside = 0
    all_in = asyncio.Event()

    class Quiet(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal inside
            if b"first" not in request.content:
                inside += 1
                if inside == WORKERS:
                    all_in.set()
                await asyncio.wait_for(all_in.wait(), 10)  # a gated second request would never come
            return _answer()

    async with httpx.AsyncClient(transport=Quiet()) as http:
        api = AsyncClient("sk-test", base_url="http://quiet", http_client=http)
        chat = AsyncChat(api, app_id="a", trigger_id="t", user_id="u")
        chat.app = AppInfo(name="quiet")
        assert api._gated(httpx.URL("http://quiet/chat/messages"))
        assert (await chat.fresh(None).ask("first")).status == "succeeded"
        assert not api._gated(httpx.URL("http://quiet/chat/messages"))
        replies = await asyncio.gather(*(chat.fresh(None).ask(f"q{i}") for i in range(WORKERS)))
    assert [r.status for r in replies] == ["succeeded"] * WORKERS and inside == WORKERS
