"""Streams that lose nothing: faults injected by the embedded server itself."""

from __future__ import annotations

import time

import httpx
import pytest

import atomemo_notebook as an
from atomemo_notebook import Event, MalformedFrame
from atomemo_notebook.protocol._call import Call, Pause
from atomemo_notebook.protocol._wire import Message
from atomemo_notebook.protocol.atomemo.events import ChatMessage, MessageCreated, StreamRecovered
from atomemo_notebook.server import LocalServer
from atomemo_notebook.transport._client import StreamState
from atomemo_notebook.transport._resume import Reopen, after_break

from .conftest import collect, fault_key, ids, make_client, maybe, text_of

LONG = "The quick brown fox jumps over the lazy dog. " * 8  # 90 chunks of 4 characters


def chunks(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, ChatMessage)]


async def stream_with_fault(kind, server, app, fault, query=LONG, user="faults", **client_kw):
    api = make_client(kind, server, headers={"X-Atomemo-Fault": f"{fault}; key={fault_key()}"},
                      **client_kw)
    try:
        stream = await maybe(api.send_message(**ids(app), query=query, user_id=user))
        events = await collect(stream)
        return stream, events
    finally:
        await maybe(api.close())


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 60])
async def test_drop_after_n_events_resumes_with_every_chunk_once(kind, server, echo, n):
    stream, events = await stream_with_fault(kind, server, echo, f"drop_after={n}")
    assert text_of(events) == LONG
    assert chunks(events) == [LONG[i:i + 4] for i in range(0, len(LONG), 4)]
    assert [e.event for e in events if e.event != "heartbeat"].count("message_created") == 1
    assert events[-1].event == "execution_finished"
    assert stream.resumes == 1


async def test_clean_close_before_the_end_is_resumed(kind, server, echo):
    stream, events = await stream_with_fault(kind, server, echo, "end_after=7")
    assert text_of(events) == LONG and stream.resumes == 1


async def test_drops_on_the_resumed_stream_too(kind, server, echo):
    stream, events = await stream_with_fault(kind, server, echo, "drop_after=4; times=3")
    assert text_of(events) == LONG and stream.resumes == 3


async def test_gives_up_after_max_resumes(kind, server, echo):
    with pytest.raises(an.APIConnectionError, match="gave up resuming"):
        await stream_with_fault(kind, server, echo, "drop_after=4; times=50", max_resumes=2)


async def test_drop_before_message_created_is_not_resent(kind, server, echo):
    user = f"no-resend-{kind}"
    with pytest.raises(an.APIConnectionError, match="not resent"):
        await stream_with_fault(kind, server, echo, "drop_after=0", user=user)
    api = make_client(kind, server)
    conversations = await maybe(api.list_conversations(**ids(echo), user_id=user))
    assert len(conversations) == 1  # the server did take it once, and only once
    await maybe(api.close())


async def test_stall_past_the_idle_timeout_resumes(kind, server, echo):
    started = time.monotonic()
    stream, events = await stream_with_fault(kind, server, echo, "stall=5; stall_after=6",
                                             stream_idle_timeout=0.5)
    assert text_of(events) == LONG and stream.resumes == 1
    assert time.monotonic() - started < 4  # it did not wait the stall out


async def test_heartbeats_count_as_life(kind, server, echo):
    # A stream slower than the idle timeout, but with heartbeats, must not be resumed.
    # Chunks 1.5 s apart against a 1.2 s idle timeout; heartbeats every 0.1 s (a margin of 12x:
    # a CI run once saw a 0.5 s gap between heartbeats on a loaded machine, which is not silence).
    slow = LocalServer(test_mode=True, chunk_size=60, chunk_delay=1.5, node_delay=0,
                       heartbeat_interval=0.1).start()
    try:
        api = make_client(kind, slow, stream_idle_timeout=1.2)
        stream = await maybe(api.send_message(**ids(echo), query="x" * 120, user_id="hb"))
        events = await collect(stream)
        assert text_of(events) == "x" * 120 and stream.resumes == 0
        assert any(e.event == "heartbeat" for e in events)
        await maybe(api.close())
    finally:
        slow.close()


async def test_429_with_retry_after_is_retried_and_honoured(kind, server, echo):
    user = f"rate-{kind}"
    started = time.monotonic()
    _, events = await stream_with_fault(kind, server, echo, "status=429; retry_after=0.3",
                                        query="ok", user=user)
    assert time.monotonic() - started >= 0.3
    assert text_of(events) == "ok"
    with pytest.raises(an.RateLimitError) as info:
        await stream_with_fault(kind, server, echo, "status=429; retry_after=0; times=5",
                                query="no", user=user, max_retries=2)
    assert info.value.status_code == 429 and info.value.code == "INJECTED_FAULT"
    api = make_client(kind, server)
    assert len(await maybe(api.list_conversations(**ids(echo), user_id=user))) == 1
    await maybe(api.close())


async def test_500_then_success_creates_one_message(kind, server, echo):
    user = f"five-hundred-{kind}"
    _, events = await stream_with_fault(kind, server, echo, "status=500; times=2", query="fine",
                                        user=user)
    assert text_of(events) == "fine"
    api = make_client(kind, server)
    conversations = await maybe(api.list_conversations(**ids(echo), user_id=user))
    assert len(conversations) == 1
    assert len(await maybe(api.get_messages(conversations[0].id))) == 1
    await maybe(api.close())


async def test_malformed_frame_is_surfaced_and_the_stream_goes_on(kind, server, echo):
    _, events = await stream_with_fault(kind, server, echo, "malformed_after=5")
    bad = [e for e in events if isinstance(e, MalformedFrame)]
    assert len(bad) == 1 and "oops" in bad[0].raw and bad[0].error
    assert text_of(events) == LONG


async def test_unknown_event_type_comes_through_as_generic_event(kind, server, echo):
    _, events = await stream_with_fault(kind, server, echo, "unknown_after=3")
    (mystery,) = [e for e in events if e.event == "mystery_event"]
    assert type(mystery) is Event and mystery.data == {"note": "not in the spec"}
    assert text_of(events) == LONG


async def test_one_byte_trickle(kind, server, echo):
    _, events = await stream_with_fault(kind, server, echo, "trickle=1", query="trickle ü 🚀")
    assert text_of(events) == "trickle ü 🚀"


async def test_expired_resume_window_recovers_from_history(kind, echo):
    short = LocalServer(test_mode=True, chunk_size=4, chunk_delay=0, node_delay=0,
                        resume_window=0.1).start()
    try:
        stream, events = await stream_with_fault(kind, short, echo, "stall=3; stall_after=5",
                                                 stream_idle_timeout=0.6)
        assert stream.recovered
        assert text_of(events) == LONG
        assert isinstance(events[-1], StreamRecovered)
        assert events[-1].status == "succeeded" and events[-1].message.answer == LONG
        api = make_client(kind, short)
        with pytest.raises(an.UnresumableStreamError) as info:
            await maybe(api.resume_stream(str(stream.message_id)))
        assert info.value.code == "UNRESUMABLE_STREAM"
        await maybe(api.close())
    finally:
        short.close()


async def test_resume_stream_replays_a_finished_message_from_the_first_event(client, echo):
    live = await collect(client.send_message(**ids(echo), query="replay me", user_id="replay"))
    replay = await collect(client.resume_stream(live[0].message_id))  # type: ignore[attr-defined]
    assert [e.to_wire() for e in replay] == [e.to_wire() for e in live]


# -- the decisions alone, including a server that continues instead of replaying ---------------

def created(message_id: str = "m1") -> MessageCreated:
    return MessageCreated("message_created", {"message_id": message_id, "conversation_id": "c"})


def chunk(text: str) -> ChatMessage:
    return ChatMessage("chat_message", {"text": text})


def test_state_replay_from_start_skips_what_was_seen():
    state = StreamState(max_resumes=3)
    first = [created(), chunk("a"), chunk("b")]
    assert all(state.accept(e) for e in first)
    state.on_break(ConnectionError("drop"))
    replay = [created(), chunk("a"), chunk("b"), chunk("c")]
    assert [state.accept(e) for e in replay] == [False, False, False, True]
    assert state.text == "abc"


def test_state_continuation_without_message_created_passes_everything():
    state = StreamState(max_resumes=3)
    for e in [created(), chunk("a")]:
        state.accept(e)
    state.on_break(None)
    assert [state.accept(e) for e in [chunk("b"), chunk("c")]] == [True, True]
    assert state.text == "abc"


def test_state_heartbeats_do_not_shift_the_replay_count():
    state = StreamState(max_resumes=3)
    hb = Event("heartbeat")
    for e in [created(), hb, chunk("a"), hb]:
        state.accept(e)
    state.on_break(None)
    assert [state.accept(e) for e in [hb, created(), chunk("a"), hb, chunk("b")]] == [
        True, False, False, True, True]


def test_state_recover_sends_only_the_missing_tail():
    state = StreamState(max_resumes=1)
    for e in [created(), chunk("Hel")]:
        state.accept(e)
    events = state.recover([an.Message(id="m1", status="succeeded", answer="Hello")])
    assert isinstance(events[0], ChatMessage) and events[0].text == "lo"
    assert isinstance(events[1], StreamRecovered) and state.recovered



# -- after a break, with canned answers and no server ----------------------------------------

def broken_state() -> StreamState:
    state = StreamState(max_resumes=3)
    state.accept(MessageCreated("message_created", {"message_id": "m1", "conversation_id": "c1"}))
    state.accept(ChatMessage("chat_message", {"text": "Hel"}))
    return state


def test_after_a_break_the_stream_resumes_at_once_on_a_new_connection():
    plan = after_break(broken_state(), None)
    first = next(plan)
    assert isinstance(first, Pause) and first.seconds == 0.0  # the first resume does not wait
    reopen = plan.send(None)
    assert isinstance(reopen, Reopen) and reopen.call.path == "/chat/messages/m1/resume_stream"
    response = httpx.Response(200)
    with pytest.raises(StopIteration) as done:
        plan.send(response)
    assert done.value.value is response


def test_an_unresumable_stream_is_finished_from_the_stored_message():
    plan = after_break(broken_state(), None)
    next(plan)
    plan.send(None)  # asked to reopen: the server says the stream cannot resume
    recovery = plan.throw(an.UnresumableStreamError("gone", status_code=410))
    assert isinstance(recovery, Call) and recovery.params["end_message_id"] == "m1"
    stored = Message(id="m1", conversation_id="c1", status="succeeded", query="q", answer="Hello")
    with pytest.raises(StopIteration) as done:
        plan.send([stored])
    tail, marker = done.value.value
    assert isinstance(tail, ChatMessage) and tail.text == "lo" and isinstance(marker, StreamRecovered)


def test_a_failed_reopen_counts_as_another_break_until_the_policy_gives_up():
    state = broken_state()
    plan = after_break(state, None)
    waits: list[float] = []

    def every_reopen_fails() -> None:
        step = next(plan)
        while True:
            if isinstance(step, Pause):
                waits.append(step.seconds)
            step = plan.throw(an.APIConnectionError("refused")) if isinstance(step, Reopen) else plan.send(None)

    with pytest.raises(an.APIConnectionError, match="gave up resuming"):
        every_reopen_fails()
    assert state.resumes == 3 and waits[0] == 0.0 and len(waits) == 3 and all(w > 0 for w in waits[1:])


async def test_an_async_streams_idle_deadline_is_one_loop_timer_not_a_cancel_scope_per_read(server, echo, monkeypatch):
    """Over a real socket the idle deadline is a timer of the loop's that shuts the socket: a
    stall is still caught (and resumed), and no read enters a cancel scope (each costs ~20 us)."""
    import types

    from atomemo_notebook.transport import _streams, _watchdog

    def no_scope(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cancel scope around a read of a socket's stream")

    timers: list[_watchdog.Watch] = []
    watch = _watchdog.watch_on_loop

    def counted(deadline: float, on_expire: object) -> _watchdog.Watch:
        timers.append(watch(deadline, on_expire))  # type: ignore[arg-type]
        return timers[-1]

    monkeypatch.setattr(_streams, "anyio", types.SimpleNamespace(CancelScope=no_scope))
    monkeypatch.setattr(_streams.watchdog, "watch_on_loop", counted)
    started = time.monotonic()
    stream, events = await stream_with_fault("async", server, echo, "stall=5; stall_after=6", stream_idle_timeout=0.5)
    assert "".join(chunks(events)) == LONG and stream.resumes >= 1
    assert time.monotonic() - started < 4  # the stall was not waited out
    assert len(timers) == stream.resumes + 1 and timers[0].expired  # one per connection; the first fired
    assert all(t.cancelled for t in timers)  # none is left on the loop


async def test_a_loop_watch_moved_later_fires_only_at_its_new_deadline():
    import asyncio

    from atomemo_notebook.transport._watchdog import watch_on_loop

    fired = asyncio.Event()
    watch = watch_on_loop(time.monotonic() + 0.05, fired.set)
    watch.deadline = time.monotonic() + 0.3
    await asyncio.sleep(0.1)  # past the first deadline: moved, so not yet
    assert not watch.expired and not fired.is_set()
    await asyncio.wait_for(fired.wait(), 5)
    assert watch.expired and time.monotonic() >= watch.deadline
    cancelled = watch_on_loop(time.monotonic(), fired.clear)
    cancelled.cancel()
    await asyncio.sleep(0.01)
    assert not cancelled.expired and fired.is_set()


@pytest.mark.parametrize("scope", ["deadline_scope", "anyio_deadline_scope"])
async def test_a_deadline_scope_ends_awaited_work_at_its_deadline_and_only_then(scope):
    """The scope a call and an evaluated row run in: asyncio's on 3.11+, anyio's before (both
    tested here, whichever this Python picks)."""
    import asyncio

    from atomemo_notebook.transport import _watchdog

    within = getattr(_watchdog, scope)
    never = asyncio.Event()

    async def waits(at: float) -> None:
        async with within(at):
            await never.wait()

    async def ended(at: float) -> BaseException | None:
        task = asyncio.ensure_future(waits(at))
        done, _ = await asyncio.wait({task}, timeout=10)  # a scope that never fires fails here
        assert task in done, "the deadline never ended the work"
        return task.exception()

    assert isinstance(await ended(time.monotonic() - 1), TimeoutError)  # already past: at the first wait
    started = time.monotonic()
    assert isinstance(await ended(time.monotonic() + 0.2), TimeoutError)
    assert 0.15 <= time.monotonic() - started < 5
    async with within(time.monotonic() + 30):  # work done in time: nothing raised
        await asyncio.sleep(0)
    task = asyncio.ensure_future(waits(time.monotonic() + 30))
    await asyncio.sleep(0)
    task.cancel()  # a stop from outside stays a cancellation, never a timeout
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_connections_socket_is_asked_for_once_however_many_answers_it_carries():
    """httpcore's stream builds every attribute of its socket anew on each question (a
    getpeername() among them): a kept-alive connection is asked once. A stream that cannot be
    weakly referred to is asked each time, and still answers."""
    from atomemo_notebook.transport._streams import socket_of

    class Sock:
        def shutdown(self, how: int) -> None:
            pass

    class Network:
        def __init__(self) -> None:
            self.asked = 0
            self.sock = Sock()

        def get_extra_info(self, name: str) -> object:
            self.asked += 1
            return self.sock if name == "socket" else None

    class Pinned:
        __slots__ = ("asked", "sock")  # no __weakref__

        def get_extra_info(self, name: str) -> object:
            self.asked += 1
            return self.sock if name == "socket" else None

    shared = Network()
    answers = [httpx.Response(200, extensions={"network_stream": shared}) for _ in range(5)]
    assert all(socket_of(a) is shared.sock for a in answers) and shared.asked == 1
    assert socket_of(httpx.Response(200)) is None
    pinned = Pinned()
    pinned.asked, pinned.sock = 0, Sock()
    assert socket_of(httpx.Response(200, extensions={"network_stream": pinned})) is pinned.sock
    assert socket_of(httpx.Response(200, extensions={"network_stream": pinned})) is pinned.sock and pinned.asked == 2
