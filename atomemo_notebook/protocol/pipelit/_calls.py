"""What each Pipelit chat call sends and how its answer is read (no I/O). Pipelit keeps one
conversation per user and workflow; its history is role/text pairs, oldest first, with no
message ids (the backend pairs them into our Messages)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .._call import Call, no_body, require
from .._errors import APIResponseValidationError, excerpt

__all__ = ["Executed", "Execution", "History", "HistoryItem", "cancel", "chat", "clear_history", "execution", "history",
           "workflow"]


@dataclasses.dataclass(frozen=True)
class Executed:
    execution_id: str
    status: str


@dataclasses.dataclass(frozen=True)
class HistoryItem:
    role: str  # user | assistant
    text: str
    timestamp: datetime | None


@dataclasses.dataclass(frozen=True)
class History:
    messages: list[HistoryItem]
    thread_id: str | None
    has_more: bool


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIResponseValidationError(f"expected {what} as a JSON object, got: {excerpt(repr(body))}",
                                         status_code=200, body=repr(body))
    return body


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Execution:
    """An execution's record (`GET /api/v1/executions/{id}/`): how it ended, or that it has not.
    `status`: pending | running | completed | failed | cancelled (a cancelled execution may still
    turn `completed`: Pipelit does not stop a node already running, nor a queued job)."""

    execution_id: str
    status: str
    final_output: Any = None
    error_message: str = ""
    total_tokens: int | None = None
    total_cost_usd: float | None = None
    llm_calls: int | None = None
    logs: tuple[dict[str, Any], ...] = ()  # one per node run, oldest first

    @property
    def ended(self) -> bool:
        return self.status in ENDED


ENDED = frozenset({"completed", "failed", "cancelled"})
MAX_LOGS = 1_000  # node runs read from one record


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _execution(body: Any) -> Execution:
    body = _object(body, "an execution")
    execution_id, status = body.get("execution_id"), body.get("status")
    if not isinstance(execution_id, str) or not execution_id or not isinstance(status, str):
        raise APIResponseValidationError(f"no execution_id or status in {excerpt(repr(body))}", status_code=200,
                                         body=repr(body))
    tokens, calls = body.get("total_tokens"), body.get("llm_calls")
    logs = body.get("logs")
    error = body.get("error_message")
    return Execution(execution_id, status, body.get("final_output"), error if isinstance(error, str) else "",
                     tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
                     _number(body.get("total_cost_usd")),
                     calls if isinstance(calls, int) and not isinstance(calls, bool) else None,
                     tuple(log for log in (logs if isinstance(logs, list) else [])[:MAX_LOGS]
                           if isinstance(log, dict)))


def _workflow(slug: str) -> str:
    return quote(require("workflow", slug), safe="")


def _executed(body: Any) -> Executed:
    body = _object(body, "the new execution")
    execution_id = body.get("execution_id")
    if not isinstance(execution_id, str) or not execution_id:
        raise APIResponseValidationError(f"no execution_id in {excerpt(repr(body))}", status_code=200,
                                         body=repr(body))
    return Executed(execution_id, str(body.get("status") or "pending"))


def _history(body: Any) -> History:
    body = _object(body, "chat history")
    items = []
    for item in body.get("messages") or []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            items.append(HistoryItem(item["role"], str(item.get("text") or ""), _time(item.get("timestamp"))))
    thread = body.get("thread_id")
    return History(items, thread if isinstance(thread, str) else None, bool(body.get("has_more")))


def chat(workflow: str, text: str, *, trigger_node_id: str | None = None) -> Call[Executed]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must not be empty")
    body: dict[str, Any] = {"text": text}
    if trigger_node_id:
        body["trigger_node_id"] = trigger_node_id
    return Call("POST", f"/workflows/{_workflow(workflow)}/chat/", _executed, json=body)


def history(workflow: str, *, limit: int = 10, before: str | None = None) -> Call[History]:
    params = {"limit": str(max(1, min(limit, 100)))}
    if before:
        params["before"] = before
    return Call("GET", f"/workflows/{_workflow(workflow)}/chat/history", _history, params=params)


def clear_history(workflow: str) -> Call[None]:
    return Call("DELETE", f"/workflows/{_workflow(workflow)}/chat/history", no_body, json_answer=False)


def workflow(slug: str) -> Call[dict[str, Any]]:
    """The workflow's details: name, description, and its nodes and edges."""
    return Call("GET", f"/workflows/{_workflow(slug)}/", lambda body: _object(body, "a workflow"))


def _execution_path(execution_id: str) -> str:
    return f"/executions/{quote(require('execution_id', execution_id), safe='')}/"


def execution(execution_id: str) -> Call[Execution]:
    """The execution's record: status, final output, error, tokens, cost and a log per node run."""
    return Call("GET", _execution_path(execution_id), _execution)


def cancel(execution_id: str) -> Call[Execution]:
    """Ask Pipelit to cancel the execution (it answers with the record, `status: cancelled`; an
    ended execution is left as it is)."""
    return Call("POST", _execution_path(execution_id) + "cancel/", _execution)
