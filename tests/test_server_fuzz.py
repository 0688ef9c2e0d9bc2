"""Fuzzing the embedded server over HTTP, every endpoint and field (Hypothesis, bounded):
whatever comes in, the answer is a proper one (never a 5xx, errors are JSON with a code),
and the server stays healthy afterwards."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import httpx_sse
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomemo_notebook.protocol.dify._workflow_app import WORKFLOW_DEMO
from atomemo_notebook.server import LocalServer
from atomemo_notebook.server._faults import FAULT_HEADER, FaultSyntaxError, parse_fault

# Text with everything JSON can carry: lone surrogates, NULs, controls, astral characters.
WILD_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=24)
SCALAR = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | WILD_TEXT
ANY_JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(WILD_TEXT, inner, max_size=3), max_leaves=12)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def api(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.origin, headers={"X-Api-Key": server.api_key}, timeout=20) as client:
        yield client


def proper(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400 and not response.request.url.path.startswith("/storage"):
        body = response.json()
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body
    response.read()


def still_healthy(api: httpx.Client, server: LocalServer) -> None:
    app = server.app("echo")
    response = api.post("/api/chat/messages", json={"appId": app["app_id"], "triggerId": app["trigger_id"],
                                                     "query": "ok?", "userId": "fuzz"})
    assert response.status_code == 200 and '"execution_finished"' in response.text


def _field(valid: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), ANY_JSON)


@FUZZ
@given(data=st.data())
def test_fuzz_send_message_every_field(api, server, data):
    app = server.app(data.draw(st.sampled_from(["echo", "support", "agent", "flaky"])))
    body = {
        "appId": data.draw(_field(app["app_id"])),
        "triggerId": data.draw(_field(app["trigger_id"])),
        "userId": data.draw(_field("fuzzer")),
        "query": data.draw(st.one_of(WILD_TEXT, ANY_JSON,
                                     st.fixed_dictionaries({"__type__": st.just("file_ref"), "filename": ANY_JSON,
                                                            "resKey": ANY_JSON}))),
    }
    for name in ("conversationId", "parentId", "source", "inputs"):
        if data.draw(st.booleans()):
            body[name] = data.draw(ANY_JSON)
    if data.draw(st.booleans()):
        body["inputs"] = {"repeat": data.draw(SCALAR), "tone": data.draw(SCALAR)}
    raw = json.dumps(body)  # lone surrogates travel as \ud800 escapes, as real clients send them
    proper(api.post("/api/chat/messages", content=raw, headers={"Content-Type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200) | WILD_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_fuzz_send_message_raw_bytes(api, raw):
    proper(api.post("/api/chat/messages", content=raw, headers={"Content-Type": "application/json"}))


@FUZZ
@given(data=st.data())
def test_fuzz_every_get_endpoint_query_and_path(api, server, data):
    text = data.draw(WILD_TEXT.filter(lambda t: "\x00" not in t))
    other = data.draw(WILD_TEXT)
    app = server.app("echo")
    calls = [
        ("GET", "/api/chat/messages", {"conversation_id": text, "end_message_id": other,
                                       "include_end": data.draw(WILD_TEXT)}),
        ("GET", "/api/chat/conversations", {"appId": text, "triggerId": app["trigger_id"], "userId": other}),
        ("GET", "/api/chat/media/uptoken", {"mimeType": text}),
        ("GET", "/api/chat/media/download_url", {"resKey": text}),
    ]
    for method, path, params in calls:
        clean = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()}
        proper(api.request(method, path, params=clean))
    segment = quote(text.encode("utf-8", "surrogatepass"), safe="")
    for path in (f"/api/chat/app/{segment}", f"/api/chat/messages/{segment}/resume_stream"):
        proper(api.get(path))


@FUZZ
@given(url=st.one_of(WILD_TEXT, ANY_JSON, st.builds(lambda h, p, s: f"http://{h}:{p}/{s}",
                                                      WILD_TEXT, st.integers(-5, 10**6), WILD_TEXT)))
def test_fuzz_upload_by_url(api, url):
    proper(api.post("/api/chat/media/upload", content=json.dumps({"url": url}),
                    headers={"Content-Type": "application/json"}))


@FUZZ
@given(key=st.text(max_size=30), query=st.text(max_size=60), content=st.binary(max_size=64),
       mime=st.text(st.characters(max_codepoint=126, min_codepoint=32), max_size=20))
def test_fuzz_storage_host(api, key, query, content, mime):
    target = f"/storage/{quote(key.encode(), safe='/')}?{quote(query.encode(), safe='=&.')}"
    proper(api.put(target, content=content, headers={"Content-Type": mime.strip() or "x/y"}))
    proper(api.get(target))


# A well-formed fault header, and the values it states: what the parser must read back.
GOOD_FAULT = st.lists(st.one_of(
    st.tuples(st.just("status"), st.integers(400, 599)),
    st.tuples(st.just("times"), st.integers(0, 50)),
    st.tuples(st.just("stall"), st.floats(0, 600, allow_nan=False).map(lambda f: round(f, 3))),
    st.tuples(st.just("path"), st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)),
), max_size=4, unique_by=lambda pair: pair[0])


@settings(max_examples=500, deadline=None)
@given(header=st.text(max_size=60), good=GOOD_FAULT)
def test_fuzz_fault_header_parses_or_says_why(header, good):
    why: str | None = None
    try:
        parse_fault(header)
    except FaultSyntaxError as error:
        why = str(error)
    assert why is None or why  # refused: it says why
    # A parser that refused everything would pass the above: a well-formed header must parse,
    # into the values it states.
    fault = parse_fault("; ".join(f"{name}={value}" for name, value in good))
    assert {name: getattr(fault, name) for name, _ in good} == dict(good)


def dify_proper(response: httpx.Response) -> None:
    """A Dify route's answer: never a 5xx; an error is Dify's {code, message, status}."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 404 and response.headers["content-type"].startswith("text/html"):
        assert "<title>404 Not Found</title>" in response.text  # no route: Flask's page, as real Dify's
        return
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body
        assert body.get("status") == response.status_code, body
    response.read()


@pytest.fixture(scope="module")
def dify(server: LocalServer) -> Iterator[httpx.Client]:
    key = server.app("echo")["dify_api_key"]
    with httpx.Client(base_url=server.dify_base_url, headers={"Authorization": f"Bearer {key}"},
                      timeout=20) as client:
        yield client


@FUZZ
@given(data=st.data())
def test_fuzz_dify_chat_messages_every_field(dify, data):
    body = {
        "query": data.draw(_field("hello")),
        "user": data.draw(_field("fuzz-user")),
        "inputs": data.draw(_field({})),
        "response_mode": data.draw(st.sampled_from(["streaming", "blocking"]) | ANY_JSON),
        "conversation_id": data.draw(_field("")),
        "files": data.draw(_field([])),
    }
    dropped = data.draw(st.sets(st.sampled_from(sorted(body)), max_size=3))
    dify_proper(dify.post("/chat-messages", content=json.dumps({k: v for k, v in body.items() if k not in dropped}),
                          headers={"Content-Type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzz_dify_raw_bodies_and_uploads(dify, raw):
    dify_proper(dify.post("/chat-messages", content=raw, headers={"Content-Type": "application/json"}))
    dify_proper(dify.post("/files/upload", content=raw, headers={"Content-Type": "multipart/form-data; boundary=x"}))
    dify_proper(dify.post("/files/upload", files={"file": ("f.bin", raw)}, data={"user": "fuzz-user"}))


@FUZZ
@given(data=st.data())
def test_fuzz_dify_every_get_and_path(dify, data):
    text = data.draw(WILD_TEXT.filter(lambda t: "\x00" not in t)).encode("utf-8", "surrogatepass").decode(
        "utf-8", "replace")
    other = data.draw(st.sampled_from(["", "5", "101", "-1", "x"]))
    for path, params in [("/messages", {"conversation_id": text, "user": text, "first_id": text, "limit": other}),
                         ("/conversations", {"user": text, "last_id": text, "limit": other, "sort_by": text}),
                         ("/parameters", {}), ("/info", {})]:
        dify_proper(dify.get(path, params=params))
    segment = quote(text.encode(), safe="")
    dify_proper(dify.get(f"/messages/{segment}/suggested", params={"user": text}))
    dify_proper(dify.post(f"/chat-messages/{segment}/stop", json={"user": text}))
    dify_proper(dify.post(f"/conversations/{segment}/name", json={"user": text, "name": text}))
    dify_proper(dify.request("DELETE", f"/conversations/{segment}", json={"user": text}))


# -- a run's events (GET /v1/workflow/{run_id}/events) ---------------------------------------------

# The web-app API's root, where Dify 1.13 has a run's events (a client's fallback): the emulator
# has none there, so each answer there must be a clear 404.
WEB_APP = "/api"
PATHISH = ["", ".", "..", "../..", "a/b", "%2e%2e", "%2F", "..%2F..%2Finfo", "\\", "?x=1", "#f", " ", "%00", "%ff%fe"]
FLAG = st.sampled_from(["true", "false"]) | st.sampled_from(["TRUE", "1", "0", "", "null"]) | WILD_TEXT
# What a header can carry (no spaces around it: the client refuses to send those).
LATIN = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip)


@pytest.fixture(scope="module")
def known_runs(server: LocalServer) -> dict[str, Any]:
    """A finished run of the workflow app and one of a chatflow, with the keys that own them."""
    flow_key, chat_key = server.demo("dify", WORKFLOW_DEMO)["api_key"], server.app("echo")["dify_api_key"]
    ran = httpx.post(f"{server.dify_base_url}/workflows/run", headers={"Authorization": f"Bearer {flow_key}"},
                     json={"inputs": {"name": "Ada"}, "user": "fz-user", "response_mode": "blocking"}, timeout=20)
    asked = httpx.post(f"{server.dify_base_url}/chat-messages", headers={"Authorization": f"Bearer {chat_key}"},
                       json={"query": "hi", "user": "fz-user", "inputs": {}, "response_mode": "streaming"},
                       timeout=20)
    chat_run = next(json.loads(line[5:])["workflow_run_id"] for line in asked.text.splitlines()
                    if line.startswith("data:") and '"workflow_run_id"' in line)
    return {"flow": (ran.json()["workflow_run_id"], flow_key), "chat": (chat_run, chat_key),
            "other app": server.app("support")["dify_api_key"]}  # a chatflow that owns neither


def run_events_answer(response: httpx.Response, run_id: str | None) -> list[dict[str, Any]]:
    """The route's answer read whole: a Dify error (or the no-route page), else a valid event
    stream of run `run_id`'s events (None: no stream may be answered). Its events' bodies."""
    if response.url.path.startswith("/v1/"):
        dify_proper(response)
    else:
        proper(response)
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, response.status_code
        return []
    assert run_id is not None, f"a stream answered for a run this request cannot read: {response.url}"
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = []
    for sse in httpx_sse.EventSource(response).iter_sse():
        if sse.event == "ping":
            continue
        frame = json.loads(sse.data)
        assert isinstance(frame, dict) and isinstance(frame.get("event"), str), frame
        assert frame.get("workflow_run_id") in (run_id, None), frame
        frames.append(frame)
    return frames


def once_from_start_to_end(frames: list[dict[str, Any]]) -> bool:
    """A finished run's events, whole and not doubled: started once, finished once, last."""
    names = [f["event"] for f in frames]
    return names[:1] == ["workflow_started"] and names[-1:] == ["workflow_finished"] \
        and names.count("workflow_started") == names.count("workflow_finished") == 1


@settings(FUZZ, max_examples=200)  # ~20 ms each: enough to reach a readable run with every flag
@given(data=st.data())
def test_fuzz_a_runs_events_answer_a_dify_error_or_its_stream(server, known_runs, data):
    owner = data.draw(st.sampled_from(["flow", "chat"]))
    real, key = known_runs[owner]
    # Half the time the run's own id and key, so that hostile flags and headers reach the run.
    run_id = real if data.draw(st.booleans()) else data.draw(st.one_of(
        st.just(real.upper()), st.just(real + "x"), st.just(real[:-1]),
        st.sampled_from(PATHISH),  # as they are: a slash or a dot may change the route
        WILD_TEXT.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
        st.integers(1_000, 60_000).map(lambda n: "x" * n),  # huge
        st.text(min_size=500, max_size=2_000).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
    ))
    web = data.draw(st.sampled_from([False, False, False, True]))
    params: list[tuple[str, str]] = []
    for name, usual, value in (("user", "fz-user", st.just("another") | WILD_TEXT),
                               ("include_state_snapshot", "true", FLAG), ("continue_on_pause", "false", FLAG),
                               ("x", "", WILD_TEXT)):
        # The usual value, absent, or anything once or twice.
        values = data.draw(st.one_of(st.just([usual]), st.just([]), st.lists(value, min_size=1, max_size=2)))
        params += [(name, v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")) for v in values]
    auth = f"Bearer {key}" if data.draw(st.booleans()) else data.draw(st.one_of(
        st.sampled_from([f"bearer  {key}", f"Bearer {known_runs['flow'][1]}", f"Bearer {known_runs['chat'][1]}",
                         f"Bearer {known_runs['other app']}", "Bearer", "Basic x", ""]),
        LATIN.map(lambda t: f"Bearer {t}".strip()), st.none()))
    headers = {"Authorization": auth} if auth is not None else {}
    fault = data.draw(st.one_of(st.none(), st.none(), LATIN))
    with contextlib.suppress(FaultSyntaxError):
        if fault is not None:
            parse_fault(fault)
            fault = None  # a well-formed fault misbehaves on purpose: only broken ones are sent
    if fault is not None:
        headers[FAULT_HEADER] = fault
    for name in data.draw(st.sets(st.sampled_from(["Accept", "Last-Event-ID", "X-App-Code", "X-App-Passport",
                                                    "Cache-Control", "Range"]), max_size=3)):
        headers[name] = data.draw(LATIN)
    url = f"{server.origin}{WEB_APP if web else '/v1'}/workflow/{run_id}/events"
    with httpx.Client(timeout=20) as client, client.stream("GET", url, params=params, headers=headers) as response:
        response.read()
        # A stream only for the run's own id, on the service API, under a key that can read it.
        readable = (run_id == real and not web and fault is None
                    and auth is not None and auth.split(None, 1)[1:] == [key])
        frames = run_events_answer(response, real if readable else None)
    assert not web or response.status_code == 404
    if not readable:
        return
    # Its own user, or none named: the stream; another user's: not found (as Dify scopes runs).
    own = all(value == "fz-user" for name, value in params if name == "user")
    assert response.status_code == (200 if own else 404), response.text[:300]
    if response.status_code == 200:
        # The run is over: its snapshot is the whole run once, from its start to its end; without
        # the snapshot nothing is left to follow (pings only).
        if dict(params).get("include_state_snapshot") == "true":  # the last one given, as the server reads it
            assert once_from_start_to_end(frames)
        else:
            assert frames == []


def test_a_runs_events_still_stream_after_the_fuzzing(server, known_runs):
    for real, key in (known_runs["flow"], known_runs["chat"]):
        with httpx.stream("GET", f"{server.dify_base_url}/workflow/{real}/events", timeout=20,
                          params={"user": "fz-user", "include_state_snapshot": "true"},
                          headers={"Authorization": f"Bearer {key}"}) as response:
            response.read()
            frames = run_events_answer(response, real)
        assert once_from_start_to_end(frames)


def test_healthy_after_all_the_fuzzing(api, server):
    still_healthy(api, server)
