"""OdysseyAI, emulated: `POST /odyssey/api/chat/message` with `x-api-key` and `userId`
headers answers with one JSON document once the demo workflow has run: the steps grouped by
agent (`stepsBreakdown`), the knowledge the support app found as `sourceSnips`, follow-up
questions, and the answer as the root agent's last step. The echo agent cites the question
itself (file name, preview, and as its link when it is shaped like one, of any scheme) and
suggests it again, so hostile source data can be tried offline. Errors as OdysseyAI writes them
(400 `{"error": "..."}`, 403/404 `{"error": {"message"}}`, 500 `{"message"}`). Faults as
everywhere; on this route `malformed_after=N` (any N) cuts the JSON document in half and
`answer_delay=S` answers S seconds late."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..protocol.odyssey._calls import BODY, MAX_MESSAGE_CHARS
from ._demo import DemoApp, validate_inputs
from ._http import ApiError, answering_as, check_text
from ._runs import Run
from ._store import now_iso
from ._voices import OdysseyVoice

if TYPE_CHECKING:
    from ._app import Emulator

PREFIX = "/odyssey"
WORKSPACE = "ws-demo"  # the emulator's one workspace; its agents are the demo apps' slugs
ODYSSEY_TRIGGER = "odyssey"
MAX_ID_CHARS = 200
HELP_URL = "https://help.example.com/articles/"
URL_LIKE = re.compile(r"\s*[A-Za-z][\w+.-]*:")  # a question shaped like a link, of any scheme


class OdysseyError(ApiError):
    """OdysseyAI's error bodies differ by status."""

    def response(self) -> JSONResponse:
        if self.status >= 500:
            body: dict[str, Any] = {"message": self.message}
        elif self.status in (403, 404):
            body = {"error": {"message": self.message}}
        else:
            body = {"error": self.message}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def odyssey_body(status: int, message: str) -> dict[str, Any]:
    """The body of an error raised outside a handler (unknown route)."""
    return json.loads(bytes(OdysseyError(status, "", message).response().body))  # type: ignore[no-any-return]


def odyssey_key(server_key: str) -> str:
    """The emulator's OdysseyAI key, derived from the server's key (and telling nothing of it)."""
    return "ody-" + hmac.new(server_key.encode(), b"odyssey", hashlib.sha256).hexdigest()[:32]


_odyssey_errors = answering_as(OdysseyError)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _field(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(BODY[key])
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        raise OdysseyError(400, "", f"{BODY[key]} must be a non-empty string of at most {MAX_ID_CHARS} characters")
    check_text(value, BODY[key])
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(BODY[key], False)
    if not isinstance(value, bool):
        raise OdysseyError(400, "", f"{BODY[key]} must be true or false")
    return value


def odyssey_routes(emu: Emulator) -> list[Route]:
    key = odyssey_key(emu.config.api_key)
    agents = {app.slug: app for app in emu.apps.values()}

    def authorize(request: Request) -> str:
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise OdysseyError(403, "", "Invalid API key.")
        user = request.headers.get("userid", "")
        if not user.strip():
            raise OdysseyError(400, "", "userId header is required")
        return user

    def document(run: Run, app: DemoApp, query: str, asked: set[str]) -> dict[str, Any]:
        records = [json.loads(frame) for frame in run.events]
        end: dict[str, Any] = next((r for r in reversed(records) if r.get("kind") == "end"), {})
        if end.get("status") != "succeeded":
            raise OdysseyError(500, "", f"Internal server error: {end.get('error') or 'the agent failed'}")
        steps = [{k: r[k] for k in ("agentname", "content", "external", "step_id", "type")}
                 for r in records if r.get("kind") == "step"]
        steps.append({"agentname": app.name, "content": {"response": end.get("answer") or ""}, "external": "",
                      "step_id": str(uuid.uuid4()), "type": "response"})
        sources: list[dict[str, Any]] = next((r["items"] for r in records if r.get("kind") == "sources"), [])
        snips = [{"chunkid": f"chunk-{s['position']}", "content": s["content"],
                  "displaytext": str(s["content"])[:120], "filename": f"{_slug(s['document_name'])}.md",
                  "filetype": "md", "url": HELP_URL + _slug(s["document_name"])} for s in sources]
        questions = [q for q in app.examples if q not in asked][:3]
        if app.slug == "echo":  # echoes its sources too: hostile source data, offline
            snips = [{"chunkid": "chunk-1", "content": query, "displaytext": query[:120], "filename": query[:100],
                      "filetype": "txt", "url": query.strip() if URL_LIKE.match(query) else ""}]
            questions = [query[:200]]
        return {"data": {
            "id": run.message_id, "query": query, "agentid": app.slug, "createdat": now_iso(), "dislikes": [],
            "likes": [], "rootAgentName": app.name, "stepsBreakdown": steps, "suggested_files": [],
            "followUps": {"id": str(uuid.uuid4()), "questions": questions},
            "sourceSnips": snips, "type": "response"}}

    @_odyssey_errors
    async def message(request: Request) -> Response:
        user = authorize(request)
        check_text(user, "userId")
        fault = emu.fault(request)
        pace = emu.pace(request)
        body = await emu.json_body(request)
        workspace = _field(body, "workspace")
        conversation = str(_field(body, "conversation"))
        text = body.get(BODY["message"])
        if not isinstance(text, str) or not text.strip():
            raise OdysseyError(400, "", "message is required")
        if len(text) > MAX_MESSAGE_CHARS:
            raise OdysseyError(400, "", f"message is longer than {MAX_MESSAGE_CHARS} characters")
        check_text(text, "message")
        agent = _field(body, "agent", required=False) or "support"
        _flag(body, "no_memory")
        first = _flag(body, "first")
        if workspace != WORKSPACE:
            raise OdysseyError(404, "", "Workspace not found.")
        app = agents.get(agent)
        if app is None:
            raise OdysseyError(400, "", f"agentId {agent!r} is not an agent of this workspace")
        problem = validate_inputs(app, {}, text)
        if problem:
            raise OdysseyError(400, "", problem)
        stored_id = "odyssey:" + hashlib.sha256(f"{workspace}\n{conversation}".encode()).hexdigest()[:32]
        conv = emu.store.get_conversation(stored_id)
        if conv is not None and conv["userId"] != user:  # another user's: never shown, never joined
            if not first:
                raise OdysseyError(404, "", "Conversation not found.")
            raise OdysseyError(400, "", "conversationId is taken: choose another")
        if conv is None and not first:
            raise OdysseyError(404, "", "Conversation not found.")
        # One row, not the whole conversation: an ask costs the same however long it grew.
        parent = emu.store.last_message(stored_id) if conv is not None else None
        plan = app.plan(text, {})
        message_id = str(uuid.uuid4())
        emu.store.create_message_in(
            message_id, stored_id if conv is not None else None, new_conversation_id=stored_id, app_id=app.id,
            trigger_id=ODYSSEY_TRIGGER, user_id=user, name=text[:60], parent_id=parent["id"] if parent else None,
            dialogue_count=int(parent["dialogueCount"]) + 1 if parent else 1, query=text, source="odyssey",
            inputs={})
        run = emu.launch(Run(message_id, stored_id, voice=OdysseyVoice(app.name)), app, plan, pace, fault)
        async for _ in run.follow(emu.config.heartbeat_interval):
            pass  # one blocking answer, once the run has ended
        asked = {text, *(emu.store.asked_among(stored_id, app.examples) if conv is not None else ())}
        answer = document(run, app, text, asked)
        if fault is not None and fault.answer_delay:
            await asyncio.sleep(fault.answer_delay)
        if fault is not None and fault.malformed_after is not None:
            whole = json.dumps(answer).encode()
            return Response(whole[: len(whole) // 2], media_type="application/json")
        return emu.answer(answer, fault)

    return [Route(f"{PREFIX}/api/chat/message", message, methods=["POST"])]
