"""The contract between the embedded server and the protocol: every payload the server sends,
for every demo app and endpoint, parses into the protocol's models with no unknown field,
and every event carries only the documented fields of its kind."""

from __future__ import annotations

from typing import Any

import pytest

from atomemo_notebook import Client, Conversation, FileRef, Message
from atomemo_notebook.protocol.atomemo.events import EVENT_TYPES, FIELDS, Name
from atomemo_notebook.protocol.atomemo.models import App
from atomemo_notebook.server import DEMO_APPS, LocalServer

from .conftest import ids


def no_unknown(model: Any, where: str) -> None:
    assert model.extra == {}, f"{where}: fields the protocol does not know: {sorted(model.extra)}"


@pytest.mark.parametrize("slug", sorted(DEMO_APPS))
def test_every_event_and_object_of_every_demo_app_is_documented(server: LocalServer, slug: str):
    app = server.app(slug)
    with Client(server.api_key, base_url=server.base_url) as client:
        wire = client.get_app(app["app_id"])
        no_unknown(wire, "App")
        assert wire.active_version is not None
        no_unknown(wire.active_version, "AppVersion")
        for query in ("hello", "this should fail", "order 12 in Oslo"):
            events = list(client.send_message(**ids(app), query=query, user_id=f"contract-{slug}"))
            for event in events:
                assert event.event in FIELDS and type(event) is EVENT_TYPES[event.event], event
                data_keys, resource_keys = FIELDS[event.event]
                data = event.data or {}
                assert set(data) <= data_keys, (event.event, sorted(set(data) - data_keys))
                resource = data.get("resource") or {}
                assert set(resource) <= resource_keys, (event.event, sorted(set(resource) - resource_keys))
            created = events[0]
            assert created.event == Name.MESSAGE_CREATED and events[-1].event == Name.EXECUTION_FINISHED
            conversation = created.conversation_id  # type: ignore[attr-defined]
            for message in client.get_messages(conversation):
                no_unknown(message, "Message")
                assert isinstance(message, Message)
        for conversation in client.list_conversations(**ids(app), user_id=f"contract-{slug}"):
            no_unknown(conversation, "Conversation")
            assert isinstance(conversation, Conversation)


def test_file_payloads_are_documented(server: LocalServer):
    with Client(server.api_key, base_url=server.base_url) as client:
        token = client.get_upload_token("text/plain")
        no_unknown(token, "UploadToken")
        ref = client.upload_file(b"contract", filename="c.txt", mime_type="text/plain")
        no_unknown(ref, "FileRef (upload)")
        by_url = client.upload_url(ref.remote_url or "")
        no_unknown(by_url, "FileRef (by URL)")
        assert isinstance(by_url, FileRef) and by_url.size == len(b"contract")


def test_the_table_names_every_typed_event():
    public = {name for name in EVENT_TYPES if not name.startswith("_")}
    assert public == set(FIELDS)
    assert isinstance(App.from_wire({}), App)


@pytest.mark.parametrize("slug", sorted(DEMO_APPS))
def test_every_dify_frame_of_every_demo_app_has_only_difys_fields(server: LocalServer, slug: str):
    """The Dify routes speak Dify as its entities define it: each frame's keys, and its data's."""
    from atomemo_notebook import DifyClient
    from atomemo_notebook.protocol.dify.events import FIELDS as DIFY_FIELDS
    from atomemo_notebook.protocol.dify.events import Name as D

    with DifyClient(server.app(slug)["dify_api_key"], base_url=server.dify_base_url) as client:
        for query in ("hello", "this should fail", "order 12 in Oslo"):
            events = list(client.chat_messages(query=query, user=f"contract-{slug}"))
            names = [e.event for e in events]
            # The approval app pauses for a person: its stream ends there (tests/test_dify_hitl.py).
            paused = slug == "approval"
            assert names[0] == D.WORKFLOW_STARTED
            assert names[-1] == (D.WORKFLOW_PAUSED if paused else D.WORKFLOW_FINISHED)
            # Dify 1.13: message_end just before workflow_finished, and only when the run succeeded.
            succeeded = not paused and events[-1].data["data"]["status"] == "succeeded"
            assert (names[-2] == D.MESSAGE_END) is succeeded and names.count(D.MESSAGE_END) == int(succeeded)
            for event in events:
                assert event.event in DIFY_FIELDS, event
                frame_keys, data_keys = DIFY_FIELDS[event.event]
                frame = event.data or {}
                assert set(frame) <= frame_keys, (event.event, sorted(set(frame) - frame_keys))
                data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
                assert set(data) <= data_keys, (event.event, sorted(set(data) - data_keys))
                assert frame["message_id"] == events[0].data["message_id"]
