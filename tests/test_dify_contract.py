"""The Dify emulator against the real Dify 1.13.2 (tests/peers/dify): each scenario the
emulator can play is asked of both, the embedded server and the replay of the recording, over
plain HTTP, and the answers' shapes compared: field names and JSON types, event order,
statuses, history layout, error bodies and headers, the root URLs, keep-alives.

What must differ, and is not compared: ids, times and counts, the answers' texts and how they
are chunked (the demo apps are not the recorded apps), node names and types, and the demo's
app names. `/` is the emulator's own index (it serves four systems at one origin)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from atomemo_notebook.server import LocalServer

from .peers.replay import KEY, ReplayServer, recording
from .peers.shapes import kind

NIL = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalServer]:
    # Dify's 10 s pings and 1 s close, shortened; nodes slow enough for pings to fall inside them.
    with LocalServer(test_mode=True, chunk_size=6, chunk_delay=0, node_delay=0.35, dify_ping_interval=0.1,
                     dify_close_delay=0.05, dify_unknown_close=0.6) as server:
        yield server


def real(name: str) -> ReplayServer:
    return ReplayServer(recording("dify", name), speed=50, max_gap=0.6)


def http_for(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=15)


def fields(value: dict[str, Any]) -> dict[str, str]:
    return {k: kind(v) for k, v in value.items()}


def same_fields(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    """Same names; same JSON types where both say something (null is "not known now")."""
    assert set(ours) == set(theirs), (where, sorted(set(ours) ^ set(theirs)))
    for key in ours:
        a, b = kind(ours[key]), kind(theirs[key])
        assert a == b or "null" in (a, b), (where, key, a, b)


def sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The stream as (name, frame) pairs, keep-alives included, read to the server's close."""
    out: list[tuple[str, dict[str, Any]]] = []
    for block in response.read().decode().split("\n\n"):
        if block.startswith("event: ping"):
            out.append(("ping", {}))
        elif block.startswith("data: "):
            frame = json.loads(block[len("data: "):])
            out.append((frame["event"], frame))
    return out


def stream(http: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    with http.stream("POST", "/chat-messages", json=body | {"response_mode": "streaming"}) as response:
        return response, sse(response)


def same_events(ours: list[tuple[str, dict[str, Any]]], theirs: list[tuple[str, dict[str, Any]]]) -> None:
    first: dict[str, dict[str, Any]] = {}
    for name, frame in theirs:
        first.setdefault(name, frame)
    for name, frame in ours:
        if name in first and name != "ping":
            same_fields(frame, first[name], name)
            if isinstance(frame.get("data"), dict):
                same_fields(frame["data"], first[name]["data"], f"{name}.data")


def skeleton(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The order that must hold: a ping first, workflow_started, then how it ends."""
    names = [n for n, _ in events]
    return [names[0], next(n for n in names if n != "ping"), *names[-2:]]


def read_until_silent(response: httpx.Response) -> bytes:
    """What a stream sends before it stays silent for its read timeout."""
    got = b""
    try:
        for chunk in response.iter_raw():
            got += chunk
    except httpx.ReadTimeout:
        return got
    raise AssertionError(f"the stream closed instead of staying silent, after {got!r}")


def emulator_http(server: LocalServer, slug: str = "echo") -> httpx.Client:
    return http_for(server.dify_base_url, server.app(slug)["dify_api_key"])


def two_turns(http: httpx.Client, user: str) -> dict[str, Any]:
    response, first = stream(http, {"query": "hello there", "user": user, "inputs": {}, "conversation_id": ""})
    conv = first[1][1]["conversation_id"]
    _, second = stream(http, {"query": "and a second question", "user": user, "inputs": {}, "conversation_id": conv})
    return {"response": response, "turns": (first, second),
            "history": http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 20}).json(),
            "foreign": http.get("/messages", params={"conversation_id": conv, "user": "someone-else", "limit": 20})}


def test_two_turns_and_the_history(emulator):
    with real("chatflow-two-turns") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator) as ours:
        r, o = two_turns(theirs, "rec-user-1"), two_turns(ours, "contract-two")
        assert o["response"].headers["content-type"].split(";")[0] == r["response"].headers["content-type"].split(";")[0]
        for o_turn, r_turn in zip(o["turns"], r["turns"], strict=True):
            assert skeleton(o_turn) == skeleton(r_turn) == ["ping", "workflow_started", "message_end", "workflow_finished"]
            same_events(o_turn, r_turn)
            assert [f["data"]["reason"] for n, f in o_turn if n == "workflow_started"] == ["initial"]
        same_fields(o["history"], r["history"], "messages page")
        for item_o, item_r in zip(o["history"]["data"], r["history"]["data"], strict=True):
            same_fields(item_o, item_r, "message")
            assert item_o["parent_message_id"] == item_r["parent_message_id"] == NIL
            assert item_o["status"] == item_r["status"] == "normal"
            assert item_o["extra_contents"] == item_r["extra_contents"] == []
        # Another user's view: Dify's 404 with Flask's suffix, word for word.
        assert o["foreign"].status_code == r["foreign"].status_code == 404
        assert o["foreign"].json() == r["foreign"].json()


def test_a_failing_node(emulator):
    with real("failing-node") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator, "flaky") as ours:
        _, r_events = stream(theirs, {"query": "call the broken service", "user": "rec-user-6", "inputs": {},
                                      "conversation_id": ""})
        _, o_events = stream(ours, {"query": "Check the inventory and fail", "user": "contract-fail", "inputs": {}})
        for events in (o_events, r_events):
            names = [n for n, _ in events]
            assert "error" not in names and "message_end" not in names  # Dify 1.13 sends neither
            assert names[0] == "ping" and names[-1] == "workflow_finished"
            assert events[-1][1]["data"]["status"] == "failed" and events[-1][1]["data"]["error"]
        same_events(o_events, r_events)
        pages = []
        for http, events, user in ((theirs, r_events, "rec-user-6"), (ours, o_events, "contract-fail")):
            conv = events[-1][1]["conversation_id"]
            pages.append(http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 20}).json())
        r_item, o_item = pages[0]["data"][0], pages[1]["data"][0]
        same_fields(o_item, r_item, "failed message")
        assert (o_item["status"], o_item["answer"]) == (r_item["status"], r_item["answer"]) == ("error", "")
        assert o_item["error"].startswith("Run failed: ") and r_item["error"].startswith("Run failed: ")
        r_block = theirs.post("/chat-messages", json={"query": "blocking this time", "user": "rec-user-6",
                                                       "inputs": {}, "response_mode": "blocking",
                                                       "conversation_id": r_events[-1][1]["conversation_id"]})
        o_block = ours.post("/chat-messages", json={"query": "Check the inventory and fail", "user": "contract-fail",
                                                     "inputs": {}, "response_mode": "blocking"})
        assert o_block.status_code == r_block.status_code == 400
        assert o_block.json()["code"] == r_block.json()["code"] == "invalid_param"
        assert o_block.json()["message"].startswith("Run failed: ")


def test_stop_and_the_stored_message(emulator):
    with real("stop-mid-answer") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator) as ours:
        results = []
        for http, user, body in (
                (theirs, "rec-user-4", {"query": "start then stop me", "inputs": {"delay": "25"}, "conversation_id": ""}),
                (ours, "contract-stop", {"query": "stop me " * 20, "inputs": {}})):
            with http.stream("POST", "/chat-messages", json=body | {"user": user, "response_mode": "streaming"}) as r:
                lines = r.iter_lines()
                task = None
                for line in lines:  # up to the first frame that names the task
                    if line.startswith("data: "):
                        task = json.loads(line[6:])["task_id"]
                        break
                stopped = http.post(f"/chat-messages/{task}/stop", json={"user": user})
                rest = "\n".join(lines)
            events = [json.loads(x[6:]) for x in rest.split("\n") if x.startswith("data: ")]
            results.append((stopped, events[-1]))
        (r_stop, r_end), (o_stop, o_end) = results
        assert o_stop.json() == r_stop.json() == {"result": "success"}
        assert o_end["event"] == r_end["event"] == "workflow_finished"
        assert o_end["data"]["status"] == r_end["data"]["status"] == "stopped"
        assert o_end["data"]["error"] == r_end["data"]["error"] == "Stopped by user."
        same_fields(o_end["data"], r_end["data"], "stopped workflow_finished")
        conv = o_end["conversation_id"]

        # The run is stored before its last frame goes out: what history says now is final.
        stored = ours.get("/messages", params={"conversation_id": conv, "user": "contract-stop"}).json()["data"][0]
        assert stored["status"] == "normal"  # as Dify 1.13 stores a stopped run: its partial text, "normal"
        run = ours.get(f"/workflows/run/{o_end['workflow_run_id']}").json()
        assert run["status"] == "running" and run["finished_at"] is None  # ... and its record stays running
        unknown = "fa3f1128-af13-4e50-8fcc-1372f5ee84a7"  # the recording's made-up task id
        for http in (theirs, ours):  # a task that does not exist is stopped "successfully" too
            assert http.post(f"/chat-messages/{unknown}/stop", json={"user": "rec-user-4"}).json() == {
                "result": "success"}


def test_pings_during_a_slow_node(emulator):
    with real("slow-quiet-node") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator, "support") as ours:
        _, r_events = stream(theirs, {"query": "do the slow thing", "user": "rec-user-3", "inputs": {"delay": "40"},
                                      "conversation_id": ""})
        _, o_events = stream(ours, {"query": "How do I rotate my API key?", "user": "contract-slow", "inputs": {}})
        for events in (r_events, o_events):
            names = [n for n, _ in events]
            assert names[0] == "ping" and names.count("ping") >= 3
            inside = names[names.index("workflow_started"):names.index("workflow_finished")]
            assert "ping" in inside  # the worker's pings come while nodes work
        same_events(o_events, r_events)


def test_an_unknown_conversation(emulator):
    with real("unknown-conversation") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator) as ours:
        unknown = str(uuid.uuid4())
        # Streaming: 200, one ping, silence. The recording's client left after 20 s; the emulator
        # closes after dify_unknown_close (Dify: ~300 s). Read briefly: only a ping comes.
        for http, user, conv in ((theirs, "rec-user-5", "d17ff803-e4d6-4f52-922f-33b81536dbdd"),
                                 (ours, "contract-unknown", unknown)):
            with http.stream("POST", "/chat-messages", json={"query": "hello?", "user": user, "inputs": {},
                                                             "response_mode": "streaming", "conversation_id": conv},
                             timeout=httpx.Timeout(5, read=0.5)) as response:
                assert response.status_code == 200
                assert read_until_silent(response) == b"event: ping\n\n"
        answers = []
        for http, user, conv in ((theirs, "rec-user-5", "d17ff803-e4d6-4f52-922f-33b81536dbdd"),
                                 (ours, "contract-unknown", unknown)):
            blocking = http.post("/chat-messages", json={"query": "hello?", "user": user, "inputs": {},
                                                          "response_mode": "blocking", "conversation_id": conv})
            listed = http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 20})
            malformed = http.post("/chat-messages", json={"query": "hello?", "user": user, "inputs": {},
                                                           "response_mode": "streaming", "conversation_id": "not-a-uuid"})
            answers.append((blocking, listed, malformed))
        (r_block, r_list, r_bad), (o_block, o_list, o_bad) = answers
        assert o_block.json() == r_block.json() and o_block.status_code == 404
        assert o_list.json() == r_list.json()
        assert (o_bad.status_code, o_bad.json()["code"]) == (r_bad.status_code, r_bad.json()["code"]) == (400, "invalid_param")
        assert o_bad.json()["message"].splitlines()[:2] == r_bad.json()["message"].splitlines()[:2]


def test_blocking_meta_site_info_parameters_feedback_and_roots(emulator):
    with real("blocking-feedback-meta") as replay, http_for(replay.origin + "/v1", KEY) as theirs, \
            emulator_http(emulator) as ours:
        got: list[dict[str, httpx.Response]] = []
        for http, user in ((theirs, "rec-user-7"), (ours, "contract-meta")):
            out: dict[str, httpx.Response] = {}
            out["blocking"] = http.post("/chat-messages", json={"query": "hello blocking", "user": user, "inputs": {},
                                                                  "response_mode": "blocking", "conversation_id": ""})
            message = out["blocking"].json()["message_id"]
            out["like"] = http.post(f"/messages/{message}/feedbacks",
                                    json={"rating": "like", "user": user, "content": "nice"})
            conv = out["blocking"].json()["conversation_id"]
            out["history"] = http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 20})
            out["feedbacks"] = http.get("/app/feedbacks", params={"page": 1, "limit": 20})
            for path in ("parameters", "info", "meta", "site"):
                out[path] = http.get(f"/{path}")
            out["workflow"] = http.post("/workflows/run", json={"inputs": {}, "response_mode": "blocking", "user": user})
            root = str(http.base_url).rstrip("/").removesuffix("/v1")
            out["/v1"] = httpx.get(root + "/v1")
            out["/v1/"] = httpx.get(root + "/v1/")
            got.append(out)
        r, o = got
        same_fields(o["blocking"].json(), r["blocking"].json(), "blocking answer")
        same_fields(o["blocking"].json()["metadata"]["usage"], r["blocking"].json()["metadata"]["usage"], "usage")
        assert o["like"].json() == r["like"].json() == {"result": "success"}
        (o_item,) = o["history"].json()["data"]
        assert o_item["feedback"] == {"rating": "like"}
        same_fields(o["feedbacks"].json()["data"][-1], r["feedbacks"].json()["data"][0], "feedback row")
        for path in ("info", "meta", "site"):
            assert o[path].status_code == r[path].status_code == 200
            same_fields(o[path].json(), {k: v for k, v in r[path].json().items()
                                         # the fork's own web-app columns (see the recording's README)
                                         if k not in ("chat_page_background_color", "default_user_avatar_url",
                                                      "enable_homepage", "show_answer_disclaimer",
                                                      "default_user_avatar_file_id")}, path)
        assert set(o["parameters"].json()) >= set(r["parameters"].json()) - {"system_parameters"}
        assert (o["workflow"].status_code, o["workflow"].json()["code"]) == (400, "not_workflow_app")
        assert o["workflow"].json() == r["workflow"].json()
        assert o["/v1"].status_code == r["/v1"].status_code == 308
        assert o["/v1"].headers["location"].endswith("/v1/") and r["/v1"].headers["location"].endswith("/v1/")
        assert (o["/v1/"].status_code, o["/v1/"].text) == (r["/v1/"].status_code, r["/v1/"].text)
        assert o["/v1/"].headers["content-type"] == r["/v1/"].headers["content-type"]


def test_paging(emulator):
    with real("paging") as replay, http_for(replay.origin + "/v1", KEY) as theirs, emulator_http(emulator) as ours:
        pages = []
        for http, user in ((theirs, "rec-user-10"), (ours, "contract-paging")):
            conv = ""
            for i in range(1, 5):
                body = {"query": f"question {i}", "user": user, "inputs": {}, "response_mode": "blocking",
                        "conversation_id": conv}
                conv = http.post("/chat-messages", json=body).json()["conversation_id"]
            newest = http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 2}).json()
            # first_id: the page's oldest. The emulator's turns share a second, and Dify lists a
            # second's messages newest first, so the oldest is found by its query there.
            oldest = min(newest["data"], key=lambda m: (m["created_at"], m["query"]))
            older = http.get("/messages", params={"conversation_id": conv, "user": user, "limit": 2,
                                                  "first_id": oldest["id"]}).json()
            pages.append((newest, older))
        (r_new, r_old), (o_new, o_old) = pages
        for o, r in ((o_new, r_new), (o_old, r_old)):
            same_fields(o, r, "page")
            assert (o["limit"], o["has_more"]) == (r["limit"], r["has_more"])
        # Times differ (the emulator's four land in one second): the sets of queries per page agree.
        assert {m["query"] for m in o_new["data"]} == {m["query"] for m in r_new["data"]} == {"question 3", "question 4"}
        assert {m["query"] for m in o_old["data"]} == {m["query"] for m in r_old["data"]} == {"question 1", "question 2"}
