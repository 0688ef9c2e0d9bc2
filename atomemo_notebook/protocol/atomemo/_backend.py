"""Atomemo's backend, with no I/O: the app's snapshot read as AppInfo, and each question,
history page and upload as calls (see protocol/backend.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from .._call import Open, Plan, Together
from .._errors import AtomemoError
from .._system import Translate
from .._wire import Conversation, FileRef, Message
from ..backend import AppInfo, BackendBase, Upload
from . import _calls as calls
from ._adapter import translator as atomemo_translator
from .models import App

__all__ = ["AtomemoBackend", "atomemo_app"]


def atomemo_app(app: App) -> AppInfo:
    """Name, version and the chat trigger's variables and examples, read defensively from the
    app's snapshot (its shape is not public)."""
    version = app.active_version
    variables: list[dict[str, Any]] = []
    examples: list[str] = []
    graph: dict[str, Any] | None = None
    if version is not None and isinstance(version.snapshot, dict):
        nodes = version.snapshot.get("nodes")
        for node in (nodes.values() if isinstance(nodes, dict) else nodes or []):
            if isinstance(node, dict) and node.get("type") == "chat_trigger":
                data: dict[str, Any] = node["data"] if isinstance(node.get("data"), dict) else {}
                variables = [v for v in data.get("variables") or [] if isinstance(v, dict)]
                examples = [str(e)[:200] for e in data.get("examples") or [] if isinstance(e, str)][:6]
        graph = version.snapshot
    return AppInfo(name=app.name or app.id, version=version.name if version else "",
                   description=app.description, emoji=str((app.icon or {}).get("emoji", "")),
                   color=app.color, variables=variables, examples=examples,
                   node_names=version.node_names() if version else {}, graph=graph)


class AtomemoBackend(BackendBase):
    """One app's chat trigger. Stop only stops listening: Atomemo has no way to cancel a run."""

    system = "atomemo"
    no_clear = "Atomemo keeps every conversation: start a new one instead of clearing"

    def __init__(self, app_id: str, trigger_id: str) -> None:
        self.app_id, self.trigger_id = app_id, trigger_id

    @classmethod
    def create(cls, base_url: str, where: Mapping[str, Any]) -> AtomemoBackend:
        return cls(where["app_id"], where["trigger_id"])

    def translator(self) -> Translate:
        return atomemo_translator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "app_id": self.app_id, "trigger_id": self.trigger_id}

    def app(self) -> Plan[AppInfo | None]:
        return atomemo_app((yield calls.get_app(self.app_id)))

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open:
        return Open(calls.send_message(app_id=self.app_id, trigger_id=self.trigger_id, query=query, user_id=user,
                                       conversation_id=conversation_id, parent_id=parent_id, inputs=inputs,
                                       source=source))

    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]:
        messages: list[Message] = yield calls.get_messages(conversation_id)
        return messages

    def conversations(self, user: str) -> Plan[list[Conversation]]:
        found: list[Conversation] = yield calls.list_conversations(app_id=self.app_id, trigger_id=self.trigger_id,
                                                                   user_id=user)
        return found

    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]:
        """Read the message's stream quietly to its end, then its stored self (and those before)."""
        with contextlib.suppress(AtomemoError):
            yield Open(calls.resume_stream(message_id))
        messages: list[Message] = yield calls.get_messages(conversation_id, end_message_id=message_id,
                                                           include_end=True)
        return messages

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> Plan[FileRef]:
        ref: FileRef = yield Together(calls.upload_file(source, filename=filename, mime_type=mime_type))
        return ref
