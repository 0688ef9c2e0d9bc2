"""What views show, as plain JSON-able shapes of `widget_protocol`: the one place that turns the
model (tree, replies) into what the widget's traits, the static snapshot and the magic render.

Everything here is bounded: the transcript is a window of the shown path, answers and
outputs in traits are cut (the view asks for the rest), so widget state, and a notebook
saved with it, stays small however long the conversation."""

from __future__ import annotations

import json
from typing import Any, cast

from ..model._links import web_url
from ..model.reply import NodeSpan, Reply
from ..model.tree import MessageTree, TreeMessage, public_status
from ..protocol._errors import APIError
from ..protocol._wire import FileRef
from ._graph import inferred_edges
from ._widget_protocol import (
    AnswerFileView,
    CitationView,
    DetailResult,
    ErrorView,
    EventRow,
    EventsPage,
    FileView,
    FormView,
    LiveView,
    NodeView,
    ReasoningView,
    SiblingsView,
    TimelineView,
    TranscriptView,
    TurnView,
    VersionView,
)

ANSWER_CAP = 4_000  # characters of one answer kept in the transcript trait
# Characters of a question kept in the traits: a 269 KB question went whole into the live trait
# and again into the transcript trait at each of its changes (issue 27.4); the view shows its start.
QUERY_CAP = 4_000
OUTPUT_CAP = 1_000  # characters of one node output / tool value kept in a timeline trait
OUTPUTS_CAP = 100_000  # characters of a run's outputs in its turn (past it, shown as cut text)
DETAIL_LIMIT = 200_000  # characters of one value in the detail panel (asked for on click)
WINDOW = 20  # turns of the path in the transcript trait at first; more load on scroll
WINDOW_MAX = 500
EVENTS_PAGE = 200
LOOP_TYPES = ("loop", "iteration")
MAX_CITATIONS = 20  # sources (and answer files) under one answer
SNIPPET_CHARS = 500
MAX_SUGGESTIONS = 5
SUGGESTION_CHARS = 200
MAX_VERSIONS = 20  # versions of one turn offered by name (Compare's pickers)
VERSION_CHARS = 60
FORM_CHARS = 20_000  # characters of a form's markdown in the transcript trait
REASONING_CAP = 4_000  # characters of one thought kept in a trait: its newest, so a streaming one moves


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def _json_text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more characters)"


def _failed_span(reply: Reply | None) -> tuple[int, NodeSpan] | None:
    if reply is None:
        return None
    retried = reply.retried_runs()  # a failed attempt the node's next attempt followed failed nothing
    for index in range(len(reply.nodes) - 1, -1, -1):
        if reply.nodes[index].status == "failed" and index not in retried:
            return index, reply.nodes[index]
    return None


def error_view(error: BaseException | None, reply: Reply | None = None) -> ErrorView | None:
    """The error of a turn: an exception, else the failing node's own error (with a link)."""
    failed = _failed_span(reply)
    if error is None and failed is None:
        return None
    view: ErrorView
    if error is not None:
        code = error.code if isinstance(error, APIError) and error.code else type(error).__name__
        view = {"code": code, "message": str(error)}
    else:
        assert failed is not None
        view = {"code": "NODE_FAILED", "message": failed[1].error or f"{failed[1].name} failed"}
    if failed is not None:
        view["node"] = failed[1].name
        view["node_key"] = _node_key(failed[1], failed[0])
    return view


def _node_key(span: NodeSpan, index: int) -> str:
    return f"{span.result_id}:{index}"


def _depths(spans: list[NodeSpan]) -> list[int]:
    """How deep each run sits: under the run it names as its parent (an agent's steps, a
    Loop's children), else inside the Loop runs open when it started."""
    depths: list[int] = []
    open_loops: list[NodeSpan] = []
    by_run: dict[str, int] = {}
    for span in spans:
        start = span.started if span.started is not None else float("inf")
        while open_loops and (open_loops[-1].finished or float("inf")) <= start:
            open_loops.pop()
        parent = by_run.get(span.parent_run_id) if span.parent_run_id else None
        depths.append(depths[parent] + 1 if parent is not None else len(open_loops))
        by_run[span.result_id] = len(depths) - 1
        if any(kind in span.type.lower() for kind in LOOP_TYPES):
            open_loops.append(span)
    return depths


def reasoning_view(parts: list[str], final: bool, cap: int = REASONING_CAP) -> ReasoningView | None:
    """A thought as a trait holds it: its newest `cap` characters (a streaming thought is read
    at its end), or None when there is none."""
    if not parts and not final:
        return None
    text = "".join(parts)
    if not text:
        return None
    return {"text": text[-cap:] if len(text) > cap else text, "chars": len(text), "final": final}


def _node_view(span: NodeSpan, index: int, depth: int, cap: int) -> NodeView:
    return {
        "key": _node_key(span, index),
        "node_id": span.node_id,
        "name": span.name,
        "type": span.type,
        "status": span.status,
        "start_ms": _ms(span.started),
        "end_ms": _ms(span.finished),
        "duration_ms": span.duration_ms,
        "error": span.error,
        "output": _json_text(span.json_output, cap),
        "out_ports": list(span.out_ports),
        "anomaly": span.anomaly,
        "depth": depth,
        "reported": span.reported,
        "reasoning": reasoning_view(span.reasoning_parts, span.reasoning_final),
        "tools": [
            {
                "key": tool.tool_call_id,
                "name": tool.tool_name,
                "status": tool.status,
                "start_ms": _ms(tool.started),
                "end_ms": _ms(tool.finished),
                "duration_ms": tool.duration_ms,
                "args": _json_text(tool.args, cap),
                "result": _json_text(tool.result, cap),
                "anomaly": tool.anomaly,
            }
            for tool in span.tools
        ],
    }


def run_clock(reply: Reply) -> dict[str, Any]:
    """The parts of a timeline that move with the text too (no `changes` counted for them)."""
    return {"message_id": reply.message_id, "execution_id": reply.execution_id,
            "status": public_status(reply), "ttft_ms": _ms(reply.time_to_first_token),
            "total_ms": _ms(reply.total_time)}


def timeline_view(reply: Reply, cap: int = OUTPUT_CAP) -> TimelineView:
    """The execution of one reply: summary and one row per node run (tools nested)."""
    spans = list(reply.nodes)  # a copy: the loop may append while we read
    depths = _depths(spans)
    nodes = [_node_view(span, i, depths[i], cap) for i, span in enumerate(spans)]
    return {
        **run_clock(reply),  # type: ignore[typeddict-item]
        "execution_status": reply.execution.status if reply.execution else None,
        "nodes": nodes,
        "node_count": len(nodes),
        "failures": sum(1 for n in nodes if n["status"] == "failed"),
        "anomalies": list(reply.anomalies),
        "edges": cast(Any, inferred_edges(reply)),
        "reasoning": reasoning_view(reply.reasoning_parts, reply.reasoning_final),
    }


def _query_parts(query: str | FileRef) -> tuple[str, FileView | None]:
    if isinstance(query, FileRef):
        return "", {"filename": query.filename, "size": query.size, "mime_type": query.mime_type}
    return query, None


def _version(message: TreeMessage) -> VersionView:
    query, file = _query_parts(message.query)
    return {"id": message.id, "query": (query or (file["filename"] if file else ""))[:VERSION_CHARS],
            "answer": (message.answer or "")[:VERSION_CHARS]}


def _siblings(tree: MessageTree, message: TreeMessage) -> SiblingsView:
    siblings = tree.children(message.parent_id)
    ids = [m.id for m in siblings]
    index = ids.index(message.id) if message.id in ids else 0
    view: SiblingsView = {"index": index, "count": max(len(ids), 1),
                          "prev": ids[index - 1] if index > 0 else None,
                          "next": ids[index + 1] if index + 1 < len(ids) else None}
    if len(siblings) > 1:  # only a turn with other versions says them
        start = max(0, min(index - MAX_VERSIONS // 2, len(siblings) - MAX_VERSIONS))
        view["versions"] = [_version(m) for m in siblings[start:start + MAX_VERSIONS]]
    return view


def turn_view(tree: MessageTree, message: TreeMessage, cap: int | None = ANSWER_CAP) -> TurnView:
    message.refresh_from_reply()
    reply = message.reply
    text, file = _query_parts(message.query)
    answer = message.answer or ""
    finished = reply.at(reply.finished) if reply is not None and reply.done else message.updated_at
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "query": text if cap is None else text[:QUERY_CAP],
        "query_chars": len(text),
        "file": file,
        "answer": answer if cap is None else answer[:cap],
        "answer_chars": len(answer),
        "status": cast(Any, message.status),
        "error": error_view(reply.error, reply) if reply is not None else None,
        "execution_id": message.execution_id,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "finished_at": finished.isoformat() if finished else None,
        "has_timeline": reply is not None and bool(reply.nodes),
        "siblings": _siblings(tree, message),
        "stopped_at": len(reply.text) if reply is not None and reply.status == "stopped"
        and message.status in ("succeeded", "failed") else None,
        "citations": _citations(reply),
        "suggestions": [q[:SUGGESTION_CHARS] for q in reply.suggestions[:MAX_SUGGESTIONS]] if reply else [],
        "files": _answer_files(reply),
        "outputs": None if reply is None or reply.outputs is None else _json_text(reply.outputs, OUTPUTS_CAP),
        "form": form_view(reply) if message.status == "waiting" else None,
        "input_outcome": reply.input_outcome if reply is not None else None,
        "feedback": message.feedback,
    }


def form_view(reply: Reply | None) -> FormView | None:
    """The form a reply waits on, as the view draws it (bounded: read_form kept at most
    MAX_FIELDS inputs and the content is cut here)."""
    form = reply.pending_input if reply is not None else None
    if form is None:
        return None
    return cast(FormView, {"form_id": form.form_id, "node_title": form.node_title, "content": form.content[:FORM_CHARS],
            "fields": [{"name": str(f["name"]), "type": str(f["type"]), "default": f.get("default"),
                        "options": list(f.get("options") or [])} for f in form.fields],
            "actions": [{"id": a["id"], "title": a["title"], "style": a["style"]} for a in form.actions],
            "expires_at": form.expires_at, "refused": form.refused})


def _citations(reply: Reply | None) -> list[CitationView]:
    if reply is None:
        return []
    return [{"title": c.title[:SNIPPET_CHARS], "snippet": (c.snippet or "")[:SNIPPET_CHARS],
             "url": web_url(c.url),
             "score": c.score, "source": c.source} for c in reply.citations[:MAX_CITATIONS]]


def _answer_files(reply: Reply | None) -> list[AnswerFileView]:
    if reply is None:
        return []
    return [{"type": str(f.get("type") or "file"), "url": url} for f in reply.files[:MAX_CITATIONS]
            if (url := web_url(f.get("url"))) is not None]


def settled_path(tree: MessageTree, leaf_id: str | None,
                 limit: int | None = None) -> tuple[list[TreeMessage], int]:
    """The shown path root .. leaf (its last `limit` messages) without a reply still streaming
    (the live channel carries that one), and how many settled messages the whole path has."""
    if not leaf_id or leaf_id not in tree:
        return [], 0
    if limit is None:
        path = tree.path_to(leaf_id)
        total = len(path)
    else:
        path, total = tree.path_tail(leaf_id, limit + 1)  # one more: the leaf may be streaming
    while path and path[-1].reply is not None and not path[-1].reply.done:
        path.pop()
        total -= 1
    if limit is not None and len(path) > limit:
        path = path[-limit:]
    return path, total


def transcript_view(tree: MessageTree, leaf_id: str | None, window: int = WINDOW) -> TranscriptView:
    """The newest `window` settled turns of the path to the leaf: what the trait holds.
    O(window), however long the conversation."""
    shown, total = settled_path(tree, leaf_id, max(window, 0))
    return {"leaf_id": leaf_id or "", "turns": [turn_view(tree, m) for m in shown],
            "older": max(total - len(shown), 0)}


TimelineCache = dict[str, tuple[Reply, int, TimelineView]]


def window_timelines(tree: MessageTree, transcript: TranscriptView,
                     cache: TimelineCache | None = None) -> dict[str, TimelineView]:
    """Timelines of the turns in the window that this session streamed. With a `cache` (kept
    by the caller between settles), a finished reply's timeline is built once, not on every
    settle: a settle then builds one new timeline, not the window's twenty. The cache keeps
    only the window's entries, so it is as bounded as the window."""
    out: dict[str, TimelineView] = {}
    kept: TimelineCache = {}
    for turn in transcript["turns"]:
        reply = tree[turn["id"]].reply if turn["id"] in tree else None
        if reply is not None and reply.done and reply.message_id:
            hit = cache.get(reply.message_id) if cache is not None else None
            # A finished reply changes only by a folded event (suggestions, a recovery), and
            # every such fold counts in `changes`: the same reply with the same count is unchanged.
            fresh = hit is not None and hit[0] is reply and hit[1] == reply.changes
            view = hit[2] if hit is not None and fresh else timeline_view(reply)
            out[reply.message_id] = view
            kept[reply.message_id] = (reply, reply.changes, view)
    if cache is not None:
        cache.clear()
        cache.update(kept)
    return out


def live_view(reply: Reply, key: str) -> LiveView:
    text, file = _query_parts(reply.query)
    return {"key": key, "parent_id": reply.parent_id, "query": text[:QUERY_CAP], "query_chars": len(text), "file": file,
            "message_id": reply.message_id, "status": cast(Any, public_status(reply))}


def node_detail(reply: Reply, key: str) -> DetailResult:
    """Everything about one node run or tool call, uncut up to DETAIL_LIMIT per value."""
    spans = list(reply.nodes)
    for index, span in enumerate(spans):
        if _node_key(span, index) == key:
            return {"title": f"{span.name} ({span.type or 'node'}) — {span.status}", "sections": [
                ("error", span.error), ("json_output", _json_text(span.json_output, DETAIL_LIMIT)),
                ("out_ports", json.dumps(span.out_ports) if span.out_ports else None),
                ("anomaly", span.anomaly), ("node_id", span.node_id),
                ("agent_log", _json_text(span.agent_log.text(), DETAIL_LIMIT) if span.agent_log else None)]}
        for tool in span.tools:
            if tool.tool_call_id == key:
                return {"title": f"{tool.tool_name} (tool of {span.name}) — {tool.status}", "sections": [
                    ("args", _json_text(tool.args, DETAIL_LIMIT)),
                    ("result", _json_text(tool.result, DETAIL_LIMIT)), ("anomaly", tool.anomaly)]}
    raise KeyError(f"no node run or tool call {key!r} in message {reply.message_id!r}")


def events_page(replies: list[Reply], *, message_id: str | None, event_filter: str | None,
                search: str | None, offset: int, limit: int = EVENTS_PAGE) -> EventsPage:
    """One page of the event inspector, oldest first: `offset` counts from the first match;
    a negative offset counts back from the last (-limit: the newest page)."""
    limit = max(1, min(limit, 1_000))
    needle = (search or "").lower()
    types: set[str] = set()
    messages: list[str] = []
    matches: list[tuple[Reply, int]] = []
    for reply in list(replies):
        if reply.message_id:
            messages.append(reply.message_id)
        if message_id not in (None, "", reply.message_id):
            continue
        events = reply.events  # read by column: a record is made only for the rows of the page
        for seq, name in enumerate(events.names()):
            types.add(name)
            if event_filter and name != event_filter:
                continue
            if needle and needle not in name.lower() and needle not in json.dumps(
                    events.data(seq), ensure_ascii=False, default=str).lower():
                continue
            matches.append((reply, seq))
    total = len(matches)
    start = max(total + offset, 0) if offset < 0 else min(offset, total)
    rows: list[EventRow] = []
    for reply, seq in matches[start:start + limit]:
        events = reply.events
        rows.append({"message_id": reply.message_id, "seq": seq, "offset_ms": _ms(events.offset(seq)),
                     "event": events.name(seq), "data": _json_text(events.data(seq), 2_000) or ""})
    return {"rows": rows, "total": total, "offset": start, "types": sorted(types), "messages": messages}


COMPARE_OUTPUT_CHARS = 2000  # of one node output in the compare view (the DataFrame has more)


def compare_view(chat_rows: list[dict[str, Any]], diff: tuple[list[Any], list[Any], bool]) -> dict[str, Any]:
    """The Compare view of two replies, from `Chat.compare_records` and the answers' word diff."""
    answer, nodes = chat_rows[0], chat_rows[1:]

    def cut(text: Any) -> str | None:
        return None if text is None else str(text)[:COMPARE_OUTPUT_CHARS]

    return {"answer_a": diff[0], "answer_b": diff[1], "truncated": diff[2],
            "status_a": answer["status_a"], "status_b": answer["status_b"],
            "total_ms_a": answer["duration_ms_a"], "total_ms_b": answer["duration_ms_b"],
            "rows": [{"node_name": str(r["node_name"]), "node_type": str(r["node_type"] or ""), "ran_in": r["ran_in"],
                      "status_a": r["status_a"], "status_b": r["status_b"], "duration_ms_a": r["duration_ms_a"],
                      "duration_ms_b": r["duration_ms_b"], "output_differs": bool(r["output_differs"]),
                      "output_a": cut(r["output_a"]), "output_b": cut(r["output_b"])} for r in nodes]}
