"""A replay server: what a real server sent, served back over loopback from its recording.

Each file under tests/peers/<system>/ is one scenario recorded against the real server (see the
README beside them). `ReplayServer(path)` answers the client's requests with the recorded
exchanges, streams each recorded SSE stream with its events in order and its gaps compressed
(`speed`), and plays the recorded WebSocket frames to subscribed sockets after the HTTP exchange
they followed, so a test runs our real client, model and widget against what the real server
did, with no mock in between.

Matching: a request takes the first unserved exchange with its method and path (the query
compared as a set of pairs; an exchange whose query differs is taken only when no exact one is
left), and, where the recording sent a different Authorization header (a bad key), only a
request with that same header. A request the recording does not hold is answered 404 (marked
`x-replay: unmatched`, so no client retries it) and kept in `unmatched`, so a test can say what
the client asked that the real server was never asked.
Written by hand: no library replays a mixed HTTP/SSE/WebSocket capture as a live server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PEERS = Path(__file__).resolve().parent
KEY = "<KEY>"  # every key in the recordings was replaced by this; tests use it as theirs
MAX_GAP = 2.0  # seconds: no compressed gap is longer (a 300 s silence becomes 2 s, still a silence)


def recording(system: str, name: str) -> Path:
    return PEERS / system / f"{name}.jsonl"


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Stream:
    """The SSE events of one recorded streaming answer, with when each came (scenario seconds)."""

    events: list[tuple[float, str]] = field(default_factory=list)
    end: str | None = None  # "eof": the server closed; "client_closed": it was still open
    end_t: float = 0.0


@dataclass
class Exchange:
    index: int
    line: dict[str, Any]
    stream: Stream | None = None
    served: bool = False

    @property
    def method(self) -> str:
        return str(self.line["method"])

    @property
    def path(self) -> str:
        return urlsplit(self.line["path"]).path

    @property
    def query(self) -> set[tuple[str, str]]:
        return set(parse_qsl(urlsplit(self.line["path"]).query, keep_blank_values=True))

    @property
    def authorization(self) -> str | None:
        headers = self.line.get("request_headers") or {}
        return headers.get("Authorization")


def load(path: Path) -> tuple[list[Exchange], list[dict[str, Any]]]:
    """The exchanges (each streaming one with its events) and the WebSocket lines, in order."""
    exchanges: list[Exchange] = []
    ws: list[dict[str, Any]] = []
    open_streams: list[Exchange] = []
    for line in lines_of(path):
        kind = line["kind"]
        if kind == "http":
            exchange = Exchange(len(exchanges), line)
            if line["response"] is None and "event-stream" in str(line["headers"].get("content-type", "")):
                exchange.stream = Stream()
                open_streams.append(exchange)
            exchanges.append(exchange)
        elif kind == "sse":
            # Two streams open at once (a snapshot stream and a live one) both receive the same
            # events: a ping goes to the newest stream, an event to the oldest that lacks it.
            raw = line["raw"]
            target = open_streams[-1]
            if not raw.startswith("event: ping"):
                target = next((e for e in open_streams if e.stream and (line["t"], raw) not in e.stream.events
                               and raw not in {r for _, r in e.stream.events}), open_streams[-1])
            assert target.stream is not None
            target.stream.events.append((line["t"], raw))
        elif kind in ("eof", "client_closed"):
            done = open_streams.pop(0)
            assert done.stream is not None
            done.stream.end, done.stream.end_t = kind, line["t"]
        elif kind == "ws":
            line = dict(line)
            line["after"] = len(exchanges) - 1  # the exchange it followed: sent only once that is served
            ws.append(line)
    return exchanges, ws


class ReplayServer:
    """Serve one recording on 127.0.0.1 until closed. `speed`: how many times faster than recorded."""

    def __init__(self, path: Path, *, speed: float = 20.0, max_gap: float = MAX_GAP) -> None:
        self.path, self.speed, self.max_gap = path, speed, max_gap
        self.exchanges, self.ws_lines = load(path)
        self.unmatched: list[str] = []
        self.requests: list[str] = []
        self._served_at: dict[int, float] = {}
        self._sockets: set[WebSocket] = set()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        routes = [WebSocketRoute("/{path:path}", self._websocket),
                  Route("/{path:path}", self._http, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        self.app = Starlette(routes=routes)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gap(self, seconds: float) -> float:
        return min(max(seconds, 0.0) / self.speed, self.max_gap)

    # -- HTTP ------------------------------------------------------------------------------
    def _take(self, method: str, path: str, query: set[tuple[str, str]], auth: str | None) -> Exchange | None:
        with self._lock:
            candidates = [e for e in self.exchanges if not e.served and e.method == method and e.path == path
                          and (e.authorization in (None, f"Bearer {KEY}") or e.authorization == auth)]
            if auth not in (None, f"Bearer {KEY}"):
                candidates = [e for e in candidates if e.authorization == auth] or candidates
            exact = [e for e in candidates if e.query == query]
            chosen = (exact or candidates or [None])[0]
            if chosen is not None:
                chosen.served = True
                self._served_at[chosen.index] = asyncio.get_running_loop().time()
            return chosen

    async def _http(self, request: Request) -> Response:
        query = set(parse_qsl(request.url.query, keep_blank_values=True))
        label = f"{request.method} {request.url.path}{'?' + request.url.query if request.url.query else ''}"
        self.requests.append(label)
        exchange = self._take(request.method, request.url.path, query, request.headers.get("authorization"))
        if exchange is None:
            self.unmatched.append(label)
            return JSONResponse({"replay": f"the recording holds no {label}"}, status_code=404,
                                headers={"x-replay": "unmatched"})
        await request.body()
        line = exchange.line
        headers = {k: v for k, v in line["headers"].items()
                   if k in ("content-type", "location", "www-authenticate", "retry-after", "allow")}
        self._release_frames(exchange.index)
        if exchange.stream is not None:
            return StreamingResponse(self._events(exchange), status_code=line["status"], headers=headers)
        body = line["response"]
        if isinstance(body, str):
            content = body.encode()
        else:
            content = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        return Response(content, status_code=line["status"], headers=headers)

    async def _events(self, exchange: Exchange):  # type: ignore[no-untyped-def]
        assert exchange.stream is not None
        last = exchange.line.get("t_end", exchange.line["t"])
        for t, raw in exchange.stream.events:
            await asyncio.sleep(self.gap(t - last))
            last = t
            yield raw.encode()
        if exchange.stream.end == "client_closed":
            await asyncio.sleep(self.max_gap * 10)  # the real server had not closed: stay silent
        else:
            await asyncio.sleep(self.gap(exchange.stream.end_t - last))

    # -- WebSocket -------------------------------------------------------------------------
    def _release_frames(self, index: int) -> None:
        """Frames recorded after exchange `index` go out now, paced from its time."""
        frames = [w for w in self.ws_lines if w["after"] == index and w["dir"] == "recv"
                  and json.loads(w["frame"]).get("type") not in ("subscribed", "unsubscribed", "pong")]
        if frames:
            asyncio.get_running_loop().create_task(self._broadcast(self.exchanges[index].line["t"], frames))

    async def _broadcast(self, start: float, frames: list[dict[str, Any]]) -> None:
        last = start
        for frame in frames:
            await asyncio.sleep(self.gap(frame["t"] - last))
            last = frame["t"]
            for ws in list(self._sockets):
                try:
                    await ws.send_text(frame["frame"])
                except Exception:  # a socket the client closed meanwhile
                    self._sockets.discard(ws)

    async def _websocket(self, ws: WebSocket) -> None:
        if ws.url.path != "/ws/" or ws.query_params.get("token") != KEY:
            await ws.close(code=1008)  # refused at the handshake (Starlette answers 403), as recorded
            return
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                try:
                    message = json.loads(text)
                except ValueError:
                    continue  # the real server ignores a frame that is not JSON
                kind = message.get("type") if isinstance(message, dict) else None
                if kind in ("subscribe", "unsubscribe"):
                    self._sockets.add(ws)
                    await ws.send_text(json.dumps({"type": f"{kind}d", "channel": message.get("channel")},
                                                  separators=(",", ":")))
                elif kind == "ping":
                    await ws.send_text(json.dumps({"type": "pong"}))
        except WebSocketDisconnect:
            pass
        finally:
            self._sockets.discard(ws)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ReplayServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                               timeout_graceful_shutdown=1))
        self._server = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                                        name="replay-server", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the replay server failed to start")
            self._thread.join(0.01)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
