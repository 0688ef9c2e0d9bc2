"""Pipelit, emulated: the same demo workflows (slugs support, agent, flaky, echo) under
`/api/v1/workflows/{slug}/chat/`, with Bearer auth, FastAPI's `{"detail": ...}` errors, one
conversation per user and workflow, and the one WebSocket (`/ws/?token=...`) that reports
every execution of a subscribed workflow as it runs. A bad token is refused at the handshake
(HTTP 403). Fault injection as everywhere, plus `ws_drop_after=N` (close the sockets watching
the workflow after N events of this execution) and `answer_delay=S` (answer the POST S
seconds late, so events race ahead of it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..protocol.log import get_logger
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


class PipelitError(ApiError):
    """FastAPI's error body: `{"detail": ...}`."""

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.message}, status_code=self.status, headers=self.headers)


def pipelit_key(server_key: str) -> str:
    """The emulator's Pipelit API key, derived from the server's key (and telling nothing of it)."""
    return "pk-" + hmac.new(server_key.encode(), b"pipelit", hashlib.sha256).hexdigest()[:32]


_pipelit_errors = answering_as(PipelitError)


def _iso(stamp: str | None) -> str | None:
    return stamp.replace("Z", "") if stamp else None  # Pipelit writes naive UTC times


class Socket:
    """One client's WebSocket: its channels, and a bounded queue its own sender drains."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
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
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
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
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PipelitError(422, "VALIDATION_ERROR", "text: Field required (a non-empty string)")
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
            "is_active": True, "is_public": False, "is_default": False, "tags": [], "node_count": len(nodes),
            "edge_count": max(len(nodes) - 1, 0), "created_at": "2025-01-15T10:30:00",
            "updated_at": "2025-01-15T10:30:00", "nodes": nodes,
            "edges": edges_of(app, voice)}, fault)

    @_pipelit_errors
    async def history(request: Request) -> Response:
        authorize(request)
        fault = emu.fault(request)
        app = workflow(request)
        raw = request.query_params.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise PipelitError(422, "VALIDATION_ERROR", "limit: must be a whole number from 1 to 1000")
        before = request.query_params.get("before")
        if before:
            check_text(before, "before")
            try:
                datetime.fromisoformat(before)
            except ValueError:
                raise PipelitError(422, "VALIDATION_ERROR", "before: not an ISO datetime") from None
        conv_id = conversation(app)
        items: list[dict[str, Any]] = []
        for message in emu.store.messages(conv_id) if conv_id else []:
            query = message["query"]
            items.append({"role": "user", "text": query if isinstance(query, str) else json.dumps(query),
                          "timestamp": _iso(message["createdAt"])})
            if message["answer"] and message["status"] == "succeeded":
                items.append({"role": "assistant", "text": message["answer"],
                              "timestamp": _iso(message["updatedAt"])})
        if before:
            items = [i for i in items if i["timestamp"] and i["timestamp"] < before]
        page = items[-int(raw):]
        return emu.answer({"messages": page, "thread_id": f"1:{workflow_ids[app.slug]}",
                           "has_more": len(items) > len(page)}, fault)

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
        results = emu.store.node_results(message["executionId"]) if message.get("executionId") else []
        error = next((r for r in results if r["status"] == "failed"), None)
        slug = next((a.slug for a in emu.apps.values() if a.id == (emu.store.get_conversation(
            message["conversationId"]) or {}).get("appId")), None)
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
                               "error": r["error"] or "", "error_code": None, "metadata": {}}
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
            sockets.publish(f"workflow:{slug}", json.dumps({
                "type": "execution_cancelled", "channel": f"workflow:{slug}", "timestamp": time.time(),
                "data": {"execution_id": message["id"]}}))
        return emu.answer(record(message, False), fault)

    async def socket(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), key.encode()):
            await websocket.close(code=1008, reason="Invalid or missing token")  # before accept: HTTP 403
            return
        await websocket.accept()
        conn = Socket(websocket)
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
        Route(f"{PREFIX}/executions/{{execution_id}}/", execution, methods=["GET"]),
        Route(f"{PREFIX}/executions/{{execution_id}}/cancel/", cancel, methods=["POST"]),
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
            conn.offer(json.dumps({"type": "error", "message": "not JSON"}))
            continue
        if not isinstance(message, dict):
            continue
        kind, channel = message.get("type"), message.get("channel")
        if kind in ("subscribe", "unsubscribe") and isinstance(channel, str) and len(channel) <= 200:
            if kind == "subscribe":
                conn.channels.add(channel)
            else:
                conn.channels.discard(channel)
            conn.offer(json.dumps({"type": f"{kind}d", "channel": channel}))
