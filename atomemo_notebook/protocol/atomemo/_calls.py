"""What each API call sends and how its answer is read, and Atomemo's error codes: no I/O
here, so Client and AsyncClient share every decision and differ only in how they wait."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from .._call import Call, Flow, no_body, require
from .._errors import (
    APIError,
    APIResponseValidationError,
    AppOrTriggerNotFoundError,
    ConversationMessageMismatchError,
    ConversationNotFoundError,
    ConversationUserIdMismatchError,
    MessageNotFoundError,
    ParentNotFoundError,
    TriggerInputsError,
    UnresumableStreamError,
    excerpt,
)
from .._wire import Conversation, FileRef, Message
from .models import App, UploadToken

T = TypeVar("T")

# Atomemo's documented error codes -> our tree. A documented code wins over the status: it is
# the more specific fact.
CODES: dict[str, type[APIError]] = {
    "APP_OR_TRIGGER_NOT_FOUND": AppOrTriggerNotFoundError,
    "CONVERSATION_NOT_FOUND": ConversationNotFoundError,
    "CONVERSATION_USER_ID_MISMATCH": ConversationUserIdMismatchError,
    "CONVERSATION_MESSAGE_MISMATCH": ConversationMessageMismatchError,
    "PARENT_NOT_FOUND": ParentNotFoundError,
    "TRIGGER_INPUTS_ERROR": TriggerInputsError,
    "NOT_FOUND": MessageNotFoundError,
    "UNRESUMABLE_STREAM": UnresumableStreamError,
}


def _items(model: Callable[[dict[str, Any]], T]) -> Callable[[Any], list[T]]:
    def parse(body: Any) -> list[T]:
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise APIResponseValidationError(
                f"expected a JSON object with an 'items' list, got: {excerpt(repr(body))}",
                status_code=200,
                body=repr(body),
            )
        return [model(item) for item in items]

    return parse


def _object(model: Callable[[dict[str, Any]], T]) -> Callable[[Any], T]:
    def parse(body: Any) -> T:
        if not isinstance(body, dict):
            raise APIResponseValidationError(
                f"expected a JSON object, got: {excerpt(repr(body))}", status_code=200, body=repr(body)
            )
        return model(body)

    return parse


def _download_url(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("data"), str):
        return str(body["data"])
    raise APIResponseValidationError(
        f"expected {{'data': url}}, got: {excerpt(repr(body))}", status_code=200, body=repr(body)
    )


def get_app(app_id: str) -> Call[App]:
    return Call("GET", f"/chat/app/{quote(require('app_id', app_id), safe='')}",
                _object(App.from_wire), needs_key=False)


def list_conversations(*, app_id: str, trigger_id: str, user_id: str) -> Call[list[Conversation]]:
    params = {"appId": require("app_id", app_id), "triggerId": require("trigger_id", trigger_id),
              "userId": require("user_id", user_id)}
    return Call("GET", "/chat/conversations", _items(Conversation.from_wire), params=params)


def get_messages(
    conversation_id: str, *, end_message_id: str | None = None, include_end: bool = False
) -> Call[list[Message]]:
    params = {"conversation_id": require("conversation_id", conversation_id)}
    if end_message_id is not None:
        params["end_message_id"] = require("end_message_id", end_message_id)
        params["include_end"] = "true" if include_end else "false"
    return Call("GET", "/chat/messages", _items(Message.from_wire), params=params)


def send_message(
    *,
    app_id: str,
    trigger_id: str,
    query: str | FileRef,
    user_id: str,
    conversation_id: str | None = None,
    parent_id: str | None = None,
    inputs: dict[str, Any] | None = None,
    source: str | None = None,
) -> Call[None]:
    body: dict[str, Any] = {
        "appId": require("app_id", app_id),
        "triggerId": require("trigger_id", trigger_id),
        "userId": require("user_id", user_id),
    }
    if isinstance(query, FileRef):
        body["query"] = query.to_wire()
    elif isinstance(query, str):
        if not query.strip():
            raise ValueError("query must not be empty")
        body["query"] = query
    else:
        raise TypeError(f"query must be a str or a FileRef, got {type(query).__name__}")
    if conversation_id is not None:
        body["conversationId"] = require("conversation_id", conversation_id)
    if parent_id is not None:
        body["parentId"] = require("parent_id", parent_id)
    if inputs is not None:
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict, got {type(inputs).__name__}")
        body["inputs"] = inputs
    if source is not None:
        body["source"] = source
    return Call("POST", "/chat/messages", no_body, json=body, stream=True)


def resume_stream(message_id: str) -> Call[None]:
    path = f"/chat/messages/{quote(require('message_id', message_id), safe='')}/resume_stream"
    return Call("GET", path, no_body, stream=True)


def upload_url(url: str) -> Call[FileRef]:
    if not require("url", url).lower().startswith(("http://", "https://")):
        raise ValueError(f"url must be an http(s) URL, got {url!r}")
    return Call("POST", "/chat/media/upload", _object(FileRef.from_wire), json={"url": url})


def get_upload_token(mime_type: str | None = None) -> Call[UploadToken]:
    params = {"mimeType": mime_type} if mime_type else None
    return Call("GET", "/chat/media/uptoken", _object(UploadToken.from_wire), params=params)


def download_url(res_key: str) -> Call[str]:
    return Call("GET", "/chat/media/download_url", _download_url,
                params={"resKey": require("res_key", res_key)})


def _put_upload(token: UploadToken, content: bytes, mime_type: str) -> Call[None]:
    # The storage host is not the API: no X-Api-Key goes there.
    return Call("PUT", token.put_url, no_body, content=content,
                headers={"Content-Type": mime_type}, needs_key=False, absolute=True,
                json_answer=False)


def _read_upload(
    path_or_bytes: str | os.PathLike[str] | bytes, filename: str | None, mime_type: str | None
) -> tuple[bytes, str, str]:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        content = bytes(path_or_bytes)
        if not filename:
            raise ValueError("filename is required when uploading bytes")
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f"no such file to upload: {path}")
        content = path.read_bytes()
        filename = filename or path.name
    mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return content, filename, mime


def upload_file(
    path_or_bytes: str | os.PathLike[str] | bytes,
    *,
    filename: str | None = None,
    mime_type: str | None = None,
) -> Flow[FileRef]:
    """The documented 3-step upload: token, PUT to the storage host, download URL."""
    content, name, mime = _read_upload(path_or_bytes, filename, mime_type)
    token: UploadToken = yield get_upload_token(mime)
    yield _put_upload(token, content, mime)
    remote_url: str = yield download_url(token.res_key)
    return FileRef(
        filename=name,
        extension=os.path.splitext(name)[1],
        mime_type=mime,
        size=len(content),
        res_key=token.res_key,
        remote_url=remote_url,
    )
