"""The Starlette application: every endpoint of the Atomemo Chat API, plus the storage
host that uploads go to. Errors are JSON `{"code": ..., "message": ...}`."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from ._demo import DEMO_APPS, DemoApp, query_text, validate_inputs
from ._faults import FAULT_HEADER, PACE_HEADER, Fault, FaultBook, FaultSyntaxError, parse_pairs
from ._runs import Executor, Pace, Run
from ._store import Store

log = logging.getLogger("atomemo_notebook.server")

HEARTBEAT_FRAME = b'data: {"event": "heartbeat"}\n\n'
MALFORMED_FRAME = b'data: {"event": "chat_message", "data": {"text": oops}\n\n'
UNKNOWN_FRAME = b'data: {"event": "mystery_event", "data": {"note": "not in the spec"}}\n\n'


@dataclasses.dataclass
class ServerConfig:
    """How the embedded server behaves. Every field has a demo-friendly default."""

    api_key: str = dataclasses.field(default_factory=lambda: "sk-local-" + secrets.token_urlsafe(18))
    db: str = ":memory:"
    resume_window: float = 120.0  # seconds a finished stream stays resumable
    heartbeat_interval: float = 15.0
    chunk_size: int = 8  # characters per chat_message
    chunk_delay: float = 0.015  # seconds between chat_message events
    node_delay: float = 0.08  # seconds a node (and a tool call) takes
    test_mode: bool = False  # honour X-Atomemo-Fault / X-Atomemo-Pace (implies loopback URLs)
    allow_loopback_urls: bool = False  # let /chat/media/upload fetch from this machine
    max_upload_bytes: int = 20 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    token_ttl: float = 900.0  # upload tokens and download URLs

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                           if f.name != "api_key")
        return f"ServerConfig({fields}, api_key=<redacted>)"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class InjectedResponse(Exception):
    """A ready response, raised to short-cut a handler (fault injection only)."""

    def __init__(self, response: Response) -> None:
        super().__init__("injected response")
        self.response = response


class DropConnection(Exception):
    """Raised inside a stream on purpose: the server closes the socket mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status,
                        headers=exc.headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Emulator:
    """The server's state: store, runs, faults and signing; one per application."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = Store(config.db)
        self.secret = self.store.secret()
        self.executor = Executor(self.store)
        self.runs: dict[str, Run] = {}
        self.faults = FaultBook()
        self.apps: dict[str, DemoApp] = {app.id: app for app in DEMO_APPS.values()}
        for app in self.apps.values():
            self.store.put_app(app.wire())

    # -- request helpers ----------------------------------------------------------------
    def require_key(self, request: Request) -> None:
        given = request.headers.get("x-api-key", "")
        if not given or not hmac.compare_digest(given.encode(), self.config.api_key.encode()):
            raise ApiError(401, "UNAUTHORIZED", "missing or invalid X-Api-Key header")

    def fault(self, request: Request) -> Fault | None:
        if not self.config.test_mode:
            return None
        try:
            fault = self.faults.take(request.headers.get(FAULT_HEADER))
        except FaultSyntaxError as exc:
            raise ApiError(400, "INVALID_FAULT", str(exc)) from None
        if fault is not None and fault.status:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
            if fault.plain:
                raise InjectedResponse(PlainTextResponse(
                    f"upstream proxy error {fault.status}: service unavailable", fault.status, headers))
            raise ApiError(fault.status, "INJECTED_FAULT", f"injected HTTP {fault.status}", headers)
        if fault is not None and fault.html:
            raise InjectedResponse(HTMLResponse("<html><body><h1>Please sign in</h1></body></html>"))
        return fault

    def pace(self, request: Request) -> Pace:
        cfg = self.config
        values: dict[str, str] = {}
        if cfg.test_mode and request.headers.get(PACE_HEADER):
            try:
                values = parse_pairs(request.headers[PACE_HEADER])
                return Pace(int(values.get("chunk_size", cfg.chunk_size)),
                            float(values.get("chunk_delay", cfg.chunk_delay)),
                            float(values.get("node_delay", cfg.node_delay)))
            except ValueError as exc:
                raise ApiError(400, "INVALID_PACE", str(exc)) from None
        return Pace(cfg.chunk_size, cfg.chunk_delay, cfg.node_delay)

    async def json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > self.config.max_body_bytes:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body over {self.config.max_body_bytes} bytes")
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(422, "VALIDATION_ERROR", "body must be a JSON object")
        return body

    # -- signing ------------------------------------------------------------------------
    def sign(self, *parts: str) -> str:
        return _b64(hmac.new(self.secret, "\n".join(parts).encode(), hashlib.sha256).digest()[:24])

    def upload_token(self, res_key: str, mime_type: str) -> str:
        claims = {"k": res_key, "m": mime_type, "e": int(time.time() + self.config.token_ttl)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self.sign('up', payload)}"

    def check_upload_token(self, token: str, res_key: str) -> dict[str, Any]:
        payload, _, sig = token.partition(".")
        if not sig or not hmac.compare_digest(sig, self.sign("up", payload)):
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is invalid")
        claims: dict[str, Any] = json.loads(_unb64(payload))
        if claims.get("k") != res_key:
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is for another resKey")
        if claims.get("e", 0) < time.time():
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token has expired")
        return claims

    def download_link(self, request: Request, res_key: str) -> str:
        expires = str(int(time.time() + self.config.token_ttl))
        return f"{storage_host(request)}/{res_key}?e={expires}&token={self.sign('down', res_key, expires)}"

    def file_ref(self, request: Request, res_key: str, filename: str, mime: str, size: int) -> dict[str, Any]:
        return {"__type__": "file_ref", "source": "oss", "filename": filename,
                "extension": os.path.splitext(filename)[1], "mimeType": mime, "size": size,
                "resKey": res_key, "remoteUrl": self.download_link(request, res_key)}

    # -- runs ---------------------------------------------------------------------------
    def prune_runs(self) -> None:
        horizon = time.time() - self.config.resume_window
        for message_id in [m for m, r in self.runs.items() if r.done and (r.ended_at or 0) < horizon]:
            del self.runs[message_id]

    def stream(self, run: Run, fault: Fault | None) -> StreamingResponse:
        return StreamingResponse(
            self._frames(run, fault), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _frames(self, run: Run, fault: Fault | None) -> AsyncIterator[bytes]:
        sent = 0
        async for batch in run.follow(self.config.heartbeat_interval):
            if not batch:
                yield HEARTBEAT_FRAME
                continue
            if fault is None:
                yield "".join(f"data: {payload}\n\n" for payload in batch).encode()
                continue
            for payload in batch:
                if fault.end_after is not None and sent >= fault.end_after:
                    return
                if fault.drop_after is not None and sent >= fault.drop_after:
                    raise DropConnection(f"injected drop after {sent} events")
                async for piece in self._faulty(f"data: {payload}\n\n".encode(), sent, fault):
                    yield piece
                sent += 1

    @staticmethod
    async def _faulty(frame: bytes, sent: int, fault: Fault) -> AsyncIterator[bytes]:
        if fault.stall is not None and sent == fault.stall_after:
            await asyncio.sleep(fault.stall)
        if fault.malformed_after is not None and sent == fault.malformed_after:
            yield MALFORMED_FRAME
        if fault.unknown_after is not None and sent == fault.unknown_after:
            yield UNKNOWN_FRAME
        if fault.trickle:
            for i in range(len(frame)):
                yield frame[i:i + 1]
                await asyncio.sleep(0)
        else:
            yield frame


def storage_host(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/storage"


def _now_compact() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d")


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(422, "VALIDATION_ERROR", f"query parameter {name!r} is required")
    return value


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "VALIDATION_ERROR", f"{name!r} must be a non-empty string")
    return value


def _optional_field(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _field(body, name)


def _check_query(query: Any) -> Any:
    if isinstance(query, str):
        if not query.strip():
            raise ApiError(422, "VALIDATION_ERROR", "'query' must not be empty")
        return query
    if isinstance(query, dict) and query.get("__type__") == "file_ref":
        for key in ("filename", "resKey"):
            if not isinstance(query.get(key), str) or not query[key]:
                raise ApiError(422, "VALIDATION_ERROR", f"file query needs a string {key!r}")
        return query
    raise ApiError(422, "VALIDATION_ERROR", "'query' must be a string or a FileRef object")


def create_app(config: ServerConfig | None = None) -> Starlette:
    """The ASGI application. `app.state.emulator` holds its state."""
    emu = Emulator(config or ServerConfig())

    async def get_app(request: Request) -> Response:
        app = emu.store.get_app(request.path_params["app_id"])
        if app is None:
            raise ApiError(404, "APP_OR_TRIGGER_NOT_FOUND", "app not found or offline")
        return JSONResponse(app)

    async def send_message(request: Request) -> Response:
        emu.require_key(request)
        fault = emu.fault(request)
        pace = emu.pace(request)
        body = await emu.json_body(request)
        app_id, trigger_id = _field(body, "appId"), _field(body, "triggerId")
        user_id = _field(body, "userId")
        query = _check_query(body.get("query"))
        conv_id = _optional_field(body, "conversationId")
        parent_id = _optional_field(body, "parentId")
        source = body.get("source")
        if source is not None and not isinstance(source, str):
            raise ApiError(422, "VALIDATION_ERROR", "'source' must be a string")
        app = emu.apps.get(app_id)
        if app is None or app.trigger_id != trigger_id:
            raise ApiError(404, "APP_OR_TRIGGER_NOT_FOUND",
                           f"no app {app_id!r} with chat trigger {trigger_id!r}")
        problem = validate_inputs(app, body.get("inputs"))
        if problem:
            raise ApiError(400, "TRIGGER_INPUTS_ERROR", problem)
        inputs: dict[str, Any] = body.get("inputs") or {}
        dialogue = 1
        if conv_id is not None:
            conv = emu.store.get_conversation(conv_id)
            if conv is None or conv["appId"] != app_id or conv["triggerId"] != trigger_id:
                raise ApiError(404, "CONVERSATION_NOT_FOUND", f"conversation {conv_id!r} not found")
            if conv["userId"] != user_id:
                raise ApiError(403, "CONVERSATION_USER_ID_MISMATCH",
                               "userId does not own this conversation")
        if parent_id is not None:
            if conv_id is None:
                raise ApiError(422, "VALIDATION_ERROR", "'parentId' needs 'conversationId'")
            parent = emu.store.get_message(parent_id)
            if parent is None:
                raise ApiError(404, "PARENT_NOT_FOUND", f"parent message {parent_id!r} not found")
            if parent["conversationId"] != conv_id:
                raise ApiError(400, "CONVERSATION_MESSAGE_MISMATCH",
                               "parentId does not belong to this conversation")
            dialogue = int(parent["dialogueCount"]) + 1
        if conv_id is None:
            conv_id = str(uuid.uuid4())
            emu.store.create_conversation(conv_id, app_id, trigger_id, user_id,
                                          query_text(query)[:60], inputs)
        else:
            emu.store.touch_conversation(conv_id, inputs)
        message_id = str(uuid.uuid4())
        emu.store.create_message(message_id, conv_id, parent_id, dialogue, query, user_id,
                                 source, inputs)
        emu.prune_runs()
        run = Run(message_id, conv_id)
        emu.runs[message_id] = run
        emu.executor.start(run, app, app.plan(query, inputs), pace)
        return emu.stream(run, fault)

    async def resume_stream(request: Request) -> Response:
        emu.require_key(request)
        fault = emu.fault(request)
        message_id = request.path_params["message_id"]
        run = emu.runs.get(message_id)
        if run is None:
            if emu.store.get_message(message_id) is None:
                raise ApiError(404, "NOT_FOUND", f"message {message_id!r} not found")
            ended = emu.store.stream_ended(message_id)
            events = emu.store.events(message_id)
            if ended is None or not events:
                raise ApiError(410, "UNRESUMABLE_STREAM", "this message has no stream to resume")
            run = Run.finished(message_id, events, ended)
        if run.done and time.time() - (run.ended_at or 0) > emu.config.resume_window:
            raise ApiError(410, "UNRESUMABLE_STREAM",
                           f"the stream ended over {emu.config.resume_window:g} s ago")
        return emu.stream(run, fault)

    async def get_messages(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        conv_id = _param(request, "conversation_id")
        if emu.store.get_conversation(conv_id) is None:
            raise ApiError(404, "CONVERSATION_NOT_FOUND", f"conversation {conv_id!r} not found")
        end_id = request.query_params.get("end_message_id")
        flag = request.query_params.get("include_end", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise ApiError(422, "VALIDATION_ERROR", "'include_end' must be true or false")
        if not end_id:
            return JSONResponse({"items": emu.store.messages(conv_id)})
        end = emu.store.get_message(end_id)
        if end is None:
            raise ApiError(404, "NOT_FOUND", f"message {end_id!r} not found")
        if end["conversationId"] != conv_id:
            raise ApiError(400, "CONVERSATION_MESSAGE_MISMATCH",
                           "end_message_id does not belong to this conversation")
        path = emu.store.path_to(end_id)
        return JSONResponse({"items": path if flag in ("true", "1") else path[:-1]})

    async def list_conversations(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        items = emu.store.list_conversations(_param(request, "appId"), _param(request, "triggerId"),
                                             _param(request, "userId"))
        return JSONResponse({"items": items})

    async def upload_by_url(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        url = _field(await emu.json_body(request), "url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(422, "VALIDATION_ERROR", "'url' must be an http(s) URL")
        local_ok = emu.config.test_mode or emu.config.allow_loopback_urls
        if not local_ok and parts.hostname in ("localhost", "127.0.0.1", "::1"):
            raise ApiError(422, "VALIDATION_ERROR", "loopback URLs are refused outside test mode")
        content, mime = await _fetch(url, emu.config.max_upload_bytes)
        filename = unquote(os.path.basename(parts.path)) or "download"
        if "." not in filename:
            filename += mimetypes.guess_extension(mime) or ""
        res_key = f"{_now_compact()}/{uuid.uuid4()}{os.path.splitext(filename)[1]}"
        emu.store.put_file(res_key, filename, mime, content)
        return JSONResponse(emu.file_ref(request, res_key, filename, mime, len(content)))

    async def uptoken(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        mime = request.query_params.get("mimeType") or ""
        ext = (mimetypes.guess_extension(mime) or "") if mime else ""
        res_key = f"workflow_input_files/{uuid.uuid4()}{ext}"
        return JSONResponse({"uptoken": emu.upload_token(res_key, mime), "resKey": res_key,
                             "uploadHost": storage_host(request)})

    async def download_url(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        return JSONResponse({"data": emu.download_link(request, _param(request, "resKey"))})

    async def storage_put(request: Request) -> Response:
        res_key = request.path_params["res_key"]
        try:
            claims = emu.check_upload_token(request.url.query, res_key)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ValueError:
            return JSONResponse({"error": "upload token is malformed"}, status_code=403)
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if claims["m"] and mime != claims["m"].lower():
            return JSONResponse({"error": f"Content-Type {mime!r} does not match the token's "
                                          f"{claims['m']!r}"}, status_code=415)
        limit = emu.config.max_upload_bytes
        if int(request.headers.get("content-length") or 0) > limit:
            return JSONResponse({"error": f"file over {limit} bytes"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return JSONResponse({"error": f"file over {limit} bytes"}, status_code=413)
            chunks.append(chunk)
        filename = os.path.basename(res_key)
        emu.store.put_file(res_key, filename, mime or "application/octet-stream", b"".join(chunks))
        return JSONResponse({"resKey": res_key, "size": size})

    async def storage_get(request: Request) -> Response:
        res_key = request.path_params["res_key"]
        expires = request.query_params.get("e", "")
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token, emu.sign("down", res_key, expires)) or (
            not expires.isdigit() or int(expires) < time.time()
        ):
            return JSONResponse({"error": "invalid or expired link"}, status_code=403)
        found = emu.store.get_file(res_key)
        if found is None:
            return JSONResponse({"error": "Document not found"}, status_code=404)
        filename, mime, content = found
        return Response(content, media_type=mime,
                        headers={"Content-Disposition": f'inline; filename="{filename}"'})

    async def index(request: Request) -> Response:
        return JSONResponse({
            "name": "atomemo-notebook embedded server",
            "base_url": str(request.base_url).rstrip("/") + "/api",
            "apps": [app.public() for app in emu.apps.values()],
        })

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc)

    async def on_injected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InjectedResponse)
        return exc.response

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, DropConnection):
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"code": "INTERNAL_ERROR", "message": "internal server error"},
                            status_code=500)

    routes = [
        Route("/", index),
        Route("/api/chat/app/{app_id}", get_app, methods=["GET"]),
        Route("/api/chat/messages", send_message, methods=["POST"]),
        Route("/api/chat/messages", get_messages, methods=["GET"]),
        Route("/api/chat/messages/{message_id}/resume_stream", resume_stream, methods=["GET"]),
        Route("/api/chat/conversations", list_conversations, methods=["GET"]),
        Route("/api/chat/media/upload", upload_by_url, methods=["POST"]),
        Route("/api/chat/media/uptoken", uptoken, methods=["GET"]),
        Route("/api/chat/media/download_url", download_url, methods=["GET"]),
        Route("/storage/{res_key:path}", storage_put, methods=["PUT"]),
        Route("/storage/{res_key:path}", storage_get, methods=["GET"]),
    ]
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    app = Starlette(routes=routes, exception_handlers={
        ApiError: on_api_error, InjectedResponse: on_injected, HTTPException: on_http_error,
        Exception: on_crash,
    })
    app.state.emulator = emu
    return app


async def _fetch(url: str, limit: int) -> tuple[bytes, str]:
    try:
        async with httpx.AsyncClient(follow_redirects=True, timeout=10.0) as http, \
                http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise ApiError(400, "URL_FETCH_FAILED", f"fetching the URL gave HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > limit:
                raise ApiError(413, "FILE_TOO_LARGE", f"file over {limit} bytes")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "FILE_TOO_LARGE", f"file over {limit} bytes")
                chunks.append(chunk)
            mime = response.headers.get("content-type", "").split(";")[0].strip()
            mime = mime or mimetypes.guess_type(url)[0] or "application/octet-stream"
            return b"".join(chunks), mime
    except httpx.HTTPError as exc:
        raise ApiError(400, "URL_FETCH_FAILED", f"could not fetch the URL ({type(exc).__name__})") from None
