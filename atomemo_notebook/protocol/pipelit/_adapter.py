"""Pipelit's WebSocket events -> the neutral events. Pipelit names nodes, not node runs, and
retries a failing node (running -> failed, again and again): each `running` opens a new run
of the node, so every attempt shows. Tool calls are `node_status` events of the tool node
marked `is_tool_call`, with the agent as `parent_node_id`: they nest under the agent's run.
There are no answer tokens: the answer is the execution's output, whole, at the end.

Times: every event carries the server's `timestamp` (epoch seconds), given to the reply as a
`ServerTime` so the timeline shows the server's spans, not the >= 50 ms spacing Pipelit puts
between frames. Usage comes inside an agent's success `node_status` (`token_usage`), summed
over the agents of the execution, and as totals in `activity_summary` and the record.
A stream that lost its socket ends with the execution's record (`RECOVERED`, read by the
client once the record says the execution ended): its status, output, error and node logs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from .. import _neutral as n
from .._errors import trim_paths
from .._wire import Event, MalformedFrame
from .events import Name

__all__ = ["PipelitTranslator", "answer_text"]

NONE: tuple[n.Neutral, ...] = ()
DONE = {"success": "succeeded", "completed": "succeeded", "failed": "failed", "error": "failed",
        "skipped": "skipped", "cancelled": "stopped"}
MAX_ANSWER_JSON = 200_000  # characters of an output that is not text, shown as JSON
LOG_DONE = {"completed": "succeeded", "success": "succeeded", "failed": "failed", "error": "failed",
            "skipped": "skipped", "cancelled": "stopped"}
MAX_RECORD_LOGS = 1_000  # node logs of one record folded
# Epoch seconds a server timestamp may take (2001..2286): anything else is not a time.
TIMESTAMP_RANGE = (1e9, 1e10)


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
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _ms(value: Any) -> float | None:
    ms = _float(value)
    return ms / 1000 if ms is not None else None


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
        # Usage summed over the agents' success events: [input, output, total], cost.
        self.tokens: list[int] = [0, 0, 0]
        self.cost: float | None = None
        self.counted = False  # some agent reported usage
        self.failed_node: tuple[str, str | None] | None = None  # the last node that failed, and its code

    def __call__(self, event: Event) -> Sequence[n.Neutral]:
        if type(event) is MalformedFrame:
            return (n.Anomaly(f"malformed message: {event.error}"),)
        message = event.data or {}
        raw = message.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        handler = _TABLE.get(event.event)
        if handler is None:
            return NONE
        out = handler(self, message, data)
        stamp = _float(message.get("timestamp"))
        if out and stamp is not None and TIMESTAMP_RANGE[0] < stamp < TIMESTAMP_RANGE[1]:
            return (n.ServerTime(stamp), *out)
        return out

    def _usage_now(self, total: int | None = None, cost: float | None = None) -> n.Usage:
        """The usage so far: the agents' sums, with the execution's totals where it gave them."""
        prompt, completion, summed = self.tokens
        return n.Usage(prompt_tokens=prompt if self.counted else None,
                       completion_tokens=completion if self.counted else None,
                       total_tokens=total if total is not None else (summed if self.counted else None),
                       price=cost if cost is not None else self.cost, currency="USD")

    def _count(self, usage: dict[str, Any]) -> n.Usage | None:
        """An agent's `token_usage`, added to the execution's."""
        numbers = [_int(usage.get(k)) for k in ("input_tokens", "output_tokens", "total_tokens")]
        cost = _float(usage.get("cost_usd"))
        if all(v is None for v in numbers) and cost is None:
            return None
        self.counted = True
        self.tokens = [a + (b or 0) for a, b in zip(self.tokens, numbers, strict=True)]
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        return self._usage_now()

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
        raw = data.get("activity_summary")
        summary: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if self.counted or (summary and _int(summary.get("total_tokens")) is not None):
            out.append(self._usage_now(_int(summary.get("total_tokens")), _float(summary.get("total_cost_usd"))))
        out.append(n.RunFinished(self.execution_id or "", "succeeded"))
        return out

    def _failure(self, error: str, code: str | None = None, node_id: str | None = None) -> Sequence[n.Neutral]:
        """The execution failed: the node and the error (the last attempt's), paths trimmed."""
        self.finished = True
        failed_node, failed_code = self.failed_node or (None, None)
        node_id = node_id or failed_node
        code = code or failed_code
        error = trim_paths(error)
        return (n.RunFinished(self.execution_id or "", "failed", f"node {node_id}: {error}" if node_id else error),
                n.Failed(code or "execution_failed", error, run=True, node_id=node_id))

    def _failed(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        return self._failure(_str(data.get("error")) or "the execution failed", _str(data.get("error_code")))

    def _cancelled(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        # Seen only by a stream still listening: a Stop of this chat closed its stream first, so
        # this cancel came from elsewhere (another client, Pipelit's UI).
        self.finished = True
        return (n.Anomaly("the execution was cancelled outside this chat; Pipelit may still finish a node "
                          "already running, or run a queued execution anyway"),
                n.RunFinished(self.execution_id or "", "stopped", "the execution was cancelled"))

    def _interrupted(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.finished = True
        where = _str(data.get("node_id")) or "a node"
        why = f"the execution waits for a human confirmation at {where}, which this chat cannot give"
        return (n.RunFinished(self.execution_id or "", "failed", why), n.Failed("execution_interrupted", why))

    def _gap(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        return (n.Anomaly("the WebSocket dropped while the execution ran: node events sent meanwhile are "
                          "missing from the timeline"),)

    def _recovered(self, message: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        """The execution's record, read after the socket lost events: its node logs fill the
        runs the stream missed (inputs, outputs, errors, durations), then its end."""
        self.finished = True
        out: list[n.Neutral] = [n.Anomaly("the rest of the execution was read from its record "
                                          "(GET /api/v1/executions/{id}/): times of the nodes it filled in are "
                                          "the server's durations only")]
        logs = data.get("logs")
        seen: dict[str, int] = {}
        for log in (logs if isinstance(logs, list | tuple) else ())[:MAX_RECORD_LOGS]:
            if isinstance(log, dict):
                out.extend(self._log(log, seen))
        status = str(data.get("status") or "")
        cost = _float(data.get("total_cost_usd"))
        total = _int(data.get("total_tokens"))
        if self.counted or total is not None or cost is not None:
            out.append(self._usage_now(total, cost))
        if status == "completed":
            answer = answer_text(data.get("final_output"))
            out += [n.TextReplaced(answer), n.RunFinished(self.execution_id or "", "succeeded"),
                    n.Recovered("succeeded", answer)]
        elif status == "failed":
            error = _str(data.get("error_message")) or "the execution failed"
            node_id, _, rest = error.partition(": ")
            named = node_id.startswith("Node ") and rest
            out += self._failure(rest if named else error, node_id=node_id[5:] if named else None)
        else:
            out += [n.Anomaly(f"the execution's record says {status[:40]!r}: it did not run to its end"),
                    n.RunFinished(self.execution_id or "", "stopped", f"the execution ended {status[:40]}")]
        return out

    def _log(self, log: dict[str, Any], seen: dict[str, int]) -> Sequence[n.Neutral]:
        """One node run of the record: its n-th log is the node's n-th attempt."""
        node_id = _str(log.get("node_id"))
        status = LOG_DONE.get(str(log.get("status") or ""))
        if node_id is None or status is None:
            return NONE
        attempt = seen[node_id] = seen.get(node_id, 0) + 1
        run_id = f"{self.execution_id}:{node_id}:{attempt}"
        if run_id in self.done:
            return NONE  # the stream saw it end: its own times are better than the record's
        out: list[n.Neutral] = []
        if attempt > self.attempts.get(node_id, 0):
            run_id = self._new_run(node_id)
            out.append(n.NodeStarted(run_id, node_id))
        self.done.add(run_id)
        raw_meta = log.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        raw_usage = meta.get("token_usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        if usage:
            self._count(usage)
        error = _str(log.get("error"))
        if status == "failed":
            self.failed_node = (node_id, _str(log.get("error_code")))
        out.append(n.NodeFinished(run_id, node_id, status, output=log.get("output"), inputs=log.get("input"),
                                  error=trim_paths(error) if error else None, tokens=_int(usage.get("total_tokens")),
                                  elapsed=_ms(log.get("duration_ms"))))
        return out

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
        # Pipelit's node_label is the node id (its nodes' labels are null): then the workflow's
        # details name the node, where they do (the views' names), else its id.
        label = _str(data.get("node_label"))
        name = label if label is not None and label != node_id else None
        kind = _str(data.get("component_type"))
        parent = self.runs.get(str(data.get("parent_node_id") or "")) if data.get("is_child_event") else None
        current = self.runs.get(node_id)
        if status in ("running", "pending", "waiting"):
            if status == "running" and current in self.waiting:
                self.waiting.discard(current)
                return (n.NodeStatus(current, "running", kind),)
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
            return (n.Anomaly(f"node {name or node_id} reported an unknown status {status!r}"),)
        if current is None or current in self.done:
            current = self._new_run(node_id)  # a result with no start seen (after a gap): still shown
            out: list[n.Neutral] = [n.NodeStarted(current, node_id, name=name, type=kind, parent_run_id=parent)]
        else:
            out = []
        self.done.add(current)
        self.waiting.discard(current)
        error = _str(data.get("error"))
        code = _str(data.get("error_code"))
        if error is not None:
            error = trim_paths(error)
        if finished == "failed":
            self.failed_node = (node_id, code)
        raw_usage = data.get("token_usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        out.append(n.NodeFinished(current, node_id, finished, output=data.get("output"),
                                  error=f"{code}: {error}" if code and error else error,
                                  tokens=_int(usage.get("total_tokens")), elapsed=_ms(data.get("duration_ms")),
                                  name=name, type=kind))
        counted = self._count(usage) if usage else None
        if counted is not None:
            out.append(counted)
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
        # Not sent by Pipelit 0.3.16 (usage rides on the agent's node_status); read if it comes.
        counted = self._count(data)
        return (counted,) if counted is not None else NONE


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
