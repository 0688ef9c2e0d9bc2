"""The static snapshot: transcript + timeline as sanitized HTML, for saved notebooks viewed
without a kernel (GitHub, nbconvert) and for export_html(). Markdown by markdown-it-py,
sanitized by nh3 (ammonia); nothing from the conversation reaches the page unescaped."""

from __future__ import annotations

import html
from typing import Any

import nh3
from markdown_it import MarkdownIt

from ..model._compare import compare_records
from ..model.reply import Reply
from ..model.tree import MessageTree
from ..protocol._wire import FileRef
from ._graph import inferred_edges, static_svg
from ._view_state import settled_path, timeline_view, turn_view

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}}

STATUS_COLORS = {"succeeded": "#16a34a", "failed": "#dc2626", "break": "#d97706",
                 "running": "#2563eb", "stopped": "#6b7280", "recovered": "#7c3aed",
                 "streaming": "#2563eb", "answering": "#2563eb", "querying": "#2563eb",
                 "waiting": "#d97706"}

STYLE = """
.atomemo-snapshot{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:14px;
 border:1px solid #d0d7de;border-radius:8px;padding:12px;max-width:960px;color:#1f2328;background:#fff}
.atomemo-snapshot .hdr{font-weight:600;margin-bottom:8px}
.atomemo-snapshot .note{color:#57606a;font-size:12px;margin-bottom:6px}
.atomemo-snapshot .badge{font-size:11px;background:#fef3c7;color:#92400e;border-radius:10px;
 padding:1px 8px;margin-left:6px}
.atomemo-snapshot .q{background:#eef2ff;border-radius:8px;padding:6px 10px;margin:8px 0 4px auto;
 max-width:80%;width:fit-content}
.atomemo-snapshot .a{border-left:3px solid #d0d7de;padding:2px 10px;margin:4px 0 8px}
.atomemo-snapshot pre{background:#f6f8fa;padding:8px;border-radius:6px;overflow:auto}
.atomemo-snapshot table{border-collapse:collapse}
.atomemo-snapshot td,.atomemo-snapshot th{border:1px solid #d0d7de;padding:3px 8px}
.atomemo-snapshot .tl{font-size:12px;margin:4px 0 12px}
.atomemo-snapshot .row{display:flex;align-items:center;gap:6px;margin:2px 0}
.atomemo-snapshot .name{width:210px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.atomemo-snapshot .track{flex:1;position:relative;height:10px;background:#f3f4f6;border-radius:3px}
.atomemo-snapshot .bar{position:absolute;top:0;height:10px;border-radius:3px;min-width:2px}
.atomemo-snapshot .dur{width:70px;text-align:right;color:#57606a}
.atomemo-snapshot .think summary{cursor:pointer;color:#57606a;font-size:12px}
"""


def render_markdown(text: str) -> str:
    """Markdown -> sanitized HTML: no raw HTML, no scripts, http(s)/mailto links only."""
    return nh3.clean(
        _md.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _timeline(view: dict[str, Any]) -> str:
    nodes = view.get("nodes") or []
    total = max([n.get("end_ms") or n.get("start_ms") or 0 for n in nodes] + [view.get("total_ms") or 0, 1])
    rows = []
    for node in nodes:
        start = node.get("start_ms") or 0
        end = node.get("end_ms") if node.get("end_ms") is not None else start
        left, width = 100 * start / total, max(100 * (end - start) / total, 0.5)
        color = STATUS_COLORS.get(node.get("status"), "#6b7280")
        dur = "" if node.get("duration_ms") is None else f"{node['duration_ms']:.0f} ms"
        label = f"{node.get('name')} · {node.get('type') or 'node'}"
        rows.append(
            f'<div class="row"><span class="name" title="{html.escape(label)}">{html.escape(label)}</span>'
            f'<span class="track"><span class="bar" style="left:{left:.2f}%;width:{width:.2f}%;'
            f'background:{color}"></span></span><span class="dur">{html.escape(dur)}</span>'
            f'<span style="color:{color}">{html.escape(str(node.get("status")))}</span></div>')
        if node.get("reasoning"):
            rows.append(_thinking(node["reasoning"], indent=True))
        for tool in node.get("tools") or []:
            rows.append(f'<div class="row" style="padding-left:24px">🔧 {html.escape(str(tool.get("name")))}'
                        f' · {html.escape(str(tool.get("status")))}</div>')
    summary = (f"{html.escape(str(view.get('status')))} · total {view.get('total_ms') or 0:.0f} ms · "
               f"first token {view.get('ttft_ms') or 0:.0f} ms · {len(nodes)} nodes · "
               f"{view.get('failures', 0)} failed")
    return f'<div class="tl"><div>{summary}</div>{"".join(rows)}</div>'


def _thinking(view: dict[str, Any], indent: bool = False) -> str:
    """A thought, collapsed (a <details> without `open`): the static copy shows it closed, as
    the widget does, and it is text, never markup."""
    cut = view["chars"] - len(view["text"])
    more = f"… ({cut:,} earlier characters)\n" if cut > 0 else ""
    label = "Thinking" if view.get("final") else "Thinking…"
    pad = ' style="padding-left:24px"' if indent else ""
    return (f'<details class="think"{pad}><summary>{label} · {view["chars"]:,} characters</summary>'
            f'<pre>{html.escape(more + view["text"])}</pre></details>')


def snapshot_html(header: dict[str, Any], tree: MessageTree, leaf_id: str | None,
                  live: Reply | None = None, *, limit: int | None = None, cap: int | None = None) -> str:
    """The shown path with each turn's timeline; a reply still streaming is shown as far as it
    got, marked as not finished. `limit` keeps the newest turns (read in O(limit), however long
    the path), `cap` cuts each answer (the notebook's own fallback output stays small;
    chat.snapshot() keeps whole answers, export_html everything)."""
    title = f"{header.get('app_emoji') or ''} {header.get('app_name') or 'Atomemo chat'}".strip()
    version = header.get("app_version")
    badge = '<span class="badge">offline demo server</span>' if header.get("offline") else ""
    parts = [f'<div class="atomemo-snapshot"><style>{STYLE}</style>'
             f'<div class="hdr">{html.escape(title)}'
             f'{" " + html.escape(str(version)) if version else ""}{badge}</div>']
    path, total = settled_path(tree, leaf_id, limit)
    if total > len(path):
        parts.append(f'<div class="note">{total - len(path):,} earlier turns are not shown here; '
                     "chat.export_html(path) saves the whole conversation.</div>")
    if not path and live is None:
        parts.append("<div><em>No messages yet.</em></div>")
    for message in path:
        turn = turn_view(tree, message, cap=None)
        answer = turn["answer"]
        if cap is not None and len(answer) > cap:
            rest = len(answer) - cap
            answer = answer[:cap] + f"\n\n*… {rest:,} more characters (run the notebook to see them)*"
        query = turn["query"]
        if cap is not None and len(query) > cap:  # the notebook's own output: a long question cut too
            query = query[:cap] + f" … {len(query) - cap:,} more characters"
        view = timeline_view(message.reply) if message.reply is not None and message.reply.done else None
        outputs = turn.get("outputs")
        if outputs and cap is not None and len(outputs) > cap:
            outputs = outputs[:cap] + f" … {len(outputs) - cap:,} more characters"
        parts.append(_turn(query, turn["file"], answer, turn["status"], view, error=turn["error"],
                           siblings=turn["siblings"], form=turn.get("form"), outputs=outputs))
    if live is not None and not live.done:
        query = live.query.filename if isinstance(live.query, FileRef) else live.query
        parts.append(_turn(query, None, live.text, "streaming", timeline_view(live),
                           note="still answering when this snapshot was taken: the answer is cut here"))
    last = next((m.reply for m in reversed(path) if m.reply is not None and m.reply.done), None)
    if last is not None:
        parts.append(_graph(header.get("graph"), last))
    if path:
        parts.append(_comparison(tree, path[-1]))
    parts.append("</div>")
    return "".join(parts)


def _graph(published: Any, reply: Reply) -> str:
    """The workflow with the last run on it, as a static SVG (columns by depth: no browser here)."""
    structure = published or {"nodes": [{"id": s.node_id, "name": s.name, "type": s.type, "parent": None}
                                        for s in {s.node_id: s for s in reply.nodes}.values()],
                               "edges": inferred_edges(reply)}
    overlay: dict[str, str] = {}
    for span in reply.nodes:
        overlay[span.node_id] = "failed" if overlay.get(span.node_id) == "failed" else span.status
    what = "inferred from the run's events" if not published else "the last run drawn on it"
    return (f'<div class="tl"><div>Workflow graph ({what})</div><div style="overflow:auto">'
            f"{static_svg(structure, overlay)}</div></div>")


def _comparison(tree: MessageTree, message: Any) -> str:
    """The shown answer beside its previous version (after a regenerate or an edit)."""
    other = turn_view(tree, message, cap=None)["siblings"]["prev"]
    if other is None:
        return ""
    mine, theirs = message.reply, tree[other].reply
    rows = compare_records(tree[other].answer or (theirs.text if theirs else ""), theirs,
                           message.answer or (mine.text if mine else ""), mine)
    cells = "".join(
        f"<tr><td>{html.escape(str(r['node_name'] or 'answer'))}</td><td>{html.escape(str(r['status_a']))}</td>"
        f"<td>{html.escape(str(r['status_b']))}</td><td>{html.escape(r['ran_in'])}</td>"
        f"<td>{'differs' if r['output_differs'] else 'same'}</td></tr>" for r in rows)
    return ('<div class="tl"><div>Compared with the previous version of this answer</div><table>'
            "<tr><th>node</th><th>previous</th><th>shown</th><th>ran in</th><th>output</th></tr>"
            f"{cells}</table></div>")


def _form(form: dict[str, Any]) -> str:
    """The form a waiting turn shows, read-only: its content sanitized like an answer, its
    inputs and actions named (answered in the live widget, or with reply.respond())."""
    actions = " / ".join(html.escape(str(a.get("title") or a.get("id"))) for a in form.get("actions") or [])
    fields = ", ".join(html.escape(str(f.get("name"))) for f in form.get("fields") or [])
    return (f'<div class="tl" style="border:1px solid #d0d7de;border-radius:6px;padding:6px 10px">'
            f'<div><strong>✋ {html.escape(str(form.get("node_title")))}</strong> · waiting for you '
            f"(answer it in the live widget)</div>{render_markdown(str(form.get('content') or ''))}"
            f'<div class="note">inputs: {fields or "none"} · actions: {actions or "none"}</div></div>')


def _turn(query: str, file: Any, answer: str, status: str, view: Any, note: str = "", *,
          error: Any = None, siblings: Any = None, form: Any = None, outputs: str | None = None) -> str:
    """One question and answer; a turn that did not succeed says how, with its error and failing
    node, and a regenerated or edited turn says which version of how many it is."""
    question = f"📎 {file.get('filename')}" if file else query
    body = render_markdown(answer)
    if view and view.get("reasoning"):
        body = _thinking(view["reasoning"]) + body
    if form and status == "waiting":
        body += _form(form)
    if outputs:  # a workflow app's run: its outputs are its answer (JSON text, escaped)
        body += f'<details open class="outputs"><summary>outputs</summary><pre>{html.escape(outputs)}</pre></details>'

    if status != "succeeded":
        color = STATUS_COLORS.get(status, "#6b7280")
        said = html.escape(status) + (": " + html.escape(note) if note else "")
        if error:
            said += f" · {html.escape(str(error.get('code')))}: {html.escape(str(error.get('message'))[:500])}"
            if error.get("node"):
                said += f" (in node “{html.escape(str(error['node']))}”)"
        body += f'<div style="color:{color}">[{said}]</div>'
    version = ""
    if siblings and siblings.get("count", 1) > 1:
        version = (f'<span class="badge">version {siblings["index"] + 1} of {siblings["count"]}'
                   "</span>")
    out = f'<div class="q">{html.escape(str(question))}{version}</div><div class="a">{body}</div>'
    return out + (_timeline(dict(view)) if view else "")


def page(body: str, header: dict[str, Any]) -> str:
    """A standalone HTML page around a snapshot, with a CSP that forbids any script."""
    title = html.escape(str(header.get("app_name") or "Atomemo chat"))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            f"style-src 'unsafe-inline'\"></head><body>{body}</body></html>")
