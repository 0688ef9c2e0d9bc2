"""Dify's service API, emulated: the same demo workflows under /v1, with Dify's auth (one
`Authorization: Bearer app-...` key per app), request and answer shapes, event names, ids,
error bodies `{code, message, status}` and the server's fault injection. A Dify conversation
is one thread: each message continues the last, since Dify takes no parent message."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import mimetypes
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._demo import DemoApp, validate_inputs
from ._dify_forms import form_routes, paused_form, paused_text
from ._dify_workflow import WORKFLOW_DEMO, WorkflowApp
from ._http import ApiError, answering_as, check_text, read_body
from ._runs import Run
from ._voices import DIFY

if TYPE_CHECKING:
    from ._app import Emulator

DIFY_TRIGGER = "dify"  # the trigger id of conversations made through the Dify routes
PREFIX = "/v1"
MAX_PAGE = 100

# Our shared helpers raise Atomemo-style errors; on a Dify route they take Dify's codes.
_CODES = {400: "invalid_param", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          413: "file_too_large", 415: "unsupported_file_type", 422: "invalid_param",
          429: "too_many_requests"}


class DifyError(ApiError):
    """An error answer as Dify writes it: `{"code", "message", "status"}`."""

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "message": self.message, "status": self.status},
                            status_code=self.status, headers=self.headers)


def dify_body(status: int, message: str) -> dict[str, Any]:
    """Dify's body for an error raised outside a handler (unknown route, a crash)."""
    code = _CODES.get(status, "internal_server_error" if status >= 500 else "invalid_param")
    return {"code": code, "message": message, "status": status}


def dify_key(server_key: str, slug: str) -> str:
    """Each demo app's Dify key, derived from the server's key: stable for a server, and
    telling nothing of the server's key."""
    return "app-" + hmac.new(server_key.encode(), slug.encode(), hashlib.sha256).hexdigest()[:24]


_dify_errors = answering_as(DifyError, lambda status: _CODES.get(
    status, "internal_server_error" if status >= 500 else "invalid_param"))


def _epoch(iso: str | None) -> int:
    if not iso:
        return 0
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _optional(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DifyError(400, "invalid_param", f"{name} must be a string")
    check_text(value, name)
    return value


def _text(value: Any, name: str) -> str:
    text = _optional(value, name)
    if text is None or not text.strip():
        raise DifyError(400, "invalid_param", f"{name} is required")
    return text


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise DifyError(400, "invalid_param", f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _conversation(conv: dict[str, Any]) -> dict[str, Any]:
    return {"id": conv["id"], "name": conv["name"], "inputs": conv["inputs"], "status": "normal",
            "introduction": "", "created_at": _epoch(conv["createdAt"]),
            "updated_at": _epoch(conv["updatedAt"])}


NIL_UUID = "00000000-0000-0000-0000-000000000000"  # every message's parent in Dify 1.13's history
PING = b"event: ping\n\n"
FLASK_404 = ("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The "
             "requested URL was not found on the server. If you entered the URL manually please check your "
             "spelling and try again.</p>\n")
# Flask's "did you mean" suffix, which Dify's 404 messages carry, for the routes that answer one.
DID_YOU_MEAN = {f"{PREFIX}/messages": f"{PREFIX}/messages or {PREFIX}/chat-messages or /api/messages",
                f"{PREFIX}/chat-messages": f"{PREFIX}/chat-messages or /api/chat-messages or "
                                           f"{PREFIX}/chat-messages/<string:task_id>/stop"}


def not_found(request: Request, message: str) -> DifyError:
    hint = DID_YOU_MEAN.get(request.url.path)
    suffix = f" You have requested this URI [{request.url.path}] but did you mean {hint} ?" if hint else ""
    return DifyError(404, "not_found", message + suffix)


def dify_http_error(request: Request, exc: HTTPException) -> Response:
    """Flask's answers for what no route serves: `/v1` redirects to `/v1/`; the rest is its
    404 page (HTML, not Dify's JSON)."""
    if request.url.path == PREFIX:
        target = str(request.url.replace(path=PREFIX + "/", query=""))
        return HTMLResponse(f'<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...'
                            f'</h1>\n<p>You should be redirected automatically to the target URL: <a href="{target}">'
                            f'{target}</a>. If not, click the link.\n', status_code=308, headers={"Location": target})
    if exc.status_code == 404:
        return HTMLResponse(FLASK_404, status_code=404)
    return JSONResponse(dify_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)


def _outcome(emu: Emulator, message_id: str) -> dict[str, Any]:
    """How a stored run ended, from its last stored event (the store keeps stopped runs as failed)."""
    for payload in reversed(emu.store.events(message_id)[-3:]):
        frame = json.loads(payload)
        if frame.get("event") == "workflow_finished" and isinstance(frame.get("data"), dict):
            return dict(frame["data"])
    return {}


def _message(emu: Emulator, message: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Dify 1.13 lists it: no parent (the nil UUID), a failed run's answer
    empty with "Run failed: ..." as its error, a stopped run's the text streamed until the stop
    and `normal`, as if it had finished."""
    query = message["query"]
    status, answer, error = "normal", message["answer"] or "", None
    if message["status"] == "failed":
        outcome = _outcome(emu, message["id"])
        if outcome.get("status") != "stopped":
            status, answer = "error", ""
            error = f"Run failed: {outcome.get('error') or 'the workflow failed'}"
    extra: list[dict[str, Any]] = []
    run = emu.runs.get(message["id"])
    if run is not None and not run.done and run.form is not None:
        status, answer, extra = "paused", paused_text(run), [paused_form(run.form)]
    return {"id": message["id"], "conversation_id": message["conversationId"],
            "parent_message_id": NIL_UUID, "inputs": message["inputs"],
            "query": query if isinstance(query, str) else json.dumps(query), "answer": answer,
            "feedback": feedback.get(message["id"]), "retriever_resources": [],
            "created_at": _epoch(message["createdAt"]), "agent_thoughts": [], "message_files": [],
            "status": status, "error": error, "extra_contents": extra}


def _same_second_newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dify's page is its newest-first query reversed: messages of the same second (created_at
    has seconds only) come newest first."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for item in items:
        if run and run[-1]["created_at"] != item["created_at"]:
            out += reversed(run)
            run = []
        run.append(item)
    return out + run[::-1]


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _frames_of(run: Run) -> list[dict[str, Any]]:
    return [json.loads(payload) for payload in run.events]


def dify_routes(emu: Emulator) -> list[Route]:
    keys = {dify_key(emu.config.api_key, app.slug): app for app in emu.apps.values()}
    ratings: dict[str, dict[str, Any]] = {}  # message id -> {"rating"}, as its history shows it
    feedback_log: dict[str, dict[str, Any]] = {}  # message id -> the row /app/feedbacks lists
    flows = WorkflowApp(emu, dify_key(emu.config.api_key, WORKFLOW_DEMO))  # the one workflow app

    def app_for(request: Request) -> DemoApp:
        if flows.owns(request):  # every route here but the workflow app's own is a chat app's
            raise DifyError(400, "not_chat_app", "Please check if your app mode matches the right API route.")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DifyError(401, "unauthorized",
                            "Authorization header must be provided and start with 'Bearer'")
        for key, app in keys.items():
            if hmac.compare_digest(token.strip().encode(), key.encode()):
                return app
        raise DifyError(401, "unauthorized", "Access token is invalid")

    def find(app: DemoApp, conv_id: str, user: str) -> dict[str, Any] | None:
        conv = emu.store.get_conversation(conv_id)
        if conv is None or conv["appId"] != app.id or conv["triggerId"] != DIFY_TRIGGER or conv["userId"] != user:
            return None
        return conv

    def owned(app: DemoApp, conv_id: str, user: str, request: Request | None = None) -> dict[str, Any]:
        conv = find(app, conv_id, user)
        if conv is None:
            raise not_found(request, "Conversation Not Exists.") if request is not None else \
                DifyError(404, "not_found", "Conversation Not Exists.")
        return conv

    def stream(run: Run, fault: Any) -> Response:
        """Dify's relay: a `ping` at once, then the run's events with a `ping` every
        dify_ping_interval seconds of the run (its worker's), and the close dify_close_delay
        after the end."""
        if fault is not None and fault.no_newline:
            return emu.stream(run, fault)
        frames = emu.stream(run, fault).body_iterator
        interval, linger = emu.config.dify_ping_interval, emu.config.dify_close_delay

        async def relay() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            source = frames.__aiter__()
            pending: asyncio.Future[Any] | None = None
            next_ping = loop.time() + interval
            yield PING
            try:
                while True:
                    if pending is None:
                        pending = asyncio.ensure_future(source.__anext__())
                    done, _ = await asyncio.wait({pending}, timeout=max(0.0, next_ping - loop.time()))
                    if not done:
                        yield PING
                        next_ping += interval
                        continue
                    try:
                        piece = pending.result()
                    except StopAsyncIteration:
                        break
                    pending = None
                    if piece != PING:  # the shared idle heartbeat: Dify's pings are the timer's
                        yield piece if isinstance(piece, bytes) else str(piece).encode()
                await asyncio.sleep(linger)
            finally:
                if pending is not None:
                    pending.cancel()

        return StreamingResponse(relay(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def silence() -> Response:
        """A question into a conversation Dify does not know, streamed: 200, one ping, then
        nothing until its relay gives up (300 s in 1.13)."""
        async def quiet() -> AsyncIterator[bytes]:
            yield PING
            await asyncio.sleep(emu.config.dify_unknown_close)

        return StreamingResponse(quiet(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def files_of(body: dict[str, Any]) -> list[dict[str, Any]]:
        files = body.get("files") or []
        if not isinstance(files, list) or len(files) > 10:
            raise DifyError(400, "invalid_param", "files must be a list of at most 10 files")
        for item in files:
            if not isinstance(item, dict) or item.get("transfer_method") not in ("local_file", "remote_url"):
                raise DifyError(400, "invalid_param", "each file needs transfer_method local_file or remote_url")
            if item["transfer_method"] == "local_file":
                file_id = _text(item.get("upload_file_id"), "upload_file_id")
                if emu.store.get_file(f"dify:{file_id}") is None:
                    raise DifyError(400, "invalid_param", f"upload_file_id {file_id!r} is not an uploaded file")
            else:
                _text(item.get("url"), "url")
        return files

    @_dify_errors
    async def chat_messages(request: Request) -> Response:
        app = app_for(request)
        fault = emu.fault(request)
        pace = emu.pace(request)
        body = await emu.json_body(request)
        query = _text(body.get("query"), "query")
        if not query.strip():
            raise DifyError(400, "invalid_param", "query is required")
        user = _text(body.get("user"), "user")
        mode = body.get("response_mode") or "blocking"  # Dify's default when the field is left out
        if mode not in ("streaming", "blocking"):
            raise DifyError(400, "invalid_param", "response_mode must be streaming or blocking")
        inputs = body.get("inputs") or {}
        problem = validate_inputs(app, inputs, query)
        if problem:
            raise DifyError(400, "invalid_param", problem)
        files_of(body)
        conv_id = _optional(body.get("conversation_id"), "conversation_id")
        parent: dict[str, Any] | None = None
        if conv_id is not None:
            if not _uuid(conv_id):
                raise DifyError(400, "invalid_param", "1 validation error for ChatRequestPayload\nconversation_id\n"
                                f"  Value error, conversation_id must be a valid UUID [type=value_error, "
                                f"input_value={conv_id[:100]!r}, input_type=str]")
            if find(app, conv_id, user) is None:
                if mode == "streaming":
                    return silence()
                owned(app, conv_id, user, request)
            parent = emu.store.last_message(conv_id)  # one row, not the whole conversation per ask
        # Everything that can refuse the request is checked before anything is stored.
        plan = app.plan(query, inputs)
        message_id = str(uuid.uuid4())
        conv_id = emu.store.create_message_in(
            message_id, conv_id, app_id=app.id, trigger_id=DIFY_TRIGGER, user_id=user, name=query[:60],
            parent_id=parent["id"] if parent else None,
            dialogue_count=int(parent["dialogueCount"]) + 1 if parent else 1,
            query=query, source="dify", inputs=inputs)
        voice = DIFY(query=query, user=user, app_id=app.id,
                     dialogue_count=int(parent["dialogueCount"]) + 1 if parent else 1)
        run = emu.launch(Run(message_id, conv_id, voice=voice), app, plan, pace, fault)
        if mode == "streaming":
            return stream(run, fault)
        async for _ in run.follow(emu.config.heartbeat_interval):
            pass  # blocking: the answer once the run has ended
        frames = _frames_of(run)
        end: dict[str, Any] = next((f for f in frames if f.get("event") == "message_end"), {})
        finished: dict[str, Any] = next((f for f in reversed(frames) if f.get("event") == "workflow_finished"), {})
        outcome = finished.get("data") or {}
        if outcome.get("status") != "succeeded":  # Dify 1.13: the run's error as a bad request
            raise DifyError(400, "invalid_param", f"Run failed: {outcome.get('error') or 'the workflow failed'}")
        return JSONResponse({
            "event": "message", "task_id": run.task_id, "id": message_id, "message_id": message_id,
            "conversation_id": conv_id, "mode": "advanced-chat", "answer": (outcome.get("outputs") or {}).get(
                "answer") or "", "metadata": end.get("metadata") or {}, "created_at": int(time.time())})

    @_dify_errors
    async def stop(request: Request) -> Response:
        app_for(request)
        emu.fault(request)
        body = await emu.json_body(request)
        user = _text(body.get("user"), "user")
        task_id = request.path_params["task_id"]
        for run in list(emu.runs.values()):
            if run.task_id == task_id:
                message = emu.store.get_message(run.message_id)
                if message is not None and message["userId"] == user:  # Dify: only the asker may stop
                    emu.executor.stop(run)
        return JSONResponse({"result": "success"})  # Dify answers so even for a task it does not know

    @_dify_errors
    async def conversations(request: Request) -> Response:
        app = app_for(request)
        fault = emu.fault(request)
        user = _text(request.query_params.get("user"), "user")
        limit = _limit(request, 20)
        order = request.query_params.get("sort_by", "-updated_at")
        if order.lstrip("-") not in ("created_at", "updated_at"):
            raise DifyError(400, "invalid_param", "sort_by must be created_at, -created_at, updated_at "
                                                  "or -updated_at")
        items = [_conversation(c) for c in emu.store.list_conversations(app.id, DIFY_TRIGGER, user)]
        items.sort(key=lambda c: (c[order.lstrip("-")], c["id"]), reverse=order.startswith("-"))
        last_id = request.query_params.get("last_id")
        if last_id:
            at = next((i for i, c in enumerate(items) if c["id"] == last_id), None)
            if at is None:
                raise DifyError(404, "not_found", "Last Conversation Not Exists.")
            items = items[at + 1:]
        return emu.answer({"limit": limit, "has_more": len(items) > limit, "data": items[:limit]}, fault)

    @_dify_errors
    async def messages(request: Request) -> Response:
        app = app_for(request)
        fault = emu.fault(request)
        user = _text(request.query_params.get("user"), "user")
        conv_id = _text(request.query_params.get("conversation_id"), "conversation_id")
        limit = _limit(request, 20)
        owned(app, conv_id, user, request)
        thread = emu.store.messages(conv_id)
        first_id = request.query_params.get("first_id")
        if first_id:  # the page before the one that starts at first_id
            at = next((i for i, m in enumerate(thread) if m["id"] == first_id), None)
            if at is None:
                raise DifyError(404, "not_found", "First Message Not Exists.")
            thread = thread[:at]
        page = thread[-limit:]
        return emu.answer({"limit": limit, "has_more": len(thread) > len(page),
                           "data": _same_second_newest_first([_message(emu, m, ratings) for m in page])}, fault)

    @_dify_errors
    async def rename(request: Request) -> Response:
        app = app_for(request)
        emu.fault(request)
        body = await emu.json_body(request)
        user = _text(body.get("user"), "user")
        conv = owned(app, request.path_params["conversation_id"], user)
        if body.get("auto_generate"):
            thread = emu.store.messages(conv["id"])
            name = str(thread[0]["query"])[:60] if thread else "New conversation"
        else:
            name = _text(body.get("name"), "name") or ""
            if len(name) > 200:
                raise DifyError(400, "invalid_param", "name is longer than 200 characters")
        emu.store.rename_conversation(conv["id"], name)
        return JSONResponse(_conversation(owned(app, conv["id"], user)))

    @_dify_errors
    async def delete(request: Request) -> Response:
        app = app_for(request)
        emu.fault(request)
        body = await emu.json_body(request)
        user = _text(body.get("user"), "user")
        conv = owned(app, request.path_params["conversation_id"], user)
        emu.store.delete_conversation(conv["id"])
        return Response(status_code=204)

    @_dify_errors
    async def upload(request: Request) -> Response:
        app_for(request)
        emu.fault(request)
        limit = emu.config.max_upload_bytes
        raw = await read_body(request, limit + 64 * 1024)  # the file and its multipart framing

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
        except Exception as exc:  # python-multipart's and Starlette's refusals
            raise DifyError(400, "invalid_param", f"not a multipart form: {exc}") from None
        user = _text(form.get("user") if isinstance(form.get("user"), str) else None, "user")
        item = form.get("file")
        if not isinstance(item, UploadFile):
            raise DifyError(400, "no_file_uploaded", "Please upload your file.")
        content = await item.read()
        if len(content) > limit:
            raise DifyError(413, "file_too_large", f"File size exceeded. {len(content):,} > {limit:,} bytes")
        name = PurePath(item.filename or "file").name[:200] or "file"
        check_text(name, "the file's name")
        mime = item.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        file_id = str(uuid.uuid4())
        emu.store.put_file(f"dify:{file_id}", name, mime, content)
        return JSONResponse({"id": file_id, "name": name, "size": len(content),
                             "extension": PurePath(name).suffix.lstrip("."), "mime_type": mime,
                             "created_by": user, "created_at": int(time.time())}, status_code=201)

    @_dify_errors
    async def parameters(request: Request) -> Response:
        if flows.owns(request):
            return emu.answer(flows.parameters(), emu.fault(request))
        app = app_for(request)
        fault = emu.fault(request)
        form = []
        for var in app.variables:
            kind = "number" if var.type == "number" else "text-input"
            spec: dict[str, Any] = {"label": var.label, "variable": var.variable, "required": var.required,
                                    "default": "", "hide": var.hidden}
            if var.max_length is not None:
                spec["max_length"] = var.max_length
            form.append({kind: spec})
        limit_mb = max(1, emu.config.max_upload_bytes // (1024 * 1024))
        return emu.answer({
            "opening_statement": f"Hi! I am the {app.name}. {app.description}",
            "suggested_questions": list(app.examples),
            "suggested_questions_after_answer": {"enabled": True},
            "speech_to_text": {"enabled": False}, "text_to_speech": {"enabled": False},
            "retriever_resource": {"enabled": True}, "annotation_reply": {"enabled": False},
            "more_like_this": {"enabled": False}, "sensitive_word_avoidance": {"enabled": False},
            "user_input_form": form,
            "file_upload": {"image": {"enabled": True, "number_limits": 3,
                                      "transfer_methods": ["local_file", "remote_url"]}},
            "system_parameters": {"file_size_limit": limit_mb, "image_file_size_limit": limit_mb,
                                  "audio_file_size_limit": limit_mb, "video_file_size_limit": limit_mb}},
            fault)

    @_dify_errors
    async def info(request: Request) -> Response:
        if flows.owns(request):
            return emu.answer(flows.info(), emu.fault(request))
        app = app_for(request)
        fault = emu.fault(request)
        return emu.answer({"name": app.name, "description": app.description, "tags": [],
                           "mode": "advanced-chat", "author_name": "atomemo-notebook"}, fault)

    @_dify_errors
    async def suggested(request: Request) -> Response:
        app = app_for(request)
        fault = emu.fault(request)
        user = _text(request.query_params.get("user"), "user")
        message = emu.store.get_message(request.path_params["message_id"])
        if message is None:
            raise DifyError(404, "not_found", "Message Not Exists.")
        owned(app, message["conversationId"], user)
        asked = emu.store.asked_among(message["conversationId"], app.examples)  # asked after each answer: no scan
        return emu.answer({"result": "success", "data": [q for q in app.examples if q not in asked][:3]}, fault)

    @_dify_errors
    async def meta(request: Request) -> Response:
        app_for(request)
        return emu.answer({"tool_icons": {}}, emu.fault(request))

    @_dify_errors
    async def site(request: Request) -> Response:
        app = app_for(request)
        return emu.answer({
            "title": app.name, "chat_color_theme": None, "chat_color_theme_inverted": False,
            "icon_type": "emoji", "icon": "\U0001f916", "icon_background": "#FFEAD5",
            "description": app.description, "copyright": None, "privacy_policy": None, "custom_disclaimer": "",
            "default_language": "en-US", "show_workflow_steps": True, "use_icon_as_answer_icon": False,
            "icon_url": None}, emu.fault(request))

    @_dify_errors
    async def run_workflow(request: Request) -> Response:
        if flows.owns(request):
            return await flows.run(request, emu.fault(request))
        app_for(request)  # every demo app but the workflow app is a chatflow: this route is for workflow apps
        emu.fault(request)
        raise DifyError(400, "not_workflow_app", "Please check if your app mode matches the right API route.")

    @_dify_errors
    async def workflow_run(request: Request) -> Response:
        if flows.owns(request):
            emu.fault(request)
            return flows.record(request.path_params["run_id"])
        app_for(request)
        fault = emu.fault(request)
        execution = emu.store.execution(request.path_params["run_id"])
        if execution is None:
            raise DifyError(404, "not_found", "Workflow run not found.")
        outcome = _outcome(emu, execution["message_id"]) if execution.get("message_id") else {}
        status = outcome.get("status") or ("running" if execution["status"] == "running" else execution["status"])
        run = emu.runs.get(execution.get("message_id") or "")
        if run is not None and run.paused:
            status = "paused"
        if status == "stopped":
            status = "running"  # Dify 1.13 never marks a stopped run's record: it stays running
        finished = status not in ("running", "paused")
        return emu.answer({
            "id": execution["id"], "workflow_id": execution.get("app_version_id"), "status": status,
            "inputs": "{}", "outputs": outcome.get("outputs") or {} if finished else {},
            "error": outcome.get("error") if finished else None, "total_steps": outcome.get("total_steps", 0),
            "total_tokens": outcome.get("total_tokens", 0), "created_at": _epoch(execution.get("created_at")),
            "finished_at": outcome.get("finished_at") if finished else None,
            "elapsed_time": outcome.get("elapsed_time", 0.0) if finished else 0.0}, fault)

    @_dify_errors
    async def stop_workflow(request: Request) -> Response:
        if flows.owns(request):
            emu.fault(request)
            return await flows.stop(request, request.path_params["task_id"])
        app_for(request)
        raise DifyError(400, "not_workflow_app", "Please check if your app mode matches the right API route.")

    @_dify_errors
    async def workflow_logs(request: Request) -> Response:
        if flows.owns(request):
            emu.fault(request)
            return flows.logs(request)
        app_for(request)
        raise DifyError(400, "not_workflow_app", "Please check if your app mode matches the right API route.")

    @_dify_errors
    async def feedback(request: Request) -> Response:
        app = app_for(request)
        emu.fault(request)
        body = await emu.json_body(request)
        user = _text(body.get("user"), "user")
        message = emu.store.get_message(request.path_params["message_id"])
        if message is None or find(app, message["conversationId"], user) is None:
            raise DifyError(404, "not_found", "Message Not Exists.")
        rating = body.get("rating")
        if rating not in ("like", "dislike", None):
            raise DifyError(400, "invalid_param", "rating must be like, dislike or null")
        if rating is None:
            ratings.pop(message["id"], None)
            feedback_log.pop(message["id"], None)
        else:
            ratings[message["id"]] = {"rating": rating}
            now = datetime.now().isoformat(timespec="seconds")
            feedback_log[message["id"]] = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, message["id"])), "app_id": app.id,
                "conversation_id": message["conversationId"], "message_id": message["id"], "rating": rating,
                "content": _optional(body.get("content"), "content"), "from_source": "user",
                "from_end_user_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dify-end-user:{user}")),
                "from_account_id": None, "created_at": now, "updated_at": now}
        return JSONResponse({"result": "success"})

    @_dify_errors
    async def feedbacks(request: Request) -> Response:
        app = app_for(request)
        fault = emu.fault(request)
        limit = _limit(request, 20)
        rows = [f for f in feedback_log.values() if f["app_id"] == app.id]
        return emu.answer({"data": rows[-limit:]}, fault)

    return [
        *form_routes(emu, PREFIX, app_for, find, flows, _dify_errors),
        Route(f"{PREFIX}/meta", meta, methods=["GET"]),
        Route(f"{PREFIX}/site", site, methods=["GET"]),
        Route(f"{PREFIX}/workflows/run", run_workflow, methods=["POST"]),
        Route(f"{PREFIX}/workflows/run/{{run_id}}", workflow_run, methods=["GET"]),
        Route(f"{PREFIX}/workflows/tasks/{{task_id}}/stop", stop_workflow, methods=["POST"]),
        Route(f"{PREFIX}/workflows/logs", workflow_logs, methods=["GET"]),
        Route(f"{PREFIX}/messages/{{message_id}}/feedbacks", feedback, methods=["POST"]),
        Route(f"{PREFIX}/app/feedbacks", feedbacks, methods=["GET"]),
        Route(f"{PREFIX}/chat-messages", chat_messages, methods=["POST"]),
        Route(f"{PREFIX}/chat-messages/{{task_id}}/stop", stop, methods=["POST"]),
        Route(f"{PREFIX}/conversations", conversations, methods=["GET"]),
        Route(f"{PREFIX}/conversations/{{conversation_id}}/name", rename, methods=["POST"]),
        Route(f"{PREFIX}/conversations/{{conversation_id}}", delete, methods=["DELETE"]),
        Route(f"{PREFIX}/messages", messages, methods=["GET"]),
        Route(f"{PREFIX}/messages/{{message_id}}/suggested", suggested, methods=["GET"]),
        Route(f"{PREFIX}/files/upload", upload, methods=["POST"]),
        Route(f"{PREFIX}/parameters", parameters, methods=["GET"]),
        Route(f"{PREFIX}/info", info, methods=["GET"]),
    ]
