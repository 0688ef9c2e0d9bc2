"""The Starlette application: every endpoint of the Atomemo Chat API, plus the storage
host that uploads go to. Errors are JSON `{"code": ..., "message": ...}`; no error, of any
kind, leaves a request without a proper answer, and none answers 5xx once a message exists."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from ..protocol._log import get_logger
from ._config import ServerConfig
from ._demo import DemoApp, demo_apps, query_text, validate_inputs
from ._dify import PREFIX as DIFY_PREFIX
from ._dify import dify_http_error, dify_routes
from ._faults import FAULT_HEADER, PACE_HEADER, Fault, FaultBook, FaultSyntaxError, parse_pairs
from ._files import Signer, file_routes
from ._http import (
    ApiError,
    DropConnection,
    ErrorBoundary,
    InjectedResponse,
    ResetConnection,
    field,
    optional_field,
    param,
    read_json,
)
from ._odyssey import PREFIX as ODYSSEY_PREFIX
from ._odyssey import odyssey_body, odyssey_routes
from ._pipelit import PREFIX as PIPELIT_PREFIX
from ._pipelit import pipelit_routes
from ._runs import Executor, Pace, Run
from ._store import Store

log = get_logger("atomemo_notebook.server")

MALFORMED_FRAME = b'data: {"event": "chat_message", "data": {"text": oops}\n\n'
UNKNOWN_FRAME = b'data: {"event": "mystery_event", "data": {"note": "not in the spec"}}\n\n'
PRUNE_AFTER = 64  # runs kept before the first sweep of ended ones


class _QuietDrops(logging.Filter):
    """Injected drops and resets are on purpose: uvicorn need not report them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DropConnection):
            return False
        return "ASGI callable should return None, but returned 'reset'" not in record.getMessage()


@functools.lru_cache(maxsize=4)
def _gzip_bomb(mebibytes: int) -> bytes:
    """A gzip body that inflates to `mebibytes` MiB of one SSE line with no end."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(b"data: ")]
    block = b"x" * (1024 * 1024)
    parts += [packer.compress(block) for _ in range(mebibytes)]
    parts.append(packer.flush())
    return b"".join(parts)


class Emulator:
    """The server's state: store, runs, faults and signing; one per application."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = Store(config.db)
        self.signer = Signer(self.store.secret(), config.token_ttl)
        self.executor = Executor(self.store)
        self.runs: dict[str, Run] = {}
        self._sweep_at = PRUNE_AFTER  # len(runs) at which the next launch sweeps ended runs out
        self.faults = FaultBook()
        self.background: set[asyncio.Task[None]] = set()  # tasks that outlive their request
        self.pipelit_sockets: Any = None
        self.apps: dict[str, DemoApp] = {app.id: app for app in demo_apps(config.seed).values()}
        for app in self.apps.values():
            self.store.put_app(app.wire())

    # -- request helpers ----------------------------------------------------------------
    def require_key(self, request: Request) -> None:
        given = request.headers.get("x-api-key", "")
        if not given or not hmac.compare_digest(given.encode(), self.config.api_key.encode()):
            raise ApiError(401, "UNAUTHORIZED", "missing or invalid X-Api-Key header")

    def fault(self, request: Request) -> Fault | None:
        """The fault this request suffers (test mode only); faults that replace the whole
        answer are raised here, the others are returned for the handler to apply."""
        if not self.config.test_mode:
            return None
        try:
            fault = self.faults.take(request.headers.get(FAULT_HEADER), request.url.path)
        except FaultSyntaxError as exc:
            raise ApiError(400, "INVALID_FAULT", str(exc)) from None
        if fault is None:
            return None
        log.debug("fault injected on %s %s: %s", request.method, request.url.path, fault.key)
        if fault.reset:
            raise ResetConnection()
        if fault.crash:
            raise RuntimeError("injected crash inside a handler")
        if fault.gzip_bomb:
            raise InjectedResponse(Response(
                _gzip_bomb(fault.gzip_bomb), fault.status or 200,
                headers={"Content-Encoding": "gzip", **fault.retry_headers()},
                media_type="text/event-stream" if request.method == "POST" and
                request.url.path.endswith("/messages") else "application/json"))
        if fault.status:
            headers = fault.retry_headers() or None
            if fault.plain:
                raise InjectedResponse(PlainTextResponse(
                    f"upstream proxy error {fault.status}: service unavailable", fault.status, headers))
            raise ApiError(fault.status, "INJECTED_FAULT", f"injected HTTP {fault.status}", headers)
        if fault.html:
            raise InjectedResponse(HTMLResponse("<html><body><h1>Please sign in</h1></body></html>"))
        return fault

    @staticmethod
    def answer(payload: Any, fault: Fault | None = None) -> Response:
        """A JSON answer; with a trickle fault, one byte per write."""
        response = JSONResponse(payload)
        if fault is None or not fault.trickle:
            return response
        body, delay = bytes(response.body), fault.trickle_delay

        async def trickle() -> AsyncIterator[bytes]:
            for i in range(len(body)):
                yield body[i:i + 1]
                await asyncio.sleep(delay)

        return StreamingResponse(trickle(), media_type="application/json")

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
        return await read_json(request, self.config.max_body_bytes)

    # -- runs ---------------------------------------------------------------------------
    def prune_runs(self) -> None:
        """Forget runs that ended over the resume window ago. A sweep reads every run, so it
        waits until their number has doubled since the last one: O(1) per launch, amortized,
        where a sweep on each launch cost every POST the runs of the whole window (a
        session's every ask). Runs kept a little longer change nothing: resume_stream checks
        the window itself."""
        if len(self.runs) < self._sweep_at:
            return
        horizon = time.time() - self.config.resume_window
        for message_id in [m for m, r in self.runs.items() if r.done and (r.ended_at or 0) < horizon]:
            del self.runs[message_id]
        self._sweep_at = max(PRUNE_AFTER, 2 * len(self.runs))

    def launch(self, run: Run, app: DemoApp, plan: Any, pace: Pace, fault: Fault | None) -> Run:
        """Start a run; one that cannot even start ends failed, with its reason, in its stream."""
        try:
            self.prune_runs()
            self.runs[run.message_id] = run
            self.executor.start(run, app, plan, pace, store_fail=bool(fault and fault.store_fail))
        except Exception as exc:
            log.exception("could not start the run of message %s", run.message_id)
            self.executor.fail_unstarted(run, f"{type(exc).__name__}: {exc}")
        return run

    def stream(self, run: Run, fault: Fault | None, *, start: int = 0,
               through_pause: bool = False) -> StreamingResponse:
        endless = fault is not None and fault.no_newline
        frames = self._endless_line(fault.no_newline) if fault and endless else self._frames(run, fault, start,
                                                                                             through_pause)
        return StreamingResponse(
            frames, media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @staticmethod
    async def _endless_line(mebibytes: int) -> AsyncIterator[bytes]:
        yield b"data: "
        block = b"x" * (1024 * 1024)
        for _ in range(mebibytes):
            yield block
            await asyncio.sleep(0)

    async def _frames(self, run: Run, fault: Fault | None, start: int = 0,
                      through_pause: bool = False) -> AsyncIterator[bytes]:
        sent = 0
        async for batch in run.follow(self.config.heartbeat_interval, start, through_pause):
            if not batch:
                yield run.voice.heartbeat
                continue
            if fault is None:
                yield "".join(f"data: {payload}\n\n" for payload in batch).encode()
                continue
            for payload in batch:
                if fault.end_after is not None and sent >= fault.end_after:
                    return
                if fault.error_after is not None and sent >= fault.error_after:
                    yield f"data: {run.voice.error(run, 500, 'internal_server_error', 'injected error')}\n\n".encode()
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
        if fault.trickle and sent >= fault.trickle_after:
            for i in range(len(frame)):
                yield frame[i:i + 1]
                await asyncio.sleep(fault.trickle_delay)
        else:
            yield frame


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
        fault = emu.fault(request)
        app = emu.store.get_app(request.path_params["app_id"])
        if app is None:
            raise ApiError(404, "APP_OR_TRIGGER_NOT_FOUND", "app not found or offline")
        return emu.answer(app, fault)

    async def send_message(request: Request) -> Response:
        emu.require_key(request)
        fault = emu.fault(request)
        pace = emu.pace(request)
        body = await emu.json_body(request)
        app_id, trigger_id = field(body, "appId"), field(body, "triggerId")
        user_id = field(body, "userId")
        query = _check_query(body.get("query"))
        conv_id = optional_field(body, "conversationId")
        parent_id = optional_field(body, "parentId")
        source = body.get("source")
        if source is not None and not isinstance(source, str):
            raise ApiError(422, "VALIDATION_ERROR", "'source' must be a string")
        app = emu.apps.get(app_id)
        if app is None or app.trigger_id != trigger_id:
            raise ApiError(404, "APP_OR_TRIGGER_NOT_FOUND",
                           f"no app {app_id!r} with chat trigger {trigger_id!r}")
        problem = validate_inputs(app, body.get("inputs"), query)
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
        # Everything that can refuse the request happens before anything is stored: the plan
        # too. From the message on, a failure ends the stream with a failed run, never a 5xx.
        plan = app.plan(query, inputs)
        # A regenerate asks again what a sibling asked: its model "samples" anew (the answer stays
        # the demo's, the model nodes report which sample), so two versions have outputs to compare.
        # Counted by an index search: reading the conversation made every POST O(conversation).
        take = 1 + emu.store.count_asked(conv_id, parent_id, query) if conv_id is not None else 1
        message_id = str(uuid.uuid4())
        conv_id = emu.store.create_message_in(
            message_id, conv_id, app_id=app_id, trigger_id=trigger_id, user_id=user_id,
            name=query_text(query)[:60], parent_id=parent_id, dialogue_count=dialogue, query=query,
            source=source, inputs=inputs)
        run = Run(message_id, conv_id)
        run.sample = take
        run = emu.launch(run, app, plan, pace, fault)
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
        fault = emu.fault(request)
        conv_id = param(request, "conversation_id")
        if emu.store.get_conversation(conv_id) is None:
            raise ApiError(404, "CONVERSATION_NOT_FOUND", f"conversation {conv_id!r} not found")
        end_id = request.query_params.get("end_message_id")
        flag = request.query_params.get("include_end", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise ApiError(422, "VALIDATION_ERROR", "'include_end' must be true or false")
        if not end_id:
            return emu.answer({"items": emu.store.messages(conv_id)}, fault)
        end = emu.store.get_message(end_id)
        if end is None:
            raise ApiError(404, "NOT_FOUND", f"message {end_id!r} not found")
        if end["conversationId"] != conv_id:
            raise ApiError(400, "CONVERSATION_MESSAGE_MISMATCH",
                           "end_message_id does not belong to this conversation")
        path = emu.store.path_to(end_id)
        return emu.answer({"items": path if flag in ("true", "1") else path[:-1]}, fault)

    async def list_conversations(request: Request) -> Response:
        emu.require_key(request)
        fault = emu.fault(request)
        items = emu.store.list_conversations(param(request, "appId"), param(request, "triggerId"),
                                             param(request, "userId"))
        return emu.answer({"items": items}, fault)

    async def index(request: Request) -> Response:
        return JSONResponse({
            "name": "atomemo-notebook embedded server",
            "base_url": str(request.base_url).rstrip("/") + "/api",
            "dify_base_url": str(request.base_url).rstrip("/") + DIFY_PREFIX,
            "pipelit_base_url": str(request.base_url).rstrip("/") + PIPELIT_PREFIX,
            "odyssey_base_url": str(request.base_url).rstrip("/") + ODYSSEY_PREFIX + "/api",
            "apps": [app.public() for app in emu.apps.values()],
        })

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_injected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InjectedResponse)
        return exc.response

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path == DIFY_PREFIX or request.url.path.startswith(DIFY_PREFIX + "/"):
            return dify_http_error(request, exc)
        if request.url.path.startswith(ODYSSEY_PREFIX + "/"):
            return JSONResponse(odyssey_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)
        if request.url.path == PIPELIT_PREFIX or request.url.path.startswith(PIPELIT_PREFIX + "/"):
            return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)
        code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)

    routes = [
        Route("/", index),
        Route("/api/chat/app/{app_id}", get_app, methods=["GET"]),
        Route("/api/chat/messages", send_message, methods=["POST"]),
        Route("/api/chat/messages", get_messages, methods=["GET"]),
        Route("/api/chat/messages/{message_id}/resume_stream", resume_stream, methods=["GET"]),
        Route("/api/chat/conversations", list_conversations, methods=["GET"]),
        *file_routes(emu),
        *dify_routes(emu),
        *pipelit_routes(emu),
        *odyssey_routes(emu),
    ]
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    app = Starlette(routes=routes, middleware=[Middleware(ErrorBoundary)], exception_handlers={
        ApiError: on_api_error, InjectedResponse: on_injected, HTTPException: on_http_error,
    })
    app.state.emulator = emu
    return app
