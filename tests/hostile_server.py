"""A loopback server that speaks just enough of the four systems to hand a client hostile
JSON: each ask's node outputs (Atomemo, Dify, Pipelit) or answer steps (OdysseyAI) are the
`payload` text, `count` times, with a normal answer text around them. Real HTTP (and a real
WebSocket for Pipelit) over 127.0.0.1; the payload is spliced in as text, never parsed here.

Shared by tests/test_memory_bound.py and bench/memory_ceiling.py."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import atomemo_notebook as an
from atomemo_notebook.protocol._limits import Limits

SYSTEMS = ("atomemo", "dify", "pipelit", "odyssey")
ANSWER = "the answer, whole"
KEY = "sk-hostile-test"
CHUNK = 1 << 20  # bytes per write of a streamed body
HOLE = "\u0000payload\u0000"  # where the payload's text goes in a frame


def shape(kind: str, size: int) -> str:
    """About `size` characters of one JSON value of the kind a hostile server sends."""
    if kind == "objects":  # many empty objects: ~50x their wire size once parsed
        return "[" + ",".join(["{}"] * max(1, size // 3)) + "]"
    if kind == "arrays":
        return "[" + ",".join(["[]"] * max(1, size // 3)) + "]"
    if kind == "numbers":
        return "[" + ",".join(str(100_000 + i) for i in range(max(1, size // 7))) + "]"
    if kind == "wide":  # one object with many distinct keys
        return "{" + ",".join(f'"k{i}":{i}' for i in range(max(1, size // 12))) + "}"
    if kind == "string":
        return '"' + "x" * max(1, size - 2) + '"'
    if kind == "strings":  # many short distinct strings
        return "[" + ",".join(f'"s{i}"' for i in range(max(1, size // 9))) + "]"
    if kind == "deep":  # nested past any recursion limit
        depth = max(1, size // 2)
        return "[" * depth + "]" * depth
    if kind == "mixed":
        part = max(16, size // 4)
        return ('{"objects":' + shape("objects", part) + ',"text":' + shape("string", part) +
                ',"wide":' + shape("wide", part) + ',"nested":{"a":{"b":' + shape("numbers", part) + "}}}")
    raise ValueError(f"unknown shape {kind!r}")


SHAPES = ("objects", "arrays", "numbers", "wide", "string", "strings", "deep", "mixed")


class HostileServer:
    """`with HostileServer() as srv: srv.payload = shape("objects", 1 << 20); chat = srv.chat("dify")`."""

    def __init__(self) -> None:
        self.payload = "{}"
        self.count = 1
        self.answer = ANSWER
        self._sockets: set[WebSocket] = set()
        self._runs = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    # -- what each system sends ----------------------------------------------------------------
    def _frame(self, skeleton: dict[str, Any]) -> str:
        """The skeleton as JSON text, each HOLE replaced by the payload's text."""
        return json.dumps(skeleton, separators=(",", ":")).replace(json.dumps(HOLE), self.payload)

    def _atomemo(self) -> Iterator[str]:
        self._runs += 1
        run = self._runs

        def event(name: str, kind: str, **resource: Any) -> str:
            return self._frame({"event": name, "data": {"resource_type": kind, "resource": resource}})

        yield self._frame({"event": "message_created", "data": {"message_id": f"m{run}", "conversation_id": "c1"}})
        yield event("execution_started", "execution", id=f"x{run}", status="running")
        for i in range(self.count):
            yield event("node_started", "node_result", id=f"r{i}", node_id=f"n{i}", status="running")
            yield event("tool_call_started", "tool_call", id=f"t{i}", node_id=f"n{i}", tool_name="big", args=HOLE)
            yield event("tool_response", "tool_call", id=f"t{i}", node_id=f"n{i}", tool_name="big", result=HOLE)
            yield event("node_finished", "node_result", id=f"r{i}", node_id=f"n{i}", status="succeeded",
                        json_output=HOLE, out_ports=[0])
        yield self._frame({"event": "chat_message", "data": {"text": self.answer}})
        yield event("execution_finished", "execution", id=f"x{run}", status="succeeded")

    def _dify(self) -> Iterator[str]:
        self._runs += 1
        run = self._runs
        ids = {"task_id": f"t{run}", "workflow_run_id": f"w{run}", "message_id": f"m{run}", "conversation_id": "c1"}
        yield self._frame({"event": "workflow_started", **ids, "data": {"id": f"w{run}"}})
        for i in range(self.count):
            yield self._frame({"event": "node_started", **ids, "data": {"id": f"r{i}", "node_id": f"n{i}",
                                                                       "title": "big", "node_type": "code",
                                                                       "inputs": HOLE}})
            yield self._frame({"event": "node_finished", **ids, "data": {"id": f"r{i}", "node_id": f"n{i}",
                                                                        "status": "succeeded", "outputs": HOLE,
                                                                        "process_data": HOLE}})
        yield self._frame({"event": "message", **ids, "answer": self.answer})
        yield self._frame({"event": "message_end", **ids, "metadata": {}})
        yield self._frame({"event": "workflow_finished", **ids, "data": {"id": f"w{run}", "status": "succeeded"}})

    def _pipelit(self, execution: str) -> Iterator[str]:
        env = {"execution_id": execution, "channel": "workflow:big", "timestamp": "2024-01-01T00:00:00Z"}
        yield self._frame({"type": "execution_started", **env, "data": {"workflow_id": "big"}})
        for i in range(self.count):
            yield self._frame({"type": "node_status", **env, "data": {"node_id": f"n{i}", "status": "running"}})
            yield self._frame({"type": "node_status", **env, "data": {"node_id": f"n{i}", "status": "success",
                                                                      "output": HOLE}})
        yield self._frame({"type": "execution_completed", **env, "data": {"output": {"message": self.answer}}})

    def _odyssey(self) -> str:
        steps: list[dict[str, Any]] = [{"agentname": "root", "type": "tool", "step_id": f"s{i}", "content": HOLE}
                                       for i in range(self.count)]
        steps.append({"agentname": "root", "type": "answer", "step_id": "end", "content": self.answer})
        return self._frame({"data": {"id": "a1", "rootAgentName": "root", "sourceSnips": [],
                                     "stepsBreakdown": steps}})

    # -- routes -----------------------------------------------------------------------------------
    def _sse(self, frames: Iterator[str]) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for frame in frames:
                data = ("data: " + frame + "\n\n").encode()
                for start in range(0, len(data), CHUNK):
                    yield data[start:start + CHUNK]

        return StreamingResponse(body(), media_type="text/event-stream")

    def app(self) -> Starlette:
        async def atomemo(request: Request) -> Response:
            return self._sse(self._atomemo())

        async def dify(request: Request) -> Response:
            return self._sse(self._dify())

        async def odyssey(request: Request) -> Response:
            return Response(self._odyssey().encode(), media_type="application/json")

        async def pipelit_chat(request: Request) -> Response:
            self._runs += 1
            execution = f"e{self._runs}"
            asyncio.get_running_loop().create_task(self._broadcast(execution))
            return JSONResponse({"execution_id": execution, "status": "pending"})

        async def pipelit_history(request: Request) -> Response:
            return JSONResponse({"messages": [], "has_more": False})

        async def socket_route(ws: WebSocket) -> None:
            await ws.accept()
            self._sockets.add(ws)
            try:
                while True:
                    message = await ws.receive_json()
                    if message.get("type") == "subscribe":
                        await ws.send_json({"type": "subscribed", "channel": message.get("channel")})
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                self._sockets.discard(ws)

        async def missing(request: Request) -> Response:
            return JSONResponse({"code": "not_found", "message": "not here"}, status_code=404)

        return Starlette(routes=[
            Route("/atomemo/chat/messages", atomemo, methods=["POST"]),
            Route("/dify/chat-messages", dify, methods=["POST"]),
            Route("/odyssey/api/chat/message", odyssey, methods=["POST"]),
            Route("/pipelit/workflows/big/chat/", pipelit_chat, methods=["POST"]),
            Route("/pipelit/workflows/big/chat/history", pipelit_history, methods=["GET"]),
            WebSocketRoute("/ws/", socket_route),
            Route("/{rest:path}", missing, methods=["GET", "POST"]),
        ])

    async def _broadcast(self, execution: str) -> None:
        await asyncio.sleep(0.05)  # the POST's answer first: the client watches from it
        for frame in self._pipelit(execution):
            for ws in list(self._sockets):
                try:
                    await ws.send_text(frame)
                except (RuntimeError, OSError):
                    self._sockets.discard(ws)

    # -- clients of each system -------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, system: str, limits: Limits | None = None) -> Any:
        return client_for(self.origin, system, limits)

    def chat(self, system: str, limits: Limits | None = None) -> an.Chat:
        return chat_for(self.origin, system, limits)

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> HostileServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", ws_max_size=1 << 30,
                                timeout_graceful_shutdown=1)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                                        name="hostile-server", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the hostile server failed to start")
            self._thread.join(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()


def one_stream_server(body: bytes, route: bytes) -> tuple[str, threading.Thread]:
    """One stream written by hand on a raw socket, exactly as given: every request answered `{}`
    (the app's description, its parameters) until a POST to `route`, which gets `body` as an
    event stream; then the server is gone. Returns the base URL (`.../v1`) and its thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        streamed = False
        with listener:
            while not streamed:
                conn, _ = listener.accept()
                with conn:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += conn.recv(65536)
                    head, _, rest = request.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    if head.startswith(b"POST ") and route in head.split(b"\r\n")[0]:
                        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                     b"connection: close\r\n\r\n" + body)
                        streamed = True
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: 2\r\nconnection: close\r\n\r\n{}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", thread


def client_for(origin: str, system: str, limits: Limits | None = None) -> Any:
    """A client of `system` for the hostile server at `origin`."""
    # OdysseyAI's base URL is its API root (`.../api`), as a server's root would become.
    base = f"{origin}/odyssey/api" if system == "odyssey" else f"{origin}/{system}"
    options: dict[str, Any] = {"base_url": base, "max_retries": 0, "timeout": 120.0,
                               "limits": limits}
    if system == "atomemo":
        return an.Client(KEY, **options)
    if system == "dify":
        return an.DifyClient(KEY, **options)
    if system == "pipelit":
        return an.PipelitClient(KEY, execution_timeout=120.0, **options)
    if system == "odyssey":
        return an.OdysseyClient(KEY, answer_timeout=120.0, **options)
    raise ValueError(f"unknown system {system!r}")


def chat_for(origin: str, system: str, limits: Limits | None = None) -> an.Chat:
    """A chat (owning its client) with the hostile server at `origin`."""
    where: dict[str, Any] = {"atomemo": {"app_id": "a1", "trigger_id": "t1"}, "dify": {},
                             "pipelit": {"workflow": "big"}, "odyssey": {"workspace_id": "w1"}}[system]
    chat = an.Chat(client_for(origin, system, limits), user_id="hostile", **where)
    chat.owns_client = True
    return chat


def main() -> None:
    """`python -m tests.hostile_server SHAPE CHARS COUNT`: serve until stdin closes, after
    printing {"origin": ...} (the benches run the server in a process of its own)."""
    import sys

    kind, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with HostileServer() as srv:
        srv.payload, srv.count = shape(kind, size), count
        print(json.dumps({"origin": srv.origin}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
