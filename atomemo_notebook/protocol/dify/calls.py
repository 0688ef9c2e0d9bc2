"""What each Dify service-API call sends and how its answer is read (no I/O), and Dify's
error codes. Answers become the same models the rest of the package reads (Message,
Conversation): a Dify conversation is one straight thread, each message the parent of the
next, since the service API takes no parent message."""

from __future__ import annotations

import mimetypes
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..atomemo.models import Conversation, Message
from ..call import Call, require
from ..errors import (
    APIError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ConversationNotFoundError,
    RateLimitError,
    excerpt,
)

__all__ = [
    "CODES",
    "Page",
    "chat_messages",
    "conversations",
    "delete_conversation",
    "info",
    "messages",
    "parameters",
    "rename_conversation",
    "stop",
    "suggested",
    "upload",
]

# Dify's error codes (api/controllers/service_api/app/error.py and its wraps) -> our tree.
CODES: dict[str, type[APIError]] = {
    "invalid_param": BadRequestError,
    "app_unavailable": BadRequestError,
    "not_chat_app": BadRequestError,
    "conversation_completed": BadRequestError,
    "provider_not_initialize": BadRequestError,
    "provider_quota_exceeded": BadRequestError,
    "model_currently_not_support": BadRequestError,
    "completion_request_error": BadRequestError,
    "unauthorized": AuthenticationError,
    "not_found": ConversationNotFoundError,
    "conversation_not_exists": ConversationNotFoundError,
    "too_many_requests": RateLimitError,
    "rate_limit_error": RateLimitError,
    "file_too_large": BadRequestError,  # 413
    "no_file_uploaded": BadRequestError,
    "unsupported_file_type": BadRequestError,  # 415
}

Page = tuple[list[Any], bool]  # the items, and whether there are more


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e11:
        return datetime.fromtimestamp(value, timezone.utc)
    return None


def _body(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIResponseValidationError(f"expected {what} as a JSON object, got: {excerpt(repr(body))}",
                                         status_code=200, body=repr(body))
    return body


def _inputs(item: dict[str, Any]) -> dict[str, Any]:
    value = item.get("inputs")
    return value if isinstance(value, dict) else {}


def message_of(item: dict[str, Any], parent_id: str | None = None) -> Message:
    status = "failed" if item.get("status") == "error" else "succeeded"
    known = {"id", "conversation_id", "parent_message_id", "inputs", "query", "answer", "status",
             "created_at", "error"}
    return Message(
        id=str(item.get("id") or ""), status=status, query=str(item.get("query") or ""),
        answer=item.get("answer") if isinstance(item.get("answer"), str) else None,
        parent_id=item.get("parent_message_id") or parent_id,
        conversation_id=str(item.get("conversation_id") or ""),
        inputs=_inputs(item), created_at=_time(item.get("created_at")),
        extra={k: v for k, v in item.items() if k not in known} | (
            {"error": item["error"]} if item.get("error") else {}),
    )


def _messages(body: Any) -> Page:
    body = _body(body, "messages")
    items = [i for i in body.get("data") or [] if isinstance(i, dict)]
    return [message_of(i) for i in items], bool(body.get("has_more"))


def _conversations(body: Any) -> Page:
    body = _body(body, "conversations")
    out = []
    for item in body.get("data") or []:
        if isinstance(item, dict):
            out.append(Conversation(id=str(item.get("id") or ""), name=str(item.get("name") or ""),
                                    inputs=_inputs(item),
                                    created_at=_time(item.get("created_at")),
                                    updated_at=_time(item.get("updated_at")),
                                    extra={"status": item.get("status"),
                                           "introduction": item.get("introduction")}))
    return out, bool(body.get("has_more"))


def _object(body: Any) -> dict[str, Any]:
    return _body(body, "an object")


def chat_messages(*, query: str, user: str, inputs: dict[str, Any] | None = None,
                  conversation_id: str | None = None, files: list[dict[str, Any]] | None = None,
                  streaming: bool = True, auto_generate_name: bool = True) -> Call[Any]:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must not be empty")
    body: dict[str, Any] = {"query": query, "user": require("user", user), "inputs": dict(inputs or {}),
                            "response_mode": "streaming" if streaming else "blocking",
                            "auto_generate_name": auto_generate_name}
    if conversation_id:
        body["conversation_id"] = conversation_id
    if files:
        body["files"] = files
    return Call("POST", "/chat-messages", _object, json=body, stream=streaming)


def stop(task_id: str, user: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/chat-messages/{quote(require('task_id', task_id), safe='')}/stop", _object,
                json={"user": require("user", user)})


def conversations(user: str, *, last_id: str | None = None, limit: int = 20) -> Call[Page]:
    params = {"user": require("user", user), "limit": str(max(1, min(limit, 100)))}
    if last_id:
        params["last_id"] = last_id
    return Call("GET", "/conversations", _conversations, params=params)


def messages(conversation_id: str, user: str, *, first_id: str | None = None, limit: int = 100) -> Call[Page]:
    params = {"conversation_id": require("conversation_id", conversation_id), "user": require("user", user),
              "limit": str(max(1, min(limit, 100)))}
    if first_id:
        params["first_id"] = first_id
    return Call("GET", "/messages", _messages, params=params)


def rename_conversation(conversation_id: str, user: str, *, name: str | None = None) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"user": require("user", user), "auto_generate": name is None}
    if name is not None:
        body["name"] = require("name", name)
    return Call("POST", f"/conversations/{quote(require('conversation_id', conversation_id), safe='')}/name",
                _object, json=body)


def delete_conversation(conversation_id: str, user: str) -> Call[None]:
    return Call("DELETE", f"/conversations/{quote(require('conversation_id', conversation_id), safe='')}",
                lambda _: None, json={"user": require("user", user)})


def upload(path_or_bytes: str | os.PathLike[str] | bytes, user: str, *, filename: str | None = None,
           mime_type: str | None = None) -> Call[dict[str, Any]]:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        content = bytes(path_or_bytes)
        if not filename:
            raise ValueError("filename is required when uploading bytes")
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f"no such file to upload: {path}")
        content, filename = path.read_bytes(), filename or path.name
    mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Call("POST", "/files/upload", _object, files={"file": (filename, content, mime)},
                data={"user": require("user", user)})


def parameters() -> Call[dict[str, Any]]:
    return Call("GET", "/parameters", _object)


def info() -> Call[dict[str, Any]]:
    return Call("GET", "/info", _object)


def suggested(message_id: str, user: str) -> Call[list[str]]:
    def parse(body: Any) -> list[str]:
        data = _body(body, "suggested questions").get("data")
        return [str(q) for q in data if isinstance(q, str)] if isinstance(data, list) else []

    return Call("GET", f"/messages/{quote(require('message_id', message_id), safe='')}/suggested", parse,
                params={"user": require("user", user)})
