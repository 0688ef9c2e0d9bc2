"""Time travel: a reply as it stood at any moment of its run, folded again from its own event
log by the live fold; at the end, the reply as it ended."""

from __future__ import annotations

import pytest

from atomemo_notebook import Client, connect
from atomemo_notebook.server import LocalServer

from .conftest import chat_of, ids


def state(reply):
    return (reply.text, reply.status, [(n.name, n.status, n.started, n.finished, len(n.tools)) for n in reply.nodes],
            reply.message_id, reply.finished)


@pytest.fixture
def agent_reply(server: LocalServer):
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(server.app("agent")), user_id="time-traveller")
        return chat.ask("Where is order 1042? I'm in Berlin.")


def test_the_start_is_empty_and_the_end_is_the_reply_as_it_ended(agent_reply):
    start = agent_reply.as_of(event=0)
    assert (start.text, start.status, start.nodes) == ("", "streaming", [])
    end = agent_reply.as_of(event=len(agent_reply.events))
    assert state(end) == state(agent_reply) and end.status == "succeeded"
    assert [(t.tool_name, t.args, t.result) for t in end.tool_calls] == [
        (t.tool_name, t.args, t.result) for t in agent_reply.tool_calls]


def test_every_moment_between_grows_toward_the_end(agent_reply):
    final = agent_reply.text
    seen_running = False
    previous_nodes = 0
    for k in range(len(agent_reply.events) + 1):
        then = agent_reply.as_of(event=k)
        assert final.startswith(then.text)  # the answer as it stood: a prefix of the final one
        assert len(then.nodes) >= previous_nodes
        previous_nodes = len(then.nodes)
        seen_running = seen_running or any(n.status == "running" and n.finished is None for n in then.nodes)
        if k < len(agent_reply.events):
            assert then.status == "streaming"
    assert seen_running  # some moment shows a node still running: not the end state replayed


def test_a_moment_in_seconds_is_every_event_that_had_arrived(agent_reply):
    for k, record in enumerate(agent_reply.events):
        by_time = agent_reply.as_of(seconds=record.offset)
        later = sum(1 for r in agent_reply.events[k + 1:] if r.offset <= record.offset)  # same-instant events
        assert state(by_time) == state(agent_reply.as_of(event=k + 1 + later))
    assert agent_reply.as_of(seconds=-1).text == "" and agent_reply.as_of(seconds=1e9).status == "succeeded"


def test_a_system_whose_translator_keeps_state_travels_too():
    with connect("dify", demo="agent") as chat:
        reply = chat.ask("Where is order 1042? I'm in Berlin.")
    assert reply.status == "succeeded" and reply.nodes
    end = reply.as_of(event=len(reply.events))
    assert state(end) == state(reply)
    middle = reply.as_of(event=len(reply.events) // 2)
    assert reply.text.startswith(middle.text) and middle.status == "streaming"
    assert state(reply.as_of(event=len(reply.events))) == state(end)  # asking twice folds anew, same answer


def test_a_moment_is_checked(agent_reply):
    with pytest.raises(TypeError, match="exactly one of seconds= or event="):
        agent_reply.as_of()
    with pytest.raises(TypeError, match="exactly one"):
        agent_reply.as_of(seconds=1, event=2)
    with pytest.raises(ValueError, match="event must be a whole number from 0 to"):
        agent_reply.as_of(event=len(agent_reply.events) + 1)
    with pytest.raises(ValueError):
        agent_reply.as_of(event=True)
    with pytest.raises(ValueError, match="NaN"):
        agent_reply.as_of(seconds=float("nan"))
