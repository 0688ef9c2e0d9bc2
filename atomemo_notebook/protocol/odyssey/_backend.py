"""OdysseyAI's backend, with no I/O: one call per question, its conversation's id chosen here
when it starts one. No history, conversation list or suggestions endpoint: what a chat knows
of its conversation is what it asked this session; follow-ups come with each answer. Stop
abandons the wait (the API has no cancel). See protocol/backend.py."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .._call import Call, Open, Plan, just
from .._system import Translate
from .._wire import FileRef
from ..backend import AppInfo, BackendBase
from . import _calls as calls
from ._adapter import OdysseyTranslator

__all__ = ["OdysseyBackend", "chat_call", "odyssey_app"]


def odyssey_app(agent_id: str | None, workspace_id: str) -> AppInfo:
    """OdysseyAI publishes no app description: the agent and workspace name the chat."""
    return AppInfo(name=agent_id or "OdysseyAI", version="", description=f"workspace {workspace_id}",
                   node_names={}, graph=None, provisional=True)


def chat_call(*, workspace_id: str, conversation_id: str | None, message: str, user_id: str,
              agent_id: str | None, memory: bool, timeout: float | None = None) -> Call[dict[str, Any]]:
    """The question's call; `conversation_id=None` starts a conversation, whose id is ours to choose."""
    first = conversation_id is None
    return calls.chat_message(workspace_id=workspace_id, conversation_id=conversation_id or str(uuid.uuid4()),
                              message=message, user_id=user_id, agent_id=agent_id, memory=memory, first=first,
                              timeout=timeout)


def odyssey_text(query: str | FileRef) -> str:
    if isinstance(query, FileRef):
        raise ValueError("OdysseyAI's chat API takes text only: its agents read the workspace's documents")
    return query


class OdysseyBackend(BackendBase):
    system = "odyssey"
    no_files = "OdysseyAI's chat API takes no files"
    no_clear = "OdysseyAI's chat API cannot delete a conversation: start a new one instead"

    def __init__(self, workspace_id: str, agent_id: str | None, memory: bool, base_url: str) -> None:
        self.workspace_id, self.agent_id, self.memory, self.base_url = workspace_id, agent_id, memory, base_url

    @classmethod
    def create(cls, base_url: str, where: Mapping[str, Any]) -> OdysseyBackend:
        if not where.get("workspace_id"):
            raise ValueError("an OdysseyAI chat needs workspace_id=<the workspace's id>")
        return cls(str(where["workspace_id"]), where.get("agent_id"), where.get("memory", True), base_url)

    def translator(self) -> Translate:
        return OdysseyTranslator()

    def coordinates(self) -> dict[str, Any]:
        return {"system": self.system, "workspace_id": self.workspace_id, "agent_id": self.agent_id,
                "memory": self.memory, "base_url": self.base_url}

    def app(self) -> Plan[AppInfo | None]:
        return just(odyssey_app(self.agent_id, self.workspace_id))

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open:
        # The client gives the call its answer_timeout.
        return Open(chat_call(workspace_id=self.workspace_id, conversation_id=conversation_id,
                              message=odyssey_text(query), user_id=user, agent_id=self.agent_id,
                              memory=self.memory))
