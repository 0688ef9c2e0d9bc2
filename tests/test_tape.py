"""Time travel's tape: one fold of a reply's event log into patches; replaying the first n
events' patches gives exactly what the views show of reply.as_of(event=n), for every n."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atomemo_notebook import Client, connect
from atomemo_notebook.server import LocalServer
from atomemo_notebook.views import _tape as tape_module
from atomemo_notebook.views._tape import Tape, tape_view
from atomemo_notebook.views._view_state import timeline_view

from .conftest import chat_of, ids


def replay(tape: dict[str, Any], position: int) -> tuple[str, dict[str, Any]]:
    """What the browser does (js/src/timetravel.ts): apply the patches of the first `position` events."""
    text, timeline = "", {"nodes": []}
    for patch in tape["patches"]:
        if patch["e"] >= position:
            break
        if "reset" in patch:
            text = patch["reset"]
        elif "append" in patch:
            text += patch["append"]
        summary = patch.get("summary", {})
        nodes = timeline["nodes"]
        for index, node in patch.get("nodes", []):
            if index < len(nodes):
                nodes[index] = node
            else:
                nodes.append(node)
        timeline = {**timeline, **summary, "nodes": nodes}
        if "node_count" in summary:
            del timeline["nodes"][summary["node_count"]:]
    return text, timeline


def shown(reply) -> tuple[str, dict[str, Any]]:
    return reply.text, json.loads(json.dumps(timeline_view(reply)))


class Partial:
    """A finished reply seen while it streamed: its first events, not yet done."""

    def __init__(self, reply: Any, events: int) -> None:
        self.reply, self.events, self.done = reply, reply.events.first(events), False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reply, name)


@pytest.fixture
def agent_reply(server: LocalServer):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(server.app("agent")), user_id="tape-reader")
        return chat.ask("Where is order 1042? I'm in Berlin.")


def test_every_position_of_the_tape_is_the_reply_as_of_that_event(agent_reply):
    tape = json.loads(json.dumps(tape_view(agent_reply)))
    total = len(agent_reply.events)
    assert tape["events"] == total == len(tape["offsets_ms"]) == len(tape["names"]) and tape["done"]
    assert tape["cut"] is None
    assert 0 < len(tape["patches"]) <= total + 1
    for n in range(1, total + 1):
        text, timeline = replay(tape, n)
        want_text, want_timeline = shown(agent_reply.as_of(event=n))
        assert text == want_text
        assert timeline == want_timeline, n
    assert replay(tape, total) == shown(agent_reply)  # the last position is the reply as it ended


def test_a_tape_is_smaller_than_a_timeline_per_event(agent_reply):
    tape = tape_view(agent_reply)
    whole = sum(len(json.dumps(timeline_view(agent_reply.as_of(event=n)))) for n in range(len(agent_reply.events)))
    assert len(json.dumps(tape)) * 3 < whole


def test_a_streaming_reply_s_tape_goes_on_from_where_it_stopped():
    with connect("atomemo", demo="agent") as chat:
        reply = chat.ask("Where is order 1042? I'm in Berlin.")
    # The same log seen part by part: events arrive, the browser asks again with what it has.
    half = len(reply.events) // 2
    partial = Partial(reply, half)
    tape = Tape(partial)  # type: ignore[arg-type]
    first = tape.view()
    assert first["events"] == half and not first["done"]
    partial.events, partial.done = reply.events, True
    rest = tape.view(first["events"], len(first["patches"]))
    assert rest["since"] == half and rest["patch_since"] == len(first["patches"]) and rest["done"]
    joined = {**rest, "patches": first["patches"] + rest["patches"]}
    assert replay(joined, len(reply.events)) == shown(reply)


def test_a_run_longer_than_the_bound_says_where_its_tape_stops(agent_reply, monkeypatch):
    monkeypatch.setattr(tape_module, "TAPE_EVENTS", 5)
    tape = tape_view(agent_reply)
    assert tape["events"] == 5 and tape["done"]
    assert tape["cut"] == f"the tape stops at event 5 of {len(agent_reply.events):,}: at most 5 events of one reply are replayed"
    monkeypatch.setattr(tape_module, "TAPE_EVENTS", 20_000)
    monkeypatch.setattr(tape_module, "TAPE_CHARS", 300)
    tape = tape_view(agent_reply)
    assert tape["cut"] is not None and "would pass 300 characters" in tape["cut"]
    assert len(json.dumps(tape["patches"])) <= 300 + 10 * len(tape["patches"])
