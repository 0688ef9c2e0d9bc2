"""OdysseyAI over the shared I/O: one POST, one blocking JSON answer. A reply is a "stream"
of two events (the request left; the answer came) so that it folds, logs and replays like
every other system's. Stop abandons the wait at once; the server may still finish the
answer, and nothing here can tell it otherwise (its API has no cancel)."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from ..protocol._call import Call, Open
from ..protocol._errors import APITimeoutError
from ..protocol._wire import Event
from ..protocol.odyssey import _calls as calls
from ..protocol.odyssey._backend import chat_call
from ..protocol.odyssey._calls import BODY
from ..protocol.odyssey._dialect import ODYSSEY
from ..protocol.odyssey.events import Name
from ._client import AsyncHttp, SyncHttp

__all__ = ["DEFAULT_ANSWER_TIMEOUT", "AsyncOdysseyClient", "AsyncOdysseyStream", "OdysseyClient", "OdysseyStream"]

DEFAULT_ANSWER_TIMEOUT = 300.0  # an agent that reads documents may think for minutes
_CLOSED = object()


class _Request:
    """One message on its way: the call, and the event that says it left."""

    def __init__(self, call: Call[dict[str, Any]], conversation_id: str, workspace_id: str,
                 agent_id: str | None, first: bool) -> None:
        self.call = call
        self.request_id = str(uuid.uuid4())  # the message's id here: the answer's own comes only at the end
        self.sent = Event(Name.REQUEST, {"request_id": self.request_id, "conversation_id": conversation_id,
                                         "workspace_id": workspace_id, "agent_id": agent_id, "first": first})


class OdysseyStream:
    """The wait for one answer, sync. The POST runs on its own thread, so `close()` (Stop, from
    any thread) ends the wait at once; that thread then ends by the answer or its deadline."""

    def __init__(self, client: OdysseyClient, request: _Request) -> None:
        self._client, self._request = client, request
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self.resumes = 0

    @property
    def message_id(self) -> str:
        return self._request.request_id

    def __enter__(self) -> OdysseyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSED)

    def _post(self) -> None:
        try:
            self._queue.put(self._client._call(self._request.call))
        except BaseException as exc:  # handed to the waiting thread, raised there
            self._queue.put(exc)

    def __iter__(self) -> Iterator[Event]:
        if self._closed:
            return
        threading.Thread(target=self._post, name="odyssey-request", daemon=True).start()
        yield self._request.sent
        try:
            # The call has its own deadline; this one only guards against a thread that never reports.
            item = self._queue.get(timeout=self._client.answer_timeout + 30.0)
        except queue.Empty:
            raise APITimeoutError(f"no answer within {self._client.answer_timeout:g} s") from None
        if item is _CLOSED:
            return
        if isinstance(item, BaseException):
            raise item
        yield Event(Name.RESPONSE, item)


class AsyncOdysseyStream:
    """`OdysseyStream`, awaited: Stop cancels the task, which closes the request."""

    received: int | None = None  # not counted: a chat folds it as it arrives

    def __init__(self, client: AsyncOdysseyClient, request: _Request) -> None:
        self._client, self._request = client, request
        self.resumes = 0

    @property
    def message_id(self) -> str:
        return self._request.request_id

    async def __aenter__(self) -> AsyncOdysseyStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def batches(self) -> AsyncIterator[list[Event]]:
        async with contextlib.aclosing(self._events()) as events:
            async for event in events:
                yield [event]

    async def _events(self) -> AsyncGenerator[Event, None]:
        yield self._request.sent
        data: dict[str, Any] = await self._client._call(self._request.call)
        yield Event(Name.RESPONSE, data)


class _OdysseyOptions:
    answer_timeout: float

    def _setup(self, answer_timeout: float) -> None:
        if not answer_timeout > 0:
            raise ValueError("answer_timeout must be > 0")
        self.answer_timeout = float(answer_timeout)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "answer_timeout": self.answer_timeout}  # type: ignore[misc]

    def _request(self, call: Call[dict[str, Any]]) -> _Request:
        """The question on its way, within answer_timeout; what it says of itself is in its body."""
        body = call.json
        return _Request(dataclasses.replace(call, timeout=self.answer_timeout), body[BODY["conversation"]],
                        body[BODY["workspace"]], body.get(BODY["agent"]), body[BODY["first"]])


class OdysseyClient(_OdysseyOptions, SyncHttp, speaks=True):
    """OdysseyAI's chat API, synchronous. `OdysseyClient()` reads ODYSSEY_API_KEY and
    ODYSSEY_BASE_URL. `answer_timeout`: the deadline of one answer."""

    DIALECT = ODYSSEY

    def __init__(self, api_key: str | None = None, *, answer_timeout: float = DEFAULT_ANSWER_TIMEOUT,
                 **options: Any) -> None:
        SyncHttp.__init__(self, api_key, **options)
        self._setup(answer_timeout)

    def send_message(self, *, workspace_id: str, conversation_id: str, message: str, user_id: str,
                     agent_id: str | None = None, memory: bool = True, first: bool = False) -> dict[str, Any]:
        """The raw call: the answer document's `data`, whole."""
        return self._call(calls.chat_message(workspace_id=workspace_id, conversation_id=conversation_id,
                                             message=message, user_id=user_id, agent_id=agent_id, memory=memory,
                                             first=first, timeout=self.answer_timeout))

    def chat(self, *, workspace_id: str, conversation_id: str | None, message: str, user_id: str,
             agent_id: str | None = None, memory: bool = True) -> OdysseyStream:
        """Ask, as a stream of two events; `conversation_id=None` starts a new conversation."""
        return self.open_stream(Open(chat_call(workspace_id=workspace_id, conversation_id=conversation_id,
                                               message=message, user_id=user_id, agent_id=agent_id, memory=memory)))

    def open_stream(self, spec: Open) -> OdysseyStream:
        return OdysseyStream(self, self._request(spec.call))


class AsyncOdysseyClient(_OdysseyOptions, AsyncHttp, speaks=True):
    """`OdysseyClient`, awaited."""

    DIALECT = ODYSSEY

    def __init__(self, api_key: str | None = None, *, answer_timeout: float = DEFAULT_ANSWER_TIMEOUT,
                 **options: Any) -> None:
        AsyncHttp.__init__(self, api_key, **options)
        self._setup(answer_timeout)

    async def send_message(self, *, workspace_id: str, conversation_id: str, message: str, user_id: str,
                           agent_id: str | None = None, memory: bool = True, first: bool = False) -> dict[str, Any]:
        return await self._call(calls.chat_message(workspace_id=workspace_id, conversation_id=conversation_id,
                                                   message=message, user_id=user_id, agent_id=agent_id,
                                                   memory=memory, first=first, timeout=self.answer_timeout))

    async def chat(self, *, workspace_id: str, conversation_id: str | None, message: str, user_id: str,
                   agent_id: str | None = None, memory: bool = True) -> AsyncOdysseyStream:
        return await self.open_stream(Open(chat_call(workspace_id=workspace_id, conversation_id=conversation_id,
                                                     message=message, user_id=user_id, agent_id=agent_id,
                                                     memory=memory)))

    async def open_stream(self, spec: Open) -> AsyncOdysseyStream:
        return AsyncOdysseyStream(self, self._request(spec.call))
