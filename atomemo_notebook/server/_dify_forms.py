"""The emulator's Human Input forms and a run's event stream, as Dify serves them: on the
service API as the 2026 spec has them (`/v1/form/human_input/{token}`,
`/v1/workflow/{run_id}/events`), and the form on the web-app API too (`/api/form/...`, no key),
where Dify 1.13.2 serves it."""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._http import Handler
from ._runs import Run

if TYPE_CHECKING:
    from ._app import Emulator
    from ._dify_workflow import WorkflowApp

MAX_FORMS = 10_000  # forms remembered (answered or not); the oldest are forgotten past it
MAX_VALUE = 100_000  # characters of one answered input
_forms: collections.OrderedDict[str, PendingForm] = collections.OrderedDict()  # token -> form


class PendingForm:
    """One form a run waits on: answered once (then 412), or expired at `expires_at`."""

    def __init__(self, run: Run, node_id: str, form: dict[str, Any]) -> None:
        self.run, self.node_id, self.form = run, node_id, form
        self.form_id = str(uuid.uuid4())
        self.token = secrets.token_urlsafe(24)
        self.expires_at = time.time() + float(form.get("timeout") or 600.0)
        self.submitted = False
        self.expired = False
        self._answer: asyncio.Future[tuple[str, dict[str, Any]]] = asyncio.get_running_loop().create_future()

    @classmethod
    def open(cls, run: Run, result: dict[str, Any], node: tuple[str, str], form: dict[str, Any]) -> PendingForm:
        pending = cls(run, str(result["node_id"]), form)
        _forms[pending.token] = pending
        while len(_forms) > MAX_FORMS:
            _forms.popitem(last=False)
        return pending

    async def outcome(self) -> tuple[str, dict[str, Any]] | None:
        """The action and inputs it was answered with, or None once it expired."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), max(0.0, self.expires_at - time.time()))
        except asyncio.TimeoutError:
            self.expired = True  # an expired form cannot be answered any more
            return None

    def answer(self, action: str, inputs: dict[str, Any]) -> None:
        self.submitted = True
        self.run.resume()  # at once: a stream of the run's events asked for right after starts here
        if not self._answer.done():
            self._answer.set_result((action, inputs))

    def definition(self) -> dict[str, Any]:
        form = self.form
        return {"form_content": form["content"], "inputs": [
            {"type": f["type"], "output_variable_name": f["name"], "default": None if f.get("default") is None
             else {"type": "constant", "selector": [], "value": f["default"]}} for f in form["fields"]],
            "actions": [{"id": a["id"], "title": a["title"], "button_style": a["style"]} for a in form["actions"]],
            "resolved_default_values": {}, "expiration_time": int(self.expires_at)}


def paused_text(run: Run) -> str:
    """The text a paused run's message is stored with: what it streamed before the pause."""
    parts = []
    for payload in run.events:
        if '"event":"message"' in payload or '"event": "message"' in payload:
            frame = json.loads(payload)
            if frame.get("event") == "message" and isinstance(frame.get("answer"), str):
                parts.append(frame["answer"])
    return "".join(parts)


def paused_form(pending: PendingForm) -> dict[str, Any]:
    """A paused message's `extra_contents` entry, as 1.13.2 lists it."""
    return {"type": "human_input", "form_definition": {**pending.definition(), "form_id": pending.form_id,
                                                       "form_token": pending.token, "node_id": pending.node_id},
            "workflow_run_id": pending.run.execution_id,
            "submitted": pending.submitted or pending.expired}


def state_snapshot(events: list[str]) -> list[str]:
    """A run's state so far, as Dify's snapshot stream replays it: its run and node events
    again, and the answer so far as one `message_replace` (its chunks are not sent again)."""
    out: list[str] = []
    text: list[str] = []
    where = 0
    for payload in events:
        frame = json.loads(payload)
        name = frame.get("event")
        if name == "message" and isinstance(frame.get("answer"), str):
            text.append(frame["answer"])
            continue
        if name in ("reasoning_chunk", "tts_message"):
            continue
        if name == "workflow_started" and not where:
            where = len(out) + 1
            replace = {k: frame.get(k) for k in ("conversation_id", "message_id", "created_at", "task_id")}
        out.append(payload)
    if text and where:
        out.insert(where, json.dumps({"event": "message_replace", **replace, "answer": "".join(text),
                                      "reason": ""}))
    return out


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)


def form_routes(emu: Emulator, prefix: str, check_key: Any, find: Any, flows: WorkflowApp,
                dify_errors: Callable[[Handler], Handler]) -> list[Route]:
    """`check_key(request)`: the app a service-API key names (raises its 401); `find(app,
    conversation_id, user)`: that app's Dify conversation of that user, or None; `flows`: the
    workflow app, whose runs' events are its own; `dify_errors`: answers an error the shared
    helpers raise (a malformed fault header) in Dify's shape, as every other Dify route does."""

    def open_form(token: str, submitted: str) -> PendingForm | JSONResponse:
        """The form a token names while it can be answered, else Dify's error for it
        (`submitted`: how the error for an answered form ends, as each route words it)."""
        pending = _forms.get(token)
        if pending is None:
            return _error(404, "not_found", "Form not found.")
        if pending.expired or time.time() >= pending.expires_at:
            return _error(412, "human_input_form_expired", f"This form has expired, form_id={pending.form_id}")
        if pending.submitted:
            return _error(412, "human_input_form_submitted", f"This form has already been submitted{submitted}, "
                                                             f"form_id={pending.form_id}")
        return pending

    @dify_errors
    async def read(request: Request) -> Response:
        if request.url.path.startswith(prefix):
            check_key(request)
        pending = open_form(request.path_params["token"], "")
        return pending if isinstance(pending, JSONResponse) else JSONResponse(pending.definition())

    @dify_errors
    async def submit(request: Request) -> Response:
        service = request.url.path.startswith(prefix)
        if service:
            check_key(request)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_param", "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_param", "the body must be a JSON object")
        pending = open_form(request.path_params["token"], " by another user")
        if isinstance(pending, JSONResponse):
            return pending
        if service and not isinstance(body.get("user"), str):
            return _error(400, "invalid_param", "user is required")
        action, inputs = body.get("action"), body.get("inputs") or {}
        actions = [a["id"] for a in pending.form["actions"]]
        if action not in actions:
            return _error(400, "invalid_param", f"action must be one of {actions}")
        names = {f["name"] for f in pending.form["fields"]}
        if not isinstance(inputs, dict) or set(inputs) - names or any(
                not isinstance(v, str) or len(v) > MAX_VALUE for v in inputs.values()):
            return _error(400, "invalid_param", f"inputs must be text values of {sorted(names)}")
        pending.answer(str(action), dict(inputs))
        return JSONResponse({})

    @dify_errors
    async def events(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        snapshot = request.query_params.get("include_state_snapshot") == "true"
        if flows.owns(request):
            answer = flows.events(run_id, request.query_params.get("user"), snapshot, emu.fault(request))
            return answer or _error(404, "not_found", "Workflow run not found.")
        app = check_key(request)
        run = next((r for r in list(emu.runs.values()) if r.execution_id == run_id), None)
        conv = None if run is None else emu.store.get_conversation(run.conversation_id)
        # A run of this app's, asked through Dify (not another app's, nor an Atomemo API run),
        # and of the user named, if one is (as the workflow app's runs are).
        user = request.query_params.get("user")
        if run is None or conv is None or find(app, conv["id"], conv["userId"] if user is None else user) is None:
            return _error(404, "not_found", "Workflow run not found.")
        emu.fault(request)
        through = request.query_params.get("continue_on_pause", "true") != "false"
        if not snapshot:
            start = len(run.events) if run.paused or run.resume_at is None else run.resume_at
            return emu.stream(run, None, start=start, through_pause=through)
        upto = len(run.events)
        replay = state_snapshot(run.events[:upto])
        live = emu.stream(run, None, start=upto, through_pause=through).body_iterator

        async def frames() -> Any:
            yield "".join(f"data: {payload}\n\n" for payload in replay).encode()
            async for piece in live:
                yield piece

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return [
        Route(f"{prefix}/form/human_input/{{token}}", read, methods=["GET"]),
        Route(f"{prefix}/form/human_input/{{token}}", submit, methods=["POST"]),
        Route("/api/form/human_input/{token}", read, methods=["GET"]),
        Route("/api/form/human_input/{token}", submit, methods=["POST"]),
        Route(f"{prefix}/workflow/{{run_id}}/events", events, methods=["GET"]),
    ]
