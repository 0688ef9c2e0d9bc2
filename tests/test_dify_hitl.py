"""A person in the loop (Dify's Human Input): a paused run's form read from its events, the
turn waiting for you, the answer sent from the kernel (the token never leaves it), and the run
going on in the same reply with the pause on its timeline. Over loopback against the embedded
server's `approval` app; hostile forms through the adapter and a raw socket."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import APIError, ChatWidget, NotFoundError
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol import _neutral as n
from atomemo_notebook.protocol._wire import Event
from atomemo_notebook.protocol.dify import _forms as forms
from atomemo_notebook.protocol.dify._adapter import DifyTranslator
from atomemo_notebook.protocol.dify.events import REDACTED, parse_frame
from atomemo_notebook.views import _widget_protocol as wp
from atomemo_notebook.views._view_state import form_view

from .conftest import maybe, wait_until
from .test_dify import dify_chat

QUESTION = "please approve my refund of 42 EUR"
BEFORE = f"Sending your request for review: {QUESTION}\n"


def statuses(reply: Reply) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in reply.nodes]


async def test_a_paused_turn_waits_for_you_and_its_answer_goes_on_in_the_same_reply(kind, server):
    chat = dify_chat(kind, server, "approval", user=f"hitl-{kind}")
    reply = await maybe(chat.ask(QUESTION))
    assert reply.status == "waiting" and reply.text == BEFORE and reply.done
    form = reply.pending_input
    assert form is not None and form.node_title == "Review request"
    assert [(f["name"], f["type"], f["default"]) for f in form.fields] == [
        ("comment", "paragraph", "looks fine"), ("priority", "text", None)]
    assert [a["id"] for a in form.actions] == ["approve", "reject"] and form.expires_at > time.time()
    assert "**please approve my refund of 42 EUR**" in form.content
    # The token answers the form: it is in no event the reply keeps.
    raw = json.dumps([r.event.data for r in reply.events])
    assert REDACTED in raw and forms.FORM_TOKENS.token(form.form_id) not in raw
    assert statuses(reply)[-1] == ("Review request", "waiting")
    assert [t["status"] for t in chat.history_records()] == ["waiting"]

    same = await maybe(reply.respond("approve", priority="high"))
    assert same is reply and reply.status == "succeeded" and reply.pending_input is None
    assert reply.text == BEFORE + "Approved with priority high: looks fine"
    assert reply.input_outcome == "answered: Approve"
    # The pause stays on the timeline: the node's wait, then its run after the answer.
    assert statuses(reply) == [("Chat Trigger", "succeeded"), ("Before review", "succeeded"),
                               ("Review request", "paused"), ("Review request", "succeeded"),
                               ("Approved", "succeeded")]
    (pause,) = reply.pauses
    assert pause[1] is not None and pause[1] >= pause[0]
    assert not reply.anomalies, reply.anomalies
    # Time travel through the pause: waiting until the answer went, streaming again after it
    # (the refold resumes where the live reply did: the answer is no event of the stream).
    events = reply.events
    resumed = next(k for k in range(len(events)) if events.offset(k) >= pause[1])
    seen = [reply.as_of(event=k).status for k in range(len(events) + 1)]
    assert seen[resumed] == "waiting" and seen[-1] == "succeeded", seen
    assert set(seen[resumed + 1:-1]) == {"streaming"}, seen
    assert reply.as_of(seconds=pause[1]).status == "streaming"  # answered, nothing new yet
    assert reply.as_of(event=len(events)).pauses == reply.pauses
    assert [t["status"] for t in chat.history_records()] == ["succeeded"]
    # Once answered, the form is gone: answering again is refused here, before anything is sent.
    with pytest.raises(ValueError, match="waits on no form"):
        await maybe(reply.respond("reject"))


async def test_the_runs_events_are_listened_to_before_the_answer_is_sent(kind, server):
    """As Dify's own web app does (the recorded 1.13.2 opens the run's event stream, then
    submits): whatever the run says the moment it goes on reaches the reply."""
    chat = dify_chat(kind, server, "approval", user=f"hitl-order-{kind}")
    sent: list[str] = []

    def note(request: Any) -> None:
        sent.append(f"{request.method} {request.url.path}")

    async def anote(request: Any) -> None:
        note(request)

    chat.client._http.event_hooks["request"] = [note if kind == "sync" else anote]
    reply = await maybe(chat.ask(QUESTION))
    assert reply.status == "waiting"
    sent.clear()
    await maybe(reply.respond("approve", priority="high"))
    assert reply.status == "succeeded"
    events = next(i for i, line in enumerate(sent) if line.endswith("/events"))
    answer = next(i for i, line in enumerate(sent) if line.startswith("POST") and "/form/human_input/" in line)
    assert events < answer, sent


def test_an_answer_is_checked_against_the_form_before_anything_is_sent(server):
    chat = dify_chat("sync", server, "approval", user="hitl-check")
    reply = chat.ask(QUESTION)
    with pytest.raises(ValueError, match="no action 'maybe'; its actions are \\['approve', 'reject'\\]"):
        reply.respond("maybe")
    with pytest.raises(ValueError, match="no input 'colour'"):
        reply.respond("approve", colour="red")
    with pytest.raises(ValueError, match="at most 100,000 are sent"):
        reply.respond("approve", comment="x" * 100_001)
    assert reply.status == "waiting" and reply.pending_input is not None  # nothing was sent
    reply.respond("reject", comment="not this time")
    assert reply.status == "succeeded" and reply.text == BEFORE + "Rejected: not this time"


def test_a_refused_form_token_is_a_clear_error_and_the_turn_still_waits(server, monkeypatch):
    chat = dify_chat("sync", server, "approval", user="hitl-refused")
    reply = chat.ask(QUESTION)
    form = reply.pending_input
    assert form is not None
    monkeypatch.setattr(forms.FORM_TOKENS, "token", lambda form_id: "not-the-token-0123456789")
    with pytest.raises(NotFoundError, match="Form not found"):
        reply.respond("approve")
    assert reply.status == "waiting" and reply.pending_input is form and reply.done
    monkeypatch.undo()
    forms_before = forms.FORM_TOKENS.token(form.form_id)
    assert forms_before is not None
    reply.respond("approve", priority="low")
    assert reply.status == "succeeded"


def test_a_pause_that_is_not_answered_in_time_expires_and_says_so(server):
    chat = dify_chat("sync", server, "approval", user="hitl-late")
    reply = chat.ask(QUESTION, inputs={"timeout": 0.3})
    assert reply.status == "waiting"
    # Nobody answers: the form expires, the run takes its timeout branch on the server, and
    # its stored message says so (while it waited, it said waiting).
    assert chat.follow(str(reply.message_id)) is True and chat.history_records()[0]["status"] == "waiting"
    wait_until(lambda: chat.follow(str(reply.message_id)) and chat.history_records()[0]["status"] == "succeeded",
               what="the form to expire on the server")
    with pytest.raises(APIError, match="expired") as caught:
        reply.respond("approve")
    assert caught.value.status_code == 412
    assert reply.status == "waiting" and reply.pending_input is not None
    (row,) = chat.history_records()
    assert row["status"] == "succeeded" and row["answer"].endswith("Nobody reviewed the request in time: it was not sent.")


def hostile_form(fields: int, content: str) -> dict[str, Any]:
    ids = {"message_id": "m1", "conversation_id": "c1", "task_id": "t1", "workflow_run_id": "w1"}
    return {"event": "human_input_required", **ids, "data": {
        "form_id": "f-hostile", "node_id": "hi", "node_title": "Review", "form_content": content,
        "inputs": [{"type": "text_input", "output_variable_name": f"field{i}", "default": None}
                   for i in range(fields)],
        "actions": [{"id": "ok", "title": "OK", "button_style": "primary"}],
        "form_token": "secret-token-of-a-hostile-form", "expiration_time": 4_102_444_800}}


def test_a_10000_field_form_is_bounded_shown_refused_and_never_sent():
    reply = Reply("q", translate=DifyTranslator())
    reply.apply(parse_frame(json.dumps(hostile_form(10_000, "## Big"))), 0.0)
    form = reply.pending_input
    assert form is not None and len(form.fields) == forms.MAX_FIELDS
    assert form.refused is not None and "10,000 inputs" in form.refused
    assert any("10,000 inputs" in a for a in reply.anomalies)
    view = form_view(reply)
    wp.check(view, wp.FormView)
    assert view is not None and len(view["fields"]) == forms.MAX_FIELDS and view["refused"] == form.refused
    with pytest.raises(ValueError, match="10,000 inputs"):
        forms.check_answer(form, "ok", {})


def test_a_forms_script_and_remote_images_stay_text_the_view_draws_sanitized():
    content = "## Review\n\n<script>alert(1)</script>\n\n![x](https://evil.example/track.png)"
    reply = Reply("q", translate=DifyTranslator())
    reply.apply(parse_frame(json.dumps(hostile_form(2, content))), 0.0)
    view = form_view(reply)
    assert view is not None and view["content"] == content  # markdown, sanitized where drawn (forms.ts)
    assert "secret-token-of-a-hostile-form" not in json.dumps(view)
    assert forms.FORM_TOKENS.token("f-hostile") == "secret-token-of-a-hostile-form"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["form_id", "node_id", "node_title", "form_content", "inputs", "actions",
                                        "expiration_time", "form_token"]),
                       st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=20),
                                 st.lists(st.one_of(st.text(max_size=5), st.dictionaries(
                                     st.sampled_from(["type", "output_variable_name", "default", "id", "title",
                                                      "button_style", "options"]),
                                     st.one_of(st.none(), st.text(max_size=5), st.integers())), st.none()),
                                     max_size=5)), max_size=8))
def test_fuzz_any_form_reads_without_raising_and_is_bounded(data):
    form = forms.read_form(data)
    assert isinstance(form, n.InputRequested) and len(form.fields) <= forms.MAX_FIELDS
    events = DifyTranslator()(Event("human_input_required", {"event": "human_input_required", "data": data}))
    assert events


def test_the_widget_draws_the_form_and_its_answer_goes_on_in_the_same_turn(server):
    app = server.app("approval")
    widget = ChatWidget(system="dify", api_key=app["dify_api_key"], base_url=server.dify_base_url,
                        user_id="hitl-widget")
    sent: list[dict[str, Any]] = []
    widget.send = lambda msg, *a, **k: sent.append(msg)  # type: ignore[method-assign]
    widget.booted.result(10)
    widget._on_custom(widget, {"type": "command", "id": 1, "name": "send", "args": {"text": QUESTION}}, [])
    widget.wait()
    (turn,) = widget.transcript["turns"]
    wp.check(turn, wp.TurnView)
    assert turn["status"] == "waiting" and turn["form"] is not None
    assert [a["id"] for a in turn["form"]["actions"]] == ["approve", "reject"]
    form_id = turn["form"]["form_id"]
    token = forms.FORM_TOKENS.token(form_id)
    assert token and token not in json.dumps(widget.get_state(), default=str)
    widget._on_custom(widget, {"type": "command", "id": 2, "name": "respond", "args": {
        "message_id": turn["id"], "action": "approve", "inputs": {"comment": "ok by me", "priority": "high"}}}, [])
    widget.wait()
    (turn,) = widget.transcript["turns"]
    assert turn["status"] == "succeeded" and turn["form"] is None and turn["input_outcome"] == "answered: Approve"
    assert turn["answer"] == BEFORE + "Approved with priority high: ok by me"
    assert any(m.get("type") == "live" for m in sent)  # it streamed again, live, in that turn
    timeline = widget.timelines[turn["id"]]
    assert [nd["status"] for nd in timeline["nodes"] if nd["name"] == "Review request"] == ["paused", "succeeded"]
    assert all(m.get("ok") is not False for m in sent if m.get("type") == "reply")
    assert token not in json.dumps(sent, default=str)
    widget.close()


def test_evaluate_answers_each_rows_form_with_a_callable_or_records_the_row_paused(server):
    from atomemo_notebook import evaluate

    rows = [{"query": "refund 1", "verdict": "approve"}, {"query": "refund 2", "verdict": "reject"},
            {"query": "refund 3", "verdict": None}]
    seen: list[str] = []

    def respond(row: dict[str, Any], form: Any) -> Any:
        seen.append(form.node_title)
        return None if row["verdict"] is None else (row["verdict"], {"comment": f"by {row['query']}"})

    chat = dify_chat("async", server, "approval", user="hitl-eval")
    results = evaluate(chat, rows, respond=respond).wait()
    df = results.df
    assert df["status"].tolist() == ["succeeded", "succeeded", "paused"] and seen == ["Review request"] * 3
    assert df["answer"][0].endswith("Approved with priority normal: by refund 1")
    assert df["answer"][1].endswith("Rejected: by refund 2")
    assert df["form"].isna().tolist() == [True, True, False] and df["form"][2].startswith("Review request [Approve / Reject]: ## Please review")
    unanswered = evaluate(dify_chat("async", server, "approval", user="hitl-eval2"), ["refund 4"]).wait()
    assert unanswered.df["status"].tolist() == ["paused"] and "**refund 4**" in unanswered.df["form"][0]


def test_a_paused_run_read_from_history_is_reopened_from_its_state_and_answered(server):
    asker = dify_chat("sync", server, "approval", user="hitl-reopen")
    first = asker.ask(QUESTION)
    assert first.status == "waiting"
    # Another session (a notebook opened later) finds the turn waiting in the history.
    later = dify_chat("sync", server, "approval", user="hitl-reopen")
    later.conversation_id = asker.conversation_id
    later.history()
    (row,) = later.history_records()
    assert row["status"] == "waiting" and row["execution_id"] == first.execution_id
    reply = later.reopen(row["message_id"])
    assert reply.status == "waiting" and reply.text == BEFORE
    assert reply.pending_input is not None and reply.pending_input.node_title == "Review request"
    assert [s.name for s in reply.nodes] == [s.name for s in first.nodes]  # the state, once each
    reply.respond("reject", comment="not now")
    assert reply.status == "succeeded" and reply.text == BEFORE + "Rejected: not now"
    with pytest.raises(ValueError, match="not a run waiting on a form"):
        later.reopen(row["message_id"])


def test_a_widget_opened_on_a_waiting_conversation_shows_its_form_and_answers_it(server):
    asker = dify_chat("sync", server, "approval", user="hitl-reopen-w")
    first = asker.ask(QUESTION)
    app = server.app("approval")
    widget = ChatWidget(system="dify", api_key=app["dify_api_key"], base_url=server.dify_base_url,
                        user_id="hitl-reopen-w", conversation_id=asker.conversation_id)
    widget.send = lambda msg, *a, **k: None  # type: ignore[method-assign]
    widget.booted.result(10)
    wait_until(lambda: (widget.transcript["turns"] or [{}])[0].get("form") is not None, what="the form to show")
    (turn,) = widget.transcript["turns"]
    assert turn["id"] == first.message_id and turn["status"] == "waiting"
    widget._on_custom(widget, {"type": "command", "id": 1, "name": "respond", "args": {
        "message_id": turn["id"], "action": "approve", "inputs": {"priority": "low"}}}, [])
    widget.wait()
    (turn,) = widget.transcript["turns"]
    assert turn["status"] == "succeeded" and turn["answer"] == BEFORE + "Approved with priority low: looks fine"
    widget.close()


def spec_stream(end: str) -> list[tuple[str, dict]]:
    """The 2026 spec's human-input events as one valid SSE stream: the form asked, the run
    paused; then, as a run's event stream goes on, the form filled elsewhere or timed out."""
    ids = {"message_id": "m-spec", "conversation_id": "c-spec", "task_id": "t-spec", "workflow_run_id": "w-spec"}
    node = {"id": "r-hi", "node_id": "hi", "node_type": "human-input", "title": "Review request"}
    form = {"form_id": "f-spec", "node_id": "hi", "node_title": "Review request", "form_content": "## Review",
            "inputs": [{"type": "paragraph", "output_variable_name": "comment", "default": None}],
            "actions": [{"id": "approve", "title": "Approve", "button_style": "primary"}],
            "display_in_ui": True, "form_token": "spec-token-0123456789", "resolved_default_values": {},
            "expiration_time": 1796398569}
    items: list[tuple[str, dict]] = [
        ("workflow_started", {**ids, "data": {"id": "w-spec", "reason": "initial"}}),
        ("node_started", {**ids, "data": node}),
        ("human_input_required", {**ids, "data": form})]
    if end == "filled":
        items += [("human_input_form_filled", {**ids, "data": {"node_id": "hi", "node_title": "Review request",
                                                              "rendered_content": "## Review\n\nok",
                                                              "action_id": "approve", "action_text": "Approve"}}),
                  ("node_finished", {**ids, "data": {**node, "status": "succeeded"}}),
                  ("message", {**ids, "answer": "Approved."}),
                  ("message_end", {**ids, "metadata": {}}),
                  ("workflow_finished", {**ids, "data": {"id": "w-spec", "status": "succeeded",
                                                         "outputs": {"answer": "Approved."}}})]
    else:
        items += [("human_input_form_timeout", {**ids, "data": {"node_id": "hi", "node_title": "Review request",
                                                               "expiration_time": 1796398569}}),
                  ("workflow_paused", {**ids, "data": {"workflow_run_id": "w-spec", "paused_nodes": ["hi"],
                                                       "reasons": [], "status": "paused"}})]
    return items


@pytest.mark.parametrize("end", ["filled", "timeout"])
def test_the_specs_human_input_events_over_a_raw_socket(end):
    from atomemo_notebook import Chat, DifyClient

    from .test_reasoning import sse_server

    base_url, thread = sse_server(spec_stream(end))
    with DifyClient("app-test", base_url=base_url) as client:
        chat = Chat(client, user_id="spec")
        reply = chat.ask("review this")
    thread.join(10)
    assert reply.pending_input is None  # the form ended in the stream itself
    assert "spec-token-0123456789" not in json.dumps([r.event.data for r in reply.events])
    if end == "filled":
        assert reply.status == "succeeded" and reply.text == "Approved." and reply.input_outcome == "answered: Approve"
    else:
        assert reply.status == "waiting"
        assert reply.input_outcome == "the form “Review request” expired before anyone answered it: no answer was sent"


@settings(max_examples=60, deadline=None)
@given(body=st.one_of(st.none(), st.text(max_size=30), st.integers(), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.sampled_from(["inputs", "action", "user", "x"]),
                                      st.one_of(st.none(), st.text(max_size=10), st.integers(),
                                                st.dictionaries(st.text(max_size=8), st.one_of(
                                                    st.text(max_size=8), st.integers()), max_size=3)),
                                      max_size=4)),
       token=st.text(alphabet="abcXYZ019-_", min_size=1, max_size=40), web=st.booleans())
def test_fuzz_the_form_routes_answer_clearly_whatever_they_are_sent(server, body, token, web):
    import httpx

    key = server.app("approval")["dify_api_key"]
    root = server.dify_base_url.rsplit("/v1", 1)[0]
    url = f"{root}/api/form/human_input/{token}" if web else f"{server.dify_base_url}/form/human_input/{token}"
    headers = {} if web else {"Authorization": f"Bearer {key}"}
    answer = httpx.post(url, content=json.dumps(body), headers=headers, timeout=10)
    assert answer.status_code in (400, 404, 412), answer.text
    assert isinstance(answer.json().get("message"), str)
    events = httpx.get(f"{server.dify_base_url}/workflow/{token}/events", params={"user": "u"},
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert events.status_code == 404 and events.json()["code"] == "not_found"


async def test_a_run_that_does_not_end_within_the_deadline_after_its_answer_fails_clearly(kind, server):
    from atomemo_notebook import APITimeoutError

    chat = dify_chat(kind, server, "approval", user=f"hitl-slow-{kind}",
                     headers={"X-Atomemo-Pace": "chunk_size=1; chunk_delay=0.03; node_delay=0"})
    reply = await maybe(chat.ask("ok?"))
    assert reply.status == "waiting"
    chat.respond_deadline = 0.2  # the approved answer streams for ~1.5 s
    with pytest.raises(APITimeoutError, match=r"did not end or pause again within 0\.2 s"):
        await maybe(reply.respond("approve"))
    assert reply.done and reply.status == "failed" and reply.pending_input is None


def test_the_static_copy_shows_a_waiting_turns_form_sanitized_and_read_only(server):
    chat = dify_chat("sync", server, "approval", user="hitl-static")
    reply = chat.ask("refund <script>alert(1)</script> please")
    assert reply.status == "waiting"
    from atomemo_notebook.views._snapshot import snapshot_html

    page = snapshot_html({"app_name": "t"}, chat.tree, reply.message_id)
    assert "✋ Review request" in page and "waiting for you" in page
    assert "<h2>Please review</h2>" in page and "<script>" not in page
    assert "inputs: comment, priority · actions: Approve / Reject" in page
    assert "<button" not in page and "<input" not in page and "<textarea" not in page
    token = forms.FORM_TOKENS.token(reply.pending_input.form_id)  # type: ignore[union-attr]
    assert token and token not in page
