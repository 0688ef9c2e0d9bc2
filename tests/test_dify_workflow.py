"""Dify workflow apps (not chatflows) over loopback against the embedded server's one workflow
app: a run's inputs are its message and its outputs the answer's data, streamed and blocking,
stopped on the server, read back by its record and the logs; connect("dify",
app_type="workflow") checks the setting against Dify's System record; hostile bodies and
queries are refused with Dify's error body, never a crash."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import (
    AsyncChat,
    AsyncDifyClient,
    BadRequestError,
    Chat,
    DifyClient,
    MissingAPIKeyError,
    connect,
)
from atomemo_notebook.model._records import history_records, timeline_records
from atomemo_notebook.protocol._call import Call
from atomemo_notebook.protocol.dify import _calls as calls
from atomemo_notebook.protocol.dify._workflow_app import WORKFLOW_DEMO
from atomemo_notebook.server import LocalServer
from atomemo_notebook.views import _static

from .conftest import maybe
from .hostile_server import one_stream_server

USER = "wf-user"
OUTPUTS = {"greeting": "Hello, Ada!", "name": "Ada", "letters": 3}


def wf_client(kind: str, server: LocalServer) -> Any:
    key = server.demo("dify", WORKFLOW_DEMO)["api_key"]
    if kind == "sync":
        return DifyClient(key, base_url=server.dify_base_url)
    return AsyncDifyClient(key, base_url=server.dify_base_url)


def wf_chat(kind: str, server: LocalServer) -> Chat | AsyncChat:
    client = wf_client(kind, server)
    if kind == "sync":
        return Chat(client, user_id=USER, app_type="workflow")
    return AsyncChat(client, user_id=USER, app_type="workflow")


async def test_a_run_streams_its_nodes_and_its_outputs_are_the_answer(kind, server):
    chat = wf_chat(kind, server)
    reply = await maybe(chat.run(name="Ada"))
    assert reply.status == "succeeded" and reply.outputs == OUTPUTS
    assert reply.text == "Hello, Ada!\nAda\n3"  # the End node's outputs, streamed as text_chunks
    assert reply.query == "name: Ada" and reply.message_id == reply.execution_id and reply.task_id
    # The Look up node fails its first attempt and is retried: two runs of it, in turn.
    assert [(s.name, s.status) for s in reply.nodes] == [
        ("Start", "succeeded"), ("Look up", "failed"), ("Look up", "succeeded"), ("Compose", "succeeded"),
        ("End", "succeeded")]
    assert reply.nodes[1].error == "503 from the directory, retrying"
    assert chat.app is not None and chat.app.version == "workflow"
    assert [v["variable"] for v in chat.app.variables] == ["name", "delay"]
    second = await maybe(chat.run({"name": "Grace"}))
    assert second.outputs == {"greeting": "Hello, Grace!", "name": "Grace", "letters": 5}
    rows = history_records(chat.tree)
    assert [(r["query_text"], json.loads(r["outputs"])["name"], r["conversation_id"]) for r in rows] == [
        ("name: Ada", "Ada", None), ("name: Grace", "Grace", None)]
    assert [r["node_name"] for r in timeline_records([reply])] == [s.name for s in reply.nodes]
    record = await maybe(chat.client.workflow_run(reply.execution_id))
    assert record["status"] == "succeeded" and record["outputs"] == OUTPUTS
    assert json.loads(record["inputs"])["name"] == "Ada"


async def test_a_blocking_run_answers_with_its_outputs_and_a_missing_input_is_refused(kind, server):
    client = wf_client(kind, server)
    done = await maybe(client.run_workflow_blocking(inputs={"name": "Linus"}, user=USER))
    assert done["data"]["status"] == "succeeded" and done["data"]["outputs"]["greeting"] == "Hello, Linus!"
    assert done["workflow_run_id"] == done["data"]["id"] and done["task_id"]
    with pytest.raises(BadRequestError) as missing:
        await maybe(client.run_workflow_blocking(inputs={"delay": "1"}, user=USER))
    assert missing.value.code == "invalid_param" and "name is required in input form" in str(missing.value)
    with pytest.raises(BadRequestError) as chat_route:  # a workflow app is no chat app, as Dify says
        await maybe(client.chat_blocking(query="hi", user=USER))
    assert chat_route.value.code == "not_chat_app"


def test_stop_ends_the_run_on_the_server_and_its_record_stays_running_as_difys_does(server):
    chat = wf_chat("sync", server)
    assert isinstance(chat, Chat)
    seen = threading.Event()

    def on_event(reply: Any, event: Any) -> None:
        if event.event == "node_started":
            seen.set()

    stopper = threading.Thread(target=lambda: (seen.wait(10), chat.stop()))
    stopper.start()
    reply = chat.run(name="Slow", delay=30, on_event=on_event)
    stopper.join(10)
    assert reply.status == "stopped" and reply.stopped_on_server and reply.outputs is None
    client = chat.client
    assert isinstance(client, DifyClient)
    # The run ended on the server at the stop, but its record is never updated (Dify 1.13.2's
    # own, tests/peers/dify/workflow-app.jsonl): running in the record and in the logs.
    record = client.workflow_run(str(reply.execution_id))
    assert record["status"] == "running" and record["finished_at"] is None
    logs, _more = client.workflow_logs(limit=100, status="running")
    assert reply.execution_id in [r["workflow_run"]["id"] for r in logs]
    # Stopping a task that does not exist, or someone else's, is a success that stops nothing.
    assert client.stop_workflow("no-such-task", USER) == {"result": "success"}


def test_a_stream_stopped_from_the_client_gets_the_stopped_end_and_empty_outputs(server):
    client = wf_client("sync", server)
    with client.run_workflow(inputs={"name": "Linus", "delay": 30}, user=USER) as stream:
        names = []
        for event in stream:
            names.append(event.event)
            if event.event == "workflow_started":
                assert client.stop_workflow(event.data["task_id"], "someone-else") == {"result": "success"}
                assert client.stop_workflow(event.data["task_id"], USER) == {"result": "success"}
            if event.event == "workflow_finished":
                finished = event.data["data"]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    assert finished["status"] == "stopped" and finished["outputs"] == {} and finished["error"] == "Stopped by user."


async def test_the_logs_list_runs_newest_first_in_pages_filtered(kind, server):
    client = wf_client(kind, server)
    marker = f"pager-{kind}"
    for i in range(3):
        await maybe(client.run_workflow_blocking(inputs={"name": f"{marker}-{i}"}, user=USER))
    page, more = await maybe(client.workflow_logs(limit=2, keyword=marker))
    assert more and len(page) == 2
    names = [json.loads((await maybe(client.workflow_run(r["workflow_run"]["id"])))["inputs"])["name"] for r in page]
    assert names == [f"{marker}-2", f"{marker}-1"]
    rest, more = await maybe(client.workflow_logs(page=2, limit=2, keyword=marker))
    assert not more and len(rest) == 1 and rest[0]["created_by_end_user"]["session_id"] == USER
    done, _ = await maybe(client.workflow_logs(limit=100, status="succeeded", keyword=marker))
    assert len(done) == 3
    with pytest.raises(BadRequestError):  # our client caps the limit; a raw call past it is refused
        await maybe(client._call(Call("GET", "/workflows/logs", lambda b: b, params={"limit": "1000"})))


async def test_workflow_routes_on_a_chat_app_say_it_is_not_a_workflow_app(kind, server):
    key = server.app("support")["dify_api_key"]
    async with httpx.AsyncClient(base_url=server.dify_base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        for method, path, body in (("POST", "/workflows/run", {"inputs": {}, "user": "u"}),
                                   ("POST", "/workflows/tasks/t1/stop", {"user": "u"}),
                                   ("GET", "/workflows/logs", None)):
            answer = await http.request(method, path, json=body)
            assert answer.status_code == 400 and answer.json()["code"] == "not_workflow_app"


def test_connect_checks_app_type_against_difys_record():
    chat = connect("dify", app_type="workflow")
    try:
        reply = chat.run(name="Ada")
        assert reply.outputs == OUTPUTS and chat.origin == {"offline": True, "demo": WORKFLOW_DEMO}
        assert chat.backend.coordinates()["app_type"] == "workflow"
    finally:
        chat.close()
    with pytest.raises(ValueError, match="app_type must be one of 'chat', 'workflow'"):
        connect("dify", app_type="completion")
    with pytest.raises(MissingAPIKeyError):  # a base URL points at a server: it needs its key
        connect("dify", app_type="workflow", base_url="http://127.0.0.1:9/v1")


@settings(max_examples=40, deadline=None)
@given(body=st.one_of(
    st.dictionaries(st.sampled_from(["inputs", "user", "response_mode", "x"]),
                    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=300),
                                 lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                                                            max_size=3),
                                 max_leaves=8), max_size=4),
    st.builds(lambda name, delay: {"inputs": {"name": name, "delay": delay}, "user": "fz",
                                   "response_mode": "blocking"},
              st.text(max_size=400),
              # never a delay the server would wait out: refused, or none
              st.sampled_from([None, "", "abc", float("nan"), float("inf"), -1.0, 61.0, 1e300, [], {}]))))
def test_fuzz_run_bodies_are_answered_or_refused_never_crashed(fuzz_server: LocalServer, body: dict[str, Any]):
    key = fuzz_server.demo("dify", WORKFLOW_DEMO)["api_key"]
    if isinstance(body.get("inputs"), dict) and "delay" in body["inputs"] and not isinstance(
            body["inputs"]["delay"], str | list | dict | type(None)):
        body["inputs"]["delay"] = str(body["inputs"]["delay"])  # JSON has no NaN: as text
    answer = httpx.post(f"{fuzz_server.dify_base_url}/workflows/run", json=body, timeout=10,
                        headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["code"] == "invalid_param"


@pytest.fixture(scope="module")
def fuzz_server():
    with LocalServer(test_mode=True, node_delay=0, dify_close_delay=0.0) as srv:
        yield srv


def test_evaluate_a_workflow_app_its_columns_are_the_inputs_and_scorers_see_the_outputs(server):
    import pandas as pd

    from atomemo_notebook import evaluate
    from atomemo_notebook.evaluation._scorers import exact

    def letters(row: dict[str, Any], reply: Any) -> Any:
        return None if reply.outputs is None else reply.outputs["letters"] == len(row["name"])

    data = pd.DataFrame([{"name": "Ada", "expected": {"greeting": "Hello, Ada!"}},
                         {"name": "Grace", "expected": {"greeting": "Hi"}},
                         {"name": None, "delay": "1"}])  # no name: Dify refuses the run
    results = evaluate(wf_chat("sync", server), data, scorers=[exact, letters], concurrency=2)
    results.wait(60, bar=False)
    df = results.df.sort_values("row")
    assert df["status"].tolist() == ["succeeded", "succeeded", "failed"]
    assert df["query"].tolist() == ["name: Ada", "name: Grace", "delay: 1"]
    assert df["score_exact"].tolist()[:2] == [True, False] and df["score_letters"].tolist()[:2] == [True, True]
    assert json.loads(df["outputs"].tolist()[0]) == OUTPUTS
    assert "name is required in input form" in df["error"].tolist()[2]


def test_a_workflow_row_with_no_inputs_is_refused_before_anything_is_asked():
    from atomemo_notebook.evaluation._inputs import rows_from

    (row,) = rows_from([{"name": "Ada", "inputs": {"delay": 1}, "expected": "x"}], takes_inputs=True)
    assert row.inputs == {"delay": 1, "name": "Ada"} and row.query == "delay: 1\nname: Ada"
    with pytest.raises(ValueError, match="row 0: no inputs"):
        rows_from([{"expected": "x"}], takes_inputs=True)


def test_the_widget_asks_a_workflow_app_with_its_inputs_form_and_shows_the_outputs(server):
    from atomemo_notebook import ChatWidget

    from .conftest import wait_until
    from .test_widget import Recorder, browser, turns

    key = server.demo("dify", WORKFLOW_DEMO)["api_key"]
    widget = ChatWidget(system="dify", app_type="workflow", api_key=key, base_url=server.dify_base_url,
                        user_id=USER)
    widget.send = Recorder()  # type: ignore[method-assign]
    try:
        widget.booted.result(10)
        assert widget.header["takes_inputs"] is True and widget.header["app_name"] == "Greeting workflow"
        assert [v["variable"] for v in widget.header["variables"]] == ["name", "delay"]
        browser(widget, "run", inputs={"name": "Ada", "delay": ""})
        wait_until(lambda: bool(turns(widget)) and turns(widget)[-1]["status"] == "succeeded", what="the run")
        (turn,) = turns(widget)
        assert turn["query"] == "name: Ada" and json.loads(turn["outputs"]) == OUTPUTS
        assert turn["error"] is None  # the retried node's failed first attempt failed nothing
        assert widget.chat.inputs == {"name": "Ada"}
        timeline = widget.timelines[turn["id"]]
        assert [n["name"] for n in timeline["nodes"]] == ["Start", "Look up", "Look up", "Compose", "End"]
        # What a notebook saved without its kernel shows: the outputs too, as escaped JSON text.
        static = _static.settled_html(widget)
        assert "<summary>outputs</summary>" in static and "&quot;greeting&quot;: &quot;Hello, Ada!&quot;" in static
    finally:
        widget.close()


def workflow_socket(body: bytes) -> tuple[str, threading.Thread]:
    """A workflow app written by hand on a raw socket: /info and /parameters answered empty,
    then the run's stream exactly as given."""
    return one_stream_server(body, b"/workflows/run")


def test_hostile_outputs_over_a_raw_socket_are_kept_bounded_and_shown_as_text():
    from atomemo_notebook.model.tree import MessageTree
    from atomemo_notebook.views._view_state import turn_view

    run = {"workflow_run_id": "r1", "task_id": "t1"}
    deep = "[" * 500 + "]" * 500
    wide = "{" + ",".join(f'"k{i}": "<script>alert({i})</script>"' for i in range(50_000)) + "}"
    frames = [json.dumps({"event": "workflow_started", **run, "data": {"id": "r1", "workflow_id": "w"}}),
              json.dumps({"event": "text_chunk", **run, "data": {"text": "<img src=x onerror=alert(1)>"}}),
              '{"event": "workflow_finished", "workflow_run_id": "r1", "task_id": "t1", "data": {"id": "r1", '
              f'"status": "succeeded", "outputs": {{"deep": {deep}, "wide": {wide}, "ok": 1}}}}}}']
    body = "".join(f"data: {f}\n\n" for f in frames).encode()
    base_url, thread = workflow_socket(body)
    with DifyClient("app-test", base_url=base_url) as client:
        chat = Chat(client, user_id="hostile", app_type="workflow")
        reply = chat.run(name="x")
    thread.join(10)
    assert reply.status == "succeeded" and reply.message_id == "r1" and reply.text == "<img src=x onerror=alert(1)>"
    # Kept within the reply's share of memory: nesting cut at the keeper's depth, the rest past
    # the share left out, and an anomaly says so.
    assert reply.outputs is not None and "deep" in reply.outputs and "nested past depth" in json.dumps(reply.outputs)
    assert any("reply_memory" in a and "workflow_finished" in a for a in reply.anomalies)
    tree = MessageTree()
    view = turn_view(tree, tree.add_reply(reply))
    assert view["outputs"] is not None and len(view["outputs"]) <= 100_000 + 100
    (row,) = chat.history_records()
    assert row["outputs"] is not None and len(row["outputs"]) < 50_000_000


def test_outputs_nested_past_the_decoders_depth_are_refused_and_the_run_is_no_success():
    from atomemo_notebook import APIConnectionError

    deep = "[" * 20_000 + "]" * 20_000
    body = ('data: {"event": "workflow_started", "workflow_run_id": "r1", "task_id": "t1", "data": {"id": "r1"}}\n\n'
            'data: {"event": "workflow_finished", "workflow_run_id": "r1", "task_id": "t1", "data": {"id": "r1", '
            f'"status": "succeeded", "outputs": {{"deep": {deep}}}}}}}\n\n').encode()
    base_url, thread = workflow_socket(body)
    with DifyClient("app-test", base_url=base_url) as client:
        chat = Chat(client, user_id="hostile", app_type="workflow")
        # Its end unreadable: not a success. The run is named, so a resume by its id is tried,
        # and this one-shot server is gone by then.
        with pytest.raises(APIConnectionError, match=r"stream ended|Connection refused"):
            chat.run(name="x")
    thread.join(10)
    reply = chat.last_reply
    assert reply is not None and reply.status == "failed" and reply.outputs is None
    assert any("nested too deep" in a for a in reply.anomalies)  # the stream's bounded parser said so


@settings(max_examples=40, deadline=None)
@given(params=st.dictionaries(st.sampled_from(["page", "limit", "status", "keyword", "x"]),
                              st.text(max_size=30), max_size=5))
def test_fuzz_log_queries_are_answered_or_refused_never_crashed(fuzz_server: LocalServer, params: dict[str, str]):
    key = fuzz_server.demo("dify", WORKFLOW_DEMO)["api_key"]
    answer = httpx.get(f"{fuzz_server.dify_base_url}/workflows/logs", params=params, timeout=10,
                       headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code in (200, 400), answer.text
    body = answer.json()
    assert body["code"] == "invalid_param" if answer.status_code == 400 else len(body["data"]) <= body["limit"]


def test_a_saved_workflow_run_replays_with_its_outputs(server, tmp_path):
    from atomemo_notebook.model._replay import replay

    chat = wf_chat("sync", server)
    asked = chat.run(name="Ada")
    assert isinstance(chat, Chat)
    (again,) = replay(chat.save_events(tmp_path / "runs.jsonl"))
    assert (again.message_id, again.outputs, again.text, again.status) == (
        asked.message_id, OUTPUTS, asked.text, "succeeded")
    assert [(s.name, s.status) for s in again.nodes] == [(s.name, s.status) for s in asked.nodes]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=10), kids, max_size=5),
                    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(JSON, st.fixed_dictionaries({"data": JSON, "has_more": JSON})))
def test_fuzz_a_logs_answer_is_read_or_refused_as_a_bad_answer(body: Any):
    from atomemo_notebook.protocol._errors import APIResponseValidationError

    call = calls.workflow_logs(limit=500)
    assert call.params == {"page": "1", "limit": "100"}  # our limit is capped before it is sent
    try:
        items, more = call.parse(body)
    except APIResponseValidationError:
        assert not isinstance(body, dict)
        return
    assert isinstance(more, bool) and all(isinstance(i, dict) for i in items) and len(items) <= 100


def test_two_runs_compare_like_two_answers_their_attempts_aligned(server):
    chat = wf_chat("sync", server)
    assert isinstance(chat, Chat)
    a, b = chat.run(name="Ada"), chat.run(name="Grace")
    rows = chat.compare_records(str(a.message_id), str(b.message_id))
    assert rows[0]["output_a"] == a.text and rows[0]["output_b"] == b.text and rows[0]["output_differs"]
    names = [r["node_name"] for r in rows[1:]]
    assert names == ["Start", "Look up", "Look up", "Compose", "End"]
    assert [(r["status_a"], r["status_b"]) for r in rows[1:] if r["node_name"] == "Look up"] == [
        ("failed", "failed"), ("succeeded", "succeeded")]


async def test_a_question_to_a_workflow_app_and_a_run_of_a_chat_app_are_clear_errors(kind, server):
    from .test_dify import dify_chat

    workflow = wf_chat(kind, server)
    with pytest.raises(ValueError, match="takes inputs, not a question"):
        await maybe(workflow.ask("hello", inputs={"name": "Ada"}))
    chat_app = dify_chat(kind, server, "echo")
    with pytest.raises(ValueError, match=r"run\(\) is for an app whose runs take inputs"):
        await maybe(chat_app.run(name="Ada"))
    assert not chat_app.replies  # refused before anything was asked
