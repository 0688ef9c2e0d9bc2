"""Conformance of the embedded server over HTTP: every endpoint and error code, the message
tree, persistence across a restart, resume windows, files, and a bounded load test."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from atomemo_notebook import AsyncClient
from atomemo_notebook.server import LocalServer

from .conftest import ids


@pytest.fixture
def http(server: LocalServer):
    with httpx.Client(base_url=server.base_url, headers={"X-Api-Key": server.api_key}) as client:
        yield client


def post_message(http: httpx.Client, app: dict[str, str], query="hi", user="conf", **extra) -> list[dict]:
    body = {"appId": app["app_id"], "triggerId": app["trigger_id"], "query": query, "userId": user}
    body.update(extra)
    response = http.post("/chat/messages", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [block for block in response.text.split("\n\n") if block]
    assert all(f.startswith("data: ") for f in frames)
    return [json.loads(f[len("data: "):]) for f in frames]


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message"} and body["message"]
    return response.status_code, body["code"]


def test_key_required_everywhere_but_get_app(server, support):
    with httpx.Client(base_url=server.base_url) as anon:
        assert anon.get(f"/chat/app/{support['app_id']}").status_code == 200
        calls = [
            ("POST", "/chat/messages", {"json": {}}),
            ("GET", "/chat/messages", {"params": {"conversation_id": "x"}}),
            ("GET", "/chat/messages/x/resume_stream", {}),
            ("GET", "/chat/conversations", {"params": {"appId": "a", "triggerId": "t", "userId": "u"}}),
            ("POST", "/chat/media/upload", {"json": {"url": "https://example.com/a"}}),
            ("GET", "/chat/media/uptoken", {}),
            ("GET", "/chat/media/download_url", {"params": {"resKey": "k"}}),
        ]
        for method, path, kwargs in calls:
            for headers in ({}, {"X-Api-Key": "wrong"}):
                response = anon.request(method, path, headers=headers, **kwargs)
                assert error_of(response) == (401, "UNAUTHORIZED"), (method, path)


def test_get_app_shape(http, support):
    app = http.get(f"/chat/app/{support['app_id']}").json()
    assert {"id", "name", "description", "status", "activeVersionId", "activeVersion", "icon", "color",
            "organizationId", "teamId", "createdAt", "updatedAt"} <= set(app)
    version = app["activeVersion"]
    assert {"id", "appId", "name", "description", "snapshot", "screenshot", "system", "createdBy",
            "createdAt", "updatedAt"} <= set(version)
    node = version["snapshot"]["nodes"][support["trigger_id"]]
    assert node["type"] == "chat_trigger"
    assert error_of(http.get("/chat/app/nope")) == (404, "APP_OR_TRIGGER_NOT_FOUND")


def test_send_message_stream_shape(http, support):
    events = post_message(http, support, "Hello")
    assert events[0]["event"] == "message_created"
    assert set(events[0]["data"]) == {"message_id", "conversation_id"}
    started = events[1]["data"]
    assert started["resource_type"] == "execution"
    assert set(started["resource"]) == {"id", "status", "trigger_id", "app_version_id",
                                        "conversation_id", "created_at"}
    node = next(e for e in events if e["event"] == "node_finished")["data"]
    assert node["resource_type"] == "result"
    assert set(node["resource"]) == {"id", "node_id", "execution_id", "status", "json_output",
                                     "out_ports", "error"}
    finished = events[-1]["data"]["resource"]
    assert events[-1]["event"] == "execution_finished" and finished["status"] == "succeeded"
    assert "created_at" not in finished


def test_same_query_same_stream(http, support):
    def shape(events):
        out = []
        for e in events:
            data = json.loads(json.dumps(e.get("data")))
            res = data.get("resource") if isinstance(data, dict) else None
            if isinstance(res, dict):
                for key in ("id", "execution_id", "conversation_id", "created_at"):
                    res.pop(key, None)
            if e["event"] == "message_created":
                data = None
            out.append((e["event"], data))
        return out

    assert shape(post_message(http, support, "Tell me about plans")) == shape(
        post_message(http, support, "Tell me about plans"))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "VALIDATION_ERROR"),
        ({"query": "x", "userId": "u", "triggerId": "t"}, 422, "VALIDATION_ERROR"),
        ({"appId": 5, "triggerId": "t", "query": "x", "userId": "u"}, 422, "VALIDATION_ERROR"),
        ({"appId": "a", "triggerId": "t", "query": "", "userId": "u"}, 422, "VALIDATION_ERROR"),
        ({"appId": "a", "triggerId": "t", "query": ["x"], "userId": "u"}, 422, "VALIDATION_ERROR"),
        ({"appId": "a", "triggerId": "t", "query": {"__type__": "file_ref"}, "userId": "u"}, 422,
         "VALIDATION_ERROR"),
        ({"appId": "a", "triggerId": "t", "query": "x", "userId": "u"}, 404, "APP_OR_TRIGGER_NOT_FOUND"),
    ],
)
def test_bad_bodies_are_clear_4xx(http, body, status, code):
    assert error_of(http.post("/chat/messages", json=body)) == (status, code)


def test_non_json_and_non_object_bodies(http):
    assert error_of(http.post("/chat/messages", content=b"{nope")) == (400, "INVALID_JSON")
    assert error_of(http.post("/chat/messages", json=[1])) == (422, "VALIDATION_ERROR")
    assert error_of(http.post("/chat/messages", content=b"x" * (1024 * 1024 + 1))) == (
        413, "PAYLOAD_TOO_LARGE")


def test_every_documented_error_code(http, support, echo):
    base = {"appId": support["app_id"], "triggerId": support["trigger_id"], "query": "x", "userId": "own"}
    first = post_message(http, support, "first", "own")
    conv, m1 = first[0]["data"]["conversation_id"], first[0]["data"]["message_id"]
    other = post_message(http, support, "other", "own")[0]["data"]["message_id"]
    cases = [
        (base | {"appId": "nope"}, (404, "APP_OR_TRIGGER_NOT_FOUND")),
        (base | {"triggerId": "nope"}, (404, "APP_OR_TRIGGER_NOT_FOUND")),
        (base | {"conversationId": "nope"}, (404, "CONVERSATION_NOT_FOUND")),
        (base | {"conversationId": conv, "userId": "thief"}, (403, "CONVERSATION_USER_ID_MISMATCH")),
        (base | {"conversationId": conv, "parentId": other}, (400, "CONVERSATION_MESSAGE_MISMATCH")),
        (base | {"conversationId": conv, "parentId": "ghost"}, (404, "PARENT_NOT_FOUND")),
        (base | {"parentId": m1}, (422, "VALIDATION_ERROR")),
        ({"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": "x", "userId": "u",
          "inputs": {"repeat": "many"}}, (400, "TRIGGER_INPUTS_ERROR")),
        ({"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": "x", "userId": "u",
          "inputs": [1]}, (400, "TRIGGER_INPUTS_ERROR")),
    ]
    for body, expected in cases:
        assert error_of(http.post("/chat/messages", json=body)) == expected, body
    assert error_of(http.get("/chat/messages/ghost/resume_stream")) == (404, "NOT_FOUND")
    assert error_of(http.get("/chat/messages", params={"conversation_id": "nope"})) == (
        404, "CONVERSATION_NOT_FOUND")
    assert error_of(http.get("/chat/messages")) == (422, "VALIDATION_ERROR")
    assert error_of(http.get("/chat/messages", params={"conversation_id": conv,
                                                       "end_message_id": "ghost"})) == (404, "NOT_FOUND")
    assert error_of(http.get("/chat/messages", params={"conversation_id": conv, "end_message_id": m1,
                                                       "include_end": "maybe"})) == (422, "VALIDATION_ERROR")
    assert error_of(http.get("/chat/nowhere")) == (404, "ROUTE_NOT_FOUND")


def test_message_tree_m1_to_m5(http, support):
    """The spec's example: M1 - M2 - M4, M2 - M5, M1 - M3."""
    def ask(query, conv=None, parent=None):
        extra = {}
        if conv:
            extra["conversationId"] = conv
        if parent:
            extra["parentId"] = parent
        data = post_message(http, support, query, "tree", **extra)[0]["data"]
        return data["conversation_id"], data["message_id"]

    conv, m1 = ask("M1")
    _, m2 = ask("M2", conv, m1)
    _, m3 = ask("M3", conv, m1)
    _, m4 = ask("M4", conv, m2)
    _, m5 = ask("M5", conv, m2)
    flat = http.get("/chat/messages", params={"conversation_id": conv}).json()["items"]
    assert [m["id"] for m in flat] == [m1, m2, m3, m4, m5]
    assert [m["dialogueCount"] for m in flat] == [1, 2, 2, 3, 3]
    assert [m["parentId"] for m in flat] == [None, m1, m1, m2, m2]
    assert all(m["status"] == "succeeded" for m in flat)
    assert set(flat[0]) == {"id", "status", "query", "answer", "executionId", "dialogueCount", "userId",
                            "source", "inputs", "parentId", "conversationId", "createdAt", "updatedAt"}

    def path(end, include):
        params = {"conversation_id": conv, "end_message_id": end, "include_end": include}
        return [m["id"] for m in http.get("/chat/messages", params=params).json()["items"]]

    assert path(m4, "false") == [m1, m2]
    assert path(m4, "true") == [m1, m2, m4]
    assert path(m5, "true") == [m1, m2, m5]
    assert path(m3, "true") == [m1, m3]
    assert path(m1, "false") == []


def test_conversation_list_newest_first_named_by_first_query(http, support):
    user = f"lister-{time.time_ns()}"
    first = post_message(http, support, "Shipping question", user)[0]["data"]["conversation_id"]
    second = post_message(http, support, "A second topic that is a rather long first query indeed, "
                                         "longer than sixty characters", user)[0]["data"]["conversation_id"]
    post_message(http, support, "follow-up", user, conversationId=first,
                 parentId=http.get("/chat/messages", params={"conversation_id": first}).json()["items"][0]["id"])
    items = http.get("/chat/conversations", params={"appId": support["app_id"],
                                                     "triggerId": support["trigger_id"],
                                                     "userId": user}).json()["items"]
    assert [c["id"] for c in items] == [second, first]
    assert items[1]["name"] == "Shipping question"
    assert len(items[0]["name"]) <= 60
    assert set(items[0]) == {"id", "name", "appId", "triggerId", "userId", "inputs", "startedAt",
                             "createdAt", "updatedAt"}
    assert error_of(http.get("/chat/conversations", params={"appId": "a"})) == (422, "VALIDATION_ERROR")


def test_history_survives_a_restart(tmp_path: Path, support):
    db = str(tmp_path / "history.sqlite3")
    with LocalServer(db=db, chunk_delay=0, node_delay=0, api_key="restart-key") as first, \
            httpx.Client(base_url=first.base_url, headers={"X-Api-Key": "restart-key"}) as http:
        events = post_message(http, support, "remember me", "restart")
        conv = events[0]["data"]["conversation_id"]
        message_id = events[0]["data"]["message_id"]
    with LocalServer(db=db, api_key="restart-key") as second, \
            httpx.Client(base_url=second.base_url, headers={"X-Api-Key": "restart-key"}) as http:
        items = http.get("/chat/messages", params={"conversation_id": conv}).json()["items"]
        assert [m["query"] for m in items] == ["remember me"] and items[0]["status"] == "succeeded"
        # The event log is kept too: within the window the stream can still be replayed.
        replay = http.get(f"/chat/messages/{message_id}/resume_stream")
        assert replay.status_code == 200
        assert [json.loads(b[6:])["event"] for b in replay.text.split("\n\n") if b] == [
            e["event"] for e in events]


def test_resume_continues_live_while_the_message_runs(echo):
    with LocalServer(chunk_size=1, chunk_delay=0.01, node_delay=0, api_key="live-key") as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "live-key"}) as http:
        body = {"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": "abcdefghij" * 10,
                "userId": "live"}
        with http.stream("POST", "/chat/messages", json=body) as response:
            first = next(response.iter_lines())
            message_id = json.loads(first[6:])["data"]["message_id"]
        # The first connection is gone; the run goes on and a resume sees it from the start, live.
        resumed = http.get(f"/chat/messages/{message_id}/resume_stream").text
        events = [json.loads(b[6:]) for b in resumed.split("\n\n") if b]
        assert events[0]["event"] == "message_created"
        assert "".join(e["data"]["text"] for e in events if e["event"] == "chat_message") == body["query"]
        assert events[-1]["event"] == "execution_finished"


def test_resume_window_then_unresumable(echo):
    with LocalServer(chunk_delay=0, node_delay=0, resume_window=0.3, api_key="w-key") as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "w-key"}) as http:
        message_id = post_message(http, echo, "window", "w")[0]["data"]["message_id"]
        assert http.get(f"/chat/messages/{message_id}/resume_stream").status_code == 200
        time.sleep(0.4)
        assert error_of(http.get(f"/chat/messages/{message_id}/resume_stream")) == (410, "UNRESUMABLE_STREAM")


def test_three_step_upload_checks_token_type_and_size(server, http):
    token = http.get("/chat/media/uptoken", params={"mimeType": "application/pdf"}).json()
    assert set(token) == {"uptoken", "resKey", "uploadHost"} and token["resKey"].endswith(".pdf")
    url = f"{token['uploadHost']}/{token['resKey']}?{token['uptoken']}"
    with httpx.Client() as storage:
        assert storage.put(url, content=b"%PDF", headers={"Content-Type": "text/plain"}).status_code == 415
        bad = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        assert storage.put(bad, content=b"%PDF", headers={"Content-Type": "application/pdf"}).status_code == 403
        other_key = f"{token['uploadHost']}/elsewhere.pdf?{token['uptoken']}"
        assert storage.put(other_key, content=b"%PDF",
                           headers={"Content-Type": "application/pdf"}).status_code == 403
        ok = storage.put(url, content=b"%PDF-1.4", headers={"Content-Type": "application/pdf"})
        assert ok.status_code == 200
        link = http.get("/chat/media/download_url", params={"resKey": token["resKey"]}).json()["data"]
        fetched = storage.get(link)
        assert fetched.content == b"%PDF-1.4" and fetched.headers["content-type"] == "application/pdf"
        tampered = link.replace("token=", "token=x")
        assert storage.get(tampered).status_code == 403
        missing = http.get("/chat/media/download_url", params={"resKey": "nothing/here.pdf"}).json()["data"]
        gone = storage.get(missing)
        assert gone.status_code == 404 and gone.json() == {"error": "Document not found"}


def test_upload_size_caps(support):
    with LocalServer(test_mode=True, allow_loopback_urls=True, max_upload_bytes=10, api_key="cap-key") as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "cap-key"}) as http:
        token = http.get("/chat/media/uptoken", params={"mimeType": "text/plain"}).json()
        url = f"{token['uploadHost']}/{token['resKey']}?{token['uptoken']}"
        assert httpx.put(url, content=b"x" * 11, headers={"Content-Type": "text/plain"}).status_code == 413
        assert httpx.put(url, content=b"x" * 10, headers={"Content-Type": "text/plain"}).status_code == 200
        link = http.get("/chat/media/download_url", params={"resKey": token["resKey"]}).json()["data"]
        big = http.post("/chat/media/upload", json={"url": link})
        assert big.status_code == 200 and big.json()["size"] == 10
        with LocalServer(test_mode=True, allow_loopback_urls=True, max_upload_bytes=5, api_key="tiny") as tiny:
            response = httpx.post(f"{tiny.base_url}/chat/media/upload", json={"url": link},
                                  headers={"X-Api-Key": "tiny"})
            assert error_of(response) == (413, "FILE_TOO_LARGE")


def test_upload_by_url_validation(http):
    assert error_of(http.post("/chat/media/upload", json={"url": "ftp://x/y"})) == (422, "VALIDATION_ERROR")
    assert error_of(http.post("/chat/media/upload", json={})) == (422, "VALIDATION_ERROR")
    response = http.post("/chat/media/upload", json={"url": "http://127.0.0.1:1/closed"})
    assert error_of(response) == (400, "URL_FETCH_FAILED")


def test_loopback_upload_urls_refused_without_the_explicit_option():
    # test_mode alone does not open the loopback: only allow_loopback_urls does.
    with LocalServer(api_key="prod-like", test_mode=True) as srv:
        response = httpx.post(f"{srv.base_url}/chat/media/upload", json={"url": f"{srv.origin}/"},
                              headers={"X-Api-Key": "prod-like"})
        assert error_of(response) == (422, "URL_NOT_ALLOWED")


def test_faults_are_ignored_outside_test_mode(echo):
    with LocalServer(chunk_delay=0, node_delay=0, api_key="nf") as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "nf", "X-Atomemo-Fault": "status=500"}) as http:
        assert post_message(http, echo, "fine")[-1]["event"] == "execution_finished"


def test_bad_fault_header_is_a_clear_400(server, http, echo):
    response = http.post("/chat/messages", headers={"X-Atomemo-Fault": "explode=yes"},
                         json={"appId": echo["app_id"], "triggerId": echo["trigger_id"],
                               "query": "x", "userId": "u"})
    assert error_of(response) == (400, "INVALID_FAULT")


def test_heartbeats_at_the_configured_interval(echo):
    with LocalServer(chunk_size=100, chunk_delay=0, node_delay=0.35, heartbeat_interval=0.1,
                     api_key="hb") as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "hb"}) as http:
        events = post_message(http, echo, "beat")
        beats = [e for e in events if e["event"] == "heartbeat"]
        assert len(beats) >= 3 and beats[0] == {"event": "heartbeat"}


async def test_two_hundred_concurrent_streams_all_complete(server, echo):
    """Bounded load: 200 streams at once on loopback, each checked in full, within 60 s."""
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    async with AsyncClient(server.api_key, base_url=server.base_url,
                           http_client=httpx.AsyncClient(limits=limits)) as client:
        async def one(i: int) -> str:
            stream = await client.send_message(**ids(echo), query=f"load {i} " * 5, user_id=f"load-{i}")
            return "".join([e.text async for e in stream if e.event == "chat_message"])

        texts = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), timeout=60)
    assert texts == [f"load {i} " * 5 for i in range(200)]


def test_odd_bodies_never_give_a_500(http, echo, server):
    """Every field of every JSON endpoint, given each odd value: a 4xx every time."""
    odd = [None, 0, -1, 1.5, True, "", " ", [], {}, ["x"], {"a": 1}, "x" * 10_000, "\u0000", "\ud7ff"]
    base = {"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": "q", "userId": "fuzz"}
    statuses = set()
    for name in [*base, "conversationId", "parentId", "inputs", "source"]:
        for value in odd:
            response = http.post("/chat/messages", json=base | {name: value})
            statuses.add(response.status_code)
            assert response.status_code < 500, (name, value, response.text)
            if response.status_code == 200:
                assert response.text.rstrip().endswith("}}")  # a complete stream
    for value in odd:
        response = http.post("/chat/media/upload", json={"url": value})
        assert 400 <= response.status_code < 500, (value, response.text)
    for path in ["/chat/messages", "/chat/conversations", "/chat/media/download_url"]:
        for value in ["", "%00", "x" * 5000, "' OR 1=1 --"]:
            response = http.get(path, params={"conversation_id": value, "appId": value, "triggerId": value,
                                              "userId": value, "resKey": value})
            assert response.status_code < 500, (path, value, response.text)
    with httpx.Client() as storage:
        for token in ["", "x", "a.b", "!!!.???", "eyJrIjoiYSJ9.sig"]:
            assert storage.put(f"{server.origin}/storage/a.txt?{token}", content=b"x").status_code == 403
    assert statuses >= {200, 400, 404, 422}


@pytest.mark.parametrize(("query", "topic", "phrase"), [
    ("What does it cost?", "pricing", "| Team | $49 / month |"),
    ("How do I rotate my API key?", "api keys", "Revoke"),
    ("Where are my invoices?", "billing", "Invoices are under"),
    ("Your service is down, I get 503s", "outages", "status.atomemo.ai"),
    ("How do I get started?", "setup", "Create an app"),
    ("Can I invite my team?", "account", "Settings → Team"),
    ("hello there", None, "I'm the support assistant"),
    ("flibbertigibbet", None, "couldn't find an article"),
])
def test_the_support_demo_answers_like_a_support_assistant(http, support, query, topic, phrase):
    events = post_message(http, support, query)
    text = "".join(e["data"]["text"] for e in events if e["event"] == "chat_message")
    assert phrase in text
    retrieval = next(e for e in events if e["event"] == "node_finished"
                     and e["data"]["resource"]["json_output"] and "documents" in e["data"]["resource"]["json_output"])
    assert retrieval["data"]["resource"]["json_output"]["topic"] == topic
    again = post_message(http, support, query)  # deterministic: the same question, the same answer
    assert "".join(e["data"]["text"] for e in again if e["event"] == "chat_message") == text
