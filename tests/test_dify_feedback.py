"""Like / dislike on an answer where the system takes it (Dify's POST /messages/{id}/feedbacks),
a capability like the others: absent elsewhere, with the reason. Over loopback against the
embedded server; the recorded 1.13.2 history read for its rating."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atomemo_notebook import ChatWidget, connect
from atomemo_notebook.protocol._systems import SYSTEMS
from atomemo_notebook.protocol.dify import _calls as calls

from .conftest import maybe
from .test_dify import dify_chat

RECORDED = Path(__file__).parent / "peers" / "dify" / "blocking-feedback-meta.jsonl"


async def test_an_answer_is_rated_with_a_comment_taken_back_and_the_history_says_so(kind, server):
    chat = dify_chat(kind, server, "echo", user=f"rater-{kind}")
    reply = await maybe(chat.ask("rate me"))
    mid = str(reply.message_id)
    await maybe(chat.feedback(mid, "like", "spot on"))
    assert [r["feedback"] for r in chat.history_records()] == ["like"]
    await maybe(chat.history())  # the server's word, not ours
    assert [r["feedback"] for r in chat.history_records()] == ["like"]
    listed = await maybe(chat.client._call(calls.Call("GET", "/app/feedbacks", lambda b: b)))
    assert [(f["message_id"], f["rating"], f["content"]) for f in listed["data"]] == [(mid, "like", "spot on")]
    await maybe(chat.feedback(mid, "dislike"))
    await maybe(chat.history())
    assert chat.history_df()["feedback"].tolist() == ["dislike"]
    await maybe(chat.feedback(mid, None))
    await maybe(chat.history())
    assert [r["feedback"] for r in chat.history_records()] == [None]


def test_a_rating_is_checked_before_anything_is_sent(server):
    chat = dify_chat("sync", server, "echo", user="rater-check")
    reply = chat.ask("hi")
    with pytest.raises(ValueError, match="rating must be 'like', 'dislike' or None"):
        chat.feedback(str(reply.message_id), "love")
    with pytest.raises(ValueError, match="no message 'nope'"):
        chat.feedback("nope", "like")
    with pytest.raises(ValueError, match="at most 10,000 characters"):
        chat.feedback(str(reply.message_id), "like", "x" * 10_001)


def test_systems_without_ratings_say_why_and_the_capability_is_in_their_record():
    assert SYSTEMS["dify"].capabilities.feedback is True
    for name in ("atomemo", "pipelit", "odyssey"):
        caps = SYSTEMS[name].capabilities
        assert caps.feedback is False and "takes no rating of an answer" in caps.feedback_reason
    chat = connect("atomemo", demo="echo")
    reply = chat.ask("hi")
    with pytest.raises(ValueError, match="Atomemo's chat API takes no rating of an answer"):
        chat.feedback(str(reply.message_id), "like")
    chat.close()


def test_the_recorded_history_carries_the_rating():
    lines = [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]
    pages = [ln["response"] for ln in lines if ln.get("kind") == "http" and ln["path"].startswith("/v1/messages?")]
    rated = [calls.message_of(item) for page in pages for item in page["data"] if item.get("feedback")]
    assert rated and {m.feedback for m in rated} == {"like"}
    unrated = [calls.message_of(item) for page in pages for item in page["data"] if not item.get("feedback")]
    assert unrated and {m.feedback for m in unrated} == {None}


def test_the_widget_rates_an_answer_from_its_buttons(server):
    app = server.app("echo")
    widget = ChatWidget(system="dify", api_key=app["dify_api_key"], base_url=server.dify_base_url, user_id="rater-w")
    sent: list[dict[str, Any]] = []
    widget.send = lambda msg, *a, **k: sent.append(msg)  # type: ignore[method-assign]
    widget.booted.result(10)
    assert widget.header["capabilities"]["feedback"] is True
    widget._on_custom(widget, {"type": "command", "id": 1, "name": "send", "args": {"text": "rate this"}}, [])
    widget.wait()
    (turn,) = widget.transcript["turns"]
    assert turn["feedback"] is None
    widget._on_custom(widget, {"type": "command", "id": 2, "name": "feedback", "args": {
        "message_id": turn["id"], "rating": "dislike", "comment": "too short"}}, [])
    from .conftest import wait_until

    wait_until(lambda: widget.transcript["turns"][0].get("feedback") == "dislike", what="the rating to show")
    assert all(m.get("ok") is not False for m in sent if m.get("type") == "reply")
    widget.close()
