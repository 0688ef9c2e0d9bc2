"""Shared fixtures: a real embedded server on loopback, and clients of both kinds."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import settings

from atomemo_notebook import AsyncChat, AsyncClient, AsyncEventStream, Chat, Client, Event
from atomemo_notebook.server import LocalServer

# Fuzz tests draw the same examples on every run, so a failure in CI is reproducible, not a
# coin toss; HYPOTHESIS_EXPLORE=1 draws fresh ones to look for new failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_EXPLORE") else "repeatable")


@pytest.fixture(autouse=True)
def _no_socket_left_open() -> Iterator[None]:
    """A chat left open keeps its WebSocket (and its keepalive pings, which draw from the global
    `random` a later Hypothesis test watches): every test closes what it opens."""
    yield
    hubs = [t for t in threading.enumerate() if t.name == "atomemo-socket-hub"]
    assert not hubs, f"{len(hubs)} socket hub(s) still open after the test: close the chats it made"


FAST: dict[str, Any] = {"test_mode": True, "allow_loopback_urls": True, "chunk_size": 4, "chunk_delay": 0, "node_delay": 0,
        "heartbeat_interval": 1.0, "dify_ping_interval": 1.0, "dify_close_delay": 0.01}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """Fast pacing, faults allowed: the counterpart of the client tests. Its sampler demo app
    draws unseeded: a test asking it on this server asserts only what holds whatever it draws."""
    with LocalServer(**FAST) as srv:
        yield srv


SEED = 0


@pytest.fixture
def seeded() -> Iterator[LocalServer]:
    """A server of the test's own, its sampler's draws fixed by SEED: the test gets the same
    answers, so exact counts, whichever tests ran before it (the session server's sampler has
    been asked by them)."""
    with LocalServer(seed=SEED, **FAST) as srv:
        yield srv


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_client(kind: str, server: LocalServer, **kwargs: Any) -> Client | AsyncClient:
    headers = kwargs.pop("headers", None)
    if kind == "sync":
        return Client(server.api_key, base_url=server.base_url,
                      http_client=httpx.Client(headers=headers), **kwargs)
    return AsyncClient(server.api_key, base_url=server.base_url,
                       http_client=httpx.AsyncClient(headers=headers), **kwargs)


@pytest.fixture
async def client(kind: str, server: LocalServer) -> AsyncIterator[Client | AsyncClient]:
    api = make_client(kind, server)
    yield api
    await maybe(api.close())


def chat_of(client: Client | AsyncClient, **kwargs: Any) -> Chat | AsyncChat:
    """The conversation object for either client; a sync one reopens with its history."""
    if isinstance(client, AsyncClient):
        return AsyncChat(client, **kwargs)
    chat = Chat(client, **kwargs)
    if kwargs.get("conversation_id"):
        chat.history()
    return chat


async def maybe(value: Any) -> Any:
    """Await what the async client returns; pass the sync client's result through."""
    return await value if inspect.isawaitable(value) else value


async def collect(stream: Any) -> list[Event]:
    stream = await maybe(stream)
    if isinstance(stream, AsyncEventStream):
        return [event async for event in stream]
    return list(stream)


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if e.event == "chat_message")  # type: ignore[attr-defined]


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll `predicate` until it holds; fail clearly at the deadline (no loop without one)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


async def wait_until_async(predicate: Any, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


def fault_key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def support(server: LocalServer) -> dict[str, str]:
    return server.app("support")


@pytest.fixture
def echo(server: LocalServer) -> dict[str, str]:
    return server.app("echo")


def ids(app: dict[str, str]) -> dict[str, str]:
    return {"app_id": app["app_id"], "trigger_id": app["trigger_id"]}
