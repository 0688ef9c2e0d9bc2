"""The replay server itself: each recording, asked exactly what was asked of the real server,
answers exactly what the real server answered (statuses, bodies, every SSE event in order, the
WebSocket frames after the request they followed). The tests of what a user sees against these
recordings build on this."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from .peers.replay import KEY, PEERS, ReplayServer, load

RECORDINGS = sorted(PEERS.glob("*/*.jsonl"))


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_recording_asked_as_recorded_answers_as_recorded(path):
    with ReplayServer(path, speed=200, max_gap=0.05) as server, httpx.Client(base_url=server.origin, timeout=10) as http:
        for exchange in server.exchanges:
            line = exchange.line
            headers = dict(line.get("request_headers") or {})
            if "Authorization" not in headers:
                headers["Authorization"] = f"Bearer {KEY}"
            request = http.build_request(line["method"], line["path"], headers=headers,
                                         json=line["request"] if line["request"] is not None else None)
            response = http.send(request, stream=exchange.stream is not None)
            assert response.status_code == line["status"], line["path"]
            if exchange.stream is not None:
                if exchange.stream.end == "client_closed":
                    response.close()  # the real server never closed it either
                    continue
                body = response.read().decode()
                assert body == "".join(raw for _, raw in exchange.stream.events)
            elif isinstance(line["response"], str):
                assert response.text == line["response"]
            else:
                assert response.json() == line["response"]
        assert server.unmatched == []
        assert all(e.served for e in server.exchanges)


def test_a_request_the_recording_never_saw_is_a_marked_404_and_counted():
    with ReplayServer(PEERS / "dify" / "paging.jsonl") as server, httpx.Client(base_url=server.origin) as http:
        response = http.get("/v1/no-such-thing")
        assert response.status_code == 404 and response.headers["x-replay"] == "unmatched"
        assert server.unmatched == ["GET /v1/no-such-thing"]


def test_recorded_frames_reach_a_subscribed_socket_after_the_request_they_followed():
    path = PEERS / "pipelit" / "tool-turn.jsonl"
    _, ws_lines = load(path)
    recorded = [json.loads(w["frame"]) for w in ws_lines if w["dir"] == "recv"
                and json.loads(w["frame"])["type"] not in ("subscribed",)]
    with ReplayServer(path, speed=200, max_gap=0.05) as server:
        with ws_connect(f"ws://127.0.0.1:{server.port}/ws/?token={KEY}", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "subscribe", "channel": "workflow:agent-chat"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
            with httpx.Client(base_url=server.origin, headers={"Authorization": f"Bearer {KEY}"}) as http:
                http.delete("/api/v1/workflows/agent-chat/chat/history")
                http.post("/api/v1/workflows/agent-chat/chat/", json={"text": "Where is my order?"})
                got = [json.loads(ws.recv(timeout=5)) for _ in recorded]
        assert got == recorded
        assert got[-1]["type"] == "execution_completed"
    with ReplayServer(path) as server, pytest.raises(Exception, match="403"):
        ws_connect(f"ws://127.0.0.1:{server.port}/ws/?token=bogus", open_timeout=5)
