"""Client and AsyncClient: one surface; everything but the waiting lives in BaseClient,
_calls and _resume."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx

from . import _calls as calls
from ._base_client import BaseClient
from ._models import App, Conversation, FileRef, Message, UploadToken
from ._resume import StreamState
from ._streams import AsyncEventStream, EventStream

if TYPE_CHECKING:
    from ._chat import AsyncChat, Chat

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")
Upload = str | os.PathLike[str] | bytes


class Client(BaseClient):
    """Synchronous Atomemo Chat API client.

    >>> with Client() as client:  # key from ATOMEMO_API_KEY
    ...     for event in client.send_message(app_id=..., trigger_id=..., query="Hi", user_id="u"):
    ...         print(event.event)
    """

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
    ) -> None:
        super().__init__(api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         stream_idle_timeout=stream_idle_timeout, max_resumes=max_resumes)
        self._owns_http = http_client is None
        # No redirects: httpx would carry X-Api-Key to whatever host a redirect names.
        self._http = http_client or httpx.Client(follow_redirects=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- I/O --------------------------------------------------------------------------
    def _send(self, call: calls.Call[Any]) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(self._build(self._http, call), stream=call.stream)
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(attempt, exc)
                if delay is None:
                    raise self._transport_error(exc) from exc
                time.sleep(delay)
                continue
            if self._usable(call, response):
                return response
            body = response.read().decode(errors="replace")
            response.close()
            delay = self._retry_after_status(attempt, response, body)
            if delay is None:
                raise self._failure(response, body)
            time.sleep(delay)

    def _call(self, call: calls.Call[T]) -> T:
        return self._parse(call, self._send(call))

    def _drive(self, flow: calls.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(self._call(call))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _stream(self, call: calls.Call[Any]) -> EventStream:
        return EventStream(self, self._send(call), StreamState(self.max_resumes))

    # -- the API ----------------------------------------------------------------------
    def send_message(
        self, *, app_id: str, trigger_id: str, query: str | FileRef, user_id: str,
        conversation_id: str | None = None, parent_id: str | None = None,
        inputs: dict[str, Any] | None = None, source: str | None = None,
    ) -> EventStream:
        """POST /chat/messages: an event stream that resumes by itself if the connection drops."""
        return self._stream(calls.send_message(
            app_id=app_id, trigger_id=trigger_id, query=query, user_id=user_id,
            conversation_id=conversation_id, parent_id=parent_id, inputs=inputs, source=source))

    def resume_stream(self, message_id: str) -> EventStream:
        """GET /chat/messages/{id}/resume_stream: the message's stream, from its first event."""
        return self._stream(calls.resume_stream(message_id))

    def get_app(self, app_id: str) -> App:
        """GET /chat/app/{appId} (public: no key needed)."""
        return self._call(calls.get_app(app_id))

    def list_conversations(self, *, app_id: str, trigger_id: str, user_id: str) -> list[Conversation]:
        return self._call(calls.list_conversations(app_id=app_id, trigger_id=trigger_id,
                                                   user_id=user_id))

    def get_messages(self, conversation_id: str, *, end_message_id: str | None = None,
                     include_end: bool = False) -> list[Message]:
        return self._call(calls.get_messages(conversation_id, end_message_id=end_message_id,
                                             include_end=include_end))

    def upload_url(self, url: str) -> FileRef:
        return self._call(calls.upload_url(url))

    def get_upload_token(self, mime_type: str | None = None) -> UploadToken:
        return self._call(calls.get_upload_token(mime_type))

    def upload_file(self, path_or_bytes: Upload, *, filename: str | None = None,
                    mime_type: str | None = None) -> FileRef:
        """The 3-step upload (token, PUT to uploadHost without the key, download URL)."""
        return self._drive(calls.upload_file(path_or_bytes, filename=filename, mime_type=mime_type))

    def download_url(self, res_key: str) -> str:
        return self._call(calls.download_url(res_key))

    def chat(self, *, app_id: str, trigger_id: str, user_id: str, inputs: dict[str, Any] | None = None,
             conversation_id: str | None = None, source: str | None = None) -> Chat:
        """A conversation that remembers its id and leaf; pass conversation_id to reopen one."""
        from ._chat import Chat  # the model layer sits to the right of the transport

        chat = Chat(self, app_id=app_id, trigger_id=trigger_id, user_id=user_id, inputs=inputs,
                    conversation_id=conversation_id, source=source)
        if conversation_id is not None:
            chat.history()
        return chat


class AsyncClient(BaseClient):
    """Asynchronous Atomemo Chat API client; the same surface as `Client`, awaited."""

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
    ) -> None:
        super().__init__(api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         stream_idle_timeout=stream_idle_timeout, max_resumes=max_resumes)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(follow_redirects=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- I/O --------------------------------------------------------------------------
    async def _send(self, call: calls.Call[Any]) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(self._build(self._http, call), stream=call.stream)
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(attempt, exc)
                if delay is None:
                    raise self._transport_error(exc) from exc
                await anyio.sleep(delay)
                continue
            if self._usable(call, response):
                return response
            body = (await response.aread()).decode(errors="replace")
            await response.aclose()
            delay = self._retry_after_status(attempt, response, body)
            if delay is None:
                raise self._failure(response, body)
            await anyio.sleep(delay)

    async def _call(self, call: calls.Call[T]) -> T:
        return self._parse(call, await self._send(call))

    async def _drive(self, flow: calls.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._call(call))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _stream(self, call: calls.Call[Any]) -> AsyncEventStream:
        return AsyncEventStream(self, await self._send(call), StreamState(self.max_resumes))

    # -- the API ----------------------------------------------------------------------
    async def send_message(
        self, *, app_id: str, trigger_id: str, query: str | FileRef, user_id: str,
        conversation_id: str | None = None, parent_id: str | None = None,
        inputs: dict[str, Any] | None = None, source: str | None = None,
    ) -> AsyncEventStream:
        return await self._stream(calls.send_message(
            app_id=app_id, trigger_id=trigger_id, query=query, user_id=user_id,
            conversation_id=conversation_id, parent_id=parent_id, inputs=inputs, source=source))

    async def resume_stream(self, message_id: str) -> AsyncEventStream:
        return await self._stream(calls.resume_stream(message_id))

    async def get_app(self, app_id: str) -> App:
        return await self._call(calls.get_app(app_id))

    async def list_conversations(self, *, app_id: str, trigger_id: str,
                                 user_id: str) -> list[Conversation]:
        return await self._call(calls.list_conversations(app_id=app_id, trigger_id=trigger_id,
                                                         user_id=user_id))

    async def get_messages(self, conversation_id: str, *, end_message_id: str | None = None,
                           include_end: bool = False) -> list[Message]:
        return await self._call(calls.get_messages(conversation_id, end_message_id=end_message_id,
                                                   include_end=include_end))

    async def upload_url(self, url: str) -> FileRef:
        return await self._call(calls.upload_url(url))

    async def get_upload_token(self, mime_type: str | None = None) -> UploadToken:
        return await self._call(calls.get_upload_token(mime_type))

    async def upload_file(self, path_or_bytes: Upload, *, filename: str | None = None,
                          mime_type: str | None = None) -> FileRef:
        return await self._drive(calls.upload_file(path_or_bytes, filename=filename,
                                                   mime_type=mime_type))

    async def download_url(self, res_key: str) -> str:
        return await self._call(calls.download_url(res_key))

    def chat(self, *, app_id: str, trigger_id: str, user_id: str, inputs: dict[str, Any] | None = None,
             conversation_id: str | None = None, source: str | None = None) -> AsyncChat:
        """A conversation; to reopen one, pass conversation_id and `await chat.history()`."""
        from ._chat import AsyncChat

        return AsyncChat(self, app_id=app_id, trigger_id=trigger_id, user_id=user_id, inputs=inputs,
                         conversation_id=conversation_id, source=source)
