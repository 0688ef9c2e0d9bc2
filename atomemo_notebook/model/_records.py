"""Pandas-ready records: flat dicts with stable snake_case columns, datetimes as aware
UTC; and DataFrames from them, with pandas as an optional extra."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..protocol._wire import FileRef
from ._links import web_url
from .reply import Reply
from .tree import MessageTree

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "SOURCE_COLUMNS",
    "TIMELINE_COLUMNS",
    "event_records",
    "history_records",
    "source_records",
    "timeline_records",
    "to_dataframe",
]

HISTORY_COLUMNS = (
    "message_id", "parent_id", "conversation_id", "dialogue_count", "depth", "sibling_index",
    "sibling_count", "status", "query_text", "query_file", "answer", "execution_id", "user_id",
    "source", "created_at", "updated_at", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "currency",
    "outputs",
    "feedback",
)
"""The columns of `history_records`: one row per message of the tree (tokens and cost: what the
server reported for an answer this session received; None for one read from history; `outputs`:
a run's result as JSON, where the system gives one (a Dify workflow app), else None)."""
TIMELINE_COLUMNS = (
    "execution_id", "message_id", "kind", "node_id", "node_name", "node_type", "tool_name",
    "status", "started_at", "finished_at", "duration_ms", "error", "output", "reported", "tokens", "reasoning",
    "agent_log",
)
"""The columns of `timeline_records`: one row per node run and per tool call (`agent_log`: an
agent's log as JSON rows {id, parent_id, label, status, data, error, depth}, in tree order)."""
# reported: the system told of this step only with its answer (OdysseyAI), so it has no times.
SOURCE_COLUMNS = ("message_id", "position", "title", "snippet", "url", "source", "score")
"""The columns of `source_records`: one row per source an answer cites."""
EVENT_COLUMNS = ("message_id", "seq", "offset_ms", "received_at", "event", "data")
"""The columns of `event_records`: one row per raw event, with its arrival offset."""
DATETIME_COLUMNS = frozenset({"created_at", "updated_at", "started_at", "finished_at", "received_at"})


def history_records(tree: MessageTree) -> list[dict[str, Any]]:
    """One row per message of the tree, in creation order."""
    depths = tree.depths()
    indexes = tree.sibling_indexes()
    counts = {parent: len(kids) for parent, kids in tree._children.items()}
    rows = []
    for m in tree.messages():
        m.refresh_from_reply()
        query = m.query
        rows.append({
            "message_id": m.id,
            "parent_id": m.parent_id,
            "conversation_id": m.conversation_id,
            "dialogue_count": m.dialogue_count,
            "depth": depths[m.id],
            "sibling_index": indexes.get(m.id, 0),
            "sibling_count": counts.get(m.parent_id, 1),
            "status": m.status,
            "query_text": query if isinstance(query, str) else None,
            "query_file": query.filename if isinstance(query, FileRef) else None,
            "answer": m.answer,
            "execution_id": m.execution_id,
            "user_id": m.user_id,
            "source": m.source,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            **_usage(m.reply),
            "outputs": _output(m.reply.outputs) if m.reply is not None and m.reply.outputs is not None else None,
            "feedback": m.feedback,
        })
    return rows


def _usage(reply: Reply | None) -> dict[str, Any]:
    usage = reply.usage if reply is not None else None
    return {"prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None, "cost": usage.price if usage else None,
            "currency": usage.currency if usage and usage.price is not None else None}


def _output(value: Any) -> str | None:
    # Outputs are any JSON: kept as JSON text so the column has one type.
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def timeline_records(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """One row per node run and per tool call, tool rows right after their node."""
    rows = []
    for reply in replies:
        execution_id, message_id = reply.execution_id, reply.message_id
        for span in reply.nodes:
            rows.append({
                "execution_id": execution_id, "message_id": message_id, "kind": "node",
                "node_id": span.node_id, "node_name": span.name, "node_type": span.type,
                "tool_name": None, "status": span.status, "started_at": reply.at(span.started),
                "finished_at": reply.at(span.finished), "duration_ms": span.duration_ms,
                "error": span.error, "output": _output(span.json_output), "reported": span.reported,
                "tokens": span.tokens, "reasoning": span.reasoning or None,
                "agent_log": _output(span.agent_log.records()) if span.agent_log else None,
            })
            for tool in span.tools:
                rows.append({
                    "execution_id": execution_id, "message_id": message_id, "kind": "tool",
                    "node_id": span.node_id, "node_name": span.name, "node_type": span.type,
                    "tool_name": tool.tool_name, "status": tool.status,
                    "started_at": reply.at(tool.started), "finished_at": reply.at(tool.finished),
                    "duration_ms": tool.duration_ms, "error": tool.anomaly,
                    "output": _output({"args": tool.args, "result": tool.result}), "reported": False,
                    "tokens": None, "reasoning": None, "agent_log": None,
                })
    return rows


def source_records(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """One row per source an answer cites (Dify's retriever resources, OdysseyAI's source
    snippets), numbered from 1 as under the answer; `url` only when the views would link it
    (http(s): a `javascript:` URL is None here as there)."""
    return [{"message_id": reply.message_id, "position": position, "title": c.title, "snippet": c.snippet,
             "url": web_url(c.url), "source": c.source, "score": c.score}
            for reply in replies for position, c in enumerate(reply.citations, 1)]


def event_records(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """The raw events of each reply with their arrival offsets."""
    rows = []
    for reply in replies:
        events = reply.events
        for seq in range(len(events)):  # by column: no record object per event
            offset = events.offset(seq)
            rows.append({
                "message_id": reply.message_id, "seq": seq,
                "offset_ms": round(offset * 1000.0, 3),
                "received_at": reply.at(offset), "event": events.name(seq),
                "data": events.data(seq),
            })
    return rows


def to_dataframe(records: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    """A DataFrame with the given columns (in order) and UTC datetime columns."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "DataFrames need pandas: pip install 'atomemo-notebook[pandas]'"
        ) from exc
    names = list(columns)
    frame = pd.DataFrame(records, columns=names)  # pandas' own row-dict path, in C
    for name in names:
        # pandas infers aware datetimes already; this only fixes all-None or mixed columns.
        if name in DATETIME_COLUMNS and not isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame
