"""Pipelit over REST and one WebSocket: `chat()` subscribes the workflow's channel first,
then POSTs the message, then hands back the execution's events as the socket routes them. A
stream that lost its socket reads the execution's record (once it says the execution ended), or ends
clearly failed. A sync and an async client; both share the machinery of the other systems' clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from ..protocol._call import Custom, Open
from ..protocol._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    MissingAPIKeyError,
    PermissionDeniedError,
)
from ..protocol._wire import Event
from ..protocol.pipelit import _calls as calls
from ..protocol.pipelit._backend import Watch, late_text
from ..protocol.pipelit._dialect import PIPELIT
from ..protocol.pipelit.events import ENDINGS, Name
from ._client import AsyncHttp, SyncHttp
from ._socket_hub import Hub, Reconnect

__all__ = ["AsyncPipelitClient", "AsyncPipelitStream", "PipelitClient", "PipelitStream", "Reconnect"]

DEFAULT_EXECUTION_TIMEOUT = 600.0  # Pipelit's own default limit of one execution
RECOVER_POLL = 1.0  # seconds between looks at the execution's record once the socket lost events
_CLOSED = object()  # put in a stream's queue by close(), to end a wait at once


def channel(workflow: str) -> str:
    return f"workflow:{workflow}"


class _Watching:
    """What a stream of either kind knows and decides: the first event, the deadline, when
    the socket's loss means reading history, and the error when it cannot help."""

    def __init__(self, workflow: str, text: str, executed: calls.Executed, timeout: float, poll: float) -> None:
        self.workflow, self.text = workflow, text
        self.execution_id = executed.execution_id
        self.message_id = executed.execution_id  # what the views call the message
        self.deadline = time.monotonic() + timeout
        self.timeout, self.poll = timeout, poll
        self.lost: BaseException | None = None  # the socket is gone for good
        self.gap = False
        self.resumes = 0  # looks at history
        self.closed = False

    def first(self) -> Event:
        return Event(Name.STARTED, {"type": Name.STARTED, "execution_id": self.execution_id,
                                    "thread_id": self.workflow})

    def wait(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise APITimeoutError(f"execution {self.execution_id} did not end within {self.timeout:g} s")
        return min(remaining, self.poll) if self.needs_history else remaining

    def take(self, item: Any) -> Event | None:
        """An item from the hub: an event to yield, or None (an error noted: look at history)."""
        if isinstance(item, AuthenticationError | PermissionDeniedError):
            raise item
        if isinstance(item, BaseException):
            self.lost = item
            return None
        if item.event == Name.GAP:
            self.gap = True
        return item  # type: ignore[no-any-return]

    @property
    def needs_history(self) -> bool:
        """The socket dropped or is gone: what ran meanwhile can only be read from the record."""
        return self.gap or self.lost is not None

    def from_record(self, record: calls.Execution) -> Event | None:
        """The execution's end, read from its record, or None: it has not ended yet (a run
        still going is never taken for its end, whatever history holds meanwhile)."""
        self.resumes += 1
        if record.execution_id != self.execution_id or not record.ended:
            return None
        data = dataclasses.asdict(record)
        data["logs"] = list(record.logs)  # JSON's shape, as saved and replayed
        return Event(Name.RECOVERED, {"type": Name.RECOVERED, "execution_id": self.execution_id, "data": data})

    def give_up(self) -> BaseException:
        why = f"{type(self.lost).__name__}: {self.lost}" if self.lost else "events were lost"
        return APIConnectionError(f"the WebSocket of execution {self.execution_id} was lost ({why}) and its "
                                  "record does not say it ended yet")


_NEXT = object()  # the machine asks its driver for the hub's next item (None: the wait ran out)
_RECORD = object()  # the machine asks its driver for the execution's record


def _machine(state: _Watching) -> Generator[Any, Any, None]:
    """What both streams do after the first event, written once: yields events to pass on, or
    _NEXT / _RECORD for its driver to answer by `send` (the sync and async loops differ only
    in how they wait and call)."""
    while not state.closed:
        item = yield _NEXT
        if item is _CLOSED:
            return
        if item is not None:
            event = state.take(item)
            if event is not None:
                yield event
                if event.event in ENDINGS:
                    return
                continue
        if state.needs_history:
            ended = state.from_record((yield _RECORD))
            if ended is not None:
                yield ended
                return


class _PipelitStreamBase:
    _state: _Watching

    @property
    def execution_id(self) -> str:
        return self._state.execution_id

    @property
    def message_id(self) -> str:
        return self._state.execution_id

    @property
    def resumes(self) -> int:
        return self._state.resumes

    def _timed_out(self, exc: APITimeoutError) -> BaseException:
        """The deadline passed: a socket lost for good says so, else the timeout itself."""
        return self._state.give_up() if self._state.lost else exc


class PipelitStream(_PipelitStreamBase):
    """One execution's events, sync: `_execution_created` first, then the socket's, to its end."""

    def __init__(self, client: PipelitClient, hub: Hub, state: _Watching) -> None:
        self._client, self._hub, self._state = client, hub, state  # the hub it subscribed on
        self._queue: queue.Queue[Any] = queue.Queue()
        self._watch = hub.watch(state.execution_id, self._queue.put)

    def __enter__(self) -> PipelitStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching (from any thread): a waiting iteration ends at once."""
        if not self._state.closed:
            self._state.closed = True
            self._hub.unwatch(self._watch)
            self._queue.put(_CLOSED)

    def __iter__(self) -> Iterator[Event]:
        state = self._state
        yield state.first()
        machine, answer = _machine(state), None
        try:
            while True:  # until the machine returns
                try:
                    out = machine.send(answer)
                except StopIteration:
                    return
                answer = None
                if out is _NEXT:
                    with contextlib.suppress(queue.Empty):
                        answer = self._queue.get(timeout=state.wait())
                elif out is _RECORD:
                    answer = self._client.execution(state.execution_id)
                else:
                    yield out
        except APITimeoutError as exc:
            raise self._timed_out(exc) from None
        finally:
            self.close()


class AsyncPipelitStream(_PipelitStreamBase):
    """`PipelitStream`, awaited."""

    received: int | None = None  # not counted: a chat folds it as it arrives

    def __init__(self, client: AsyncPipelitClient, hub: Hub, state: _Watching) -> None:
        self._client, self._hub, self._state = client, hub, state
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def deliver(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # our loop closed first: nobody is waiting
                loop.call_soon_threadsafe(self._queue.put_nowait, item)

        self._watch = hub.watch(state.execution_id, deliver)

    async def __aenter__(self) -> AsyncPipelitStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._state.closed:
            self._state.closed = True
            self._hub.unwatch(self._watch)
            self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def batches(self) -> AsyncIterator[list[Event]]:
        async with contextlib.aclosing(self._events()) as events:
            async for event in events:
                yield [event]

    async def _events(self) -> AsyncGenerator[Event, None]:
        state = self._state
        yield state.first()
        machine, answer = _machine(state), None
        try:
            while True:  # until the machine returns
                try:
                    out = machine.send(answer)
                except StopIteration:
                    return
                answer = None
                if out is _NEXT:
                    with contextlib.suppress(TimeoutError):
                        answer = await asyncio.wait_for(self._queue.get(), state.wait())
                elif out is _RECORD:
                    answer = await self._client.execution(state.execution_id)
                else:
                    yield out
        except APITimeoutError as exc:
            raise self._timed_out(exc) from None
        finally:
            await self.close()


def watch_after_stop(client: PipelitClient | AsyncPipelitClient, execution_id: str,
                     note: Callable[[str], None]) -> None:
    """Keep watching a stopped execution until it ends (or the client's execution_timeout):
    Pipelit may run it on after the cancel, and that is said on the stopped turn, never taken
    for a success."""
    hub = client.hub

    def deliver(item: Event | BaseException) -> None:
        if isinstance(item, BaseException):
            hub.unwatch(watch)  # the socket is gone: nothing more will be learned this way
            return
        text = late_text(item)
        if text is not None:
            hub.unwatch(watch)
            note(text)

    watch = hub.watch(execution_id, deliver)
    timer = threading.Timer(client.execution_timeout, hub.unwatch, (watch,))
    timer.daemon = True
    timer.start()


def _asked(spec: Open) -> tuple[str, str]:
    if spec.topic is None or spec.text is None:
        raise ValueError("a Pipelit stream needs the workflow (topic) and the text asked")
    return spec.topic, spec.text


class _PipelitOptions:
    _api_key: str | None
    base_url: str
    timeout: float
    limits: Any

    def _setup(self, execution_timeout: float, recover_poll: float, reconnect: Reconnect | None) -> None:
        if execution_timeout <= 0 or recover_poll <= 0:
            raise ValueError("execution_timeout and recover_poll must be > 0")
        self.execution_timeout = float(execution_timeout)
        self.recover_poll = float(recover_poll)
        self.reconnect = reconnect or Reconnect()
        self._hub: Hub | None = None
        self._holders = 0  # chats on this client: the socket closes with the last of them
        self._hub_lock = threading.Lock()  # chats on several threads share one hub, never two

    def options(self) -> dict[str, Any]:
        return {**super().options(), "execution_timeout": self.execution_timeout,  # type: ignore[misc]
                "recover_poll": self.recover_poll, "reconnect": self.reconnect}

    def hold(self) -> None:
        """A chat starts using this client."""
        with self._hub_lock:
            self._holders += 1

    def _let_go(self) -> None:
        with self._hub_lock:
            self._holders = max(0, self._holders - 1)
            last = self._holders == 0
        if last:
            self._close_hub()  # reopened on the next ask, if any

    @property
    def hub(self) -> Hub:
        """The one WebSocket of this client (opened on first use)."""
        with self._hub_lock:
            if self._hub is None or self._hub.closed:
                if self._api_key is None:
                    raise MissingAPIKeyError(PIPELIT.key_env)
                self._hub = Hub(self.base_url, self._api_key, open_timeout=min(self.timeout, 10.0),
                               max_message=self.limits.event, max_values=self.limits.json_values,
                               reconnect=self.reconnect)
            return self._hub

    def _close_hub(self) -> None:
        with self._hub_lock:
            hub, self._hub = self._hub, None
        if hub is not None:
            hub.close()


class PipelitClient(_PipelitOptions, SyncHttp, speaks=True):
    """Pipelit's chat API, synchronous. `PipelitClient()` reads PIPELIT_API_KEY and PIPELIT_BASE_URL.
    `execution_timeout`: the deadline of one execution, from its POST to its end; `reconnect`:
    how its WebSocket is reopened after a drop (`Reconnect`: tries, waits, when a socket counts
    as working again)."""

    DIALECT = PIPELIT

    def __init__(self, api_key: str | None = None, *, execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
                 recover_poll: float = RECOVER_POLL, reconnect: Reconnect | None = None, **options: Any) -> None:
        SyncHttp.__init__(self, api_key, **options)
        self._setup(execution_timeout, recover_poll, reconnect)

    def chat(self, workflow: str, text: str, *, trigger_node_id: str | None = None) -> PipelitStream:
        """Send `text` to the workflow and watch its execution."""
        return self.open_stream(Open(calls.chat(workflow, text, trigger_node_id=trigger_node_id), topic=workflow,
                                     text=text))

    def open_stream(self, spec: Open) -> PipelitStream:
        workflow, text = _asked(spec)
        hub = self.hub
        hub.subscribe(channel(workflow), self.timeout)  # before the POST: no event can be missed
        executed = self._call(spec.call)
        return PipelitStream(self, hub, _Watching(workflow, text, executed, self.execution_timeout, self.recover_poll))

    def _perform(self, step: Custom) -> Any:
        if not isinstance(step, Watch):
            return super()._perform(step)
        watch_after_stop(self, step.execution_id, step.note)
        return None

    def history(self, workflow: str, *, limit: int = 10, before: str | None = None) -> calls.History:
        return self._call(calls.history(workflow, limit=limit, before=before))

    def workflow(self, workflow: str) -> dict[str, Any]:
        return self._call(calls.workflow(workflow))

    def execution(self, execution_id: str) -> calls.Execution:
        """The execution's record: status, final output, error, tokens, cost, node logs."""
        return self._call(calls.execution(execution_id))

    def cancel(self, execution_id: str) -> calls.Execution:
        """Ask Pipelit to cancel the execution. It stops only an execution whose first node has
        not started: a running node finishes and the execution may still end `completed`."""
        return self._call(calls.cancel(execution_id))

    def clear_history(self, workflow: str) -> None:
        self._call(calls.clear_history(workflow))

    def release(self) -> None:
        """A chat is done with this client; the last one closes the WebSocket."""
        self._let_go()

    def close(self) -> None:
        self._close_hub()
        SyncHttp.close(self)


class AsyncPipelitClient(_PipelitOptions, AsyncHttp, speaks=True):
    """`PipelitClient`, awaited."""

    DIALECT = PIPELIT

    def __init__(self, api_key: str | None = None, *, execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
                 recover_poll: float = RECOVER_POLL, reconnect: Reconnect | None = None, **options: Any) -> None:
        AsyncHttp.__init__(self, api_key, **options)
        self._setup(execution_timeout, recover_poll, reconnect)

    async def chat(self, workflow: str, text: str, *, trigger_node_id: str | None = None) -> AsyncPipelitStream:
        return await self.open_stream(Open(calls.chat(workflow, text, trigger_node_id=trigger_node_id),
                                           topic=workflow, text=text))

    async def open_stream(self, spec: Open) -> AsyncPipelitStream:
        workflow, text = _asked(spec)
        hub = self.hub
        await hub.subscribe_async(channel(workflow), self.timeout)
        executed = await self._call(spec.call)
        return AsyncPipelitStream(self, hub, _Watching(workflow, text, executed, self.execution_timeout,
                                                  self.recover_poll))

    async def _perform(self, step: Custom) -> Any:
        """A Watch tells its note in this loop: the socket's thread hands it over."""
        if not isinstance(step, Watch):
            return await super()._perform(step)
        loop = asyncio.get_running_loop()
        note = step.note

        def told(text: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to tell
                loop.call_soon_threadsafe(note, text)

        watch_after_stop(self, step.execution_id, told)
        return None

    async def history(self, workflow: str, *, limit: int = 10, before: str | None = None) -> calls.History:
        return await self._call(calls.history(workflow, limit=limit, before=before))

    async def workflow(self, workflow: str) -> dict[str, Any]:
        return await self._call(calls.workflow(workflow))

    async def execution(self, execution_id: str) -> calls.Execution:
        return await self._call(calls.execution(execution_id))

    async def cancel(self, execution_id: str) -> calls.Execution:
        return await self._call(calls.cancel(execution_id))

    async def clear_history(self, workflow: str) -> None:
        await self._call(calls.clear_history(workflow))

    async def release(self) -> None:
        await asyncio.to_thread(self._let_go)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_hub)
        await AsyncHttp.close(self)
