"""Dify's workflow apps (not chatflows): a run takes inputs and gives outputs, with no query,
no message and no conversation (POST /v1/workflows/run, stopped by POST
/v1/workflows/tasks/{task_id}/stop, read back by GET /v1/workflows/run/{id} and listed by GET
/v1/workflows/logs). A chat over one shows each run as a turn: its inputs are the message, its
run id stands for the message id, its outputs are the answer's data (the End node's outputs,
which Dify also streams as `text_chunk` text). The stream reads as a chatflow's does: the
translator (adapter.py) knows a workflow app's run by its naming no message, so saved logs and
caches of either replay alike."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from .._call import Open, Plan, just
from .._errors import AtomemoError
from .._wire import Conversation, FileRef, Message
from ..backend import AppInfo, Upload, inputs_message
from . import _calls as calls
from ._backend import DifyBackend, dify_app

__all__ = ["APP_TYPES", "WORKFLOW_DEMO", "WorkflowBackend", "dify_backend"]

APP_TYPES = ("chat", "workflow")  # connect("dify", app_type=...): a chatflow (the default) or a workflow app
WORKFLOW_DEMO = "dify-workflow"  # the embedded server's workflow app
NO_CHAT = ("a Dify workflow app takes inputs, not a question: a run is asked with its inputs "
           "(chat.run(name='Ada'), or ask() with inputs=)")


class WorkflowBackend(DifyBackend):
    """One workflow app, as its key names it. Runs are not a conversation: nothing to read
    back as a thread (GET /workflows/logs lists them, DifyClient.workflow_logs)."""

    no_clear = "a Dify workflow app keeps no conversation: each run stands alone"
    takes_inputs = True

    @classmethod
    def create(cls, base_url: str, where: Mapping[str, Any]) -> DifyBackend:
        return cls(base_url)

    def coordinates(self) -> dict[str, Any]:
        return super().coordinates() | {"app_type": "workflow"}

    def app(self) -> Plan[AppInfo | None]:
        info = yield calls.info()
        parameters = yield calls.parameters()
        return dify_app(info, parameters)  # a workflow app suggests no questions: none asked

    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open:
        if query != inputs_message(inputs):  # a question, or a file: nothing a workflow app takes
            raise ValueError(NO_CHAT)
        return Open(calls.run_workflow(inputs=inputs, user=user), user=user)

    def stop(self, task_id: str | None, user: str) -> Plan[None]:
        if task_id:
            with contextlib.suppress(AtomemoError):
                yield calls.stop_workflow(task_id, user)

    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]:
        return just([])

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
               user: str) -> Plan[FileRef]:
        raise ValueError("a Dify workflow app takes its files as inputs of the run, not as a message's attachment")

    def conversations(self, user: str) -> Plan[list[Conversation]]:
        return just([])

    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]:
        return just([])

    def suggestions(self, message_id: str, user: str) -> Plan[list[str]]:
        return just([])



def dify_backend(base_url: str, where: Mapping[str, Any]) -> DifyBackend:
    """A chat's backend for a Dify app: a workflow app's where connect() says app_type="workflow"."""
    return (WorkflowBackend if where.get("app_type") == "workflow" else DifyBackend).create(base_url, where)
