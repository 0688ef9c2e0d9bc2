"""One Dify workflow app, emulated (not a chatflow): its runs take inputs and give outputs, as
Dify 1.13.2 answers them (tests/peers/dify/workflow-app.jsonl): POST /v1/workflows/run
streaming (`ping`, `workflow_started`, node events, `text_chunk`s of the End node's outputs,
`workflow_finished`, the close a moment later) or blocking; POST
/v1/workflows/tasks/{task_id}/stop; GET /v1/workflows/run/{id} (a stopped run's record stays
`running`, as Dify's does); GET /v1/workflows/logs. Its "Look up" node fails its first
attempt and is retried (`node_retry`), so every run shows a retry.

The app: Start (`name` required, `delay` seconds optional) -> Look up (retried once, then
waits `delay`) -> Compose -> End, with outputs {greeting, name, letters}."""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..protocol.dify._workflow_app import WORKFLOW_DEMO
from ._faults import Fault
from ._http import ApiError, DropConnection

if TYPE_CHECKING:
    from ._app import Emulator

__all__ = ["MAX_DELAY", "MAX_RUNS", "NAME", "WORKFLOW_DEMO", "WorkflowApp"]

NAME = "Greeting workflow"
MAX_RUNS = 1_000  # runs kept for their records and the logs; the oldest go first
MAX_DELAY = 60.0  # seconds the `delay` input may ask for
MAX_NAME = 256
PING = b"event: ping\n\n"
NODES = (("start", "Start", "start"), ("lookup", "Look up", "http-request"), ("compose", "Compose", "llm"),
         ("end", "End", "end"))
FORM = [{"text-input": {"label": "Name", "variable": "name", "required": True, "max_length": MAX_NAME,
                        "default": "", "hide": False}},
        {"number": {"label": "Delay (seconds)", "variable": "delay", "required": False, "default": "",
                    "hide": False}}]


class WorkflowRun:
    def __init__(self, user: str, inputs: dict[str, Any]) -> None:
        self.id, self.task_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.log_id = str(uuid.uuid4())
        self.user, self.inputs = user, inputs
        self.status = "running"
        self.outputs: dict[str, Any] = {}
        self.record_status = "running"  # what GET /workflows/run says (a stop never reaches it)
        self.created_at = int(time.time())
        self.error: str | None = None
        self.finished_at: int | None = None
        self.started = time.monotonic()
        self.elapsed, self.steps = 0.0, 0
        self.frames: list[bytes] = []
        self.names: list[str] = []  # each frame's event name
        self.changed = asyncio.Event()
        self.stopped = asyncio.Event()
        self.done = False


def _delay(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_param", "delay must be a number") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DELAY:
        raise ApiError(400, "invalid_param", f"delay must be from 0 to {MAX_DELAY:g} seconds")
    return seconds


class WorkflowApp:
    """The workflow app's key, its runs, and what each of its routes answers."""

    def __init__(self, emu: Emulator, key: str) -> None:
        self.emu, self.key = emu, key
        self.runs: collections.OrderedDict[str, WorkflowRun] = collections.OrderedDict()
        self.tasks: set[asyncio.Task[None]] = set()

    def owns(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key.encode())

    # -- the app -------------------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        return {"opening_statement": "", "suggested_questions": [],
                "suggested_questions_after_answer": {"enabled": False}, "speech_to_text": {"enabled": False},
                "text_to_speech": {"enabled": False}, "retriever_resource": {"enabled": False},
                "annotation_reply": {"enabled": False}, "more_like_this": {"enabled": False},
                "sensitive_word_avoidance": {"enabled": False}, "user_input_form": FORM,
                "file_upload": {"image": {"enabled": False}}, "system_parameters": {}}

    def info(self) -> dict[str, Any]:
        return {"name": NAME, "description": "Greets a name after looking it up (retried once).", "tags": [],
                "mode": "workflow", "author_name": "atomemo-notebook"}

    # -- running -------------------------------------------------------------------------------
    async def run(self, request: Request, fault: Fault | None = None) -> Response:
        body = await self.emu.json_body(request)
        user = body.get("user")
        if not isinstance(user, str) or not user.strip() or len(user) > MAX_NAME:
            raise ApiError(400, "invalid_param", "user is required")
        mode = body.get("response_mode") or "blocking"
        if mode not in ("streaming", "blocking"):
            raise ApiError(400, "invalid_param", "response_mode must be streaming or blocking")
        inputs = body.get("inputs")
        if not isinstance(inputs, dict):
            raise ApiError(400, "invalid_param", "inputs must be an object")
        name = inputs.get("name")
        if name is None or name == "":
            raise ApiError(400, "invalid_param", "name is required in input form")
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise ApiError(400, "invalid_param", f"name in input form must be less than {MAX_NAME} characters")
        delay = _delay(inputs.get("delay"))
        run = WorkflowRun(user, {"name": name, "delay": inputs.get("delay")})
        self.runs[run.id] = run
        while len(self.runs) > MAX_RUNS:
            self.runs.popitem(last=False)
        task = asyncio.create_task(self._execute(run, name, delay))  # runs on if the client goes
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if mode == "blocking":
            await asyncio.shield(task)
            return JSONResponse({"task_id": run.task_id, "workflow_run_id": run.id, "data": {
                "id": run.id, "workflow_id": self.workflow_id, "status": run.status, "outputs": run.outputs,
                "error": run.error, "elapsed_time": run.elapsed, "total_tokens": 0, "total_steps": run.steps,
                "created_at": run.created_at, "finished_at": run.finished_at}})
        return StreamingResponse(self._relay(run, fault), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    def events(self, run_id: str, user: str | None, snapshot: bool, fault: Fault | None) -> Response | None:
        """GET /v1/workflow/{run_id}/events for a run of this app (None: no such run of this
        user's): with the state snapshot, its events so far again, its text so far as one
        `text_replace` after the start (as a chatflow's snapshot gives its answer as one
        `message_replace`), then the rest live."""
        run = self.runs.get(run_id)
        if run is None or (user is not None and user != run.user):
            return None
        upto = len(run.frames)
        replay: list[bytes] = []
        text: list[str] = []
        for frame, name in zip(run.frames[:upto], run.names, strict=True) if snapshot else ():
            if name == "text_chunk":
                text.append(json.loads(frame[len(b"data: "):])["data"]["text"])
            else:
                replay.append(frame)
        if text:
            replace = {"event": "text_replace", "workflow_run_id": run.id, "task_id": run.task_id,
                       "data": {"text": "".join(text)}}
            replay.insert(1, f"data: {json.dumps(replace, ensure_ascii=False)}\n\n".encode())
        return StreamingResponse(self._relay(run, fault, start=upto, replay=b"".join(replay)),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @property
    def workflow_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dify-workflow:{self.key[:8]}"))

    def _emit(self, run: WorkflowRun, event: str, data: dict[str, Any]) -> None:
        frame = {"event": event, "workflow_run_id": run.id, "task_id": run.task_id, "data": data}
        run.frames.append(f"data: {json.dumps(frame, ensure_ascii=False)}\n\n".encode())
        run.names.append(event)
        run.changed.set()

    def _node(self, run: WorkflowRun, index: int) -> dict[str, Any]:
        node_id, title, kind = NODES[index]
        return {"id": str(uuid.uuid5(uuid.UUID(run.id), node_id)), "node_id": node_id, "node_type": kind,
                "title": title, "index": 1, "predecessor_node_id": NODES[index - 1][0] if index else None,
                "inputs": None, "inputs_truncated": False, "created_at": int(time.time()), "extras": {},
                "iteration_id": None, "loop_id": None}

    def _finished(self, run: WorkflowRun, index: int, status: str, outputs: dict[str, Any], took: float,
                  error: str | None = None, event: str = "node_finished", **extra: Any) -> None:
        data = self._node(run, index) | {"inputs": {}, "process_data": {}, "process_data_truncated": False,
                                         "outputs": outputs, "outputs_truncated": False, "status": status,
                                         "error": error, "elapsed_time": round(took, 6),
                                         "execution_metadata": None, "finished_at": int(time.time()),
                                         "files": []} | extra
        data.pop("extras")
        self._emit(run, event, data)

    async def _wait(self, run: WorkflowRun, seconds: float) -> bool:
        """Sleep, unless the run is stopped first: True if it was."""
        try:
            await asyncio.wait_for(run.stopped.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return False
        return True

    async def _execute(self, run: WorkflowRun, name: str, delay: float) -> None:
        pause = self.emu.config.node_delay
        self._emit(run, "workflow_started", {"id": run.id, "workflow_id": self.workflow_id,
                                             "inputs": {**run.inputs, "sys.user_id": run.user},
                                             "created_at": run.created_at, "reason": "initial"})
        outputs = {"greeting": f"Hello, {name}!", "name": name, "letters": len(name)}
        stopped = False
        for index in range(len(NODES)):
            if stopped:
                break
            self._emit(run, "node_started", self._node(run, index))
            run.steps += 1
            begun = time.monotonic()
            if NODES[index][0] == "lookup":
                stopped = await self._wait(run, pause)
                if stopped:
                    break
                self._finished(run, index, "retry", {}, time.monotonic() - begun,
                               "503 from the directory, retrying", event="node_retry", retry_index=1)
                begun = time.monotonic()
                stopped = await self._wait(run, pause + delay)
                if stopped:
                    break
                self._finished(run, index, "succeeded", {"status_code": 200, "body": json.dumps({"name": name})},
                               time.monotonic() - begun)
                continue
            if NODES[index][0] == "end":  # the End node's outputs, streamed as text as Dify does
                for i, value in enumerate(outputs.values()):
                    if i:
                        self._emit(run, "text_chunk", {"text": "\n", "from_variable_selector": ["end", "answer"]})
                    self._emit(run, "text_chunk", {"text": str(value), "from_variable_selector": ["end", "x"]})
            stopped = await self._wait(run, pause)
            if stopped:
                break
            self._finished(run, index, "succeeded", outputs if NODES[index][0] == "end" else {},
                           time.monotonic() - begun)
        run.elapsed = round(time.monotonic() - run.started, 6)
        run.finished_at = int(time.time())
        if stopped:
            run.status, run.outputs, run.error = "stopped", {}, "Stopped by user."
        else:
            run.status = run.record_status = "succeeded"
            run.outputs = outputs
        self._emit(run, "workflow_finished", {
            "id": run.id, "workflow_id": self.workflow_id, "status": run.status, "outputs": run.outputs,
            "error": run.error, "elapsed_time": run.elapsed, "total_tokens": 0, "total_steps": run.steps,
            "created_by": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, run.user)), "user": run.user},
            "created_at": run.created_at, "finished_at": run.finished_at, "exceptions_count": 0, "files": []})
        run.done = True
        run.changed.set()

    async def _relay(self, run: WorkflowRun, fault: Fault | None = None, start: int = 0,
                     replay: bytes = b"") -> AsyncIterator[bytes]:
        """A ping at once (then `replay`), the run's frames from `start` as they come (a ping
        every dify_ping_interval of quiet), the close dify_close_delay after the end. A fault's
        `drop_after` breaks the connection after that many frames of the run."""
        interval = self.emu.config.dify_ping_interval
        yield PING + replay
        sent, relayed = start, 0
        while True:
            while sent < len(run.frames):
                if fault is not None and fault.drop_after is not None and relayed >= fault.drop_after:
                    raise DropConnection(f"injected drop after {relayed} events")
                sent += 1
                relayed += 1
                yield run.frames[sent - 1]
            if run.done:
                break
            run.changed.clear()
            try:
                await asyncio.wait_for(run.changed.wait(), timeout=interval)
            except asyncio.TimeoutError:
                yield PING
        await asyncio.sleep(self.emu.config.dify_close_delay)

    async def stop(self, request: Request, task_id: str) -> Response:
        body = await self.emu.json_body(request)
        user = body.get("user")
        if not isinstance(user, str) or not user.strip():
            raise ApiError(400, "invalid_param", "user is required")
        for run in self.runs.values():
            if run.task_id == task_id and run.user == user and not run.done:
                run.stopped.set()
        return JSONResponse({"result": "success"})  # Dify answers so for any task id

    def record(self, run_id: str) -> Response:
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, "not_found", "Workflow run not found.")
        finished = run.record_status != "running"
        return JSONResponse({
            "id": run.id, "workflow_id": self.workflow_id, "status": run.record_status,
            "inputs": json.dumps({**run.inputs, "sys.user_id": run.user}), "outputs": run.outputs if finished else {},
            "error": run.error if finished else None, "total_steps": run.steps if finished else 0, "total_tokens": 0,
            "created_at": run.created_at, "finished_at": run.finished_at if finished else None,
            "elapsed_time": run.elapsed if finished else 0.0})

    def logs(self, request: Request) -> Response:
        params = request.query_params
        page_text, limit_text = params.get("page", "1"), params.get("limit", "20")
        if not page_text.isdigit() or not limit_text.isdigit() or not 1 <= int(limit_text) <= 100 \
                or not 1 <= int(page_text) <= 100_000:
            raise ApiError(400, "invalid_param", "page must be a whole number from 1, limit from 1 to 100")
        page, limit = int(page_text), int(limit_text)
        status, keyword = params.get("status"), (params.get("keyword") or "")[:200].lower()
        rows = [r for r in reversed(self.runs.values())
                if (not status or r.record_status == status)
                and (not keyword or keyword in json.dumps(r.inputs, ensure_ascii=False).lower())]
        chunk = rows[(page - 1) * limit: page * limit]
        return JSONResponse({"page": page, "limit": limit, "total": len(rows), "has_more": page * limit < len(rows),
                             "data": [self._log(r) for r in chunk]})

    def _log(self, run: WorkflowRun) -> dict[str, Any]:
        finished = run.record_status != "running"
        return {"id": run.log_id, "workflow_run": {
            "id": run.id, "version": "v1", "status": run.record_status, "triggered_from": "app-run",
            "error": run.error if finished else None, "elapsed_time": run.elapsed if finished else 0.0,
            "total_tokens": 0, "total_steps": run.steps if finished else 0, "created_at": run.created_at,
            "finished_at": run.finished_at if finished else None, "exceptions_count": 0},
            "details": None, "created_from": "service-api", "created_by_role": "end_user",
            "created_by_account": None,
            "created_by_end_user": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, run.user)), "type": "service-api",
                                    "is_anonymous": False, "session_id": run.user},
            "created_at": run.created_at}
