"""Client and AsyncClient against the embedded server over loopback HTTP."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import atomemo_notebook as an
from atomemo_notebook import AsyncClient, Client, FileRef
from atomemo_notebook.protocol.atomemo.events import (
    ChatMessage,
    ExecutionFinished,
    ExecutionStarted,
    MessageCreated,
    NodeFinished,
    NodeStarted,
    ToolCallStarted,
    ToolResponse,
)
from atomemo_notebook.server import LocalServer

from .conftest import collect, ids, make_client, maybe, text_of


async def test_stream_is_typed_and_ordered(client, support):
    events = await collect(client.send_message(**ids(support), query="What does it cost?",
                                               user_id="typed"))
    names = [e.event for e in events]
    assert names[0] == "message_created" and names[1] == "execution_started"
    assert names[-1] == "execution_finished"
    created = events[0]
    assert isinstance(created, MessageCreated) and created.message_id and created.conversation_id
    started = events[1]
    assert isinstance(started, ExecutionStarted)
    assert started.status == "running" and started.trigger_id == support["trigger_id"]
    assert started.created_at is not None and started.created_at.tzinfo is not None
    nodes = [e for e in events if isinstance(e, NodeStarted | NodeFinished)]
    assert {e.execution_id for e in nodes} == {started.execution_id}
    assert all(isinstance(e, ChatMessage) for e in events if e.event == "chat_message")
    finished = events[-1]
    assert isinstance(finished, ExecutionFinished) and finished.status == "succeeded"
    assert "| Starter | $9 / month |" in text_of(events)
    assert "14-day free trial" in text_of(events)


async def test_agent_tool_calls_carry_json_args_and_results(client, server):
    agent = server.app("agent")
    events = await collect(client.send_message(**ids(agent), query="Where is order 5531 in Paris?",
                                               user_id="tools"))
    calls = [e for e in events if isinstance(e, ToolCallStarted)]
    responses = [e for e in events if isinstance(e, ToolResponse)]
    assert [c.tool_name for c in calls] == ["lookup_order", "get_weather", "calculator"]
    assert calls[0].args == {"order_id": "A-5531"}
    assert calls[1].args["city"] == "Paris"
    assert [r.tool_call_id for r in responses] == [c.tool_call_id for c in calls]
    assert '"temperature": 15' in responses[1].result
    assert {c.node_id for c in calls} == {responses[0].node_id}


async def test_flaky_app_fails_a_node_breaks_a_loop_and_routes_an_if(client, server):
    flaky = server.app("flaky")
    events = await collect(client.send_message(**ids(flaky), query="stock?", user_id="flaky"))
    finished = [e for e in events if isinstance(e, NodeFinished)]
    statuses = [e.status for e in finished]
    assert "failed" in statuses and "break" in statuses
    assert any(e.out_ports == [1] for e in finished)
    assert finished[1].error and "503" in finished[1].error
    assert events[-1].status == "succeeded"  # type: ignore[attr-defined]
    failing = await collect(client.send_message(**ids(flaky), query="please fail", user_id="flaky"))
    assert failing[-1].status == "failed"  # type: ignore[attr-defined]
    assert text_of(failing) == ""


async def test_echo_streams_the_query_verbatim(client, echo):
    query = "<script>alert(1)</script> ünï\u2028cödé 🚀 | ``` \\n"
    events = await collect(client.send_message(**ids(echo), query=query, user_id="echo"))
    assert text_of(events) == query


async def test_unknown_inputs_are_a_trigger_inputs_error(client, echo):
    with pytest.raises(an.TriggerInputsError) as info:
        await maybe(client.send_message(**ids(echo), query="x", user_id="u", inputs={"nope": 1}))
    assert info.value.status_code == 400 and info.value.code == "TRIGGER_INPUTS_ERROR"
    with pytest.raises(an.TriggerInputsError):
        await maybe(client.send_message(**ids(echo), query="x", user_id="u",
                                        inputs={"tone": "x" * 21}))
    events = await collect(client.send_message(**ids(echo), query="ab", user_id="u",
                                               inputs={"repeat": 3, "tone": "calm"}))
    assert text_of(events) == "ababab"


async def test_get_app_needs_no_key(kind, server, support):
    api = make_client(kind, server)
    api._api_key = None  # as if none had been given
    app = await maybe(api.get_app(support["app_id"]))
    assert app.name == "Support Assistant"
    assert app.active_version is not None and app.active_version.name == "v1.0"
    names = app.active_version.node_names()
    assert ("Search help center", "knowledge_retrieval") in names.values()
    assert app.created_at is not None
    with pytest.raises(an.MissingAPIKeyError, match="ATOMEMO_API_KEY"):
        await maybe(api.list_conversations(app_id="a", trigger_id="t", user_id="u"))
    await maybe(api.close())


def test_key_and_base_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATOMEMO_API_KEY", "env-key-123")
    monkeypatch.setenv("ATOMEMO_BASE_URL", "http://127.0.0.1:9/api/")
    client = Client()
    assert client.base_url == "http://127.0.0.1:9/api" and client.has_api_key
    monkeypatch.delenv("ATOMEMO_API_KEY")
    monkeypatch.delenv("ATOMEMO_BASE_URL")
    assert Client().base_url == "https://server.atomemo.ai/api"
    assert not Client().has_api_key


def test_bad_arguments_fail_before_any_request(server, support):
    with Client(server.api_key, base_url=server.base_url) as client:
        with pytest.raises(ValueError, match="query must not be empty"):
            client.send_message(**ids(support), query="  ", user_id="u")
        with pytest.raises(TypeError, match="str or a FileRef"):
            client.send_message(**ids(support), query=42, user_id="u")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="user_id"):
            client.send_message(**ids(support), query="hi", user_id="")
        with pytest.raises(ValueError, match="http"):
            client.upload_url("ftp://example.com/x")
    with pytest.raises(ValueError, match="base_url"):
        Client("k", base_url="server.atomemo.ai")


async def test_conversations_and_messages(client, support):
    first = await collect(client.send_message(**ids(support), query="Hello there", user_id="hist"))
    conv, m1 = first[0].conversation_id, first[0].message_id  # type: ignore[attr-defined]
    second = await collect(client.send_message(**ids(support), query="And pricing?", user_id="hist",
                                               conversation_id=conv, parent_id=m1))
    m2 = second[0].message_id  # type: ignore[attr-defined]
    messages = await maybe(client.get_messages(conv))
    assert [m.id for m in messages] == [m1, m2]
    assert [m.dialogue_count for m in messages] == [1, 2]
    assert messages[1].parent_id == m1 and messages[1].status == "succeeded"
    assert messages[1].answer == text_of(second)
    convs = await maybe(client.list_conversations(**ids(support), user_id="hist"))
    assert convs[0].id == conv and convs[0].name == "Hello there"
    path = await maybe(client.get_messages(conv, end_message_id=m2, include_end=False))
    assert [m.id for m in path] == [m1]


async def test_upload_by_url_and_three_step_upload(client, server, tmp_path: Path, echo):
    local = tmp_path / "notes.txt"
    local.write_text("hello file")
    ref = await maybe(client.upload_file(local))
    assert isinstance(ref, FileRef)
    assert (ref.filename, ref.extension, ref.mime_type, ref.size) == ("notes.txt", ".txt",
                                                                      "text/plain", 10)
    assert ref.remote_url and httpx.get(ref.remote_url).text == "hello file"
    by_url = await maybe(client.upload_url(ref.remote_url))
    assert by_url.size == 10 and by_url.res_key != ref.res_key
    link = await maybe(client.download_url(by_url.res_key))
    assert httpx.get(link).content == b"hello file"
    raw = await maybe(client.upload_file(b"\x00\x01", filename="blob.bin"))
    assert raw.mime_type == "application/octet-stream" and raw.size == 2
    events = await collect(client.send_message(**ids(echo), query=ref, user_id="files"))
    assert text_of(events) == "[file: notes.txt]"


def test_upload_put_carries_no_api_key(server):
    seen: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    with Client(server.api_key, base_url=server.base_url, http_client=http) as client:
        client.upload_file(b"data", filename="a.txt")
    put = [r for r in seen if r.method == "PUT"]
    assert len(put) == 1 and "x-api-key" not in put[0].headers
    assert put[0].url.path.startswith("/storage/")
    assert all("x-api-key" in r.headers for r in seen if r.method != "PUT")


def test_file_ref_serialises_to_the_exact_wire_shape():
    wire = {"__type__": "file_ref", "source": "oss", "filename": "document.pdf",
            "extension": ".pdf", "mimeType": "application/pdf", "size": 102400,
            "resKey": "20251020/abc-123.pdf", "remoteUrl": None}
    ref = FileRef.from_wire(wire)
    assert ref.mime_type == "application/pdf" and ref.res_key == "20251020/abc-123.pdf"
    assert ref.to_wire() == wire
    assert list(ref.to_wire()) == list(wire)
    kept = FileRef.from_wire(wire | {"newField": 1})
    assert kept.extra == {"newField": 1} and kept.to_wire()["newField"] == 1


def test_models_keep_unknown_fields_and_parse_datetimes():
    message = an.Message.from_wire({"id": "m", "status": "succeeded", "query": "q",
                                    "createdAt": "2025-01-15T10:30:00Z", "future": [1]})
    assert message.created_at is not None and message.created_at.isoformat() == "2025-01-15T10:30:00+00:00"
    assert message.extra == {"future": [1]}
    file_message = an.Message.from_wire({"id": "m", "query": {"__type__": "file_ref", "filename": "a"}})
    assert isinstance(file_message.query, FileRef)


async def test_error_codes_map_to_exceptions(client, support):
    cases = [
        (dict(ids(support), conversation_id="nope"), an.ConversationNotFoundError),
        ({"app_id": "missing", "trigger_id": "t"}, an.AppOrTriggerNotFoundError),
        ({"app_id": support["app_id"], "trigger_id": "wrong"}, an.AppOrTriggerNotFoundError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error) as info:
            await maybe(client.send_message(query="x", user_id="errs", **kwargs))
        assert info.value.status_code == 404
    first = await collect(client.send_message(**ids(support), query="hi", user_id="owner"))
    conv = first[0].conversation_id  # type: ignore[attr-defined]
    with pytest.raises(an.ConversationUserIdMismatchError):
        await maybe(client.send_message(**ids(support), query="x", user_id="intruder",
                                        conversation_id=conv))
    with pytest.raises(an.ParentNotFoundError):
        await maybe(client.send_message(**ids(support), query="x", user_id="owner",
                                        conversation_id=conv, parent_id="ghost"))
    other = await collect(client.send_message(**ids(support), query="other", user_id="owner"))
    with pytest.raises(an.ConversationMessageMismatchError):
        await maybe(client.send_message(**ids(support), query="x", user_id="owner",
                                        conversation_id=conv,
                                        parent_id=other[0].message_id))  # type: ignore[attr-defined]
    with pytest.raises(an.MessageNotFoundError):
        await maybe(client.resume_stream("no-such-message"))
    with pytest.raises(an.NotFoundError):
        await maybe(client.get_app("no-such-app"))


async def test_wrong_key_is_an_authentication_error_without_the_key_in_it(kind, server, support):
    secret = "sk-wrong-but-secret-value-123"
    api = make_client(kind, server)
    api._api_key = secret
    with pytest.raises(an.AuthenticationError) as info:
        await maybe(api.list_conversations(**ids(support), user_id="u"))
    assert info.value.status_code == 401 and secret not in str(info.value)
    assert secret not in repr(api) and secret not in str(api)
    await maybe(api.close())


def test_connection_refused_is_an_api_connection_error_after_retries():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with Client("k", base_url=f"http://127.0.0.1:{port}/api", max_retries=1) as client, \
            pytest.raises(an.APIConnectionError) as info:
        client.list_conversations(app_id="a", trigger_id="t", user_id="u")
    assert "ConnectError" in info.value.message


def test_key_is_in_no_log_line(server, support, caplog):
    caplog.set_level(logging.DEBUG)
    with Client(server.api_key, base_url=server.base_url) as client:
        list(client.send_message(**ids(support), query="log me", user_id="logs"))
        with pytest.raises(an.NotFoundError):
            client.get_app("missing")
    assert caplog.records, "httpx/httpcore debug logs were expected to be captured"
    assert server.api_key not in caplog.text


# The public surface, exactly: a name joins or leaves it on purpose, here and in docs/api/.
PUBLIC_SURFACE = {
    "__version__",
    # a chat, its widget, and what they answer
    "connect", "Chat", "AsyncChat", "ChatWidget", "Reply", "NodeSpan", "ToolSpan", "Capabilities", "Limits",
    # the clients, one pair per system, and their streams
    "Client", "AsyncClient", "DifyClient", "AsyncDifyClient", "PipelitClient", "AsyncPipelitClient",
    "OdysseyClient", "AsyncOdysseyClient", "EventStream", "AsyncEventStream",
    # the wire every system shares
    "Event", "MalformedFrame", "Message", "Conversation", "FileRef",
    # records, saved logs and replay
    "EVENT_COLUMNS", "HISTORY_COLUMNS", "SOURCE_COLUMNS", "TIMELINE_COLUMNS", "event_records", "history_records",
    "source_records", "timeline_records", "to_dataframe", "EventLog", "load_events", "replay", "replay_async",
    # evaluation
    "evaluate", "compare", "compare_nodes", "load_evaluation", "demo_dataset", "EvalResults", "contains", "exact",
    "regex", "latency_under",
    # traces out
    "to_spans", "export_spans",
    # the one exception tree
    "ChatAPIError", "APIError", "APIConnectionError", "APITimeoutError", "APIResponseValidationError",
    "LimitExceededError", "SpanExportError", "MissingAPIKeyError", "ExecutionFailedError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError",
    "InternalServerError", "TriggerInputsError", "ConversationMessageMismatchError",
    "ConversationUserIdMismatchError", "AppOrTriggerNotFoundError", "ConversationNotFoundError",
    "ParentNotFoundError", "MessageNotFoundError", "UnresumableStreamError",
}


def test_public_surface_is_pinned():
    assert sorted(an.__all__) == sorted(PUBLIC_SURFACE)  # exactly: nothing more, nothing less
    assert len(an.__all__) == len(set(an.__all__))
    assert all(hasattr(an, name) for name in an.__all__)
    assert an.AtomemoError is an.ChatAPIError  # the root's first name still answers, out of __all__


@pytest.mark.parametrize(("module", "names"), [
    ("atomemo_notebook.protocol.atomemo.events", ["ChatMessage", "ExecutionFinished", "ExecutionStarted",
                                                  "Heartbeat", "MessageCreated", "NodeFinished", "NodeStarted",
                                                  "StreamRecovered", "ToolCallStarted", "ToolResponse"]),
    ("atomemo_notebook.protocol.atomemo.models", ["App", "AppVersion", "UploadToken"]),
    ("atomemo_notebook.model.reply", ["EventRecord", "ExecutionSpan"]),
    ("atomemo_notebook.model.tree", ["MessageTree", "TreeMessage"]),
    ("atomemo_notebook.model.chat", ["LEAF"]),
    ("atomemo_notebook.protocol.backend", ["AppInfo"]),
])
def test_names_out_of_the_surface_are_importable_from_their_modules(module, names):
    loaded = importlib.import_module(module)
    assert all(hasattr(loaded, name) for name in names)
    assert not set(names) & set(an.__all__)


async def test_clients_are_context_managers(server, support):
    with Client(server.api_key, base_url=server.base_url) as sync_client:
        assert sync_client.get_app(support["app_id"]).id == support["app_id"]
    assert sync_client._http.is_closed
    async with AsyncClient(server.api_key, base_url=server.base_url) as async_client:
        assert (await async_client.get_app(support["app_id"])).id == support["app_id"]
    assert async_client._http.is_closed


def test_server_fixture_is_real_loopback(server: LocalServer):
    assert server.base_url.startswith("http://127.0.0.1:")


def test_an_address_is_parsed_once_however_many_requests_go_to_it(monkeypatch):
    """httpx parses a string address on every request (a quarter of building one); the client
    hands it the parsed address it keeps, within a bound."""
    import atomemo_notebook.transport._base_client as base_client
    from atomemo_notebook.protocol.atomemo import _calls as atomemo_calls

    parsed: list[str] = []
    real = httpx.URL.__init__

    def counted(self: httpx.URL, url: Any = "", **kwargs: Any) -> None:
        if isinstance(url, str):
            parsed.append(url)
        real(self, url, **kwargs)

    monkeypatch.setattr(httpx.URL, "__init__", counted)
    monkeypatch.setattr(base_client, "MAX_PARSED_URLS", 3)
    client = Client("sk-test", base_url="http://127.0.0.1:9/api")
    send = atomemo_calls.send_message(app_id="a", trigger_id="t", query="q", user_id="u")
    deadline = time.monotonic() + 30
    built = [client._build(client._http, send, deadline) for _ in range(5)]
    assert all(str(r.url) == "http://127.0.0.1:9/api/chat/messages" for r in built)
    assert parsed.count("http://127.0.0.1:9/api/chat/messages") == 1
    for i in range(5):  # more addresses than the bound: it starts again, never grows past it
        client._build(client._http, dataclasses.replace(send, path=f"/chat/messages/{i}"), deadline)
        assert len(client._parsed) <= 3
    client.close()
