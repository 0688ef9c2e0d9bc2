"""Each system's backend, driven with canned answers and no server: its plans are generators
of steps (protocol/_call.py), so a test answers each step as the server would (the raw JSON
body, read by the call's own parser) and checks what the plan asked and what it made of the
answers. The loopback suites (test_chat, test_dify, test_pipelit, test_odyssey) keep the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from atomemo_notebook.protocol._call import Call, Listen, Open, Pause, Plan, Together
from atomemo_notebook.protocol._errors import APIConnectionError, NotFoundError
from atomemo_notebook.protocol._systems import SYSTEMS
from atomemo_notebook.protocol._wire import FileRef
from atomemo_notebook.protocol.atomemo._backend import AtomemoBackend
from atomemo_notebook.protocol.dify._backend import FOLLOW_POLL, MAX_SUGGESTIONS, DifyBackend
from atomemo_notebook.protocol.odyssey._backend import OdysseyBackend
from atomemo_notebook.protocol.odyssey._calls import BODY
from atomemo_notebook.protocol.pipelit._backend import PipelitBackend, Watch

Answer = Callable[[Any], Any]


def drive(plan: Plan[Any], answer: Answer) -> tuple[Any, list[Any]]:
    """Run `plan` as a driver would, with `answer(step)` as each step's answer: a Call's is
    the raw body, read by the call's parser; an exception is thrown into the plan."""
    steps: list[Any] = []
    try:
        step = next(plan)
        while True:
            steps.append(step)
            try:
                raw = answer(step)
                result = step.parse(raw) if isinstance(step, Call) else raw
            except Exception as exc:  # handed to the plan, as the drivers do
                step = plan.throw(exc)
            else:
                step = plan.send(result)
    except StopIteration as done:
        return done.value, steps


def nothing(step: Any) -> Any:
    raise AssertionError(f"the plan was not meant to ask anything, asked {step!r}")


def paths(steps: list[Any]) -> list[str]:
    calls = [s.spec.call if isinstance(s, Listen) else s for s in steps]
    return [("Listen " if isinstance(s, Listen) else "") + f"{c.method} {c.path}" if isinstance(c, Call)
            else type(s).__name__ for s, c in zip(steps, calls, strict=True)]


def test_every_system_record_makes_its_backend():
    where = {"app_id": "a", "trigger_id": "t", "workflow": "w", "workspace_id": "ws", "agent_id": None,
             "memory": True}
    for name, system in SYSTEMS.items():
        backend = system.backend("http://x/api", where)
        assert backend.system == name
        assert backend.coordinates()["system"] == name


# -- Atomemo ------------------------------------------------------------------------------------

def atomemo() -> AtomemoBackend:
    return AtomemoBackend("app-1", "trig-1")


def test_atomemo_app_reads_the_chat_trigger_from_the_snapshot():
    snapshot = {"nodes": [{"id": "n1", "type": "chat_trigger", "name": "Start",
                           "data": {"variables": [{"name": "tone"}, "junk"], "examples": ["Hi?", 3]}}]}
    body = {"id": "app-1", "name": "Support", "icon": {"emoji": "S"},
            "activeVersion": {"id": "v1", "name": "v1", "snapshot": snapshot}}
    app, steps = drive(atomemo().app(), lambda step: body)
    assert paths(steps) == ["GET /chat/app/app-1"] and not steps[0].needs_key
    assert app.name == "Support" and app.emoji == "S"
    assert app.variables == [{"name": "tone"}] and app.examples == ["Hi?"]


def test_atomemo_send_describes_the_stream_without_opening_it():
    spec = atomemo().send(query="Hello", user="u", conversation_id="c1", parent_id="m0", inputs={"x": 1},
                          source="nb")
    assert isinstance(spec, Open) and spec.call.stream
    assert (spec.call.method, spec.call.path) == ("POST", "/chat/messages")
    assert spec.call.json["query"] == "Hello" and spec.opened is None


def test_atomemo_follow_reads_the_stream_quietly_then_the_stored_message():
    def answer(step: Any) -> Any:
        if isinstance(step, Open):
            raise NotFoundError("gone", status_code=404)  # the stream is over: quietly ignored
        return {"items": [{"id": "m1", "conversationId": "c1", "status": "succeeded", "query": "q",
                           "answer": "whole"}]}

    messages, steps = drive(atomemo().follow("m1", "c1", "u"), answer)
    assert paths(steps) == ["Open", "GET /chat/messages"]
    assert steps[0].call.path.endswith("/m1/resume_stream")
    assert steps[1].params == {"conversation_id": "c1", "end_message_id": "m1", "include_end": "true"}
    assert [(m.id, m.answer) for m in messages] == [("m1", "whole")]


def test_atomemo_uploads_in_one_deadline_and_cannot_clear():
    plan = atomemo().upload(b"%PDF", filename="a.pdf", mime_type="application/pdf", user="u")
    ref = FileRef(filename="a.pdf", extension="pdf", mime_type="application/pdf", size=4, res_key="k")
    value, steps = drive(plan, lambda step: ref)
    assert value is ref and isinstance(steps[0], Together)  # the 3-step upload, under one deadline
    with pytest.raises(ValueError, match="keeps every conversation"):
        drive(atomemo().clear("u"), nothing)
    assert drive(atomemo().stop("task", "u"), nothing) == (None, [])  # no cancel: Stop stops listening


# -- Dify ----------------------------------------------------------------------------------------

def dify_message(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"m{i}", "conversation_id": "c1", "query": f"q{i}", "answer": f"a{i}", "status": "normal",
            "created_at": 1_700_000_000 + i, **extra}


def test_dify_history_pages_backwards_and_makes_one_thread():
    pages = {None: {"data": [dify_message(3), dify_message(4)], "has_more": True},
             "m3": {"data": [dify_message(1), dify_message(2)], "has_more": False}}
    messages, steps = drive(DifyBackend("http://x/v1").history("c1", "u"),
                            lambda step: pages[step.params.get("first_id")])
    assert paths(steps) == ["GET /messages", "GET /messages"]
    assert [m.id for m in messages] == ["m1", "m2", "m3", "m4"]
    assert [m.parent_id for m in messages] == [None, "m1", "m2", "m3"]
    assert [m.dialogue_count for m in messages] == [1, 2, 3, 4] and {m.user_id for m in messages} == {"u"}


def test_dify_suggests_only_when_the_app_says_so_and_at_most_five():
    backend = DifyBackend("http://x/v1")
    assert drive(backend.suggestions("m1", "u"), nothing) == ([], [])  # not asked: Dify would answer 400
    bodies = {"/info": {"name": "Bot", "mode": "chat"},
              "/parameters": {"suggested_questions_after_answer": {"enabled": True},
                              "opening_statement": "Hello!",
                              "user_input_form": [{"text-input": {"variable": "tone", "label": "Tone"}}]}}
    app, _ = drive(backend.app(), lambda step: bodies[step.path])
    assert (app.name, app.opening, app.variables[0]["variable"]) == ("Bot", "Hello!", "tone")
    questions, steps = drive(backend.suggestions("m1", "u"), lambda step: {"data": [f"s{i}" for i in range(9)]})
    assert paths(steps) == ["GET /messages/m1/suggested"] and len(questions) == MAX_SUGGESTIONS


def test_dify_stop_stops_the_run_and_takes_a_failure_quietly():
    assert drive(DifyBackend("u").stop(None, "u"), nothing) == (None, [])  # no task yet: nothing to stop

    def fail(step: Any) -> Any:
        raise APIConnectionError("down")

    _, steps = drive(DifyBackend("u").stop("task-1", "u"), fail)
    assert paths(steps) == ["POST /chat-messages/task-1/stop"]


def test_dify_follow_polls_a_resumed_run_until_it_ends():
    paused = dify_message(1, status="paused", extra_contents=[{"submitted": True, "workflow_run_id": "run-1"}])
    runs = iter(["running", "running", "succeeded"])
    reads = iter([{"data": [paused], "has_more": False}, {"data": [dify_message(1)], "has_more": False}])

    def answer(step: Any) -> Any:
        if isinstance(step, Pause):
            return None
        if step.path.startswith("/workflows/run/"):
            return {"id": "run-1", "status": next(runs)}
        return next(reads)

    messages, steps = drive(DifyBackend("u").follow("m1", "c1", "u"), answer)
    assert paths(steps) == ["GET /messages", "GET /workflows/run/run-1", "Pause", "GET /workflows/run/run-1",
                            "Pause", "GET /workflows/run/run-1", "GET /messages"]
    assert [s.seconds for s in steps if isinstance(s, Pause)] == [FOLLOW_POLL[0], FOLLOW_POLL[0] * 2]
    assert messages[0].status == "succeeded"


def test_dify_sends_a_file_beside_a_short_text():
    ref = FileRef(filename="cat.png", extension="png", mime_type="image/png", size=1, res_key="f1")
    spec = DifyBackend("u").send(query=ref, user="u", conversation_id=None, parent_id=None, inputs={}, source=None)
    assert (spec.user, spec.conversation_id) == ("u", None)
    assert spec.call.json["query"] == "[file: cat.png]"
    assert spec.call.json["files"] == [{"type": "image", "transfer_method": "local_file", "upload_file_id": "f1"}]


STREAM = object()  # what a driver answers a Listen with: the stream it opened


def test_dify_run_events_opens_the_service_apis_stream():
    stream, steps = drive(DifyBackend("http://x/v1", web_app_code="code").run_events("run-1", "u"),
                          lambda step: STREAM)
    assert paths(steps) == ["Listen GET /workflow/run-1/events"]
    assert stream is STREAM and steps[0].spec.user == "u"
    assert steps[0].spec.call.params == {"user": "u", "include_state_snapshot": "false", "continue_on_pause": "true"}


def test_dify_run_events_falls_back_to_the_web_app_apis_stream_on_a_404():
    def answer(step: Any) -> Any:
        if isinstance(step, Call):
            return {"access_token": "pass-1"}
        if step.spec.call.absolute:
            return STREAM
        raise NotFoundError("no such route", status_code=404)  # Dify 1.13: none on the service API

    stream, steps = drive(DifyBackend("http://x/v1", web_app_code="code").run_events("run-1", "u"), answer)
    assert paths(steps) == ["Listen GET /workflow/run-1/events", "GET http://x/api/passport",
                            "Listen GET http://x/api/workflow/run-1/events"]
    assert stream is STREAM and steps[1].params == {"user_id": "u"}
    assert steps[2].spec.call.headers == {"X-App-Code": "code", "X-App-Passport": "pass-1"}
    assert steps[2].spec.user == "u" and not steps[2].spec.call.needs_key


def test_dify_run_events_is_none_where_the_server_has_neither_stream():
    def answer(step: Any) -> Any:
        if isinstance(step, Call):
            return {"access_token": "pass-1"}
        raise NotFoundError("no such route", status_code=404)

    stream, steps = drive(DifyBackend("http://x/v1", web_app_code="code").run_events("run-1", "u"), answer)
    assert stream is None and len(steps) == 3
    # No web_app_code: the web-app API is not tried (its passport needs the code).
    stream, steps = drive(DifyBackend("http://x/v1").run_events("run-1", "u"), answer)
    assert stream is None and paths(steps) == ["Listen GET /workflow/run-1/events"]
    # Other systems have no such stream: nothing asked.
    assert drive(AtomemoBackend("a", "t").run_events("run-1", "u"), nothing) == (None, [])


def test_dify_run_events_leaves_other_failures_to_its_caller():
    def refuse(step: Any) -> Any:
        raise APIConnectionError("refused")

    with pytest.raises(APIConnectionError):
        drive(DifyBackend("http://x/v1", web_app_code="code").run_events("run-1", "u"), refuse)


# -- Pipelit -------------------------------------------------------------------------------------

def turn(role: str, text: str, second: int) -> dict[str, Any]:
    return {"role": role, "text": text, "timestamp": f"2026-12-04T10:00:{second:02d}Z"}


def test_pipelit_pairs_history_by_turn_and_keeps_the_ids_it_asked_under():
    backend = PipelitBackend("agent", "http://x/api/v1")
    spec = backend.send(query="weather?", user="u", conversation_id=None, parent_id=None, inputs={}, source=None)
    assert (spec.topic, spec.text, spec.call.path) == ("agent", "weather?", "/workflows/agent/chat/")
    assert spec.opened is not None
    spec.opened("exec-9")  # the driver tells it once the stream is open
    body = {"messages": [turn("assistant", "orphan", 0), turn("user", "hi", 1), turn("assistant", "hello", 2),
                         turn("user", "weather?", 3), turn("assistant", "Let me check.", 3),
                         turn("assistant", "Sunny.", 4), turn("user", "still there?", 5)], "has_more": False}
    messages, steps = drive(backend.history("agent", "u"), lambda step: body)
    assert paths(steps) == ["GET /workflows/agent/chat/history"]
    assert [(m.query, m.answer, m.status) for m in messages] == [
        ("hi", "hello", "succeeded"), ("weather?", "Sunny.", "succeeded"), ("still there?", None, "failed")]
    assert messages[1].id == "exec-9" and messages[1].extra == {"steps": ["Let me check."]}
    assert [m.parent_id for m in messages] == [None, messages[0].id, "exec-9"]


def test_pipelit_cannot_send_files_and_needs_a_workflow():
    ref = FileRef(filename="a.txt", extension="txt", mime_type="text/plain", size=1, res_key="k")
    with pytest.raises(ValueError, match="text only"):
        PipelitBackend("w", "u").send(query=ref, user="u", conversation_id=None, parent_id=None, inputs={},
                                      source=None)
    with pytest.raises(ValueError, match="needs workflow"):
        PipelitBackend.create("u", {"workflow": None})


def test_pipelit_cancel_watches_then_says_an_execution_had_already_ended():
    notes: list[str] = []
    records = {"/executions/e1/cancel/": {"execution_id": "e1", "status": "completed"},
               "/executions/e1/": {"execution_id": "e1", "status": "completed", "final_output": "42"}}
    _, steps = drive(PipelitBackend("w", "u").cancel("e1", notes.append),
                     lambda step: None if isinstance(step, Watch) else records[step.path])
    assert paths(steps) == ["Watch", "POST /executions/e1/cancel/", "GET /executions/e1/"]
    assert steps[0].execution_id == "e1"
    assert len(notes) == 1 and "already completed" in notes[0] and "42" in notes[0]


def test_pipelit_cancel_that_fails_says_nothing():
    notes: list[str] = []

    def answer(step: Any) -> Any:
        if isinstance(step, Watch):
            return None
        raise APIConnectionError("down")

    _, steps = drive(PipelitBackend("w", "u").cancel("e1", notes.append), answer)
    assert paths(steps) == ["Watch", "POST /executions/e1/cancel/"] and notes == []


def test_pipelit_clear_forgets_what_it_asked():
    backend = PipelitBackend("w", "u")
    backend.asked.append(("q", "e1"))
    _, steps = drive(backend.clear("u"), lambda step: None)
    assert paths(steps) == ["DELETE /workflows/w/chat/history"] and backend.asked == []


# -- OdysseyAI -----------------------------------------------------------------------------------

def test_odyssey_chooses_the_id_of_a_new_conversation_and_keeps_a_known_one():
    backend = OdysseyBackend("ws", "agent-1", False, "http://x/api")
    first = backend.send(query="hi", user="u", conversation_id=None, parent_id=None, inputs={}, source=None)
    later = backend.send(query="and?", user="u", conversation_id="c-7", parent_id=None, inputs={}, source=None)
    assert first.call.json[BODY["first"]] is True and first.call.json[BODY["conversation"]]
    assert later.call.json[BODY["first"]] is False and later.call.json[BODY["conversation"]] == "c-7"
    assert later.call.json[BODY["agent"]] == "agent-1" and later.call.json[BODY["no_memory"]] is True
    assert later.call.headers == {"userId": "u"}


def test_odyssey_has_nothing_stored_and_no_files():
    backend = OdysseyBackend("ws", None, True, "u")
    for plan in (backend.history("c", "u"), backend.conversations("u"), backend.follow("m", "c", "u"),
                 backend.suggestions("m", "u")):
        assert drive(plan, nothing) == ([], [])
    app, _ = drive(backend.app(), nothing)
    assert (app.name, app.description) == ("OdysseyAI", "workspace ws")
    with pytest.raises(ValueError, match="takes no files"):
        backend.upload(b"x", filename="a", mime_type=None, user="u")
    with pytest.raises(ValueError, match="cannot delete"):
        backend.clear("u")
    with pytest.raises(ValueError, match="needs workspace_id"):
        OdysseyBackend.create("u", {})
