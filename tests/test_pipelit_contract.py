"""The Pipelit emulator against the real Pipelit 0.3.16 (tests/peers/pipelit): each scenario the
emulator can play is asked of both, the embedded server (fast: no frame spacing) and the replay
of the recording, over plain HTTP and a WebSocket, and the answers' shapes compared: field names
and JSON types, event order, statuses, history layout, execution records, error bodies and
headers, what a root URL and /health answer, and how the socket treats bad frames and keys.

What must differ, and is not compared: ids, times and counts, texts (the demo workflows are
not the recorded ones: their slugs, node ids and answers), and named here:
- node labels: the demo's workflow details carry names (real: `label: null`), for the graph;
- an agent's chat_message: the demo's agents say nothing before their tools, so one per turn
  (real: "Let me check." and the answer), and history keeps one assistant message per turn;
- cancel: the emulator never stops a run (real stops one cancelled before its first node; a
  run cancelled mid-node or while queued goes on, as here);
- `/` and paths outside /api/v1: the emulator's own (it serves four systems at one origin);
- the demo's agent workflow has a Reply node after the agent (real agent-chat has none), so
  its output is the reply's `{"output"}`, never `{"node_outputs"}`;
- pacing: frames `pipelit_frame_gap` apart (0 here, 0.05 s by default, as Pipelit), but not the
  up to 0.5 s Pipelit takes before the first frame on a fresh subscription."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from atomemo_notebook.server import LocalServer

from .peers.replay import KEY, ReplayServer, recording
from .peers.shapes import kind

ENDINGS = {"execution_completed", "execution_failed", "execution_cancelled"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # history's: microseconds and Z
WAIT = 10.0


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalServer]:
    with LocalServer(test_mode=True, chunk_delay=0, node_delay=0.01, pipelit_frame_gap=0) as server:
        yield server


def real(name: str) -> ReplayServer:
    return ReplayServer(recording("pipelit", name), speed=50, max_gap=0.6)


class Side:
    """One server as a client sees it: REST under /api/v1 and the one WebSocket."""

    def __init__(self, origin: str, key: str) -> None:
        self.origin, self.key = origin, key
        self.http = httpx.Client(base_url=origin + "/api/v1", headers={"Authorization": f"Bearer {key}"},
                                 timeout=15)
        # Entered by hand: the socket lives across the test's steps and is closed by close().
        self.ws: ClientConnection = connect(f"ws{origin[4:]}/ws/?token={key}", open_timeout=5).__enter__()

    def subscribe(self, slug: str) -> dict[str, Any]:
        self.ws.send(json.dumps({"type": "subscribe", "channel": f"workflow:{slug}"}))
        return json.loads(self.ws.recv(WAIT))  # type: ignore[no-any-return]

    def run(self, slug: str, text: str) -> tuple[str, list[dict[str, Any]]]:
        """POST a question and read the execution's frames to its end."""
        answer = self.http.post(f"/workflows/{slug}/chat/", json={"text": text})
        assert answer.status_code == 200, answer.text
        execution_id = answer.json()["execution_id"]
        return execution_id, self.frames(execution_id)

    def frames(self, execution_id: str, until: set[str] = ENDINGS) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            frame = json.loads(self.ws.recv(deadline - time.monotonic()))
            owner = frame.get("execution_id") or (frame.get("data") or {}).get("execution_id")
            if owner == execution_id:
                got.append(frame)
                if frame["type"] in until:
                    return got
        raise AssertionError(f"no end of {execution_id} within {WAIT} s: {[f['type'] for f in got]}")

    def close(self) -> None:
        self.ws.close()
        self.http.close()


def same_fields(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    """Same names; same JSON types where both say something (null is "not known now")."""
    assert set(ours) == set(theirs), (where, sorted(set(ours) ^ set(theirs)))
    for key in ours:
        a, b = kind(ours[key]), kind(theirs[key])
        assert a == b or "null" in (a, b), (where, key, a, b)


def key_of(frame: dict[str, Any]) -> str:
    data = frame.get("data") or {}
    if frame["type"] == "node_status":
        return f"node_status:{'tool:' if data.get('is_tool_call') else ''}{data.get('status')}"
    return str(frame["type"])


def same_frames(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """The first frame of each kind both sent has the same fields, in the envelope and in `data`
    (a kind's first: an agent's success comes before a reply node's, on both sides)."""
    first: dict[str, dict[str, Any]] = {}
    for frame in theirs:
        first.setdefault(key_of(frame), frame)
    mine: dict[str, dict[str, Any]] = {}
    for frame in ours:
        mine.setdefault(key_of(frame), frame)
    common = sorted(set(first) & set(mine))
    assert common, "no frame kind in common"
    for key in common:
        same_fields(mine[key], first[key], key)
        same_fields(mine[key].get("data") or {}, first[key].get("data") or {}, key + ".data")


def order(frames: list[dict[str, Any]]) -> list[str]:
    return [key_of(f) for f in frames]


# -- one turn of a workflow without an agent ------------------------------------------------------

def test_a_plain_turn_frames_record_and_empty_history(emulator):
    ours, theirs = Side(emulator.origin, emulator.pipelit_api_key), None
    with real("execution-record") as server:
        theirs = Side(server.origin, KEY)
        for side, slug in ((ours, "echo"), (theirs, "echo-chat")):
            assert side.subscribe(slug) == {"type": "subscribed", "channel": f"workflow:{slug}"}
        theirs.subscribe("code-chat")
        ours_id, ours_frames = ours.run("echo", "Hello, I need help with my order")
        their_id, their_frames = theirs.run("echo-chat", "Hello, I need help with my order")
        # The same order, event for event: the trigger never reported, the reply queued then run.
        assert order(ours_frames) == order(their_frames) == [
            "execution_started", "node_enqueued", "node_status:running", "node_status:success", "execution_completed"]
        same_frames(ours_frames, their_frames)
        for frames in (ours_frames, their_frames):
            assert set(frames[-1]["data"]["output"]) == {"output"}
            assert set(frames[3]["data"]["output"]) == {"output"}
        records = [side.http.get(f"/executions/{i}/").json() for side, i in ((ours, ours_id), (theirs, their_id))]
        same_fields(records[0], records[1], "record")
        assert records[0]["status"] == records[1]["status"] == "completed"
        assert records[0]["final_output"] == {"output": ours_frames[-1]["data"]["output"]["output"]}
        same_fields(records[0]["logs"][0], records[1]["logs"][0], "record.logs[0]")
        assert [log["status"] for log in records[0]["logs"]] == [log["status"] for log in records[1]["logs"]]
        # Lists: newest first, items without output or logs (the recording listed code-chat's).
        their_code, _ = theirs.run("code-chat", "Hello there")
        theirs.http.get(f"/executions/{their_code}/")
        listed = [ours.http.get("/executions/", params={"workflow_slug": "echo", "limit": 5}).json(),
                  theirs.http.get("/executions/", params={"workflow_slug": "code-chat", "limit": 5}).json()]
        assert [set(body) for body in listed] == [{"items", "total"}] * 2
        same_fields(listed[0]["items"][0], listed[1]["items"][0], "list item")
        # No conversation memory, no history.
        assert ours.http.get("/workflows/echo/chat/history", params={"limit": 20}).json()["messages"] == []
        assert theirs.http.get("/workflows/code-chat/chat/history", params={"limit": 20}).json()["messages"] == []
        unknown = [side.http.get("/executions/00000000-0000-0000-0000-000000000000/") for side in (ours, theirs)]
        assert [(r.status_code, r.json()) for r in unknown] == [(404, {"detail": "Execution not found."})] * 2
        theirs.close()
    ours.close()


# -- an agent's tool turn -------------------------------------------------------------------------

def test_an_agent_turn_usage_rides_on_its_status_and_history_shares_the_questions_time(emulator):
    ours = Side(emulator.origin, emulator.pipelit_api_key)
    ours.http.delete("/workflows/agent/chat/history")
    with real("tool-turn") as server:
        theirs = Side(server.origin, KEY)
        theirs.http.delete("/workflows/agent-chat/chat/history")
        ours.subscribe("agent")
        theirs.subscribe("agent-chat")
        ours_id, ours_frames = ours.run("agent", "Where is order 1042? I'm in Berlin.")
        their_id, their_frames = theirs.run("agent-chat", "Where is my order?")
        same_frames(ours_frames, their_frames)
        for frames in (ours_frames, their_frames):
            names = [f["type"] for f in frames]
            assert names[0] == "execution_started" and names[-1] == "execution_completed"
            assert "token_usage" not in names  # usage rides on the agent's success status
            agent_done = next(f for f in frames if key_of(f) == "node_status:success"
                              and f["data"]["component_type"] == "agent")
            assert set(agent_done["data"]["token_usage"]) == {"input_tokens", "output_tokens", "total_tokens",
                                                              "llm_calls", "cost_usd", "tool_invocations"}
            assert set(agent_done["data"]["output"]) == {"output"}
            assert all(f["data"]["node_id"] != "trigger_chat_1" and "trigger" not in f["data"]["node_id"]
                       for f in frames if f["type"] in ("node_status", "node_enqueued"))
            # Each node queued once, before it runs; a tool call is never queued.
            queued = [f["data"]["node_id"] for f in frames if f["type"] == "node_enqueued"]
            assert len(queued) == len(set(queued))
        histories = [ours.http.get("/workflows/agent/chat/history", params={"limit": 20}).json(),
                     theirs.http.get("/workflows/agent-chat/chat/history", params={"limit": 20}).json()]
        same_fields(histories[0], histories[1], "history")
        for body in histories:
            messages = body["messages"]
            assert messages[0]["role"] == "user" and messages[-1]["role"] == "assistant"
            assert all(set(m) == {"role", "text", "timestamp"} and STAMP.match(m["timestamp"]) for m in messages)
            assert len({m["timestamp"] for m in messages}) == 1  # the turn carries its question's time
        # Named: real stores "Let me check." too (three messages); the demo's agent says one.
        assert [len(b["messages"]) for b in histories] == [2, 3]
        assert histories[0]["messages"][-1]["text"] == ours_frames[-1]["data"]["output"]["output"]
        records = [ours.http.get(f"/executions/{ours_id}/").json(), theirs.http.get(f"/executions/{their_id}/").json()]
        same_fields(records[0], records[1], "record")
        theirs.close()
    ours.close()


# -- a failing node ---------------------------------------------------------------------------------

def test_a_failing_node_is_queued_once_retried_and_the_execution_fails_with_the_last_error(emulator):
    ours = Side(emulator.origin, emulator.pipelit_api_key)
    with real("failing-node-retries") as server:
        theirs = Side(server.origin, KEY)
        ours.subscribe("flaky")
        theirs.subscribe("code-fail")
        ours_id, ours_frames = ours.run("flaky", "please fail")
        their_id, their_frames = theirs.run("code-fail", "Please fail")
        same_frames(ours_frames, their_frames)
        for frames in (ours_frames, their_frames):
            failed = [f for f in frames if key_of(f) == "node_status:failed"]
            assert len(failed) >= 2 and {f["data"]["error_code"] for f in failed} == {"RuntimeError"}
            retried = failed[0]["data"]["node_id"]
            assert [f["data"]["node_id"] for f in frames if f["type"] == "node_enqueued"].count(retried) == 1
            assert frames[-1]["type"] == "execution_failed" and set(frames[-1]["data"]) == {"error"}
            assert frames[-1]["data"]["error"] == failed[-1]["data"]["error"]  # the last attempt's
        records = [ours.http.get(f"/executions/{ours_id}/").json(), theirs.http.get(f"/executions/{their_id}/").json()]
        same_fields(records[0], records[1], "record")
        for record in records:
            assert record["status"] == "failed" and record["final_output"] is None
            assert record["error_message"].startswith("Node ")
        # A failed turn leaves no history (the flaky workflow has no agent either).
        assert ours.http.get("/workflows/flaky/chat/history").json()["messages"] == []
        assert theirs.http.get("/workflows/code-fail/chat/history", params={"limit": 20}).json()["messages"] == []
        theirs.close()
    ours.close()


# -- cancel ---------------------------------------------------------------------------------------------

def test_a_cancel_answers_the_record_broadcasts_and_the_run_goes_on(emulator):
    slow = LocalServer(test_mode=True, chunk_delay=0, node_delay=0.4, pipelit_frame_gap=0).start()
    ours = Side(slow.origin, slow.pipelit_api_key)
    try:
        with real("cancel") as server:
            theirs = Side(server.origin, KEY)
            ours.subscribe("echo")
            theirs.subscribe("slow-chat")
            cancelled: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
            for side, slug in ((ours, "echo"), (theirs, "slow-chat")):
                execution_id = side.http.post(f"/workflows/{slug}/chat/", json={"text": "Take your time"}).json()[
                    "execution_id"]
                side.frames(execution_id, until={"node_status"})  # a node runs
                answer = side.http.post(f"/executions/{execution_id}/cancel/")
                assert answer.status_code == 200
                side.http.get(f"/executions/{execution_id}/")  # as recorded: releases the later frames
                cancelled.append((answer.json(), side.frames(execution_id, until={"execution_completed"})))
            (ours_answer, ours_frames), (their_answer, their_frames) = cancelled
            same_fields(ours_answer, their_answer, "cancel answer")
            assert ours_answer["status"] == their_answer["status"] == "cancelled"
            for frames in (ours_frames, their_frames):
                note = next(f for f in frames if f["type"] == "execution_cancelled")
                assert set(note) == {"type", "channel", "timestamp", "data"} and set(note["data"]) == {"execution_id"}
                assert frames[-1]["type"] == "execution_completed"  # it went on
            missing = [side.http.post("/executions/00000000-0000-0000-0000-000000000000/cancel/")
                       for side in (ours, theirs)]
            assert [(r.status_code, r.json()) for r in missing] == [(404, {"detail": "Execution not found."})] * 2
            theirs.close()
    finally:
        ours.close()
        slow.stop()


# -- errors, keys, roots, the socket --------------------------------------------------------------------

def test_errors_keys_validation_roots_and_the_socket(emulator):
    ours = Side(emulator.origin, emulator.pipelit_api_key)
    with real("base-urls") as server:
        theirs = Side(server.origin, KEY)
        pairs = ((ours, "echo", "agent"), (theirs, "echo-chat", "agent-chat"))

        def both(method: str, path: str, **kwargs: Any) -> list[httpx.Response]:
            return [side.http.request(method, path.format(slug=slug, agent=agent), **kwargs)
                    for side, slug, agent in pairs]

        def shape(response: httpx.Response) -> tuple[int, Any]:
            return response.status_code, response.json()

        health = [httpx.get(side.origin + "/health") for side in (ours, theirs)]
        assert [shape(r) for r in health] == [(200, {"status": "ok", "version": "0.3.16", "redis": True,
                                                     "database": True})] * 2
        roots = [httpx.get(side.origin + "/api/v1/") for side in (ours, theirs)]
        assert [shape(r) for r in roots] == [(404, {"detail": "Not Found"})] * 2
        assert [shape(r) for r in both("GET", "/workflows/no-such-wf/")] == [(404, {"detail": "Workflow not found."})] * 2
        assert [shape(r) for r in both("POST", "/workflows/no-such-wf/chat/", json={"text": "hi"})] == [
            (404, {"detail": "Workflow not found."})] * 2
        empty = both("POST", "/workflows/{slug}/chat/", json={"text": ""})  # accepted: the run happens
        assert [r.status_code for r in empty] == [200, 200] and all("execution_id" in r.json() for r in empty)
        missing = both("POST", "/workflows/{slug}/chat/", json={})
        assert [r.status_code for r in missing] == [422, 422]
        for r in missing:
            (problem,) = r.json()["detail"]
            assert (problem["type"], problem["loc"], problem["msg"]) == ("missing", ["body", "text"], "Field required")
        trigger = both("POST", "/workflows/{slug}/chat/", json={"text": "hi", "trigger_node_id": "nope"})
        assert [shape(r) for r in trigger] == [(404, {"detail": "No chat trigger found."})] * 2
        bad_limit = both("GET", "/workflows/{slug}/chat/history", params={"limit": "abc"})
        assert [r.status_code for r in bad_limit] == [422, 422]
        assert {r.json()["detail"][0]["type"] for r in bad_limit} == {"int_parsing"}
        # `before` is read only where there is history: a 400 on the agent, a 200 elsewhere.
        assert [r.status_code for r in both("GET", "/workflows/{slug}/chat/history",
                                            params={"before": "yesterday"})] == [200, 200]
        ours.subscribe("agent")
        ours.run("agent", "remember me")  # to its end: the agent's memory then holds the turn
        bad_before = both("GET", "/workflows/{agent}/chat/history", params={"before": "yesterday"})
        assert [shape(r) for r in bad_before] == [(400, {"detail": "Invalid 'before' datetime format. Use ISO 8601 "
                                                                   "(e.g. 2026-01-01T00:00:00Z)."})] * 2
        every = both("GET", "/workflows/{agent}/chat/history", params={"limit": "0"})
        assert [r.status_code for r in every] == [200, 200] and all(r.json()["has_more"] for r in every)
        # Keys: a wrong one is refused; none, or another scheme, is "Not authenticated" with the header.
        for scheme, detail, challenge in (("Bearer bogus-key", "Invalid or missing API key.", None),
                                          ("", "Not authenticated", "Bearer"),
                                          ("Token {key}", "Not authenticated", "Bearer")):
            for side, slug, _ in pairs:
                r = httpx.get(f"{side.origin}/api/v1/workflows/{slug}/",
                              headers={"Authorization": scheme.format(key=side.key)})
                assert (r.status_code, r.json(), r.headers.get("www-authenticate")) == (
                    401, {"detail": detail}, challenge), (side.origin, scheme)
        # The socket: a bad token, no token and a wrong path are refused at the handshake with 403.
        for side in (ours, theirs):
            for url in (f"ws{side.origin[4:]}/ws/?token=bogus", f"ws{side.origin[4:]}/ws/",
                        f"ws{side.origin[4:]}/api/v1/ws/?token={side.key}"):
                with pytest.raises(InvalidStatus) as refused:
                    connect(url, open_timeout=5).close()
                assert refused.value.response.status_code == 403
        # On an open socket: an unknown workflow is confirmed; junk gets no answer; unsubscribe is confirmed.
        for side in (ours, theirs):
            assert side.subscribe("no-such-wf")["type"] == "subscribed"
            side.ws.send(json.dumps({"type": "hello"}))
            side.ws.send("not json")
            side.ws.send(json.dumps({"type": "unsubscribe", "channel": "workflow:no-such-wf"}))
            assert json.loads(side.ws.recv(WAIT)) == {"type": "unsubscribed", "channel": "workflow:no-such-wf"}
        theirs.close()
    ours.close()
