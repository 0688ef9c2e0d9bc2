"""The one exception tree of atomemo_notebook, and the one place that maps HTTP to it.

ChatAPIError (also AtomemoError, its first name)
 ├── MissingAPIKeyError             no key given and none in the system's variable (ATOMEMO_API_KEY...)
 ├── APIConnectionError             the request did not get an HTTP answer
 │    └── APITimeoutError
 ├── APIResponseValidationError     a 2xx answer that is not what the call expects
 ├── LimitExceededError             an answer grew past a configured bound (names the bound)
 ├── ExecutionFailedError           the server ran the workflow and a node failed (no HTTP status)
 ├── SpanExportError                a tracing tool (an OTLP receiver) did not take exported spans
 └── APIError                       an HTTP error answer (status_code, code, message, body)
      ├── BadRequestError 400
      │    ├── TriggerInputsError             TRIGGER_INPUTS_ERROR
      │    └── ConversationMessageMismatchError CONVERSATION_MESSAGE_MISMATCH
      ├── AuthenticationError 401
      ├── PermissionDeniedError 403
      │    └── ConversationUserIdMismatchError CONVERSATION_USER_ID_MISMATCH
      ├── NotFoundError 404
      │    ├── AppOrTriggerNotFoundError       APP_OR_TRIGGER_NOT_FOUND
      │    ├── ConversationNotFoundError       CONVERSATION_NOT_FOUND
      │    ├── ParentNotFoundError             PARENT_NOT_FOUND
      │    └── MessageNotFoundError            NOT_FOUND
      ├── ConflictError 409
      ├── UnresumableStreamError 410           UNRESUMABLE_STREAM
      ├── UnprocessableEntityError 422
      ├── RateLimitError 429
      └── InternalServerError >= 500

A status picks the class; a system's documented error code, where the body names one, picks a
more specific one. The codes are each system's own, kept with it (`Dialect.codes`): the ones
shown are Atomemo's (protocol/atomemo/_calls.py), Dify's map onto the same classes
(protocol/dify/_calls.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AppOrTriggerNotFoundError",
    "AtomemoError",
    "AuthenticationError",
    "BadRequestError",
    "ChatAPIError",
    "ConflictError",
    "ConversationMessageMismatchError",
    "ConversationNotFoundError",
    "ConversationUserIdMismatchError",
    "ExecutionFailedError",
    "InternalServerError",
    "LimitExceededError",
    "MessageNotFoundError",
    "MissingAPIKeyError",
    "NotFoundError",
    "ParentNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "SpanExportError",
    "TriggerInputsError",
    "UnprocessableEntityError",
    "UnresumableStreamError",
]

EXCERPT_CHARS = 300


class ChatAPIError(Exception):
    """Base of every error this package raises on purpose, whatever the system."""


AtomemoError = ChatAPIError  # its first name: `except AtomemoError` keeps working


class MissingAPIKeyError(ChatAPIError):
    """No key, where one is needed: `pointing` says what points at a server of the user's own
    (a base URL, an app id...), so the offline demo must not answer in its place."""

    def __init__(self, env: str, pointing: str | None = None) -> None:
        where = f" for the server that {pointing} points at" if pointing else ""
        super().__init__(
            f"No API key{where}: pass api_key=... or set {env}. (The offline demo server answers only "
            "when nothing points at a server; offline=True uses it whatever the environment says.)"
        )


class APIConnectionError(ChatAPIError):
    """The request got no HTTP answer (the connection failed or broke), after any retries."""

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message)
        self.message = message


class APITimeoutError(APIConnectionError):
    """The call's deadline (`timeout`) passed before it was answered."""

    def __init__(self, message: str = "Request timed out.") -> None:
        super().__init__(message)


class APIResponseValidationError(ChatAPIError):
    """A 2xx answer that is not what the call expects (e.g. HTML instead of an event stream)."""

    def __init__(self, message: str, *, status_code: int, body: str) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class LimitExceededError(ChatAPIError):
    """A line, an event or a body grew past its bound (see `Limits`); nothing more was read."""

    def __init__(self, limit_name: str, limit: int, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.limit_name = limit_name
        self.limit = limit


class SpanExportError(ChatAPIError):
    """The tracing tool's OTLP receiver did not take the spans (unreachable, refused, or an error
    status); its log, and OpenTelemetry's, say why."""


# An absolute path of two or more parts (POSIX, Windows, or a `<PLACEHOLDER>/` root): the
# server's own file layout, which says nothing to the user and may say too much about the host.
_SEGMENT = r"[^\s\"'/\\<>]{1,255}"
_PATH = re.compile(rf"(?:<[A-Z_]{{1,40}}>[/\\](?:{_SEGMENT}[/\\]){{0,64}}"
                   rf"|(?:[A-Za-z]:\\|(?<![\w.:/<>])/)(?:{_SEGMENT}[/\\]){{1,64}})({_SEGMENT})")


def trim_paths(text: str) -> str:
    """`text` with the server's absolute file paths cut to their last part (`…/__wrapper__.py`)."""
    return _PATH.sub(lambda m: "…/" + m.group(1), text)


class ExecutionFailedError(ChatAPIError):
    """The server ran the workflow and it failed (a node raised, a run ended `failed`): not an
    HTTP answer, so no status code. `node_id` names the node that failed, where the server
    said; `code` is the server's error code (e.g. `RuntimeError`); `message` its error text,
    with the server's file paths cut."""

    def __init__(self, message: str, *, code: str | None = None, node_id: str | None = None) -> None:
        self.message = trim_paths(message)
        self.code = code
        self.node_id = node_id
        where = f"node {node_id} failed" if node_id else "the execution failed"
        super().__init__(f"{where}{f' ({code})' if code else ''}: {self.message}")


class APIError(ChatAPIError):
    """An HTTP error answer. `code` is the API's error code when the body names one;
    `retry_after` the seconds the server asked to wait before another try (Retry-After), if any."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        text = f"{status_code} {code}: {message}" if code else f"{status_code}: {message}"
        if retry_after is not None:
            text += f" (Retry-After: {retry_after:g} s)"
        super().__init__(text)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(APIError):
    """400: the request was refused as malformed or invalid."""


class AuthenticationError(APIError):
    """401, or a key refused at a WebSocket handshake: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """403: the key may not do this."""


class NotFoundError(APIError):
    """404: what the call names does not exist."""


class ConflictError(APIError):
    """409: the request conflicts with the server's state."""


class UnprocessableEntityError(APIError):
    """422: the request is well formed but its content was refused."""


class RateLimitError(APIError):
    """429: too many requests; retried first, raised when retries run out."""


class InternalServerError(APIError):
    """5xx: the server failed; retried first, raised when retries run out."""


class TriggerInputsError(BadRequestError):
    """TRIGGER_INPUTS_ERROR: the trigger's inputs do not match its variables."""


class ConversationMessageMismatchError(BadRequestError):
    """CONVERSATION_MESSAGE_MISMATCH: the parent message is not in that conversation."""


class ConversationUserIdMismatchError(PermissionDeniedError):
    """CONVERSATION_USER_ID_MISMATCH: the conversation belongs to another user id."""


class AppOrTriggerNotFoundError(NotFoundError):
    """APP_OR_TRIGGER_NOT_FOUND: no such app, or no such Chat Trigger in it."""


class ConversationNotFoundError(NotFoundError):
    """CONVERSATION_NOT_FOUND: no such conversation."""


class ParentNotFoundError(NotFoundError):
    """PARENT_NOT_FOUND: the parent message given does not exist."""


class MessageNotFoundError(NotFoundError):
    """NOT_FOUND: no such message."""


class UnresumableStreamError(APIError):
    """UNRESUMABLE_STREAM: the stream can no longer be resumed; a stream resuming reads the stored message instead."""


STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

def error_class(status_code: int, code: str | None,
                codes: Mapping[str, type[APIError]] | None = None) -> type[APIError]:
    """The class for an HTTP error answer: the system's `codes` name it where they know `code`
    (a documented code is the more specific fact), else the status does."""
    if code is not None and codes and code in codes:
        return codes[code]
    if status_code >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status_code, APIError)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _code_and_message(payload: Any) -> tuple[str | None, str | None]:
    if not isinstance(payload, dict):
        return None, None
    code = payload.get("code") or payload.get("errorCode")
    message = payload.get("message")
    nested = payload.get("error")
    if isinstance(nested, dict):
        code = code or nested.get("code")
        message = message or nested.get("message")
    elif isinstance(nested, str):
        message = message or nested
    detail = payload.get("detail")  # FastAPI's bodies (Pipelit): a string, or a list of problems
    if isinstance(detail, str):
        message = message or detail
    elif isinstance(detail, list):
        parts = [str(d.get("msg")) + (f" ({'.'.join(map(str, d['loc']))})" if isinstance(d.get("loc"), list) else "")
                 for d in detail[:5] if isinstance(d, dict) and d.get("msg")]
        message = message or "; ".join(parts) or None
    return (str(code) if code else None), (str(message) if message else None)


def make_api_error(
    status_code: int,
    body_text: str,
    *,
    request_id: str | None = None,
    reason: str = "",
    codes: Mapping[str, type[APIError]] | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the right APIError from a status and a body, JSON or not. `codes`: the system's
    own error codes (its `Dialect.codes`; none given, the status alone picks the class)."""
    try:
        body: Any = json.loads(body_text) if body_text else None
    except (ValueError, RecursionError):
        body = body_text
    code, message = _code_and_message(body)
    if message is None:
        shown = excerpt(body_text) if body_text else "(empty body)"
        message = f"{reason or 'HTTP error'}; body: {shown}" if not code else reason or shown
    cls = error_class(status_code, code, codes)
    return cls(message, status_code=status_code, code=code, body=body, request_id=request_id,
               retry_after=retry_after)
