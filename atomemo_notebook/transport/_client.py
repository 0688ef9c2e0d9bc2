"""Client and AsyncClient (Atomemo's): one surface; everything but the waiting lives in
BaseClient, the calls (protocol/atomemo/_calls.py) and `StreamState`, the stream's decisions.
SyncHttp and AsyncHttp are the I/O every system's client shares. Every call has a deadline
(its `timeout`); every body a size bound."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import httpx

from ..protocol._call import Call, Custom, Listen, Open, Pause, Plan, Together
from ..protocol._errors import APIConnectionError, MessageNotFoundError
from ..protocol._limits import Limits
from ..protocol._wire import Conversation, Event, FileRef, Message
from ..protocol.atomemo import _calls as calls
from ..protocol.atomemo._adapter import text_of
from ..protocol.atomemo._dialect import ATOMEMO
from ..protocol.atomemo.events import ChatMessage, MessageCreated, Name, StreamRecovered
from ..protocol.atomemo.models import App, UploadToken
from . import _watchdog as watchdog
from ._base_client import BaseClient
from ._inflate import Inflater
from ._resume import Reopen, Step, StreamPolicy
from ._retry import backoff_delay
from ._streams import AsyncEventStream, AsyncStream, EventStream, SyncStream, shutdown_socket

__all__ = ["AsyncClient", "AsyncHttp", "Client", "StreamState", "SyncHttp"]

T = TypeVar("T")
S = TypeVar("S", bound="SyncHttp")
A = TypeVar("A", bound="AsyncHttp")
Upload = str | os.PathLike[str] | bytes


def _timed(call: Call[T], timeout: float | None) -> Call[T]:
    return call if timeout is None else dataclasses.replace(call, timeout=timeout)


class StreamState:
    """Atomemo's stream policy: folds what the consumer has already seen, so a resumed stream
    repeats nothing; when the stream can no longer be resumed, it finishes from stored history."""

    def __init__(self, max_resumes: int) -> None:
        self.max_resumes = max_resumes
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.finished = False  # execution_finished seen: the stream may end now
        self.final = False  # the server ends an Atomemo stream itself, right after its run
        self.idle_timeout: float | None = None  # the client's stream_idle_timeout, always
        self.resumes = 0
        self.recovered = False
        self._delivered = 0  # non-heartbeat events passed on, the unit a replay is counted in
        self._text: list[str] = []
        self._check_replay = False
        self._skip = 0

    @property
    def text(self) -> str:
        return "".join(self._text)

    def accept(self, event: Event) -> bool:
        """True when the consumer should see this event."""
        name = event.event
        if name == Name.CHAT_MESSAGE and not self._skip and not self._check_replay:
            self._text.append(text_of(event) or "")  # the hot path
            self._delivered += 1
            return True
        if name == Name.HEARTBEAT:
            return True
        if self._skip:
            self._skip -= 1
            return False
        if self._check_replay:
            self._check_replay = False
            if isinstance(event, MessageCreated) and event.message_id == self.message_id:
                # The server replays from the first event: drop what was already passed on.
                self._skip = self._delivered - 1
                return False
        if name == Name.CHAT_MESSAGE:
            self._text.append(text_of(event) or "")
        elif name == Name.MESSAGE_CREATED and self.message_id is None:
            self.message_id = event.message_id  # type: ignore[attr-defined]
            self.conversation_id = event.conversation_id  # type: ignore[attr-defined]
        elif name == Name.EXECUTION_FINISHED:
            self.finished = True
        self._delivered += 1
        return True

    def on_break(self, cause: BaseException | None) -> Step:
        """The connection ended before the execution did: allow a resume, or raise."""
        if self.message_id is None:
            what = "the stream ended" if cause is None else f"the connection failed ({cause!r})"
            raise APIConnectionError(
                f"{what} before the server confirmed the message; it was not resent, "
                "since that could create it twice"
            )
        if self.resumes >= self.max_resumes:
            raise APIConnectionError(
                f"gave up resuming message {self.message_id} after {self.resumes} tries"
            )
        self.resumes += 1
        self._check_replay = True
        self._skip = 0
        return "resume"

    def resume_call(self) -> Call[None]:
        return calls.resume_stream(str(self.message_id))

    def recovery_call(self) -> Call[list[Message]]:
        if not self.conversation_id:
            raise APIConnectionError("stream unresumable and its conversation is unknown")
        return calls.get_messages(self.conversation_id, end_message_id=self.message_id, include_end=True)

    def resume_delay(self) -> float:
        # The first resume is immediate: a dropped connection is usually not a busy server.
        return 0.0 if self.resumes <= 1 else backoff_delay(self.resumes - 1)

    def recover(self, answer: Any) -> list[Event]:
        """Finish from the stored message: the missing tail of the text, then a marker."""
        message = next((m for m in answer if isinstance(m, Message) and m.id == self.message_id), None)
        if message is None:
            raise MessageNotFoundError(
                f"message {self.message_id} is neither resumable nor in its conversation's history",
                status_code=404, code="NOT_FOUND")
        self.recovered = True
        self.finished = True
        events: list[Event] = []
        seen = self.text
        answer = message.answer or ""
        if len(answer) > len(seen) and answer.startswith(seen):
            events.append(ChatMessage(Name.CHAT_MESSAGE, {"text": answer[len(seen):]}))
        events.append(StreamRecovered(StreamRecovered.NAME, {"message": message.to_wire()}))
        return events


class SyncHttp(BaseClient):
    """The sync I/O every system's client shares: open, read within bounds and deadline, retry."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        stream_idle_timeout: float = 60.0,
        max_resumes: int = 5,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         stream_idle_timeout=stream_idle_timeout, max_resumes=max_resumes, limits=limits)
        self._owns_http = http_client is None
        # No redirects; a caller's client that follows them does so without the key off our origin.
        self._http = http_client or httpx.Client(follow_redirects=False)

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- I/O --------------------------------------------------------------------------
    def _open(self, call: Call[Any], deadline: float) -> httpx.Response:
        """Send until a usable answer's headers arrive, retrying what is safe to retry."""
        attempt = 0
        while True:
            attempt += 1
            pause = self._pause_before_send(deadline, retrying=attempt > 1)
            if pause:
                time.sleep(pause)
            try:
                response = self._send(self._build(self._http, call, deadline))
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(call, attempt, exc, deadline)
                if delay is None:
                    raise self._transport_error(exc) from exc
                time.sleep(delay)
                continue
            if self._usable(call, response):
                return response
            body = self._read_error(call, response, deadline)
            delay = self._retry_after_status(call, attempt, response, body, deadline)
            if delay is None:
                raise self._failure(response, body)
            time.sleep(delay)

    def _send(self, request: httpx.Request) -> httpx.Response:
        """One request, and the redirects the HTTP client follows, hop by hop (see _next_hop)."""
        response = self._http.send(request, stream=True, follow_redirects=False)
        hops = 0
        try:
            while (following := self._next_hop(self._http, response, hops)) is not None:
                response.close()
                hops += 1
                response = self._http.send(following, stream=True, follow_redirects=False)
        except BaseException:
            response.close()
            raise
        return response

    def _read(self, call: Call[Any], response: httpx.Response, limit: int, deadline: float,
              *, keep_partial: bool = False) -> bytes:
        """The body, read within the deadline and the size limit; the response is closed after.
        keep_partial: stop quietly at the limit or a broken connection (an error's body)."""
        expiry = watchdog.watch(deadline, lambda: shutdown_socket(response))
        chunks: list[bytes] = []
        size = 0
        try:
            if not keep_partial:
                self._check_length(response)
            inflater = Inflater(response.headers.get("content-encoding", ""))
            for raw in response.iter_raw():
                for chunk in inflater.feed(raw):
                    size += len(chunk)
                    if size > limit:
                        if keep_partial:
                            chunks.append(chunk[:len(chunk) - (size - limit)])
                            return b"".join(chunks)
                        raise self._too_large(size)
                    chunks.append(chunk)
        except httpx.TransportError:
            if expiry.expired:
                raise self._timeout_error(call) from None
            if not keep_partial:
                raise
        finally:
            expiry.cancel()
            response.close()
        if expiry.expired and not keep_partial:
            raise self._timeout_error(call)
        return b"".join(chunks)

    def _read_error(self, call: Call[Any], response: httpx.Response, deadline: float) -> str:
        body = self._read(call, response, self.limits.error_body, deadline, keep_partial=True)
        return body.decode(errors="replace")

    def _call(self, call: Call[T], deadline: float | None = None) -> T:
        deadline = self._deadline(call) if deadline is None else deadline
        attempt = 0
        while True:
            attempt += 1
            response = self._open(call, deadline)
            if not call.json_answer:
                response.close()
                return call.parse(None)
            try:
                body = self._read(call, response, self.limits.body, deadline)
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(call, attempt, exc, deadline)
                if delay is None:
                    raise self._transport_error(exc) from exc
                time.sleep(delay)
                continue
            return self._parse(call, response, body)

    def _drive(self, flow: Plan[T], timeout: float | None = None, *, shared: bool = True) -> T:
        """Run a flow (or a backend's plan): its calls under one deadline (`timeout`, or the
        client's; `shared=False`: each call under its own), its other steps by `_step`. A
        failure is thrown into the flow, which may catch it."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout) if shared else None
        try:
            step = next(flow)
            while True:
                try:
                    answer = self._call(step, deadline) if isinstance(step, Call) else self._step(step)
                except Exception as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _step(self, step: Open | Listen | Pause | Together[Any] | Custom) -> Any:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
        elif isinstance(step, Open):  # in a flow: read to its end, quietly
            with self.open_stream(step) as stream:
                for _ in stream:
                    pass
        elif isinstance(step, Listen):  # handed back open: the plan's caller reads it
            return self.open_stream(step.spec)
        elif isinstance(step, Together):
            return self._drive(step.flow, step.timeout)
        else:
            return self._perform(step)
        return None

    def _perform(self, step: Custom) -> Any:
        """A system's own kind of step (its client answers it), or a broken stream's reopening."""
        if isinstance(step, Reopen):
            return self._open(step.call, self._deadline(step.call))
        raise TypeError(f"{type(self).__name__} cannot run {step!r}")

    def run_plan(self, plan: Plan[T]) -> T:
        """Run a backend's plan, each call under its own deadline."""
        return self._drive(plan, shared=False)

    def open_stream(self, spec: Open) -> SyncStream:
        """Open the stream `spec` describes, read by the system's own policy."""
        return self._stream(spec.call, self._policy(spec))

    def _policy(self, spec: Open) -> StreamPolicy:
        """The system's stream policy for `spec`: each client that streams says its own."""
        raise TypeError(f"{type(self).__name__} has no stream policy")

    def hold(self) -> None:
        """A chat starts using this client (one that keeps a socket counts them)."""

    def release(self) -> None:
        """A chat is done with this client."""

    def _stream(self, call: Call[Any], policy: StreamPolicy) -> EventStream:
        return EventStream(self, self._open(call, self._deadline(call)), policy)



class Client(SyncHttp, speaks=True):
    """Synchronous Atomemo Chat API client.

    >>> with Client() as client:  # key from ATOMEMO_API_KEY
    ...     for event in client.send_message(app_id=..., trigger_id=..., query="Hi", user_id="u"):
    ...         print(event.event)
    """

    DIALECT = ATOMEMO

    def _policy(self, spec: Open) -> StreamPolicy:
        return StreamState(self.max_resumes)  # Atomemo's: resume, then recover from history

    def send_message(
        self, *, app_id: str, trigger_id: str, query: str | FileRef, user_id: str,
        conversation_id: str | None = None, parent_id: str | None = None,
        inputs: dict[str, Any] | None = None, source: str | None = None,
    ) -> EventStream:
        """POST /chat/messages: an event stream that resumes by itself if the connection drops."""
        return self._stream(calls.send_message(
            app_id=app_id, trigger_id=trigger_id, query=query, user_id=user_id,
            conversation_id=conversation_id, parent_id=parent_id, inputs=inputs, source=source),
            StreamState(self.max_resumes))

    def resume_stream(self, message_id: str) -> EventStream:
        """GET /chat/messages/{id}/resume_stream: the message's stream, from its first event."""
        return self._stream(calls.resume_stream(message_id), StreamState(self.max_resumes))

    def get_app(self, app_id: str, *, timeout: float | None = None) -> App:
        """GET /chat/app/{appId} (public: no key needed)."""
        return self._call(_timed(calls.get_app(app_id), timeout))

    def list_conversations(self, *, app_id: str, trigger_id: str, user_id: str,
                           timeout: float | None = None) -> list[Conversation]:
        return self._call(_timed(calls.list_conversations(app_id=app_id, trigger_id=trigger_id,
                                                          user_id=user_id), timeout))

    def get_messages(self, conversation_id: str, *, end_message_id: str | None = None,
                     include_end: bool = False, timeout: float | None = None) -> list[Message]:
        return self._call(_timed(calls.get_messages(conversation_id, end_message_id=end_message_id,
                                                    include_end=include_end), timeout))

    def upload_url(self, url: str, *, timeout: float | None = None) -> FileRef:
        return self._call(_timed(calls.upload_url(url), timeout))

    def get_upload_token(self, mime_type: str | None = None, *, timeout: float | None = None) -> UploadToken:
        return self._call(_timed(calls.get_upload_token(mime_type), timeout))

    def upload_file(self, path_or_bytes: Upload, *, filename: str | None = None,
                    mime_type: str | None = None, timeout: float | None = None) -> FileRef:
        """The 3-step upload (token, PUT to uploadHost without the key, download URL), one deadline."""
        return self._drive(calls.upload_file(path_or_bytes, filename=filename, mime_type=mime_type), timeout)

    def download_url(self, res_key: str, *, timeout: float | None = None) -> str:
        return self._call(_timed(calls.download_url(res_key), timeout))


MAX_GATES = 64  # origins a client keeps a start gate for (see AsyncHttp._send_one)

# Told when a request sent in the context it is set in is written (its answer is then the
# server's to give): evaluate() folds the row before while the next row's request is out.
# Called when the request is written, or waits before it is (a 429's pause), or failed, or was
# answered without a word of how it went (a transport with no trace events); again for each
# retry or redirect: it must be idempotent and must not raise.
REQUEST_SENT: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "atomemo_request_sent", default=None)
_WAITING = frozenset({"http11.receive_response_headers.started", "http2.receive_response_headers.started"})


class AsyncHttp(BaseClient):
    """The async I/O every system's client shares; a call's deadline is one scope around the
    whole call (`deadline_scope`)."""

    ASYNCHRONOUS = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        stream_idle_timeout: float = 60.0,
        max_resumes: int = 5,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         stream_idle_timeout=stream_idle_timeout, max_resumes=max_resumes, limits=limits)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(follow_redirects=False)
        # See _send_one: a gate per origin, on the loop the client runs on.
        self._gates: dict[tuple[str, str, int | None], asyncio.Lock] = {}
        self._gates_loop: asyncio.AbstractEventLoop | None = None
        self._untraced = False  # its transport answered without a trace event: not gated

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- I/O: the deadline is one scope around the whole call (`deadline_scope`) -------------
    async def _open(self, call: Call[Any], deadline: float) -> httpx.Response:
        try:
            async with watchdog.deadline_scope(deadline):
                return await self._open_within(call, deadline)
        except TimeoutError:
            raise self._timeout_error(call) from None

    async def _open_within(self, call: Call[Any], deadline: float) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            pause = self._pause_before_send(deadline, retrying=attempt > 1)
            if pause:
                waiting = REQUEST_SENT.get()
                if waiting is not None:  # nothing is sent for a while: the caller's work goes on meanwhile
                    waiting()
                await anyio.sleep(pause)
            try:
                response = await self._send(self._build(self._http, call, deadline))
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(call, attempt, exc, deadline)
                if delay is None:
                    raise self._transport_error(exc) from exc
                await anyio.sleep(delay)
                continue
            if self._usable(call, response):
                return response
            body = await self._read_error(response)
            delay = self._retry_after_status(call, attempt, response, body, deadline)
            if delay is None:
                raise self._failure(response, body)
            await anyio.sleep(delay)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One request, and the redirects the HTTP client follows, hop by hop (see _next_hop)."""
        response = await self._send_one(request)
        hops = 0
        try:
            while (following := self._next_hop(self._http, response, hops)) is not None:
                await response.aclose()
                hops += 1
                response = await self._send_one(following)
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _send_one(self, request: httpx.Request) -> httpx.Response:
        """`http.send`, one request to an origin at a time until it holds a connection.

        httpcore's pool gives the same idle connection to every request that starts in the same
        turn of the loop; all but one then retry the whole assignment, which checks each idle
        connection's socket (at concurrency 8, ~2.5 retries a request: most of what a row of
        evaluate() cost more than a bare loop). The gate is let go at the request's first trace
        event (httpcore's `trace` extension): by then it holds its connection. Only httpx's own
        transport is gated (it sends trace events; a mock or another transport might only answer,
        and hold the gate through its whole answer), and one origin's requests never wait on
        another's (a connection serves one origin; a mounted or proxied one has its own pool).
        A caller's REQUEST_SENT is told at the request's receive_response_headers step."""
        gate = self._start_gate(request.url) if self._gated(request.url) else None
        sent = REQUEST_SENT.get()
        if gate is None:
            try:
                return await self._http.send(request, stream=True, follow_redirects=False)
            finally:
                if sent is not None:
                    sent()
        await gate.acquire()
        heard = False

        async def step(name: str, info: dict[str, Any]) -> None:
            nonlocal heard, sent
            if not heard:
                heard = True
                gate.release()
                if sent is None:
                    request.extensions.pop("trace", None)  # nothing more to hear: no call per later step
            elif sent is not None and name in _WAITING:  # written: the server's turn
                request.extensions.pop("trace", None)
                told, sent = sent, None
                told()

        request.extensions["trace"] = step
        try:
            response = await self._http.send(request, stream=True, follow_redirects=False)
        except BaseException:
            if not heard:  # it failed (or was cancelled) before its first step
                await step("failed", {})
            if sent is not None:
                sent()
            raise
        if not heard:  # answered without a trace event: a transport of httpx's kind that sends none
            await step("untraced", {})
            self._untraced = True
        if sent is not None:
            sent()
        return response

    def _gated(self, url: httpx.URL) -> bool:
        if self._untraced:
            return False
        # httpx names no public way to ask which transport a URL goes to: without this one, no gate.
        pick = getattr(self._http, "_transport_for_url", None)
        try:
            return pick is not None and isinstance(pick(url), httpx.AsyncHTTPTransport)
        except Exception:  # whatever it raises, the request is sent ungated
            return False

    def _start_gate(self, url: httpx.URL) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._gates_loop is not loop:  # a lock belongs to one loop
            self._gates_loop, self._gates = loop, {}
        origin = (url.scheme, url.host, url.port)
        gate = self._gates.get(origin)
        if gate is None:
            if len(self._gates) >= MAX_GATES:  # bounded: a held gate stays with its holder, unharmed
                self._gates.clear()
            gate = self._gates[origin] = asyncio.Lock()
        return gate

    async def _read(self, response: httpx.Response, limit: int, *, keep_partial: bool = False) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            if not keep_partial:
                self._check_length(response)
            inflater = Inflater(response.headers.get("content-encoding", ""))
            async for raw in response.aiter_raw():
                for chunk in inflater.feed(raw):
                    size += len(chunk)
                    if size > limit:
                        if keep_partial:
                            chunks.append(chunk[:len(chunk) - (size - limit)])
                            return b"".join(chunks)
                        raise self._too_large(size)
                    chunks.append(chunk)
        except httpx.TransportError:
            if not keep_partial:
                raise
        finally:
            await response.aclose()
        return b"".join(chunks)

    async def _read_error(self, response: httpx.Response) -> str:
        body = await self._read(response, self.limits.error_body, keep_partial=True)
        return body.decode(errors="replace")

    async def _call(self, call: Call[T], deadline: float | None = None) -> T:
        deadline = self._deadline(call) if deadline is None else deadline
        try:
            async with watchdog.deadline_scope(deadline):
                attempt = 0
                while True:
                    attempt += 1
                    response = await self._open_within(call, deadline)
                    if not call.json_answer:
                        await response.aclose()
                        return call.parse(None)
                    try:
                        body = await self._read(response, self.limits.body)
                    except httpx.TransportError as exc:
                        delay = self._retry_after_exception(call, attempt, exc, deadline)
                        if delay is None:
                            raise self._transport_error(exc) from exc
                        await anyio.sleep(delay)
                        continue
                    return self._parse(call, response, body)
        except TimeoutError:
            raise self._timeout_error(call) from None

    async def _drive(self, flow: Plan[T], timeout: float | None = None, *, shared: bool = True) -> T:
        """`SyncHttp._drive`, awaited."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout) if shared else None
        try:
            step = next(flow)
            while True:
                try:
                    answer = await (self._call(step, deadline) if isinstance(step, Call) else self._step(step))
                except Exception as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _step(self, step: Open | Listen | Pause | Together[Any] | Custom) -> Any:
        if isinstance(step, Pause):
            await anyio.sleep(step.seconds)
        elif isinstance(step, Open):
            stream = await self.open_stream(step)
            async with stream:
                async for _ in stream:
                    pass
        elif isinstance(step, Listen):
            return await self.open_stream(step.spec)
        elif isinstance(step, Together):
            return await self._drive(step.flow, step.timeout)
        else:
            return await self._perform(step)
        return None

    async def _perform(self, step: Custom) -> Any:
        if isinstance(step, Reopen):
            return await self._open(step.call, self._deadline(step.call))
        raise TypeError(f"{type(self).__name__} cannot run {step!r}")

    async def run_plan(self, plan: Plan[T]) -> T:
        return await self._drive(plan, shared=False)

    async def open_stream(self, spec: Open) -> AsyncStream:
        return await self._stream(spec.call, self._policy(spec))

    def _policy(self, spec: Open) -> StreamPolicy:
        raise TypeError(f"{type(self).__name__} has no stream policy")

    def hold(self) -> None:
        """A chat starts using this client."""

    async def release(self) -> None:
        """A chat is done with this client."""

    async def _stream(self, call: Call[Any], policy: StreamPolicy) -> AsyncEventStream:
        response = await self._open(call, self._deadline(call))
        return AsyncEventStream(self, response, policy)



class AsyncClient(AsyncHttp, speaks=True):
    """Asynchronous Atomemo Chat API client; the same surface as `Client`, awaited."""

    DIALECT = ATOMEMO

    def _policy(self, spec: Open) -> StreamPolicy:
        return StreamState(self.max_resumes)  # Atomemo's: resume, then recover from history

    async def send_message(
        self, *, app_id: str, trigger_id: str, query: str | FileRef, user_id: str,
        conversation_id: str | None = None, parent_id: str | None = None,
        inputs: dict[str, Any] | None = None, source: str | None = None,
    ) -> AsyncEventStream:
        return await self._stream(calls.send_message(
            app_id=app_id, trigger_id=trigger_id, query=query, user_id=user_id,
            conversation_id=conversation_id, parent_id=parent_id, inputs=inputs, source=source),
            StreamState(self.max_resumes))

    async def resume_stream(self, message_id: str) -> AsyncEventStream:
        return await self._stream(calls.resume_stream(message_id), StreamState(self.max_resumes))

    async def get_app(self, app_id: str, *, timeout: float | None = None) -> App:
        return await self._call(_timed(calls.get_app(app_id), timeout))

    async def list_conversations(self, *, app_id: str, trigger_id: str, user_id: str,
                                 timeout: float | None = None) -> list[Conversation]:
        return await self._call(_timed(calls.list_conversations(app_id=app_id, trigger_id=trigger_id,
                                                                user_id=user_id), timeout))

    async def get_messages(self, conversation_id: str, *, end_message_id: str | None = None,
                           include_end: bool = False, timeout: float | None = None) -> list[Message]:
        return await self._call(_timed(calls.get_messages(conversation_id, end_message_id=end_message_id,
                                                          include_end=include_end), timeout))

    async def upload_url(self, url: str, *, timeout: float | None = None) -> FileRef:
        return await self._call(_timed(calls.upload_url(url), timeout))

    async def get_upload_token(self, mime_type: str | None = None, *,
                               timeout: float | None = None) -> UploadToken:
        return await self._call(_timed(calls.get_upload_token(mime_type), timeout))

    async def upload_file(self, path_or_bytes: Upload, *, filename: str | None = None,
                          mime_type: str | None = None, timeout: float | None = None) -> FileRef:
        return await self._drive(calls.upload_file(path_or_bytes, filename=filename,
                                                   mime_type=mime_type), timeout)

    async def download_url(self, res_key: str, *, timeout: float | None = None) -> str:
        return await self._call(_timed(calls.download_url(res_key), timeout))
