"""Record & replay: a saved log, replayed with no server, equals the live replies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from atomemo_notebook import Client, load_events, replay, replay_async
from atomemo_notebook.server import LocalServer

from .conftest import chat_of, ids


def summary(reply):
    return (reply.text, reply.status, reply.message_id, reply.execution_id,
            [(n.name, n.status, n.json_output, n.out_ports, n.error, n.started, n.finished,
              [(t.tool_name, t.args, t.result) for t in n.tools]) for n in reply.nodes],
            [(r.offset, r.event) for r in reply.events], reply.time_to_first_token, reply.total_time)


@pytest.fixture
def recorded(server: LocalServer, tmp_path: Path):
    path = tmp_path / "session.jsonl"
    with Client(server.api_key, base_url=server.base_url) as client:
        chat = chat_of(client, **ids(server.app("agent")), user_id="recorder")
        chat.ask("order 123 in Rome")
        chat.ask("and again")
        chat.save_events(path)
    return chat, path


def test_replay_equals_the_live_replies(recorded, server):
    chat, path = recorded
    replayed = replay(path)
    assert [summary(r) for r in replayed] == [summary(r) for r in chat.replies]
    text = path.read_text()
    assert server.api_key not in text
    header = json.loads(text.splitlines()[0])
    assert header["format"] == "atomemo-notebook/events" and header["conversation_id"] == chat.conversation_id


def test_replay_at_n_times_speed_sleeps_the_scaled_gaps(recorded):
    chat, path = recorded
    waits: list[float] = []
    replay(path, speed=4.0, sleep=waits.append)
    live_span = sum(r.events[-1].offset for r in chat.replies)
    assert sum(waits) == pytest.approx(live_span / 4.0, rel=1e-6)
    # One wait before each event: the gap since the one before it in its reply, scaled.
    gaps = [(event.offset - before) / 4.0 for r in chat.replies
            for before, event in zip([0.0, *(e.offset for e in r.events[:-1])], r.events, strict=True)]
    assert waits == pytest.approx(gaps, abs=1e-9)


def test_replay_feeds_a_view_callback(recorded):
    _, path = recorded
    seen = []
    replay(path, on_event=lambda reply, event: seen.append(event.event))
    assert seen.count("tool_call_started") == 6 and seen[0] == "message_created"


def test_async_replay_matches(recorded):
    chat, path = recorded
    replayed = asyncio.run(replay_async(path, speed=1000.0))
    assert [summary(r) for r in replayed] == [summary(r) for r in chat.replies]


def test_stopped_reply_replays_as_stopped(tmp_path: Path, echo):
    with LocalServer(chunk_size=1, chunk_delay=0.01, node_delay=0) as srv, \
            Client(srv.api_key, base_url=srv.base_url) as client:
        chat = chat_of(client, **ids(echo), user_id="stop-replay")
        for _ in chat.stream("x" * 300):
            if chat.last_reply is not None and chat.last_reply.chunks >= 3:
                chat.stop()
        path = chat.save_events(tmp_path / "stopped.jsonl")
    (again,) = replay(path)
    assert again.status == "stopped" and again.text == chat.last_reply.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "event", "offset": 0, "event": "x"}\n', "before any reply"),
        ('{"type": "reply", "query": "q"}\n', "no header"),
        ("not json\n", ":1:"),
        ('{"type": "header", "format": "other"}\n', "not an atomemo"),
    ],
)
def test_bad_logs_are_clear_errors(tmp_path: Path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_events(path)


def test_an_overlong_line_is_refused_by_number_in_a_log_and_in_an_evaluation_cache(tmp_path: Path, monkeypatch):
    from atomemo_notebook.evaluation._cache import Cache
    from atomemo_notebook.model import _replay as replay_module

    monkeypatch.setattr(replay_module, "MAX_LINE", 100)
    path = tmp_path / "long.jsonl"
    path.write_text("\n" + '{"type": "header", "pad": "' + "x" * 200 + '"}\n')
    with pytest.raises(ValueError, match=r"long.jsonl:2: line longer than 100 characters"):
        load_events(path)
    with pytest.raises(ValueError, match=r"long.jsonl:2: line longer than 100 characters"):
        Cache(path, "atomemo")


def test_saving_a_log_is_all_or_nothing_and_keeps_a_lone_surrogate(recorded, tmp_path: Path):
    from atomemo_notebook.model._replay import save_replies

    chat, path = recorded
    before = path.read_bytes()
    with pytest.raises(TypeError):  # a header value JSON cannot hold: nothing is written
        save_replies(path, chat.replies, app_name=object())
    assert path.read_bytes() == before and not list(tmp_path.glob(".session.jsonl.*"))
    chat.replies[0].events[-1].event.data["answer"] = "tail \ud800"  # a lone surrogate: UTF-8 cannot carry it
    again = save_replies(tmp_path / "surrogate.jsonl", chat.replies)
    (first, *_) = replay(again)
    assert first.events[-1].event.data["answer"] == "tail \ud800"
