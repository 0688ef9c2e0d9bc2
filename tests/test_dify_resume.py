"""A dropped Dify stream resumed where the server offers a run's event stream
(`GET /workflow/{run_id}/events`, 2026): the run's state snapshot replays what was seen, which is
dropped, and the rest follows live. Where the route is missing (Dify 1.13.2's service API:
404), the stored message finishes the answer, as before. Drops at random points over loopback
against the embedded server: the final answer identical to an undisturbed one, nothing doubled."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import AsyncChat, AsyncDifyClient, Chat, DifyClient
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.server import LocalServer

from .conftest import maybe

QUESTION = "How do I rotate my API key?"


def faulty_chat(kind: str, server: LocalServer, faults: dict[str, str], slug: str = "support") -> Chat | AsyncChat:
    """A Dify chat whose requests carry a fault for the server to inject, chosen by their path."""
    key = uuid.uuid4().hex

    def pick(path: str) -> str | None:
        return next((f"{fault}; key={key}-{part}" for part, fault in faults.items() if part in path), None)

    def mark(request: httpx.Request) -> None:
        fault = pick(request.url.path)
        if fault:
            request.headers["X-Atomemo-Fault"] = fault

    async def amark(request: httpx.Request) -> None:
        mark(request)

    api_key, base = server.app(slug)["dify_api_key"], server.dify_base_url
    if kind == "sync":
        return Chat(DifyClient(api_key, base_url=base, http_client=httpx.Client(event_hooks={"request": [mark]})),
                    user_id=f"resume-{key[:8]}")
    return AsyncChat(AsyncDifyClient(api_key, base_url=base,
                                     http_client=httpx.AsyncClient(event_hooks={"request": [amark]})),
                     user_id=f"resume-{key[:8]}")


def shape(reply: Reply) -> tuple[Any, ...]:
    return (reply.text, [(s.name, s.status) for s in reply.nodes], [c.title for c in reply.citations],
            reply.execution.status if reply.execution else None)


def folded(reply: Reply) -> Counter[str]:
    """How many of each run event the reply folded (a replay folded twice would count twice)."""
    return Counter(r.event.event for r in reply.events if r.event.event.startswith(("node_", "workflow_")))


@pytest.fixture(scope="module")
def undisturbed(server: LocalServer) -> Reply:
    chat = faulty_chat("sync", server, {})
    return chat.ask(QUESTION)


async def test_a_drop_at_each_point_resumes_from_the_runs_events_identical_and_nothing_doubled(
        kind, server, undisturbed):
    total = len(undisturbed.events)
    for drop in range(1, total - 1, 3):
        chat = faulty_chat(kind, server, {"/chat-messages": f"drop_after={drop}"})
        reply = await maybe(chat.ask(QUESTION))
        assert reply.status == "succeeded", (drop, reply.status, reply.anomalies)
        assert shape(reply) == shape(undisturbed), drop
        assert folded(reply) == folded(undisturbed), drop
        assert not reply.anomalies, (drop, reply.anomalies)


@settings(max_examples=15, deadline=None)
@given(drop=st.integers(min_value=1, max_value=60), chunk=st.integers(min_value=1, max_value=12))
def test_fuzz_drops_at_random_points_with_random_chunking_lose_and_double_nothing(server, drop, chunk):
    chat = faulty_chat("sync", server, {"/chat-messages": f"drop_after={drop}"})
    chat.backend.client._http.headers["X-Atomemo-Pace"] = f"chunk_size={chunk}; chunk_delay=0; node_delay=0"
    reply = chat.ask(QUESTION)
    assert reply.status == "succeeded" and reply.text == undisturbed_text(server)
    counts = Counter((r.event.event, (r.event.data or {}).get("data", {}).get("id"))
                     for r in reply.events if r.event.event in ("node_started", "node_finished"))
    assert counts and max(counts.values()) == 1


def undisturbed_text(server: LocalServer) -> str:
    return faulty_chat("sync", server, {}).ask(QUESTION).text


@pytest.mark.parametrize("drop", [2, 5, 11, 23, 37])
async def test_without_the_route_the_stored_message_finishes_the_answer(kind, server, undisturbed, drop):
    chat = faulty_chat(kind, server, {"/chat-messages": f"drop_after={drop}", "/events": "status=404; times=9"})
    reply = await maybe(chat.ask(QUESTION))
    assert reply.status == "recovered" and reply.recovered_status == "succeeded"
    assert reply.text == undisturbed.text
    # Refused once, the route is not asked again: one look at it, then the stored message.
    assert sum(r.event.event == "node_started" for r in reply.events) <= len(undisturbed.nodes)


# -- a workflow app's run: it names no message, only its run ---------------------------------

def faulty_workflow(kind: str, server: LocalServer, faults: dict[str, str]) -> Chat | AsyncChat:
    """A chat over the embedded workflow app whose requests carry faults, as faulty_chat's do."""
    from atomemo_notebook.protocol.dify._workflow_app import WORKFLOW_DEMO

    key = uuid.uuid4().hex

    def mark(request: httpx.Request) -> None:
        fault = next((f"{fault}; key={key}-{part}" for part, fault in faults.items() if part in request.url.path),
                     None)
        if fault:
            request.headers["X-Atomemo-Fault"] = fault

    async def amark(request: httpx.Request) -> None:
        mark(request)

    api_key, base = server.demo("dify", WORKFLOW_DEMO)["api_key"], server.dify_base_url
    if kind == "sync":
        return Chat(DifyClient(api_key, base_url=base, http_client=httpx.Client(event_hooks={"request": [mark]})),
                    user_id=f"wf-{key[:8]}", app_type="workflow")
    return AsyncChat(AsyncDifyClient(api_key, base_url=base,
                                     http_client=httpx.AsyncClient(event_hooks={"request": [amark]})),
                     user_id=f"wf-{key[:8]}", app_type="workflow")


def run_shape(reply: Reply) -> tuple[Any, ...]:
    return (reply.text, reply.outputs, [(s.name, s.status) for s in reply.nodes],
            reply.execution.status if reply.execution else None)


@pytest.fixture(scope="module")
def undisturbed_run(server: LocalServer) -> Reply:
    return faulty_workflow("sync", server, {}).run(name="Ada")


async def test_a_workflow_runs_dropped_stream_resumes_from_its_events_identical_and_nothing_doubled(
        kind, server, undisturbed_run):
    assert undisturbed_run.status == "succeeded" and undisturbed_run.outputs
    total = len(undisturbed_run.events)
    for drop in range(1, total):  # after workflow_started (the first frame names the run) to the end
        chat = faulty_workflow(kind, server, {"/workflows/run": f"drop_after={drop}"})
        reply = await maybe(chat.run(name="Ada"))
        assert reply.status == "succeeded", (drop, reply.status, reply.error, reply.anomalies)
        assert run_shape(reply) == run_shape(undisturbed_run), drop
        assert folded(reply) == folded(undisturbed_run), drop
        assert not reply.anomalies, (drop, reply.anomalies)


@pytest.mark.parametrize("drop", [1, 3, 6, 9])
async def test_without_the_route_a_workflow_runs_record_finishes_it(kind, server, undisturbed_run, drop):
    chat = faulty_workflow(kind, server, {"/workflows/run": f"drop_after={drop}",
                                          "/events": "status=404; times=9"})
    reply = await maybe(chat.run(name="Ada"))
    assert reply.status == "recovered" and reply.recovered_status == "succeeded", (reply.status, reply.error)
    assert reply.outputs == undisturbed_run.outputs
    assert reply.execution is not None and reply.execution.status == "succeeded"


async def test_a_workflow_run_dropped_before_it_is_named_says_so_and_is_not_run_again(kind, server):
    chat = faulty_workflow(kind, server, {"/workflows/run": "drop_after=0"})
    with pytest.raises(Exception, match="before Dify named the message \\(or a workflow app's run\\)"):
        await maybe(chat.run(name="Ada"))
