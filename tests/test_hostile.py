"""Hostile input, hostile servers, huge histories: nothing wedges, nothing grows without
bound. One named test per defect found, each over real HTTP on loopback with the server's
own fault injection, plus the whole class of input it belongs to."""

from __future__ import annotations

import contextlib
import http.server as stdlib_http
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import atomemo_notebook as an
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.model.tree import MessageTree
from atomemo_notebook.protocol.atomemo.events import ChatMessage
from atomemo_notebook.server import LocalServer

from .conftest import collect, fault_key, ids, make_client, maybe, text_of

# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def http(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"X-Api-Key": server.api_key}) as client:
        yield client


def raw_post(http: httpx.Client, path: str, raw: str, **headers: str) -> httpx.Response:
    return http.post(path, content=raw.encode(), headers={"Content-Type": "application/json", **headers})


def body_for(app: dict[str, str], **fields) -> dict:
    return {"appId": app["app_id"], "triggerId": app["trigger_id"], "query": "hello", "userId": "hostile"} | fields


def sse_events(response: httpx.Response) -> list[dict]:
    return [json.loads(block[len("data: "):]) for block in response.text.split("\n\n")
            if block.startswith("data: ")]


def healthy(http: httpx.Client, app: dict[str, str]) -> None:
    """A normal message still runs to the end and its history reads back."""
    response = http.post("/chat/messages", json=body_for(app, query="still alive?"))
    events = sse_events(response)
    assert events[-1]["event"] == "execution_finished", events[-3:]
    conv = events[0]["data"]["conversation_id"]
    history = http.get("/chat/messages", params={"conversation_id": conv})
    assert history.status_code == 200 and history.json()["items"][0]["status"] == "succeeded"


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message"} and body["message"], body
    return response.status_code, body["code"]


# -- server 1: text that cannot be stored faithfully never wedges anything ---------------------

SURROGATE_FIELDS = ["query", "userId", "appId", "triggerId", "conversationId", "parentId", "source"]


@pytest.mark.parametrize("name", SURROGATE_FIELDS)
def test_lone_surrogate_in_any_field_is_a_400_naming_it_and_the_server_stays_healthy(http, support, name):
    body = json.dumps(body_for(support) | {name: "x\ud800"})  # json.dumps writes the \ud800 escape
    assert "\\ud800" in body
    response = raw_post(http, "/chat/messages", body)
    assert error_of(response) == (400, "INVALID_TEXT")
    assert repr(name) in response.json()["message"]
    healthy(http, support)


def test_lone_surrogates_anywhere_in_inputs_keys_and_file_refs(http, support, echo):
    cases = [
        ("echo", {"inputs": {"tone": "\udfff"}}, "inputs.tone"),
        ("echo", {"inputs": {"to\ud801ne": "x"}}, "inputs.to"),
        ("support", {"query": {"__type__": "file_ref", "filename": "a\ud800.pdf", "resKey": "k"}},
         "query.filename"),
    ]
    for app_name, fields, where in cases:
        app = echo if app_name == "echo" else support
        response = raw_post(http, "/chat/messages", json.dumps(body_for(app) | fields))
        assert error_of(response) == (400, "INVALID_TEXT"), fields
        assert where in response.json()["message"]
    response = raw_post(http, "/chat/media/upload", json.dumps({"url": "https://example.com/\ud800"}))
    assert error_of(response) == (400, "INVALID_TEXT")
    healthy(http, support)


def test_a_failed_final_write_rolls_back_ends_the_run_failed_with_a_reason_and_nothing_wedges(http, support):
    response = http.post("/chat/messages", json=body_for(support),
                         headers={"X-Atomemo-Fault": f"store_fail=1; key={fault_key()}"})
    events = sse_events(response)
    finished = events[-1]
    assert finished["event"] == "execution_finished"
    assert finished["data"]["resource"]["status"] == "failed"
    assert "could not be stored" in finished["data"]["resource"]["error"]
    conv = events[0]["data"]["conversation_id"]
    stored = http.get("/chat/messages", params={"conversation_id": conv}).json()["items"]
    assert [m["status"] for m in stored] == ["failed"]  # never left 'answering'
    for _ in range(3):  # and every run after it commits
        healthy(http, support)


def test_store_transaction_rolls_back_on_any_error_and_the_connection_stays_usable(tmp_path):
    from atomemo_notebook.server._store import Store

    store = Store(str(tmp_path / "t.sqlite3"))

    def write_two(second: tuple) -> None:
        with store.transaction() as db:
            db.execute("INSERT INTO meta VALUES (?, '1')", (second[0] + "-first",))
            db.execute("INSERT INTO meta VALUES (?, ?)", second)

    with pytest.raises(sqlite3.IntegrityError):
        write_two(("b", None))  # NOT NULL
    assert not store._db.in_transaction
    assert store._one("SELECT value FROM meta WHERE key='b-first'") is None  # all or nothing
    with pytest.raises(UnicodeEncodeError):
        write_two(("c", "\ud800"))
    assert not store._db.in_transaction and store._one("SELECT value FROM meta WHERE key='c-first'") is None
    store._write("INSERT INTO meta VALUES ('e', '1')")
    assert store._one("SELECT value FROM meta WHERE key='e'")["value"] == "1"
    store.close()


# -- server 2: the 500s found by fuzzing, and connections that survive an error ----------------

def test_deeply_nested_json_is_a_4xx_never_a_500(http, support):
    for depth in (40, 5_000, 200_000):
        response = raw_post(http, "/chat/messages", "[" * depth + "]" * depth)
        assert 400 <= error_of(response)[0] < 500, depth
        nested = '{"inputs": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        response = raw_post(http, "/chat/messages", nested)
        assert error_of(response)[0] in (400, 413), depth
    response = raw_post(http, "/chat/messages", json.dumps(body_for(support, inputs={"a": [[[[[[[[]]]]]]]]})))
    assert error_of(response) == (400, "TRIGGER_INPUTS_ERROR")  # shallow enough: judged on its merits
    healthy(http, support)


def test_non_ascii_storage_tokens_and_links_are_403_not_500(server):
    with httpx.Client(base_url=server.origin) as raw:
        for url in ["/storage/k?tökën.sïg", "/storage/k?%C3%A9.%C3%A9", "/storage/x?e=1&token=%F0%9F%98%80"]:
            assert raw.put(url, content=b"x").status_code == 403, url
            assert raw.get(url).status_code in (403, 404), url
        response = raw.get("/storage/k", params={"e": "١٢٣", "token": "t"})  # non-ASCII digits
        assert response.status_code == 403


def test_upload_urls_with_bad_ports_are_422(http):
    for url in ["http://example.com:99999/a", "http://example.com:-1/a", "http://example.com:abc/a", "A://[",
                "http://[::1/a"]:
        response = http.post("/chat/media/upload", json={"url": url})
        assert error_of(response) == (422, "VALIDATION_ERROR"), url


def test_after_an_internal_error_the_keep_alive_connection_still_works(http, support):
    # One connection (httpx keeps it alive): a crash answers a proper JSON 500 and the next
    # request on the same connection succeeds, every time.
    for _ in range(20):
        crashed = http.get(f"/chat/app/{support['app_id']}",
                           headers={"X-Atomemo-Fault": f"crash=1; key={fault_key()}"})
        assert error_of(crashed) == (500, "INTERNAL_ERROR")
        assert http.get(f"/chat/app/{support['app_id']}").status_code == 200


# -- server 3: inputs that multiply work are bounded; no 5xx once a message exists -----------

def test_echo_repeat_that_would_make_a_huge_answer_is_refused_before_any_message(http, echo):
    before = len(http.get("/chat/conversations", params={**_owner(echo, "rep")}).json()["items"])
    response = http.post("/chat/messages", json=body_for(echo, userId="rep", query="x" * 1000,
                                                           inputs={"repeat": 1_000_000}))
    assert error_of(response) == (400, "TRIGGER_INPUTS_ERROR")
    assert "limit" in response.json()["message"]
    after = len(http.get("/chat/conversations", params={**_owner(echo, "rep")}).json()["items"])
    assert after == before  # nothing was created
    ok = http.post("/chat/messages", json=body_for(echo, userId="rep", query="ab", inputs={"repeat": 1000}))
    assert "".join(e["data"]["text"] for e in sse_events(ok) if e["event"] == "chat_message") == "ab" * 1000


def _owner(app: dict[str, str], user: str) -> dict[str, str]:
    return {"appId": app["app_id"], "triggerId": app["trigger_id"], "userId": user}


# -- server 4: oversized bodies are refused without being read --------------------------------

def _raw_request(server: LocalServer, head: str, body_chunks: Iterator[bytes] | None = None) -> tuple[bytes, int]:
    """Send a request over a raw socket; returns (the answer's first bytes, body bytes sent)."""
    body_chunks = body_chunks or iter(())
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def test_an_oversized_content_length_is_refused_before_reading_the_body(server, support):
    head = (f"POST /api/chat/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: {server.api_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n")
    answer, _ = _raw_request(server, head)  # no body sent at all: the answer comes anyway
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_is_read_only_up_to_the_limit(server):
    head = (f"POST /api/chat/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: {server.api_key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"x" * 65536

    def chunks() -> Iterator[bytes]:
        for _ in range(1600):  # 100 MiB offered
            yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
            time.sleep(0.001)

    answer, sent = _raw_request(server, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 20 * 1024 * 1024  # the server stopped at its 1 MiB limit, not at 100 MiB


# -- server 5: upload by URL fetches only public addresses -------------------------------------

class _Origin(stdlib_http.BaseHTTPRequestHandler):
    hits: list[str]
    redirect_to = ""

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[tuple[str, list[str], type[_Origin]]]:
    hits: list[str] = []
    handler = type("Origin", (_Origin,), {"hits": hits})
    server = stdlib_http.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", hits, handler
    server.shutdown()
    server.server_close()


def test_upload_by_url_refuses_every_spelling_of_a_private_address(origin):
    where, hits, _ = origin
    port = where.split(":")[1]
    with LocalServer(api_key="k", url_fetch_timeout=2.0) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "k"}) as api:
        for url in [f"http://127.1:{port}/a", f"http://0.0.0.0:{port}/a", f"http://[::ffff:127.0.0.1]:{port}/a",
                    f"http://localhost:{port}/a", f"http://[::1]:{port}/a", f"http://2130706433:{port}/a",
                    f"http://0x7f.1:{port}/a", "http://10.0.0.1/a", "http://192.168.1.1/a",
                    "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/a", "http://224.0.0.1/a",
                    "http://100.64.0.1/a"]:
            response = api.post("/chat/media/upload", json={"url": url})
            status, code = error_of(response)
            assert (status, code) in {(422, "URL_NOT_ALLOWED"), (400, "URL_FETCH_FAILED")}, (url, response.text)
        assert hits == []  # nothing private was ever fetched


def test_upload_by_url_checks_every_redirect_and_bounds_time(origin):
    where, hits, handler = origin
    with LocalServer(api_key="k", allowed_url_origins=(where,), url_fetch_timeout=1.5) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-Api-Key": "k"}) as api:
        ok = api.post("/chat/media/upload", json={"url": f"http://{where}/file.txt"})
        assert ok.status_code == 200 and ok.json()["size"] == 5
        handler.redirect_to = f"http://localhost:{where.split(':')[1]}/file.txt"  # not in the allowed list
        refused = api.post("/chat/media/upload", json={"url": f"http://{where}/redirect"})
        assert error_of(refused) == (422, "URL_NOT_ALLOWED")
        assert hits == ["/file.txt", "/redirect"]
        started = time.monotonic()
        slow = api.post("/chat/media/upload", json={"url": f"http://{where}/slow"})
        assert error_of(slow) == (400, "URL_FETCH_FAILED") and "1.5 s" in slow.json()["message"]
        assert time.monotonic() - started < 2.9  # the origin would have taken 3 s


# -- server 6: a SIGKILL leaves no run 'running' forever --------------------------------------

def test_after_sigkill_interrupted_runs_end_failed_messages_and_executions(tmp_path):
    db = tmp_path / "killed.sqlite3"

    def serve() -> tuple[subprocess.Popen[str], dict]:
        proc = subprocess.Popen([sys.executable, "-m", "atomemo_notebook", "serve", "--db", str(db),
                                 "--api-key", "kill-key", "--test-mode"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        return proc, json.loads(proc.stdout.readline())

    proc, info = serve()
    app = info["apps"][0]
    with httpx.Client(base_url=info["base_url"], headers={"X-Api-Key": "kill-key"}) as api, \
            api.stream("POST", "/chat/messages", json=body_for(app, query="slow please"),
                       headers={"X-Atomemo-Pace": "chunk_size=1; chunk_delay=0.5; node_delay=0.5"}) as stream:
        first = next(stream.iter_lines())
        message_id = json.loads(first[len("data: "):])["data"]["message_id"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    proc, info = serve()
    try:
        with sqlite3.connect(db) as check:
            assert check.execute("SELECT status FROM messages WHERE id=?", (message_id,)).fetchone() == ("failed",)
            assert check.execute("SELECT count(*) FROM executions WHERE status='running'").fetchone() == (0,)
            assert check.execute("SELECT status FROM executions WHERE message_id=?",
                                 (message_id,)).fetchone() == ("failed",)
    finally:
        proc.terminate()
        proc.wait(10)


# -- client 7: memory is bounded against a hostile server --------------------------------------

SMALL = an.Limits(line=1024 * 1024, event=2 * 1024 * 1024, body=1024 * 1024, error_body=4096)


async def test_a_stream_without_a_line_break_fails_at_the_line_limit(kind, server, echo):
    api = make_client(kind, server, limits=SMALL,
                      headers={"X-Atomemo-Fault": f"no_newline=64; key={fault_key()}"})
    with pytest.raises(an.LimitExceededError) as info:
        await collect(api.send_message(**ids(echo), query="x", user_id="bomb"))
    assert info.value.limit_name == "max_line" and "1,048,576" in str(info.value)
    await maybe(api.close())


async def test_a_gzip_bomb_is_stopped_as_a_stream_a_json_answer_and_an_error_body(kind, server, echo):
    bomb = f"gzip_bomb=64; key={fault_key()}"
    api = make_client(kind, server, limits=SMALL, max_retries=0, headers={"X-Atomemo-Fault": bomb})
    with pytest.raises(an.LimitExceededError) as stream_info:
        await collect(api.send_message(**ids(echo), query="x", user_id="bomb"))
    assert stream_info.value.limit_name == "max_line"
    await maybe(api.close())
    api = make_client(kind, server, limits=SMALL, max_retries=0,
                      headers={"X-Atomemo-Fault": f"gzip_bomb=64; key={fault_key()}"})
    with pytest.raises(an.LimitExceededError) as body_info:
        await maybe(api.get_app(echo["app_id"]))
    assert body_info.value.limit_name == "body"
    await maybe(api.close())
    api = make_client(kind, server, limits=SMALL, max_retries=0,
                      headers={"X-Atomemo-Fault": f"gzip_bomb=64; status=500; key={fault_key()}"})
    with pytest.raises(an.InternalServerError) as error_info:
        await maybe(api.get_app(echo["app_id"]))
    assert len(error_info.value.body) <= 4096  # only the first error_body bytes were kept
    await maybe(api.close())


async def test_a_json_answer_over_the_body_limit_fails_naming_it(kind, server, support):
    api = make_client(kind, server, limits=an.Limits(body=200))
    with pytest.raises(an.LimitExceededError) as info:
        await maybe(api.get_app(support["app_id"]))
    assert info.value.limit_name == "body" and "Limits.body=200" in str(info.value)
    await maybe(api.close())


def test_limits_are_validated():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive int"):
            an.Limits(line=bad)


# -- client 8: a call's timeout is a deadline; stream idleness counts events -------------------

async def test_a_trickling_answer_cannot_outlive_the_calls_deadline(kind, server, echo):
    api = make_client(kind, server, max_retries=0,
                      headers={"X-Atomemo-Fault": f"trickle=1; trickle_delay=0.2; times=99; key={fault_key()}"})
    started = time.monotonic()
    with pytest.raises(an.APITimeoutError, match=r"1\.5 s timeout"):
        await maybe(api.get_app(echo["app_id"], timeout=1.5))  # ~3 KB at 5 bytes/s: 10 minutes
    assert time.monotonic() - started < 1.5 + 2.5
    await maybe(api.close())


async def test_the_client_timeout_is_the_deadline_of_every_call(kind, server, echo):
    api = make_client(kind, server, timeout=1.0, max_retries=0,
                      headers={"X-Atomemo-Fault": f"trickle=1; trickle_delay=0.2; times=99; key={fault_key()}"})
    started = time.monotonic()
    with pytest.raises(an.APITimeoutError):
        await maybe(api.list_conversations(app_id=echo["app_id"], trigger_id=echo["trigger_id"], user_id="t"))
    assert time.monotonic() - started < 1.0 + 2.5
    await maybe(api.close())


async def test_stream_idleness_is_measured_in_events_not_bytes(kind, server, echo):
    # After 3 events every frame trickles in a byte at a time: bytes keep coming, events do not.
    api = make_client(kind, server, stream_idle_timeout=1.0, headers={
        "X-Atomemo-Fault": f"trickle=1; trickle_delay=0.3; trickle_after=3; key={fault_key()}"})
    stream = await maybe(api.send_message(**ids(echo), query="idle bytes", user_id="idle"))
    started = time.monotonic()
    events = await collect(stream)
    assert text_of(events) == "idle bytes"
    assert stream.resumes >= 1  # the idle connection was ended and the stream resumed
    assert time.monotonic() - started < 15  # a byte every 0.3 s would have taken minutes
    await maybe(api.close())


# -- client 9: Retry-After in every form, never a bare ValueError ------------------------------

@pytest.mark.parametrize("hint", ["retry_after=NaN", "retry_after=inf", "retry_after=garbage",
                                  "retry_after_ms=300", "retry_after_in=1"])
async def test_retry_after_forms_are_honoured_or_ignored_never_raised(kind, server, echo, hint):
    api = make_client(kind, server, headers={"X-Atomemo-Fault": f"status=429; {hint}; key={fault_key()}"})
    started = time.monotonic()
    events = await collect(api.send_message(**ids(echo), query="after 429", user_id="ra"))
    assert text_of(events) == "after 429"
    if hint == "retry_after_ms=300":
        assert time.monotonic() - started >= 0.27
    await maybe(api.close())


# -- client 10: an idempotent GET survives a connection the server closed ----------------------

async def test_an_idempotent_get_is_retried_after_the_server_closed_the_connection(kind, server, echo):
    key = fault_key()
    api = make_client(kind, server, headers={"X-Atomemo-Fault": f"reset=1; key={key}"})
    app = await maybe(api.get_app(echo["app_id"]))
    assert app.name == "Echo"
    assert server.asgi_app.state.emulator.faults._hits[key] == 2  # reset once, then answered
    await maybe(api.close())


async def test_a_post_is_never_retried_after_the_connection_closed(kind, server, echo):
    key = fault_key()
    api = make_client(kind, server, headers={"X-Atomemo-Fault": f"reset=1; times=5; key={key}"})
    with pytest.raises(an.APIConnectionError):
        await collect(api.send_message(**ids(echo), query="once", user_id="post-once"))
    assert server.asgi_app.state.emulator.faults._hits[key] == 1
    await maybe(api.close())


# -- model 12: a deep conversation reopens; every tree walk is a loop -------------------------

def _linear(count: int) -> list[an.Message]:
    return [an.Message(id=f"m{i}", status="succeeded", query=f"q{i}", answer=f"a{i}",
                       parent_id=f"m{i - 1}" if i else None, conversation_id="c", dialogue_count=i + 1)
            for i in range(count)]


def test_a_100000_message_conversation_reopens():
    tree = MessageTree()
    messages = _linear(100_000)
    for message in reversed(messages):  # children before parents: the worst order for a walk
        tree.add_server(message)
    assert tree.latest_leaf().id == "m99999"
    assert len(tree.path_to("m99999")) == 100_000
    depths = tree.depths()
    assert depths["m0"] == 0 and depths["m99999"] == 99_999
    rows = an.history_records(tree)
    assert len(rows) == 100_000 and rows[0]["depth"] == 99_999
    chat = an.Chat(an.Client("k", base_url="http://127.0.0.1:9/api"), app_id="a", trigger_id="t", user_id="u")
    chat._merge_history(messages)
    assert chat.leaf_id == "m99999"


def test_a_cycle_in_parent_ids_does_not_hang_a_walk():
    tree = MessageTree()
    tree.add_server(an.Message(id="a", parent_id="b", conversation_id="c"))
    tree.add_server(an.Message(id="b", parent_id="a", conversation_id="c"))
    assert {m.id for m in tree.path_to("a")} == {"a", "b"}
    assert set(tree.depths()) == {"a", "b"}
    assert tree.latest_leaf("a") is not None


# -- model 13: replay detects gaps and repeats -------------------------------------------------

def _saved_log(tmp_path: Path, server: LocalServer, echo: dict[str, str]) -> list[str]:
    with an.Client(server.api_key, base_url=server.base_url) as api:
        chat = an.Chat(api, **ids(echo), user_id="replay-hostile")
        reply = chat.ask("replay me exactly")
        assert reply.status == "succeeded"
        path = chat.save_events(tmp_path / "log.jsonl")
    return path.read_text().splitlines()


def test_replay_reports_a_repeated_chat_message_and_skips_it(tmp_path, server, echo):
    lines = _saved_log(tmp_path, server, echo)
    index = next(i for i, line in enumerate(lines) if '"chat_message"' in line)
    lines.insert(index + 1, lines[index])
    (tmp_path / "dup.jsonl").write_text("\n".join(lines) + "\n")
    (reply,) = an.replay(tmp_path / "dup.jsonl")
    assert reply.text == "replay me exactly"
    assert any("repeats event" in a for a in reply.anomalies)


def test_replay_reports_a_missing_chat_message(tmp_path, server, echo):
    lines = _saved_log(tmp_path, server, echo)
    index = next(i for i, line in enumerate(lines) if '"chat_message"' in line)
    del lines[index]
    (tmp_path / "gap.jsonl").write_text("\n".join(lines) + "\n")
    (reply,) = an.replay(tmp_path / "gap.jsonl")
    assert reply.text != "replay me exactly"
    assert any("missing" in a and "incomplete" in a for a in reply.anomalies)


def test_replay_of_deeply_nested_json_names_the_line(tmp_path, server, echo):
    lines = _saved_log(tmp_path, server, echo)
    lines.insert(2, "[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"deep.jsonl:3: JSON nested too deeply"):
        an.replay(tmp_path / "deep.jsonl")


# -- model 14: Reply.text never loses a chunk to a concurrent reader ---------------------------

class _AppendWhileSlicing(list):
    """Parts that receive one more chunk exactly while a reader slices them (the race, made certain)."""

    armed = True

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        value = super().__getitem__(index)
        if isinstance(index, slice) and self.armed:
            self.armed = False
            self.append("LATE")
        return value


def test_reply_text_keeps_a_chunk_appended_while_it_is_read():
    reply = Reply("q", system="atomemo")
    reply._parts = _AppendWhileSlicing(["a", "b"])
    assert reply.text in ("ab", "abLATE")
    assert reply.text == "abLATE"  # the late chunk is never skipped


def test_reply_text_read_from_another_thread_while_chunks_arrive():
    reply = Reply("q", system="atomemo")
    done = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(reply.text)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(20_000):
        reply.apply(ChatMessage("chat_message", {"text": f"{i},"}))
    done.set()
    thread.join(10)
    expected = "".join(f"{i}," for i in range(20_000))
    assert reply.text == expected
    assert all(expected.startswith(text) for text in seen[-50:])


# -- widget 15: widget state is bounded; the transcript is a window --------------------------

def _widget(server: LocalServer, slug: str = "echo", **kwargs) -> an.ChatWidget:
    app = server.app(slug)
    widget = an.ChatWidget(app["app_id"], app["trigger_id"], "bounded", api_key=server.api_key,
                           base_url=server.base_url, **kwargs)
    widget.send = lambda *a, **k: None  # type: ignore[method-assign]
    widget.booted.result(10)
    return widget


def test_a_10_mb_answer_puts_a_few_kb_in_the_traits_and_the_whole_on_request(server):
    from atomemo_notebook.protocol.atomemo.events import event_from_wire
    from atomemo_notebook.session import _runtime as runtime
    from atomemo_notebook.views._view_state import ANSWER_CAP

    widget = _widget(server)
    big = "0123456789" * 1_000_000

    async def stream_big() -> None:
        chat = widget.chat
        reply = chat._start("big", None)
        chat._apply(reply, event_from_wire("message_created", {"message_id": "m-big", "conversation_id": "c-big"}),
                    None, None)
        for start in range(0, len(big), 1 << 20):
            chat._apply(reply, event_from_wire("chat_message", {"text": big[start:start + (1 << 20)]}), None, None)
        chat._apply(reply, event_from_wire("execution_finished", {"resource": {"id": "x", "status": "succeeded"}}),
                    None, None)
        chat._finish(reply)
        await widget._orchestrator.pump.done
        widget._orchestrator.settle()

    runtime.submit(stream_big()).result(60)
    (turn,) = widget.transcript["turns"]
    assert turn["answer_chars"] == len(big) and len(turn["answer"]) == ANSWER_CAP
    from atomemo_notebook.views._widget_protocol import TRAITS

    state = json.dumps({name: getattr(widget, name) for name in TRAITS})  # what a saved notebook keeps
    assert len(state) < 16_000
    replies = []
    widget.send = lambda content, buffers=None: replies.append(content)  # type: ignore[method-assign]
    widget._on_custom(widget, {"type": "command", "id": 1, "name": "answer", "args": {"message_id": "m-big"}}, [])
    assert replies[-1]["ok"] and replies[-1]["result"]["answer"] == big
    widget.close()


def test_the_transcript_is_a_window_that_grows_on_request(server):
    widget = _widget(server)
    for i in range(25):
        widget.ask(f"turn {i}")
        widget.wait()
    transcript = widget.transcript
    assert len(transcript["turns"]) == 20 and transcript["older"] == 5
    assert transcript["turns"][-1]["query"] == "turn 24" and transcript["turns"][0]["query"] == "turn 5"
    widget._on_custom(widget, {"type": "command", "id": 1, "name": "load_older", "args": {}}, [])
    assert len(widget.transcript["turns"]) == 25 and widget.transcript["older"] == 0
    assert set(widget.timelines) == {t["id"] for t in widget.transcript["turns"]}
    widget.close()


def test_path_tail_reads_o_window_of_a_deep_conversation():
    tree = MessageTree()
    for message in _linear(100_000):
        tree.add_server(message)
    tail, total = tree.path_tail("m99999", 20)
    assert [m.id for m in tail] == [f"m{i}" for i in range(99_980, 100_000)] and total == 100_000
    from atomemo_notebook.views._view_state import transcript_view

    view = transcript_view(tree, "m99999", 20)
    assert view["older"] == 99_980 and len(view["turns"]) == 20
    assert view["turns"][-1]["siblings"] == {"index": 0, "count": 1, "prev": None, "next": None}
