"""What views show, as plain JSON-able dicts: one place that turns the model (tree, replies)
into the shapes the widget's traits, the static snapshot and the magic all render.
The TypeScript mirror of these shapes is js/src/types.ts."""

from __future__ import annotations

import json
from typing import Any

from ._errors import APIError
from ._models import FileRef
from ._reply import NodeSpan, Reply
from ._tree import MessageTree

TEXT_LIMIT = 20_000  # characters of one output shown in the timeline's detail panel


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + "\n… (truncated)"


def error_view(error: BaseException | None) -> dict[str, str] | None:
    if error is None:
        return None
    code = error.code if isinstance(error, APIError) and error.code else type(error).__name__
    return {"code": code, "message": str(error)}


def _node_view(span: NodeSpan, index: int) -> dict[str, Any]:
    return {
        "key": f"{span.result_id}:{index}",
        "node_id": span.node_id,
        "name": span.name,
        "type": span.type,
        "status": span.status,
        "start_ms": _ms(span.started),
        "end_ms": _ms(span.finished),
        "duration_ms": span.duration_ms,
        "error": span.error,
        "output": _json_text(span.json_output),
        "out_ports": list(span.out_ports),
        "anomaly": span.anomaly,
        "tools": [
            {
                "key": tool.tool_call_id,
                "name": tool.tool_name,
                "status": tool.status,
                "start_ms": _ms(tool.started),
                "end_ms": _ms(tool.finished),
                "duration_ms": tool.duration_ms,
                "args": _json_text(tool.args),
                "result": _json_text(tool.result),
                "anomaly": tool.anomaly,
            }
            for tool in span.tools
        ],
    }


def timeline_view(reply: Reply) -> dict[str, Any]:
    """The execution of one reply: summary and one row per node run (tools nested)."""
    nodes = [_node_view(span, i) for i, span in enumerate(reply.nodes)]
    return {
        "message_id": reply.message_id,
        "execution_id": reply.execution_id,
        "status": reply.status,
        "execution_status": reply.execution.status if reply.execution else None,
        "ttft_ms": _ms(reply.time_to_first_token),
        "total_ms": _ms(reply.total_time),
        "nodes": nodes,
        "node_count": len(nodes),
        "failures": sum(1 for n in nodes if n["status"] == "failed"),
        "anomalies": list(reply.anomalies),
    }


def _query_parts(query: str | FileRef) -> tuple[str, dict[str, Any] | None]:
    if isinstance(query, FileRef):
        return "", {"filename": query.filename, "size": query.size, "mime_type": query.mime_type}
    return query, None


def messages_view(tree: MessageTree) -> list[dict[str, Any]]:
    """Every settled message of the tree, in creation order."""
    out = []
    for m in tree.messages():
        m.refresh_from_reply()
        reply = m.reply
        if reply is not None and not reply.done:
            continue  # still streaming: the live channel carries it
        text, file = _query_parts(m.query)
        out.append({
            "id": m.id,
            "parent_id": m.parent_id,
            "query": text,
            "file": file,
            "answer": m.answer or "",
            "status": reply.status if reply is not None else m.status,
            "error": error_view(reply.error) if reply is not None else None,
            "execution_id": m.execution_id,
            "created_at": m.created_at.isoformat() if m.created_at else None,
            "has_timeline": reply is not None and bool(reply.nodes),
        })
    return out


def live_view(reply: Reply, key: str) -> dict[str, Any]:
    text, file = _query_parts(reply.query)
    return {"key": key, "parent_id": reply.parent_id, "query": text, "file": file,
            "message_id": reply.message_id, "status": reply.status}


def event_rows(replies: list[Reply], *, message_id: str | None, event_filter: str | None,
               limit: int = 500) -> dict[str, Any]:
    """A page of the event inspector: the newest `limit` matching events, oldest first."""
    chosen = [r for r in replies if message_id in (None, "", r.message_id)]
    types: set[str] = set()
    rows: list[dict[str, Any]] = []
    for reply in chosen:
        for seq, record in enumerate(reply.events):
            name = record.event.event
            types.add(name)
            if event_filter and name != event_filter:
                continue
            rows.append({"message_id": reply.message_id, "seq": seq, "offset_ms": _ms(record.offset),
                         "event": name, "data": _json_text(record.event.data) or ""})
    total = len(rows)
    return {"rows": rows[-limit:], "total": total, "types": sorted(types)}
