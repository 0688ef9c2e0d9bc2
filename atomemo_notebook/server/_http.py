"""HTTP plumbing shared by the server's routes: the JSON error, bounded body reading with
the checks every field needs, request field readers, and the boundary that turns any
unexpected error into a proper answer."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..protocol._log import get_logger

log = get_logger("atomemo_notebook.server")

MAX_DEPTH = 32  # nesting of a request's JSON; the API's own bodies need 4
SURROGATE = re.compile("[\ud800-\udfff]")


class ApiError(Exception):
    """An error answer: JSON `{"code": ..., "message": ...}` with a fitting status."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "message": self.message}, status_code=self.status,
                            headers=self.headers)


Handler = Callable[[Request], Awaitable[Response]]


def answering_as(error: type[ApiError], code: Callable[[int], str] | None = None) -> Callable[[Handler], Handler]:
    """A decorator for one system's routes: an error our shared helpers raise (Atomemo's shape)
    is answered in that system's shape, `error`, with its code for the status when `code` says."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except error:
                raise
            except ApiError as exc:
                raise error(exc.status, code(exc.status) if code else exc.code, exc.message, exc.headers) from None

        return wrapped

    return decorate


class InjectedResponse(Exception):
    """A ready response, raised to short-cut a handler (fault injection only)."""

    def __init__(self, response: Response) -> None:
        super().__init__("injected response")
        self.response = response


class DropConnection(Exception):
    """Raised inside a stream on purpose: the server closes the socket mid-response."""


class ResetConnection(BaseException):
    """Fault injection: close the connection with no answer at all. A BaseException, so that
    Starlette's handlers (which would answer 500) let it through to `ErrorBoundary`."""


def storage_host(request: Request) -> str:
    """Where uploads go and downloads come from: this same process, under /storage."""
    return str(request.base_url).rstrip("/") + "/storage"


def param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(422, "VALIDATION_ERROR", f"query parameter {name!r} is required")
    check_text(value, name)
    return value


def field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "VALIDATION_ERROR", f"{name!r} must be a non-empty string")
    return value


def optional_field(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else field(body, name)


def check_text(text: str, where: str) -> None:
    """Text that cannot be stored and sent back faithfully (a lone UTF-16 surrogate, as a
    `\\ud800` escape in JSON produces) is refused up front, naming the field."""
    if SURROGATE.search(text):
        raise ApiError(400, "INVALID_TEXT", f"{where} holds a lone UTF-16 surrogate, "
                                            "which is not valid Unicode text")


def _shown(key: str) -> str:
    return SURROGATE.sub("\ufffd", key)  # a field's name in a message must itself be valid text


def check_json(value: Any) -> None:
    """Walk a parsed body without recursion: bounded depth, every string (keys too) valid text."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"{path!r}" if path else "the body")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ApiError(400, "INVALID_JSON", f"{path or 'the body'!r} is nested deeper than "
                                                    f"{MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    inner = f"{path}.{_shown(key)}" if path else _shown(key)
                    check_text(key, f"the name of {inner!r}")
                    stack.append((child, inner, depth + 1))
            else:
                stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused by its Content-Length before reading, and never read past `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body of {int(declared):,} bytes is over the "
                                                 f"{limit:,}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body is over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw or b"null")
    except RecursionError:
        raise ApiError(400, "INVALID_JSON", f"body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ApiError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "VALIDATION_ERROR", "body must be a JSON object")
    check_json(body)
    return body


class ErrorBoundary:
    """Starlette middleware: an error before the answer started becomes a JSON 500 that keeps
    the connection usable. (Starlette's last-resort handler answers and then re-raises, and
    the server closes the connection under the client's next request.) An error after the
    answer started must break the connection: the answer is already wrong."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            body: dict[str, Any] = {"code": "INTERNAL_ERROR", "message": "internal server error"}
            if str(scope.get("path", "")).startswith("/v1/"):  # Dify's routes answer in Dify's shape
                body = {"code": "internal_server_error", "message": "internal server error", "status": 500}
            elif str(scope.get("path", "")).startswith("/api/v1/"):  # Pipelit's, in FastAPI's
                body = {"detail": "Internal Server Error"}
            await JSONResponse(body, status_code=500)(scope, receive, send)


class ResetBoundary:
    """The outermost ASGI layer: turns `ResetConnection` into a connection closed with no
    answer (uvicorn closes the transport when an app returns a value; fault injection only)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # `.state` and friends of the wrapped application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        try:
            await self.app(scope, receive, send)
        except ResetConnection:
            return "reset"
        return None
