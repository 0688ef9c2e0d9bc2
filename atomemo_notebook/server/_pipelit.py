"""Pipelit, emulated: the same demo workflows (slugs support, agent, flaky, echo) under
`/api/v1/workflows/{slug}/chat/`, with Bearer auth, FastAPI's `{"detail": ...}` errors, one
conversation per user and workflow, the executions API (record, list, cancel), `/health`, and
the one WebSocket (`/ws/?token=...`) that reports every execution of a subscribed workflow as
it runs, one frame per `pipelit_frame_gap` seconds per socket. A bad token is refused at the
handshake (HTTP 403). Fault injection as everywhere, plus `ws_drop_after=N` (close the sockets
watching the workflow after N events of this execution) and `answer_delay=S` (answer the POST
S seconds late, so events race ahead of it).

It answers as Pipelit 0.3.16 did in the recordings (tests/peers/pipelit); where it differs on
purpose, the code says why and tests/test_pipelit_contract.py names it: node labels (the demo's
names, for the graph), one chat_message per agent (the demo's agents say nothing before their
tools), `/` (the emulator's index: one origin serves four systems), and a cancel that never
stops a run (as a cancel mid-node; the real server stops a run cancelled before its first node)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..protocol._log import get_logger
from ._demo import DemoApp
from ._http import ApiError, answering_as, check_text
from ._runs import Run
from ._voices import PipelitVoice

if TYPE_CHECKING:
    from ._app import Emulator
    from ._faults import Fault

log = get_logger("atomemo_notebook.server")

PREFIX = "/api/v1"
PIPELIT_TRIGGER = "pipelit"  # the trigger id of conversations made through the Pipelit routes
PIPELIT_USER = "pipelit-user"  # the one user the emulator's key stands for
SEND_QUEUE = 10_000  # messages waiting for one slow socket before it is closed
PONG_WAIT = 10.0  # seconds a client has to answer our ping (as Pipelit)
VERSION = "0.3.16"  # the Pipelit whose recordings this emulates


class PipelitError(ApiError):
    """FastAPI's error body: `{"detail": ...}` (a text, or for a 422 FastAPI's list of problems)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 detail: Any = None) -> None:
        super().__init__(status, code, message, headers)
        self.detail = message if detail is None else detail

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status, headers=self.headers)


def invalid(kind: str, where: list[str], message: str, value: Any) -> PipelitError:
    """FastAPI's 422: `{"detail": [{"type", "loc", "msg", "input"}]}` (the input echoed only
    when it is plain JSON: a NaN or an over-long value is not sent back)."""
    try:
        echoed = value if len(json.dumps(value, allow_nan=False)) <= 10_000 else None
    except (ValueError, TypeError, RecursionError):
        echoed = None
    return PipelitError(422, "VALIDATION_ERROR", message,
                        detail=[{"type": kind, "loc": where, "msg": message, "input": echoed}])


def _stamp(iso: str | None) -> str | None:
    """A time as Pipelit's history writes it: microseconds and `Z`."""
    if not iso:
        return None
    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return when.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def pipelit_key(server_key: str) -> str:
    """The emulator's Pipelit API key, derived from the server's key (and telling nothing of it)."""
    return "pk-" + hmac.new(server_key.encode(), b"pipelit", hashlib.sha256).hexdigest()[:32]


_pipelit_errors = answering_as(PipelitError)


def _iso(stamp: str | None) -> str | None:
    return stamp.replace("Z", "") if stamp else None  # Pipelit writes naive UTC times


class Socket:
    """One client's WebSocket: its channels, and a bounded queue its own sender drains."""

    def __init__(self, websocket: WebSocket, gap: float = 0.0) -> None:
        self.websocket = websocket
        self.gap = gap  # seconds after each frame sent (Pipelit's listener sleeps 50 ms after each)
        self.channels: set[str] = set()
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(SEND_QUEUE)
        self.heard = time.monotonic()

    def offer(self, text: str) -> bool:
        try:
            self.outbox.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False


class Sockets:
    """Every open socket of the emulator, and the publishing of a workflow's events to them."""

    def __init__(self) -> None:
        self.open: set[Socket] = set()

    def publish(self, channel: str, text: str) -> None:
        for socket in list(self.open):
            if channel in socket.channels and not socket.offer(text):
                log.warning("a WebSocket fell %d messages behind; closing it", SEND_QUEUE)
                self.drop(socket)

    def drop_channel(self, channel: str) -> int:
        dropped = [s for s in list(self.open) if channel in s.channels]
        for socket in dropped:
            self.drop(socket)
        return len(dropped)

    def drop(self, socket: Socket) -> None:
        self.open.discard(socket)
        with contextlib.suppress(asyncio.QueueFull):
            socket.outbox.put_nowait(None)  # the sender closes it


def pipelit_routes(emu: Emulator) -> list[Route | WebSocketRoute]:
    key = pipelit_key(emu.config.api_key)
    sockets = Sockets()
    emu.pipelit_sockets = sockets
    workflow_ids = {slug: i for i, slug in enumerate(sorted(app.slug for app in emu.apps.values()), 1)}

    def authorize(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # FastAPI's HTTPBearer: no header, an empty one or another scheme.
            raise PipelitError(401, "UNAUTHORIZED", "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise PipelitError(401, "UNAUTHORIZED", "Invalid or missing API key.")

    def workflow(request: Request) -> DemoApp:
        slug = request.path_params["slug"]
        app = next((a for a in emu.apps.values() if a.slug == slug), None)
        if app is None:
            raise PipelitError(404, "NOT_FOUND", "Workflow not found.")
        return app

    def conversation(app: DemoApp) -> str | None:
        found = emu.store.list_conversations(app.id, PIPELIT_TRIGGER, PIPELIT_USER)
        return found[0]["id"] if found else None

    async def broadcast(run: Run, app: DemoApp, fault: Fault | None) -> None:
        channel = f"workflow:{app.slug}"
        sent = 0
        async for batch in run.follow(emu.config.heartbeat_interval):
            for payload in batch:
                if fault is not None and fault.ws_drop_after is not None and sent == fault.ws_drop_after:
                    sockets.drop_channel(channel)  # mid-run: the client must notice, reconnect, recover
                sockets.publish(channel, payload)
                sent += 1

    @_pipelit_errors
    async def chat(request: Request) -> Response:
        authorize(request)
        fault = emu.fault(request)
        pace = emu.pace(request)
        app = workflow(request)
        body = await emu.json_body(request)
        if "text" not in body:
            raise invalid("missing", ["body", "text"], "Field required", body)
        text = body.get("text")
        if not isinstance(text, str):
            raise invalid("string_type", ["body", "text"], "Input should be a valid string", text)
        check_text(text, "text")  # "" is accepted and runs, as Pipelit
        trigger = body.get("trigger_node_id")
        if trigger is not None and trigger not in (app.trigger_id, "trigger_chat"):
            raise PipelitError(404, "NOT_FOUND", "No chat trigger found.")
        conv_id = conversation(app)
        parent = emu.store.last_message(conv_id) if conv_id else None  # one row, not the conversation per ask
        plan = app.plan(text, {})
        message_id = str(uuid.uuid4())  # the execution id
        conv_id = emu.store.create_message_in(
            message_id, conv_id, app_id=app.id, trigger_id=PIPELIT_TRIGGER, user_id=PIPELIT_USER,
            name=text[:60], parent_id=parent["id"] if parent else None,
            dialogue_count=int(parent["dialogueCount"]) + 1 if parent else 1, query=text, source="pipelit",
            inputs={})
        run = Run(message_id, conv_id, voice=PipelitVoice(app.slug, workflow_ids[app.slug]))
        emu.launch(run, app, plan, pace, fault)
        task = asyncio.get_running_loop().create_task(broadcast(run, app, fault))
        emu.background.add(task)
        task.add_done_callback(emu.background.discard)
        if fault is not None and fault.answer_delay:
            await asyncio.sleep(fault.answer_delay)
        return JSONResponse({"execution_id": message_id, "status": "pending", "response": ""})

    def edges_of(app: DemoApp, voice: PipelitVoice) -> list[dict[str, Any]]:
        ids = {slug: voice.describe(name, kind)["node_id"] for slug, name, kind in app.nodes}
        pairs = app.edges or [(a[0], b[0], None) for a, b in itertools.pairwise(app.nodes)]
        return [{"source_node_id": ids[a], "target_node_id": ids[b], "edge_type": "direct", "edge_label": label or ""}
                for a, b, label in pairs]

    @_pipelit_errors
    async def details(request: Request) -> Response:
        authorize(request)
        fault = emu.fault(request)
        app = workflow(request)
        voice = PipelitVoice(app.slug, workflow_ids[app.slug])
        nodes = [voice.describe(name, kind) for _, name, kind in app.nodes]
        return emu.answer({
            "id": workflow_ids[app.slug], "name": app.name, "slug": app.slug, "description": app.description,
            "is_active": True, "is_public": False, "is_default": False, "tags": None, "node_count": len(nodes),
            "edge_count": max(len(nodes) - 1, 0), "created_at": "2025-01-15T10:30:00",
            "updated_at": "2025-01-15T10:30:00", "nodes": nodes,
            "edges": edges_of(app, voice)}, fault)

    def remembers(app: DemoApp) -> bool:
        """Pipelit's history is an agent's conversation memory: a workflow without an agent
        keeps none (the demo's agents all have it on)."""
        return any(kind == "ai_agent" for _, _, kind in app.nodes)

    @_pipelit_errors
    async def history(request: Request) -> Response:
        authorize(request)
        fault = emu.fault(request)
        app = workflow(request)
        raw = request.query_params.get("limit", "10")
        try:
            limit = int(raw)
        except ValueError:
            raise invalid("int_parsing", ["query", "limit"],
                          "Input should be a valid integer, unable to parse string as an integer", raw) from None
        before = request.query_params.get("before")
        conv_id = conversation(app) if remembers(app) else None
        items: list[dict[str, Any]] = []
        for message in emu.store.messages(conv_id) if conv_id else []:
            if message["status"] != "succeeded" or not message["answer"]:
                continue  # memory keeps a turn only once the agent answered it
            query, stamp = message["query"], _stamp(message["createdAt"])
            # Every message of a turn carries its question's time, as Pipelit's checkpoints do.
            items += [{"role": "user", "text": query if isinstance(query, str) else json.dumps(query),
                       "timestamp": stamp}, {"role": "assistant", "text": message["answer"], "timestamp": stamp}]
        if before and items:  # Pipelit parses `before` only when there is history to filter
            check_text(before, "before")
            try:
                cut = datetime.fromisoformat(before.replace("Z", "+00:00"))
            except ValueError:
                raise PipelitError(400, "BAD_REQUEST", "Invalid 'before' datetime format. Use ISO 8601 "
                                                       "(e.g. 2026-01-01T00:00:00Z).") from None
            cut = cut.astimezone(timezone.utc).replace(tzinfo=None) if cut.tzinfo else cut
            items = [i for i in items if datetime.fromisoformat(i["timestamp"][:-1]) < cut]
        page = items[-limit:] if limit > 0 else items  # limit=0: every message, as Pipelit
        return emu.answer({"messages": page, "thread_id": f"1:{workflow_ids[app.slug]}",
                           "has_more": len(items) > max(limit, 0)}, fault)

    @_pipelit_errors
    async def clear(request: Request) -> Response:
        authorize(request)
        emu.fault(request)
        app = workflow(request)
        conv_id = conversation(app)
        if conv_id:
            emu.store.delete_conversation(conv_id)
        return Response(status_code=204)

    cancelled: set[str] = set()  # executions a client cancelled (bounded by the runs the emulator keeps)
    statuses = {"querying": "pending", "answering": "running", "succeeded": "completed", "failed": "failed",
                "stopped": "cancelled"}

    def record(message: dict[str, Any], full: bool) -> dict[str, Any]:
        """An execution as Pipelit's `GET /api/v1/executions/{id}/` answers it."""
        status = statuses.get(str(message["status"]), "running")
        if status in ("pending", "running") and message["id"] in cancelled:
            status = "cancelled"  # as Pipelit: the record says so while the node it ran goes on
        failed = status == "failed"
        app = next((a for a in emu.apps.values() if a.id == (emu.store.get_conversation(
            message["conversationId"]) or {}).get("appId")), None)
        slug = app.slug if app else None
        # The store's node ids as Pipelit's, and without the trigger (Pipelit never logs it).
        names: dict[str, str | None] = {}
        if app is not None:
            voice = PipelitVoice(app.slug, workflow_ids[app.slug])
            names = {app.node_id(node): None if kind == "chat_trigger" else voice.describe(name, kind)["node_id"]
                     for node, name, kind in app.nodes}
        results = [r | {"node_id": names.get(r["node_id"], r["node_id"])}
                   for r in (emu.store.node_results(message["executionId"]) if message.get("executionId") else [])
                   if names.get(r["node_id"], r["node_id"]) is not None]
        error = next((r for r in reversed(results) if r["status"] == "failed"), None)  # the last attempt's
        body: dict[str, Any] = {
            "execution_id": message["id"], "workflow_slug": slug, "status": status,
            "error_message": f"Node {error['node_id']}: {error['error']}" if failed and error else
            ("the execution failed" if failed else ""),
            "started_at": _iso(message["createdAt"]),
            "completed_at": _iso(message["updatedAt"]) if status in ("completed", "failed", "cancelled") else None,
            "total_tokens": 0, "total_cost_usd": 0.0, "llm_calls": 0}
        if full:
            body |= {"final_output": {"output": message["answer"]} if status == "completed" else None,
                     "trigger_payload": {"text": message["query"]},
                     "logs": [{"id": i, "node_id": r["node_id"],
                               "status": "completed" if r["status"] == "succeeded" else str(r["status"]),
                               "input": None, "output": json.loads(r["json_output"] or "null"),
                               "error": r["error"] or "", "error_code": "RuntimeError" if r["error"] else None,
                               "metadata": {}, "duration_ms": 0,  # the store keeps no node durations
                               "timestamp": (_iso(message["updatedAt"]) or "")[:19]}
                              for i, r in enumerate(results, 1)]}
        return body

    def execution_of(request: Request) -> dict[str, Any]:
        found = emu.store.get_message(request.path_params["execution_id"])
        if found is None or found.get("source") != "pipelit":
            raise PipelitError(404, "NOT_FOUND", "Execution not found.")
        return found

    @_pipelit_errors
    async def execution(request: Request) -> Response:
        authorize(request)
        fault = emu.fault(request)
        return emu.answer(record(execution_of(request), True), fault)

    @_pipelit_errors
    async def cancel(request: Request) -> Response:
        """As Pipelit 0.3.16: the execution is marked cancelled and `execution_cancelled` is
        broadcast, but a run already going is not stopped (it ends completed, as the real one)."""
        authorize(request)
        fault = emu.fault(request)
        message = execution_of(request)
        if message["status"] in ("querying", "answering") and message["id"] not in cancelled:
            cancelled.add(message["id"])
            slug = record(message, False)["workflow_slug"]
            voice = PipelitVoice(str(slug), workflow_ids.get(str(slug), 0))
            sockets.publish(voice.channel, voice.cancelled(message["id"]))
        return emu.answer(record(message, False), fault)

    @_pipelit_errors
    async def executions(request: Request) -> Response:
        """`GET /api/v1/executions/`: newest first, `{"items", "total"}`, items without output or logs."""
        authorize(request)
        fault = emu.fault(request)
        params = request.query_params
        raw = params.get("limit", "50")
        try:
            limit = max(0, min(int(raw), 1000))
        except ValueError:
            raise invalid("int_parsing", ["query", "limit"],
                          "Input should be a valid integer, unable to parse string as an integer", raw) from None
        wanted_slug, wanted_status = params.get("workflow_slug"), params.get("status")
        items = []
        for app in emu.apps.values():
            if wanted_slug and app.slug != wanted_slug:
                continue
            conv_id = conversation(app)
            for message in emu.store.messages(conv_id) if conv_id else []:
                item = record(message, False)
                if not wanted_status or item["status"] == wanted_status:
                    items.append(item)
        items.sort(key=lambda i: str(i["started_at"]), reverse=True)
        return emu.answer({"items": items[:limit], "total": len(items)}, fault)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": VERSION, "redis": True, "database": True})

    async def socket(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), key.encode()):
            await websocket.close(code=1008, reason="Invalid or missing token")  # before accept: HTTP 403
            return
        await websocket.accept()
        conn = Socket(websocket, emu.config.pipelit_frame_gap)
        sockets.open.add(conn)
        sender = asyncio.get_running_loop().create_task(_send(conn))
        try:
            await _receive(conn, emu.config.heartbeat_interval)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sockets.drop(conn)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(sender, 2.0)

    return [
        Route(f"{PREFIX}/workflows/{{slug}}/", details, methods=["GET"]),
        Route(f"{PREFIX}/workflows/{{slug}}/chat/", chat, methods=["POST"]),
        Route(f"{PREFIX}/workflows/{{slug}}/chat/history", history, methods=["GET"]),
        Route(f"{PREFIX}/workflows/{{slug}}/chat/history", clear, methods=["DELETE"]),
        Route(f"{PREFIX}/executions/", executions, methods=["GET"]),
        Route(f"{PREFIX}/executions/{{execution_id}}/", execution, methods=["GET"]),
        Route(f"{PREFIX}/executions/{{execution_id}}/cancel/", cancel, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        WebSocketRoute("/ws/", socket),
    ]


async def _send(conn: Socket) -> None:
    while True:
        text = await conn.outbox.get()
        if text is None:
            with contextlib.suppress(Exception):
                await conn.websocket.close(code=1001)
            return
        try:
            await conn.websocket.send_text(text)
        except Exception:
            return
        if conn.gap:
            await asyncio.sleep(conn.gap)


async def _receive(conn: Socket, ping_every: float) -> None:
    """Subscriptions and pongs from the client; a ping after `ping_every` s of silence, and
    the socket closed when no pong comes (as Pipelit does)."""
    pinged: float | None = None
    while True:
        wait = PONG_WAIT if pinged is not None else ping_every
        try:
            text = await asyncio.wait_for(conn.websocket.receive_text(), wait)
        except TimeoutError:
            if pinged is not None:
                return  # no pong: the client is gone
            pinged = time.monotonic()
            conn.offer(json.dumps({"type": "ping"}))
            continue
        pinged = None
        try:
            message = json.loads(text)
        except ValueError:
            continue  # as Pipelit: a frame that is not JSON gets no answer
        if not isinstance(message, dict):
            continue
        kind, channel = message.get("type"), message.get("channel")
        if kind in ("subscribe", "unsubscribe") and isinstance(channel, str) and len(channel) <= 200:
            if kind == "subscribe":
                conn.channels.add(channel)
            else:
                conn.channels.discard(channel)
            conn.offer(json.dumps({"type": f"{kind}d", "channel": channel}))
