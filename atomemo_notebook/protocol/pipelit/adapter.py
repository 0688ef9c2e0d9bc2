"""Pipelit's WebSocket events -> the neutral events. Pipelit names nodes, not node runs, and
retries a failing node (running -> failed, again and again): each `running` opens a new run
of the node, so every attempt shows. Tool calls are `node_status` events of the tool node
marked `is_tool_call`, with the agent as `parent_node_id`: they nest under the agent's run.
There are no answer tokens: the answer is the execution's output, whole, at the end."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from .. import neutral as n
from ..atomemo.events import Event, MalformedFrame
from .events import Name

__all__ = ["PipelitTranslator", "answer_text"]

NONE: tuple[n.Neutral, ...] = ()
DONE = {"success": "succeeded", "completed": "succeeded", "failed": "failed", "error": "failed",
        "skipped": "skipped", "cancelled": "stopped"}
MAX_ANSWER_JSON = 200_000  # characters of an output that is not text, shown as JSON


def answer_text(output: Any) -> str:
    """The final answer as text: Pipelit's output is an object ({"message": ...},
    {"output": ...} or {"node_outputs": ...}), not a string."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        for key in ("message", "output", "text", "response"):
            value = output.get(key)
            if isinstance(value, str):
                return value
        if len(output) == 1:
            (only,) = output.values()
            if isinstance(only, str):
                return only
    if output is None:
        return ""
    return json.dumps(output, ensure_ascii=False, indent=2, default=str)[:MAX_ANSWER_JSON]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class PipelitTranslator:
    """One per reply: Pipelit's node runs are numbered here (attempts of one node)."""

    def __init__(self) -> None:
        self.execution_id: str | None = None
        self.runs: dict[str, str] = {}  # node id -> its current run id
        self.attempts: dict[str, int] = {}
        self.calls: dict[str, str] = {}  # tool node id -> its open call id
        self.waiting: set[str] = set()  # runs queued, not yet running
        self.done: set[str] = set()  # runs that ended
        self.finished = False

    def __call__(self, event: Event) -> Sequence[n.Neutral]:
        if type(event) is MalformedFrame:
            return (n.Anomaly(f"malformed message: {event.error}"),)
        message = event.data or {}
        raw = message.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        handler = _TABLE.get(event.event)
        return handler(self, message, data) if handler is not None else NONE

    def _new_run(self, node_id: str) -> str:
        attempt = self.attempts.get(node_id, 0) + 1
        self.attempts[node_id] = attempt
        run_id = f"{self.execution_id}:{node_id}:{attempt}"
        self.runs[node_id] = run_id
        return run_id

    # -- the execution ------------------------------------------------------------------------
    def _created(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.execution_id = str(message.get("execution_id") or "")
        return (n.Started(self.execution_id, _str(message.get("thread_id"))),
                n.RunStarted(self.execution_id, status="running"))

    def _completed(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        out: list[n.Neutral] = [n.TextReplaced(answer_text(data.get("output")))]
        summary = data.get("activity_summary") if isinstance(data.get("activity_summary"), dict) else {}
        if summary and _int(summary.get("total_tokens")) is not None:
            cost = summary.get("total_cost_usd")
            out.append(n.Usage(total_tokens=_int(summary.get("total_tokens")),
                               price=float(cost) if isinstance(cost, int | float) and math.isfinite(cost) else None,
                               currency="USD"))
        out.append(n.RunFinished(self.execution_id or "", "succeeded"))
        return out

    def _failed(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        error = _str(data.get("error")) or "the execution failed"
        return (n.RunFinished(self.execution_id or "", "failed", error),
                n.Failed(_str(data.get("error_code")) or "execution_failed", error))

    def _cancelled(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        return (n.RunFinished(self.execution_id or "", "stopped", "the execution was cancelled"),)

    def _interrupted(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        where = _str(data.get("node_id")) or "a node"
        why = f"the execution waits for a human confirmation at {where}, which this chat cannot give"
        return (n.RunFinished(self.execution_id or "", "failed", why), n.Failed("execution_interrupted", why))

    def _gap(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        return (n.Anomaly("the WebSocket dropped while the execution ran: node events sent meanwhile are "
                          "missing from the timeline"),)

    def _recovered(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        answer = data.get("answer")
        return (n.Recovered(str(data.get("status") or "succeeded"), answer if isinstance(answer, str) else None),)

    # -- nodes --------------------------------------------------------------------------------
    def _enqueued(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        node_id = _str(data.get("node_id"))
        if node_id is None:
            return (n.Anomaly("node_enqueued without a node_id"),)
        run_id = self._new_run(node_id)
        self.waiting.add(run_id)
        return (n.NodeStarted(run_id, node_id, status="waiting"),)

    def _node(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        node_id = _str(data.get("node_id"))
        if node_id is None:
            return (n.Anomaly("node_status without a node_id"),)
        if data.get("child_execution_id"):  # a subworkflow's node, shown inside the node that spawned it
            node_id = f"{data['child_execution_id']}/{node_id}"
        if data.get("is_tool_call"):
            return self._tool(node_id, data)
        status = str(data.get("status") or "")
        name = _str(data.get("node_label")) or node_id
        kind = _str(data.get("component_type"))
        parent = self.runs.get(str(data.get("parent_node_id") or "")) if data.get("is_child_event") else None
        current = self.runs.get(node_id)
        if status in ("running", "pending", "waiting"):
            if status == "running" and current in self.waiting:
                self.waiting.discard(current)
                return (n.NodeStatus(current, "running"),)
            if status != "running" and current is not None and current not in self.done:
                self.waiting.add(current)
                return (n.NodeStatus(current, "waiting"),)
            run_id = self._new_run(node_id)
            if status != "running":
                self.waiting.add(run_id)
            return (n.NodeStarted(run_id, node_id, name=name, type=kind, parent_run_id=parent,
                                  status="running" if status == "running" else "waiting"),)
        finished = DONE.get(status)
        if finished is None:
            return (n.Anomaly(f"node {name} reported an unknown status {status!r}"),)
        if current is None or current in self.done:
            current = self._new_run(node_id)  # a result with no start seen (after a gap): still shown
            out: list[n.Neutral] = [n.NodeStarted(current, node_id, name=name, type=kind, parent_run_id=parent)]
        else:
            out = []
        self.done.add(current)
        self.waiting.discard(current)
        error = _str(data.get("error"))
        code = _str(data.get("error_code"))
        raw_usage = data.get("token_usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        elapsed = data.get("duration_ms")
        out.append(n.NodeFinished(current, node_id, finished, output=data.get("output"),
                                  error=f"{code}: {error}" if code and error else error,
                                  tokens=_int(usage.get("total_tokens")),
                                  elapsed=elapsed / 1000 if isinstance(elapsed, int | float) and math.isfinite(elapsed)
                                  else None, name=name, type=kind))
        return out

    def _tool(self, node_id: str, data: dict[str, Any]) -> Sequence[n.Neutral]:
        status = str(data.get("status") or "")
        tool = _str(data.get("tool_name")) or node_id
        agent = _str(data.get("parent_node_id"))
        agent_run = self.runs.get(agent) if agent else None
        if status == "running":
            call_id = self._new_run(node_id)
            self.calls[node_id] = call_id
            return (n.ToolStarted(call_id, tool, node_id=agent, parent_run_id=agent_run),)
        if status == "waiting":
            return (n.Anomaly(f"tool {tool} waits for a human confirmation"),)
        call_id = self.calls.pop(node_id) if node_id in self.calls else self._new_run(node_id)
        return (n.ToolFinished(call_id, tool, error="failed" if status == "failed" else None, node_id=agent,
                               parent_run_id=agent_run),)

    def _chat(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        text = data.get("text")
        run_id = self.runs.get(str(data.get("node_id") or ""))
        if run_id is None or not isinstance(text, str):
            return NONE
        return (n.NodeNote(run_id, text),)

    def _usage(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        cost = data.get("cost_usd")
        return (n.Usage(prompt_tokens=_int(data.get("input_tokens")), completion_tokens=_int(data.get("output_tokens")),
                        total_tokens=_int(data.get("total_tokens")),
                        price=float(cost) if isinstance(cost, int | float) and math.isfinite(cost) else None,
                        currency="USD"),)


_TABLE = {
    Name.STARTED: PipelitTranslator._created,
    Name.EXECUTION_COMPLETED: PipelitTranslator._completed,
    Name.EXECUTION_FAILED: PipelitTranslator._failed,
    Name.EXECUTION_CANCELLED: PipelitTranslator._cancelled,
    Name.EXECUTION_INTERRUPTED: PipelitTranslator._interrupted,
    Name.GAP: PipelitTranslator._gap,
    Name.RECOVERED: PipelitTranslator._recovered,
    Name.NODE_ENQUEUED: PipelitTranslator._enqueued,
    Name.NODE_STATUS: PipelitTranslator._node,
    Name.CHILD_NODE_STATUS: PipelitTranslator._node,
    Name.CHAT_MESSAGE: PipelitTranslator._chat,
    Name.TOKEN_USAGE: PipelitTranslator._usage,
}
