"""Dify's backend, with no I/O: the app's parameters read as AppInfo, the conversation read
back as one thread, a resumed run followed by polling its record, files sent beside the text
(see protocol/backend.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from .._call import Listen, Open, Pause, Plan
from .._errors import AtomemoError, NotFoundError
from .._system import Translate
from .._wire import Conversation, FileRef, Message
from ..backend import AppInfo, BackendBase, Upload
from . import _calls as calls
from . import _forms as forms
from ._adapter import DifyTranslator

__all__ = ["FOLLOW_DEADLINE", "FOLLOW_POLL", "MAX_SUGGESTIONS", "DifyBackend", "dify_app", "dify_thread"]

MAX_SUGGESTIONS = 5  # chips under an answer; a server may send any number
MAX_HISTORY = 10_000  # messages read back from one conversation
INPUT_TYPES = {"text-input": "string", "paragraph": "string", "select": "string", "number": "number"}
FOLLOW_DEADLINE = 600.0  # seconds follow() waits for a resumed run to end
FOLLOW_POLL = (0.5, 5.0)  # first and longest pause between two looks at the run


def dify_app(info: dict[str, Any], parameters: dict[str, Any]) -> AppInfo:
    variables: list[dict[str, Any]] = []
    for entry in parameters.get("user_input_form") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((kind, spec),) = entry.items()
        if isinstance(spec, dict) and kind in INPUT_TYPES and isinstance(spec.get("variable"), str):
            limit = spec.get("max_length")
            variables.append({"label": str(spec.get("label") or spec["variable"]),
                              "variable": spec["variable"], "type": INPUT_TYPES[kind],
                              "required": bool(spec.get("required")),
                              "maxLength": limit if isinstance(limit, int) else None,
                              "hidden": bool(spec.get("hide"))})
    examples = [str(q)[:200] for q in parameters.get("suggested_questions") or [] if isinstance(q, str)][:6]
    opening = parameters.get("opening_statement")
    return AppInfo(name=str(info.get("name") or "Dify app"), version=str(info.get("mode") or ""),
                   description=info.get("description") if isinstance(info.get("description"), str) else None,
                   variables=variables, examples=examples,
                   opening=opening if isinstance(opening, str) and opening else None)


def dify_thread(items: list[Message], user: str = "") -> list[Message]:
    """Dify's conversation is one thread: oldest first, each message the parent of the next
    (Dify's nil parent means just that), numbered in it, and the asking user's.

    `items`: pages oldest first, each in time order (calls.same_second_reversed); a stable sort
    keeps that order among messages of the same second."""
    ordered = sorted(items, key=lambda m: (m.created_at is None, m.created_at))
    ids = {m.id for m in ordered}
    parent: str | None = None
    for count, message in enumerate(ordered, 1):
        if message.parent_id not in ids:  # no parent named, or one outside the conversation
            message.parent_id = parent
        message.dialogue_count = count
        message.user_id = message.user_id or user
        parent = message.id
    return ordered


def dify_waits(messages: list[Message], message_id: str) -> str | None:
    """The run to watch when `message_id` is stored paused with its form answered (the run
    went on in the worker; only the run record says how it is doing)."""
    message = next((m for m in messages if m.id == message_id), None)
    return message.execution_id if message is not None and message.status == "answering" else None


def dify_suggests(parameters: dict[str, Any]) -> bool:
    setting = parameters.get("suggested_questions_after_answer")
    return isinstance(setting, dict) and setting.get("enabled") is True


def dify_file(ref: dict[str, Any], filename: str | None, mime: str | None) -> FileRef:
    return FileRef(filename=str(ref.get("name") or filename or "file"),
                   extension=str(ref.get("extension") or ""),
                   mime_type=str(ref.get("mime_type") or mime or ""),
                   size=int(ref.get("size") or 0), res_key=str(ref.get("id") or ""), source="dify",
                   extra={"upload_file_id": ref.get("id")})


def dify_query(query: str | FileRef) -> tuple[str, list[dict[str, Any]] | None]:
    """A Dify message is text with files beside it: a file on its own goes with a short text."""
    if isinstance(query, FileRef):
        kind = "image" if query.mime_type.startswith("image/") else "document"
        return (f"[file: {query.filename}]",
                [{"type": kind, "transfer_method": "local_file", "upload_file_id": query.res_key}])
    return query, None


class DifyBackend(BackendBase):
    """One app, as its key names it. Stop stops the run on the server."""

    system = "dify"
    no_clear = "Dify keeps every conversation: start a new one instead of clearing"

    def __init__(self, base_url: str, web_app_code: str | None = None) -> None:
        self.base_url = base_url
        self.suggests = False  # the app's parameters say it suggests questions after an answer
        self.web_app_code = web_app_code

    @classmethod
    def create(cls, base_url: str, where: Mapping[str, Any]) -> DifyBackend:
        code = where.get("web_app_code")
        return cls(base_url, code if isinstance(code, str) and code else None)

    def translator(self) -> Translate:
        return DifyTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "base_url": self.base_url}

    def app(self) -> Plan[AppInfo | None]:
        info = yield calls.info()
        parameters = yield calls.parameters()
        self.suggests = dify_suggests(parameters)
        return dify_app(info, parameters)

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open:
        text, files = dify_query(query)
        return Open(calls.chat_messages(query=text, user=user, inputs=inputs, conversation_id=conversation_id,
                                        files=files), user=user, conversation_id=conversation_id)

    def stop(self, task_id: str | None, user: str) -> Plan[None]:
        if task_id:
            with contextlib.suppress(AtomemoError):
                yield calls.stop(task_id, user)

    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]:
        items: list[Message] = []
        more, first = True, None
        while more and len(items) < MAX_HISTORY:  # first_id pages backwards, 100 at a time
            page, more = yield calls.messages(conversation_id, user, first_id=first, limit=100)
            if not page:
                break
            items = page + items
            first = page[0].id
        return dify_thread(items, user)

    def conversations(self, user: str) -> Plan[list[Conversation]]:
        page, _ = yield calls.conversations(user, limit=100)
        return list(page)

    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]:
        """The stored message; if its run paused and was resumed (stored `paused`, form answered),
        the run record is watched until the run ends (or FOLLOW_DEADLINE), then read again."""
        messages = yield from self.history(conversation_id, user)
        run_id = dify_waits(messages, message_id)
        if run_id is None:
            return messages
        deadline, pause = time.monotonic() + FOLLOW_DEADLINE, FOLLOW_POLL[0]
        while time.monotonic() + pause < deadline and (yield calls.workflow_run(run_id)).get("status") == "running":
            yield Pause(pause)
            pause = min(pause * 2, FOLLOW_POLL[1])
        return (yield from self.history(conversation_id, user))

    def answer_form(self, form_id: str, action: str, inputs: dict[str, str], user: str) -> Plan[None]:
        """Send a form's answer from the kernel: the service API's route (2026), else the web-app
        API's (1.13.2 has it only there, 404 on the service API)."""
        token = forms.FORM_TOKENS.token(form_id)
        if token is None:
            raise ValueError(f"the token of form {form_id!r} is not known in this kernel (it answers only forms "
                             "whose event this kernel read); answer it in Dify's web app")
        try:
            yield forms.submit_form(token, inputs=inputs, action=action, user=user)
        except NotFoundError:
            yield forms.submit_form(token, inputs=inputs, action=action, user=user,
                                    web_base=forms.web_root(self.base_url))

    def feedback(self, message_id: str, user: str, rating: str | None, comment: str | None) -> Plan[None]:
        yield calls.feedback(message_id, user, rating, comment)

    def run_events(self, run_id: str, user: str) -> Plan[Any]:
        """The run's event stream, open: the service API's, else (Dify 1.13 has none there, 404)
        the web-app API's, with a passport for `user`, where the app's web_app_code is known
        (connect()'s setting); None when the server has neither."""
        try:
            return (yield Listen(Open(forms.workflow_events(run_id, user), user=user)))
        except NotFoundError:
            pass
        if self.web_app_code is None:
            return None
        root = forms.web_root(self.base_url)
        passport = yield forms.passport(root, self.web_app_code, user)
        try:
            return (yield Listen(Open(forms.web_workflow_events(root, self.web_app_code, passport, run_id), user=user)))
        except NotFoundError:
            return None

    def run_state(self, run_id: str, user: str) -> Open | None:
        return Open(forms.run_snapshot(run_id, user), user=user)

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> Plan[FileRef]:
        ref = yield calls.upload(source, user, filename=filename, mime_type=mime_type)
        return dify_file(ref, filename, mime_type)

    def suggestions(self, message_id: str, user: str) -> Plan[list[str]]:
        if not self.suggests:  # Dify answers 400 when the app has them off: not asked
            return []
        questions: list[str] = yield calls.suggested(message_id, user)
        return questions[:MAX_SUGGESTIONS]
