"""One evaluated row as a flat record (the results table's columns), from its replies."""

from __future__ import annotations

import json
from typing import Any

from ..model.reply import Reply
from ._inputs import EvalRow

__all__ = ["ROW_COLUMNS", "row_record"]

ROW_COLUMNS = (
    "row", "key", "conversation", "query", "expected", "status", "answer", "error", "failed_node", "message_id",
    "conversation_id", "ttft_s", "total_s", "prompt_tokens", "completion_tokens", "total_tokens", "cost",
    "currency", "nodes", "tool_calls", "cached", "form",
)
FORM_CHARS = 2_000  # of a paused row's form, shown in its record
MAX_ERROR = 500


def _error(reply: Reply) -> str | None:
    if reply.status == "succeeded":
        return None
    reason = reply.run_error or (f"{type(reply.error).__name__}: {reply.error}" if reply.error else None)
    return (reason or reply.status)[:MAX_ERROR]


def row_record(row: EvalRow, reply: Reply | None, *, status: str | None = None, error: str | None = None,
               cached: bool = False) -> dict[str, Any]:
    """The row's last reply decides it (a file sent before the query has its own reply)."""
    retried = reply.retried_runs() if reply else set()  # a retried node's failed attempts failed nothing
    failed = next((s.name for i, s in enumerate(reply.nodes) if s.status == "failed" and i not in retried),
                  None) if reply else None
    usage = reply.usage if reply else None
    repeat = {} if row.row is None else {"repeat": row.repeat}  # only runs asked more than once have the column
    # Only a run that gives outputs (a workflow app's) has the column: its result, as JSON text.
    outputs = {} if reply is None or reply.outputs is None else {
        "outputs": json.dumps(reply.outputs, ensure_ascii=False, default=str)}
    return {
        "row": row.number, **repeat, "key": row.key, "conversation": row.conversation, "query": row.query,
        "expected": row.expected,
        # A run that waits for a person is "paused" here: nobody answered its form for the row.
        "status": status or ("paused" if reply and reply.status == "waiting" else reply.status if reply else "not run"),
        "answer": reply.text if reply else None, "error": error or (_error(reply) if reply else None),
        "failed_node": failed, "message_id": reply.message_id if reply else None,
        "conversation_id": reply.conversation_id if reply else None,
        "ttft_s": reply.time_to_first_token if reply else None, "total_s": reply.total_time if reply else None,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "total_tokens": usage.total_tokens if usage else None,
        "cost": usage.price if usage else None,
        "currency": usage.currency if usage and usage.price is not None else None,
        "nodes": len(reply.nodes) if reply else 0, "tool_calls": len(reply.tool_calls) if reply else 0,
        "cached": cached, **outputs,
        "form": _form(reply),
    }


def _form(reply: Reply | None) -> str | None:
    """The form a paused row waits on, as text: its node, actions and content."""
    form = reply.pending_input if reply is not None and reply.status == "waiting" else None
    if form is None:
        return None
    actions = " / ".join(a["title"] for a in form.actions)
    return f"{form.node_title} [{actions}]: {form.content}"[:FORM_CHARS]
