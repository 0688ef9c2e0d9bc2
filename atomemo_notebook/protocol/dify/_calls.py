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

from .._call import Call, require
from .._errors import (
    APIError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ConversationNotFoundError,
    RateLimitError,
    excerpt,
)
from .._wire import Conversation, Message
from .events import redact_secrets

__all__ = [
    "CODES",
    "Page",
    "chat_messages",
    "conversations",
    "delete_conversation",
    "feedback",
    "info",
    "messages",
    "parameters",
    "rename_conversation",
    "run_workflow",
    "stop",
    "stop_workflow",
    "suggested",
    "upload",
    "workflow_logs",
    "workflow_run",
]

# Dify's error codes (api/controllers/service_api/app/error.py and its wraps) -> our tree.
CODES: dict[str, type[APIError]] = {
    "invalid_param": BadRequestError,
    "app_unavailable": BadRequestError,
    "not_chat_app": BadRequestError,
    "not_workflow_app": BadRequestError,
    "bad_request": BadRequestError,
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


NIL_UUID = "00000000-0000-0000-0000-000000000000"  # Dify's parent_message_id for "after the previous one"


def _forms(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The human-input forms a stored message carries (`extra_contents`, Dify 1.13+)."""
    extra = item.get("extra_contents")
    return [c for c in extra[:100] if isinstance(c, dict)] if isinstance(extra, list) else []


def stored_status(item: dict[str, Any]) -> str:
    """A stored message's status in our vocabulary. `paused` is a run waiting at a Human Input
    form; once every form is submitted the run goes on in the worker while the message still
    says `paused` (the run record says `running`), so it is in progress: `answering`."""
    status = item.get("status")
    if status == "error":
        return "failed"
    if status == "paused":
        return "waiting" if any(f.get("submitted") is not True for f in _forms(item)) else "answering"
    return "succeeded"


def message_of(item: dict[str, Any], parent_id: str | None = None) -> Message:
    known = {"id", "conversation_id", "parent_message_id", "inputs", "query", "answer", "status",
             "created_at", "error"}
    parent = item.get("parent_message_id")
    run_ids = [f.get("workflow_run_id") for f in _forms(item) if isinstance(f.get("workflow_run_id"), str)]
    return Message(
        id=str(item.get("id") or ""), status=stored_status(item), query=str(item.get("query") or ""),
        answer=item.get("answer") if isinstance(item.get("answer"), str) else None,
        # The nil UUID is no message: it means "after the previous message" (the thread decides).
        parent_id=parent if isinstance(parent, str) and parent and parent != NIL_UUID else parent_id,
        conversation_id=str(item.get("conversation_id") or ""),
        execution_id=run_ids[-1] if run_ids else None,
        inputs=_inputs(item), created_at=_time(item.get("created_at")),
        # The pending form holds its token (it answers the form): never kept.
        extra=redact_secrets({k: v for k, v in item.items() if k not in known}) | (
            {"error": item["error"]} if item.get("error") else {}),
        feedback=_rating(item.get("feedback")),
    )


def _rating(value: Any) -> str | None:
    rating = value.get("rating") if isinstance(value, dict) else None
    return rating if rating in ("like", "dislike") else None


MAX_COMMENT = 10_000  # characters of a feedback comment sent


def feedback(message_id: str, user: str, rating: str | None, content: str | None = None) -> Call[dict[str, Any]]:
    """Rate an answer (POST /v1/messages/{id}/feedbacks): like, dislike, or None to take it back."""
    if rating not in ("like", "dislike", None):
        raise ValueError(f"rating must be 'like', 'dislike' or None, got {rating!r}")
    if content is not None and (not isinstance(content, str) or len(content) > MAX_COMMENT):
        raise ValueError(f"a feedback comment must be text of at most {MAX_COMMENT:,} characters")
    body: dict[str, Any] = {"rating": rating, "user": require("user", user)}
    if content:
        body["content"] = content
    return Call("POST", f"/messages/{quote(require('message_id', message_id), safe='')}/feedbacks", _object,
                json=body)


def same_second_reversed(items: list[Any], second: Any) -> list[Any]:
    """`items` with each run of neighbours of the same second reversed. Dify's page is its
    newest-first query reversed, and created_at has seconds only: messages of one second come
    newest first in a page (turns asked within a second are listed the other way round)."""
    out: list[Any] = []
    run: list[Any] = []
    for item in items:
        if run and second(run[-1]) != second(item):
            out += reversed(run)
            run = []
        run.append(item)
    return out + run[::-1]


def _messages(body: Any) -> Page:
    body = _body(body, "messages")
    items = [i for i in body.get("data") or [] if isinstance(i, dict)]
    ordered = same_second_reversed(items, lambda i: i.get("created_at"))
    return [message_of(i) for i in ordered], bool(body.get("has_more"))


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


def workflow_run(run_id: str) -> Call[dict[str, Any]]:
    """A workflow run's record (GET /v1/workflows/run/{id}); Dify 1.13 answers it for a
    chatflow's run too: where a paused run went after its form was answered."""
    return Call("GET", f"/workflows/run/{quote(require('run_id', run_id), safe='')}", _object)


def run_workflow(*, inputs: dict[str, Any], user: str, streaming: bool = True) -> Call[Any]:
    """Run a workflow app (POST /v1/workflows/run): its text comes as `text_chunk` events."""
    body = {"inputs": dict(inputs), "user": require("user", user),
            "response_mode": "streaming" if streaming else "blocking"}
    return Call("POST", "/workflows/run", _object, json=body, stream=streaming)


def _logs(body: Any) -> Page:
    body = _body(body, "workflow logs")
    data = body.get("data")
    items = [i for i in data[:MAX_PAGE] if isinstance(i, dict)] if isinstance(data, list) else []
    return items, body.get("has_more") is True


MAX_PAGE = 100  # items read of one page, whatever a server sends


def workflow_logs(*, page: int = 1, limit: int = 20, status: str | None = None,
                  keyword: str | None = None) -> Call[Page]:
    """A workflow app's runs, newest first (GET /v1/workflows/logs): each a log row whose
    `workflow_run` is the run's record."""
    params = {"page": str(max(1, int(page))), "limit": str(max(1, min(int(limit), MAX_PAGE)))}
    if status:
        params["status"] = status
    if keyword:
        params["keyword"] = keyword
    return Call("GET", "/workflows/logs", _logs, params=params)


def stop_workflow(task_id: str, user: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/workflows/tasks/{quote(require('task_id', task_id), safe='')}/stop", _object,
                json={"user": require("user", user)})


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
