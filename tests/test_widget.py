"""ChatWidget on the Python side: traits, messages in and out, coalescing, errors, and no
key anywhere the browser could see."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer
from atomemo_notebook.session import _runtime as runtime
from atomemo_notebook.transport._pipelit import PipelitClient
from atomemo_notebook.views import _static
from atomemo_notebook.views._commands import coerce_inputs
from atomemo_notebook.views._live import FLUSH_INTERVAL

from .conftest import wait_until, wait_until_async


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.sent.append((time.monotonic(), json.loads(json.dumps(content))))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.sent if m.get("type") == kind]


def make(server: LocalServer, slug: str = "support", **kwargs: Any) -> tuple[ChatWidget, Recorder]:
    app = server.app(slug)
    widget = ChatWidget(app["app_id"], app["trigger_id"], "widget-user", api_key=server.api_key,
                        base_url=server.base_url, **kwargs)
    recorder = Recorder()
    widget.send = recorder  # type: ignore[method-assign]
    widget.booted.result(10)
    return widget, recorder


_ids = iter(range(1, 1_000_000))


def browser(widget: ChatWidget, name: str, buffers: list[bytes] | None = None, **args: Any) -> int:
    """Send a command as the front end does; returns its request id."""
    request = next(_ids)
    widget._on_custom(widget, {"type": "command", "id": request, "name": name, "args": args}, buffers or [])
    return request


def turns(widget: ChatWidget) -> list[dict[str, Any]]:
    return widget.transcript["turns"]


def reply_to(rec: Recorder, request: int) -> dict[str, Any]:
    (reply,) = [m for m in rec.of("reply") if m["id"] == request]
    return reply


def test_ask_streams_then_settles_into_traits(server):
    widget, rec = make(server)
    reply = widget.ask("What does it cost?")
    widget.wait()
    assert reply.status == "succeeded"
    assert widget.header["app_name"] == "Support Assistant" and widget.header["app_version"] == "v1.0"
    assert widget.header["offline"] is False
    (message,) = turns(widget)
    assert message["answer"] == reply.text and message["status"] == "succeeded"
    assert widget.transcript["leaf_id"] == message["id"] and widget.live == {}
    timeline = widget.timelines[message["id"]]
    assert [n["name"] for n in timeline["nodes"]] == ["Chat Trigger", "Search help center", "Draft answer", "Reply"]
    live = rec.of("live")
    assert "".join(m.get("append", "") for m in live) == reply.text
    assert [m["seq"] for m in live] == list(range(1, len(live) + 1))
    assert live[-1]["status"] == "succeeded"
    assert any("timeline" in m for m in live)


def test_deltas_are_coalesced_to_about_30_per_second(echo):
    with LocalServer(chunk_size=1, chunk_delay=0.001, node_delay=0) as fast:
        widget, rec = make(fast, "echo", inputs={"repeat": 40})
        reply = widget.ask("0123456789")
        widget.wait()
        live = rec.of("live")
        times = [t for t, m in rec.sent if m.get("type") == "live"]
        duration = times[-1] - times[0]
        assert reply.chunks == 400
        assert len(live) <= duration / FLUSH_INTERVAL + 3
        assert len(live) < reply.chunks / 3
        assert "".join(m.get("append", "") for m in live) == "0123456789" * 40


def test_browser_commands_send_regenerate_select_edit_events(server):
    widget, rec = make(server)
    browser(widget, "send", text="first")
    widget.wait()
    browser(widget, "send", text="second")
    widget.wait()
    first, second = turns(widget)
    assert second["parent_id"] == first["id"]
    assert second["siblings"] == {"index": 0, "count": 1, "prev": None, "next": None}
    browser(widget, "regenerate", message_id=second["id"])
    widget.wait()
    regen = turns(widget)[-1]
    assert regen["parent_id"] == first["id"] and regen["query"] == "second"
    versions = regen["siblings"].pop("versions")
    assert regen["siblings"] == {"index": 1, "count": 2, "prev": second["id"], "next": None}
    assert [v["id"] for v in versions] == [second["id"], regen["id"]] and {v["query"] for v in versions} == {"second"}
    assert widget.transcript["leaf_id"] == regen["id"]
    browser(widget, "select", message_id=second["id"])
    assert widget.transcript["leaf_id"] == second["id"] and turns(widget)[-1]["id"] == second["id"]
    browser(widget, "send", text="third")
    widget.wait()
    assert turns(widget)[-1]["parent_id"] == second["id"]
    browser(widget, "edit", message_id=first["id"], text="first, edited")
    widget.wait()
    assert [t["query"] for t in turns(widget)] == ["first, edited"]
    assert turns(widget)[0]["siblings"]["count"] == 2
    request = browser(widget, "events", message_id=None, event_filter="node_started", search=None,
                      offset=0, limit=50)
    page = reply_to(rec, request)["result"]
    assert page["rows"] and {r["event"] for r in page["rows"]} == {"node_started"}
    assert "chat_message" in page["types"] and len(page["messages"]) == 5
    request = browser(widget, "events", message_id=None, event_filter=None, search="first, edited",
                      offset=-10, limit=10)
    found = reply_to(rec, request)["result"]
    assert found["total"] >= 1 and all("first, edited" in r["data"] for r in found["rows"])


def test_a_bad_command_is_answered_with_an_error_not_raised(server):
    widget, rec = make(server)
    for name, args in [("nope", {}), ("send", {}), ("send", {"text": 3}), ("select", {"message_id": "missing"}),
                       ("events", {"offset": "x"})]:
        request = browser(widget, name, **args)
        reply = reply_to(rec, request)
        assert reply["ok"] is False and reply["error"]["message"], (name, args)
    widget._on_custom(widget, {"type": "command"}, [])  # no id, no name: still answered
    widget._on_custom(widget, ["not", "a", "dict"], [])  # ignored
    assert rec.of("reply")[-1]["ok"] is False


def test_stop_from_the_browser_keeps_the_partial_answer():
    with LocalServer(chunk_size=2, chunk_delay=0.02, node_delay=0) as slow:
        widget, _ = make(slow, "echo")
        reply = widget.ask("x" * 400)
        wait_until(lambda: reply.chunks >= 5, what="5 chunks")
        browser(widget, "stop")
        widget.wait(5)
        assert reply.status == "stopped" and 0 < len(reply.text) < 400
        (message,) = turns(widget)
        assert message["status"] == "stopped" and message["answer"] == reply.text
        (record,) = widget.chat.history_records()
        assert record["status"] == "stopped"  # one vocabulary: not "failed" in the records


def test_hello_mid_stream_recovers_the_live_state():
    with LocalServer(chunk_size=2, chunk_delay=0.02, node_delay=0) as slow:
        widget, rec = make(slow, "echo")
        reply = widget.ask("y" * 200)
        wait_until(lambda: reply.chunks >= 10 and widget._orchestrator.pump is not None and widget._orchestrator.pump.sent > 0,
                   what="text sent to the browser")
        request = browser(widget, "hello")
        snapshot = reply_to(rec, request)["result"]
        assert snapshot["key"] == widget.live["key"] and snapshot["text"].startswith("yyyy")
        assert snapshot["timeline"]["nodes"]
        widget.stop()
        widget.wait(5)


def test_errors_are_shown_with_their_code_and_the_draft_kept(server):
    widget, _ = make(server, "echo", inputs={"nope": 1})
    browser(widget, "send", text="my unsent words")
    widget.wait()
    assert widget.notice["code"] == "TRIGGER_INPUTS_ERROR"
    assert widget.notice["draft"] == "my unsent words"
    browser(widget, "set_inputs", inputs={"tone": "calm", "repeat": "2"})
    assert widget.chat.inputs == {"tone": "calm", "repeat": 2}
    browser(widget, "send", text="ok")
    widget.wait()
    assert widget.notice == {} and turns(widget)[-1]["answer"] == "okok"


def test_attach_uploads_in_python_and_sends_a_file_message(server):
    widget, _ = make(server, "echo")
    browser(widget, "attach", buffers=[b"hello"], filename="notes.txt", mime_type="text/plain")
    wait_until(lambda: bool(widget.attachment), what="the upload")
    assert widget.attachment == {"filename": "notes.txt", "size": 5, "mime_type": "text/plain"}
    browser(widget, "send", text="")
    widget.wait()
    assert widget.attachment == {}
    (message,) = turns(widget)
    assert message["file"]["filename"] == "notes.txt" and message["answer"] == "[file: notes.txt]"


def test_new_and_reopened_conversations(server):
    widget, _ = make(server)
    widget.ask("remember this")
    widget.wait()
    old = widget.header["conversation_id"]
    assert widget.conversations[0]["id"] == old
    browser(widget, "new_conversation")
    wait_until(lambda: not turns(widget), what="an empty transcript")
    assert turns(widget) == [] and widget.header["conversation_id"] is None
    widget.open_conversation(old)
    assert [m["query"] for m in turns(widget)] == ["remember this"]


def test_the_key_is_in_no_trait_message_or_repr(server):
    widget, rec = make(server)
    widget.ask("secret check")
    widget.wait()
    browser(widget, "hello")
    browser(widget, "events", message_id=None, event_filter=None, search=None, offset=0, limit=10)
    state = json.dumps(widget.get_state(), default=str)
    assert server.api_key not in state
    assert server.api_key not in json.dumps([m for _, m in rec.sent])
    assert server.api_key not in repr(widget)
    assert server.base_url not in state  # not even where the API lives


def test_offline_default_needs_no_key(monkeypatch):
    monkeypatch.delenv("ATOMEMO_API_KEY", raising=False)
    widget = ChatWidget()
    widget.send = Recorder()  # type: ignore[method-assign]
    widget.booted.result(10)
    assert widget.header["offline"] is True
    assert {a["slug"] for a in widget.header["demo_apps"]} == {"support", "agent", "flaky", "sampler", "thinker", "approval", "echo"}
    browser(widget, "pick_demo", slug="agent")
    wait_until(lambda: widget.header.get("app_name") == "Order Agent", what="the agent app")
    assert widget.header["app_name"] == "Order Agent"
    reply = widget.ask("where is order 42?")
    widget.wait()
    assert reply.status == "succeeded" and len(reply.tool_calls) == 3
    assert "offline demo" in repr(widget)


def test_key_mode_needs_app_and_trigger(monkeypatch):
    monkeypatch.delenv("ATOMEMO_APP_ID", raising=False)
    with pytest.raises(ValueError, match="app_id and trigger_id"):
        ChatWidget(api_key="k")


def test_snapshot_is_sanitized_static_html(server, tmp_path):
    widget, _ = make(server, "echo")
    widget.ask('<script>alert(1)</script> [x](javascript:alert(2)) ![i](https://evil.example/p.png) **bold**')
    widget.wait()
    html = widget.snapshot().data
    assert "<strong>bold</strong>" in html and "Echo" in html
    assert "<script" not in html and 'href="javascript' not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "nodes" in html
    page = widget.export_html(tmp_path / "chat.html").read_text()
    assert page.startswith("<!doctype html>") and "Content-Security-Policy" in page


def testcoerce_inputs():
    variables = [{"variable": "repeat", "type": "number"}, {"variable": "tone", "type": "string"}]
    assert coerce_inputs({"repeat": "3", "tone": "x", "empty": ""}, variables) == {"repeat": 3, "tone": "x"}
    assert coerce_inputs({"repeat": "2.5"}, variables) == {"repeat": 2.5}
    with pytest.raises(ValueError, match="must be a number"):
        coerce_inputs({"repeat": "lots"}, variables)


def test_a_replaced_answer_is_sent_as_a_reset(server):
    from atomemo_notebook import Message
    from atomemo_notebook.protocol.atomemo.events import StreamRecovered, event_from_wire

    widget, rec = make(server, "echo")

    async def recover() -> None:
        reply = widget.chat._start("q", None)
        reply.apply(event_from_wire("chat_message", {"text": "partial, then diverged"}))
        await wait_until_async(lambda: bool(rec.of("live")), what="the partial answer to be sent")
        stored = Message(id="m", status="succeeded", answer="the stored answer")
        reply.apply(StreamRecovered(StreamRecovered.NAME, {"message": stored.to_wire()}))
        reply.close()
        await widget._orchestrator.pump.done

    runtime.submit(recover()).result(10)
    live = rec.of("live")
    assert live[0]["append"] == "partial, then diverged"
    resets = [m for m in live if "reset" in m]
    assert len(resets) == 1 and resets[0]["reset"] == "the stored answer"
    assert live[-1]["status"] == "succeeded"  # the stored message's status: one vocabulary


def test_an_unreachable_api_is_a_clear_error_not_a_hang():
    import socket

    from atomemo_notebook import APIConnectionError

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    widget = ChatWidget("app", "trigger", "u", api_key="k", base_url=f"http://127.0.0.1:{port}/api")
    widget.send = Recorder()  # type: ignore[method-assign]
    reply = widget.ask("hello?")  # returns at once; the failure arrives on the reply
    widget.wait(30)  # retries with backoff, then the error
    assert reply.done
    assert reply.status == "failed" and isinstance(reply.error, APIConnectionError)
    assert widget.notice["code"] == "APIConnectionError" and widget.notice["draft"] == "hello?"
    assert widget.header["app_name"] == "app"  # no app info: the id stands in


def test_every_trait_and_every_reply_has_the_declared_shape(server):
    from atomemo_notebook.views._widget_protocol import COMMANDS, TRAITS, check

    widget, rec = make(server, "flaky")
    widget.ask("inventory?")
    widget.wait()
    widget.ask("this will fail")
    widget.wait()
    for name, shape in TRAITS.items():
        check(getattr(widget, name), shape, name)
    turn = turns(widget)[-1]
    assert turn["status"] == "failed" and turn["error"]["node"] == "Fetch inventory"
    requests = {
        "hello": {}, "answer": {"message_id": turn["id"]},
        "detail": {"message_id": turn["id"], "key": widget.timelines[turn["id"]]["nodes"][1]["key"]},
        "events": {"message_id": turn["id"], "event_filter": None, "search": None, "offset": 0, "limit": 5},
        "load_older": {}, "select": {"message_id": turn["id"]},
    }
    for name, args in requests.items():
        request = browser(widget, name, **args)
        reply = reply_to(rec, request)
        assert reply["ok"], (name, reply)
        check(reply["result"], COMMANDS[name][1], f"{name} result")
    for message in rec.of("live"):
        from atomemo_notebook.views._widget_protocol import LiveMessage

        check(message, LiveMessage, "live")


def test_a_failed_turn_names_its_failing_node_with_a_link(server):
    widget, _ = make(server, "flaky")
    widget.ask("this will fail")
    widget.wait()
    (turn,) = turns(widget)
    assert turn["status"] == "failed"
    error = turn["error"]
    assert error["code"] == "NODE_FAILED" and "HTTP 503" in error["message"]
    assert error["node"] == "Fetch inventory"
    keys = [n["key"] for n in widget.timelines[turn["id"]]["nodes"]]
    assert error["node_key"] in keys


def test_a_dify_widget_shows_sources_chips_and_why_it_cannot_regenerate(server):
    key = server.app("support")["dify_api_key"]
    widget = ChatWidget(system="dify", api_key=key, base_url=server.dify_base_url, user_id="dify-widget")
    rec = Recorder()
    widget.send = rec  # type: ignore[method-assign]
    widget.booted.result(10)
    header = widget.header
    assert header["system"] == "dify" and header["app_name"] == "Support Assistant"
    assert header["capabilities"]["branching"] is False and header["capabilities"]["stop"] == "server"
    assert "parent_message_id" in header["capabilities"]["regenerate_reason"]
    assert header["description"].startswith("Hi! I am the Support Assistant")  # Dify's opening statement
    browser(widget, "send", text="How do I rotate my API key?")
    widget.wait()
    (turn,) = turns(widget)
    assert turn["citations"][0]["title"] == "Creating and rotating API keys"
    assert turn["suggestions"] and "How do I rotate my API key?" not in turn["suggestions"]
    request = browser(widget, "regenerate", message_id=turn["id"])
    refused = reply_to(rec, request)
    assert refused["ok"] is False and "no parent_message_id" in refused["error"]["message"]
    assert len(turns(widget)) == 1  # nothing was sent
    state = json.dumps(widget.get_state(), default=str)
    assert key not in state and key not in repr(widget)


def test_a_pipelit_widget_lights_nodes_clears_after_asking_and_closes_its_socket():
    with LocalServer(test_mode=True, chunk_delay=0, node_delay=0) as srv:  # Pipelit keeps one conversation
        widget = ChatWidget(system="pipelit", api_key=srv.pipelit_api_key, base_url=srv.pipelit_base_url,
                            workflow="agent", user_id="pipelit-widget")
        rec = Recorder()
        widget.send = rec  # type: ignore[method-assign]
        widget.booted.result(10)
        caps = widget.header["capabilities"]
        assert widget.header["system"] == "pipelit" and caps["token_streaming"] is False
        assert caps["conversations"] is False and caps["new_conversation"] == "clear"
        assert caps["branching"] is False and "parent" in caps["regenerate_reason"]
        graph = widget.header["graph"]  # Pipelit publishes its workflow definition: the graph is its own
        assert [n["name"] for n in graph["nodes"]] == ["Chat Trigger", "Order agent", "Reply"]
        assert len(graph["edges"]) == 2 and not graph["cut"]
        browser(widget, "send", text="Where is order 1042? I'm in Berlin.")
        widget.wait()
        (turn,) = turns(widget)
        assert turn["status"] == "succeeded" and "A-1042" in turn["answer"]
        nodes = widget.timelines[turn["id"]]["nodes"]
        assert {n["status"] for n in nodes} == {"succeeded"} and len(nodes) == 2  # the trigger: never reported
        agent = next(n for n in nodes if n["name"] == "Order agent")
        assert [t["name"] for t in agent["tools"]] == ["lookup_order", "get_weather", "calculator"]
        hub = widget.chat.client.hub
        browser(widget, "new_conversation")
        wait_until(lambda: not turns(widget), 10)
        with PipelitClient(srv.pipelit_api_key, base_url=srv.pipelit_base_url) as look:
            assert not look.history("agent").messages  # cleared on the server too
        widget.close()
        wait_until(lambda: hub.closed, 10)


def test_an_odyssey_widget_waits_then_shows_steps_sources_and_chips():
    with LocalServer(test_mode=True, chunk_delay=0, node_delay=0) as srv:
        widget = ChatWidget(system="odyssey", api_key=srv.odyssey_api_key, base_url=srv.odyssey_base_url,
                            workspace_id=srv.odyssey_workspace_id, agent_id="support", user_id="ody-widget")
        rec = Recorder()
        widget.send = rec  # type: ignore[method-assign]
        widget.booted.result(10)
        caps = widget.header["capabilities"]
        assert widget.header["system"] == "odyssey" and caps["token_streaming"] is False and caps["files"] is False
        assert "may still finish" in caps["stop_note"] and "parent message" in caps["regenerate_reason"]
        browser(widget, "send", text="How do I rotate my API key?")
        widget.wait()
        (turn,) = turns(widget)
        assert turn["answer"].startswith("To rotate an API key") and len(turn["citations"]) == 3
        assert turn["citations"][0]["url"].startswith("https://help.example.com/")
        assert len(turn["suggestions"]) == 3
        nodes = widget.timelines[turn["id"]]["nodes"]
        assert [(n["name"], n["depth"], n["reported"]) for n in nodes] == [
            ("Support Assistant", 0, True), ("Help center", 1, True), ("llm step", 1, True),
            ("response step", 1, True)]
        assert all(n["start_ms"] is None and n["duration_ms"] is None for n in nodes)
        assert widget.header["graph"] is None  # no published graph: inferred from the steps
        assert {(e["source"], e["target"]) for e in widget.timelines[turn["id"]]["edges"]} >= {
            (nodes[0]["node_id"], nodes[1]["node_id"])}
        browser(widget, "send", text=turn["suggestions"][0])  # a chip asks its question
        widget.wait()
        assert len(turns(widget)) == 2 and turns(widget)[1]["query"] == turn["suggestions"][0]
        sources = widget.chat.sources_df()
        assert sources[sources["message_id"] == turn["id"]]["position"].tolist() == [1, 2, 3]
        widget.close()


def test_the_compare_command_diffs_two_versions_of_an_answer(server):
    from atomemo_notebook.views._widget_protocol import CompareResult, check

    widget, rec = make(server, "echo")
    browser(widget, "send", text="the quick brown fox")
    widget.wait()
    (first,) = turns(widget)
    browser(widget, "edit", message_id=first["id"], text="the quick red fox")
    widget.wait()
    (second,) = turns(widget)
    assert second["siblings"]["prev"] == first["id"]
    result = reply_to(rec, browser(widget, "compare", a=first["id"], b=second["id"]))["result"]
    check(result, CompareResult, "compare")
    assert [s for s in result["answer_a"] if s["op"] == "del"] == [{"op": "del", "text": "brown"}]
    assert [s for s in result["answer_b"] if s["op"] == "add"] == [{"op": "add", "text": "red"}]
    assert result["rows"] and all(r["ran_in"] == "both" for r in result["rows"])
    assert any(r["output_differs"] for r in result["rows"])
    frame = widget.chat.compare(first["id"], second["id"])
    assert frame["output_differs"].tolist()[1:] == [r["output_differs"] for r in result["rows"]]
    refused = reply_to(rec, browser(widget, "compare", a=first["id"], b="nope"))
    assert refused["ok"] is False and "nope" in refused["error"]["message"]


def test_the_graph_structure_is_published_or_inferred(server):
    widget, _ = make(server, "flaky")
    graph = widget.header["graph"]
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    edges = {(names[e["source"]], names[e["target"]], e["label"]) for e in graph["edges"]}
    assert edges == {("Chat Trigger", "Retry loop", None), ("Retry loop", "Fetch inventory", "each try"),
                     ("Retry loop", "Request ok?", "done"), ("Request ok?", "Inventory report", "true"),
                     ("Request ok?", "Apology", "false")}
    assert [n["parent"] for n in graph["nodes"] if n["name"] == "Fetch inventory"] == [
        next(i for i, name in names.items() if name == "Retry loop")]
    widget.ask("Is the blue mug in stock?").wait()
    widget.wait()
    (turn,) = turns(widget)
    timeline = widget.timelines[turn["id"]]
    by_id = {n["node_id"]: n["name"] for n in timeline["nodes"]}
    inferred = {(by_id[e["source"]], by_id[e["target"]]) for e in timeline["edges"]}
    assert ("Chat Trigger", "Retry loop") in inferred and ("Retry loop", "Fetch inventory") in inferred
    key = server.app("support")["dify_api_key"]
    dify = ChatWidget(system="dify", api_key=key, base_url=server.dify_base_url, user_id="graph")
    dify.booted.result(10)
    assert dify.header["graph"] is None  # Dify publishes no graph: the view infers it from each run
    dify.close()


def test_the_snapshot_holds_a_static_graph_and_comparison(server):
    widget, _ = make(server, "flaky")
    first = widget.ask("Is the blue mug in stock?")
    first.wait()
    widget.wait()
    widget.edit(first.message_id, "Check the inventory and <fail>")
    widget.wait()
    html = _static.conversation_html(widget)
    assert html.count("<svg") == 1 and 'data-status="failed"' in html and 'data-status="not run"' in html
    assert "Fetch inventory" in html and "Workflow graph (the last run drawn on it)" in html
    assert "Compared with the previous version of this answer" in html and "a only" in html
    assert "<fail>" not in html and "&lt;fail&gt;" in html  # text from the conversation is escaped


def test_ask_then_wait_in_a_loop_never_finds_the_last_answer_still_streaming(server):
    """The README's pattern: `widget.ask(q).wait()` then at once the next ask. A whole answer
    whose view is still settling is waited for, never refused as 'still streaming'."""
    widget, _ = make(server, "echo")
    for i in range(25):
        reply = widget.ask(f"question {i}")
        reply.wait(30)
        assert reply.status == "succeeded"
    assert len(widget.chat.replies) == 25


def test_the_saved_static_copy_says_why_a_turn_failed_and_which_version_it_shows(server):
    """27.6: the notebook's static copy (what GitHub and nbconvert show) names a failed turn's
    error and node, and marks a regenerated answer as one version of several."""
    widget, _ = make(server, "flaky")
    failed = widget.ask("this will fail")
    widget.wait()
    html = widget.snapshot().data
    assert "NODE_FAILED" in html and "HTTP 503" in html and "Fetch inventory" in html
    widget.regenerate(failed.message_id)
    widget.wait()
    assert "version 2 of 2" in widget.snapshot().data


def test_a_regenerate_clicked_the_moment_the_answer_shows_settled_is_accepted(server):
    """The browser learns an answer has settled when the live turn clears; a Regenerate sent at
    that very moment (the widget's coroutine has not returned yet) must be taken, not refused as
    "still streaming" (it was, under load, in the test below)."""
    widget, rec = make(server)
    requests: list[int] = []

    def on_live(change: dict[str, Any]) -> None:
        if change["old"] and not change["new"] and not requests:  # the settled turn shows now
            requests.append(browser(widget, "regenerate", message_id=turns(widget)[0]["id"]))

    widget.observe(on_live, names="live")
    try:
        browser(widget, "send", text="first")
        wait_until(lambda: bool(requests) and any(m["id"] == requests[0] for m in rec.of("reply")), 30)
        assert "error" not in reply_to(rec, requests[0]), reply_to(rec, requests[0])
        wait_until(lambda: turns(widget) and turns(widget)[0]["siblings"]["count"] == 2 and not widget.live, 30)
        widget.wait()
        assert turns(widget)[0]["siblings"]["count"] == 2
    finally:
        widget.unobserve(on_live, names="live")
        widget.close()


def test_a_regenerate_right_after_the_first_answer_is_not_refused_while_the_list_loads(server):
    """The first answer of a new conversation refreshes the list of conversations; that load must
    not keep the answer "still streaming" (a Regenerate clicked then was refused)."""
    widget, rec = make(server)
    orchestrator = widget._orchestrator
    loaded = runtime.submit(_event()).result(5)  # an asyncio.Event made on the widget's loop
    original = orchestrator.refresh_conversations

    async def slow_list() -> None:
        await loaded.wait()  # the list loads only when the test says so
        await original()

    orchestrator.refresh_conversations = slow_list  # type: ignore[method-assign]
    try:
        browser(widget, "send", text="first")
        wait_until(lambda: len(turns(widget)) == 1 and not widget.live, 30)
        request = browser(widget, "regenerate", message_id=turns(widget)[0]["id"])
        wait_until(lambda: any(m["id"] == request for m in rec.of("reply")), 10)
        assert "error" not in reply_to(rec, request), reply_to(rec, request)
        runtime.call_soon(loaded.set)
        widget.wait()
        assert turns(widget)[0]["siblings"]["count"] == 2
    finally:
        runtime.call_soon(loaded.set)
        widget.close()


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_an_odyssey_demo_is_named_by_its_agent_and_new_chat_promises_no_list():
    widget = ChatWidget(system="odyssey", demo="support")
    try:
        widget.booted.result(10)
        assert widget.header["app_name"] == "Support Assistant"  # the agent's name, not its slug "support"
        assert widget.header["capabilities"]["conversations"] is False  # so the widget shows no list
    finally:
        widget.close()


def test_a_long_question_goes_into_the_traits_cut_and_says_how_long_it_is(server):
    from atomemo_notebook.views._view_state import QUERY_CAP

    widget, _ = make(server, "echo")
    question = "word " * 53_800  # 269 KB, as a long echo
    seen: list[dict[str, Any]] = []
    widget.observe(lambda change: seen.append(change["new"]), names=["live"])
    widget.ask(question)
    widget.wait()
    live = next(v for v in seen if v.get("key"))
    assert len(live["query"]) == QUERY_CAP and live["query_chars"] == len(question)
    (turn,) = turns(widget)
    assert len(turn["query"]) == QUERY_CAP and turn["query_chars"] == len(question)
    assert widget.chat.tree[turn["id"]].query == question  # the kernel keeps it whole
    fallback = _static.settled_html(widget)  # the notebook's own static output: small too
    assert len(fallback) < 20_000 and f"{len(question) - QUERY_CAP:,} more characters" in fallback


def test_the_view_is_followed_by_its_static_copy_which_a_cells_end_brings_up_to_date(server, monkeypatch):
    """What a notebook saved without its kernel shows: the widget view, then the settled
    conversation as static HTML in an output of its own, redrawn as the next cell ends."""
    from IPython.core.interactiveshell import InteractiveShell

    shown: list[tuple[Any, dict[str, Any]]] = []
    updated: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.setattr("IPython.display.update_display", lambda obj, **kw: updated.append((obj, kw)))
    # Only the cell's end redraws it here (not the refresh a settle schedules, a second later).
    monkeypatch.setattr("atomemo_notebook.views._fallback.FALLBACK_DELAY", 3600.0)
    shell = InteractiveShell.instance()
    try:
        widget, _ = make(server)
        widget._ipython_display_()
        (view, view_kw), (static, static_kw) = shown
        assert "application/vnd.jupyter.widget-view+json" in view and view_kw["raw"] is True
        assert static_kw == {"raw": True, "display_id": f"atomemo-notebook-{widget.model_id}"}
        assert static["text/html"].startswith('<div class="atomemo-fallback">')
        assert "What does it cost?" not in static["text/html"]
        widget.ask("What does it cost?").wait()
        widget.wait()
        assert updated == []
        shell.events.trigger("post_execute")
        ((fresh, fresh_kw),) = updated
        assert fresh_kw == static_kw and "What does it cost?" in fresh["text/html"]
        shell.events.trigger("post_execute")  # nothing new: not redrawn
        assert len(updated) == 1
        widget.close()
    finally:
        InteractiveShell.clear_instance()


def test_close_returns_once_the_chat_and_its_websocket_are_closed():
    """close() is done when it returns: a Pipelit widget's WebSocket thread has ended (it was
    closed a moment later, on the background loop, and a test's teardown could still see it)."""
    import threading

    widget = ChatWidget(system="pipelit", demo="support")
    widget.booted.result(10)
    widget.ask("Tell me about pricing plans").wait()
    assert any(t.name == "atomemo-socket-hub" for t in threading.enumerate())
    widget.close()
    assert widget.chat.closed
    assert [t for t in threading.enumerate() if t.name == "atomemo-socket-hub"] == []


def test_a_widget_the_garbage_collector_drops_closes_without_waiting(server):
    """__del__ (ipywidgets closes a collected widget) must never block: at the interpreter's exit
    the background loop no longer runs and each wait would last its whole deadline (a bench
    that left three widgets to the collector took 30 s more)."""
    import threading

    widget, _ = make(server)
    gate = threading.Event()
    runtime.call_soon(gate.wait, 30)  # the background loop is busy until the test lets it go
    try:
        dropping = threading.Thread(target=widget.__del__)
        dropping.start()
        dropping.join(5)  # the loop stays blocked meanwhile: a waiting __del__ would still be here
        assert not dropping.is_alive() and not widget.chat.closed  # asked to close, not waited for
    finally:
        gate.set()
    wait_until(lambda: widget.chat.closed, 10)
