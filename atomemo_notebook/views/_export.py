"""A conversation as one self-contained, interactive HTML file (export_html(interactive=True)):
the widget's own bundle (js/src/standalone.ts) and styles inlined, the conversation's views
embedded as data, read-only, working from disk with no Python and no network.

Plotly's write_html(include_plotlyjs=True) and Bokeh's standalone HTML inline their bundle and
data the same way; to that we add a Content-Security-Policy that allows only this page's own
script and stylesheet (by their sha256: no 'unsafe-inline', so no inline handler runs) and no
request to any host. What is embedded is what the widget's traits and commands would send a
browser, built by the same functions (view_state, tape): never the key, never the client.

Bounded: at most EXPORT_TURNS turns and `max_chars` characters of data. A longer conversation
keeps its newest turns whole, and the file says how many earlier ones it left out."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import os
import pathlib
import re
from typing import Any

from ..model._compare import compare_records, word_diff
from ..model.tree import MessageTree, TreeMessage
from ..protocol._files import write_atomic
from ._tape import tape_view
from ._traits import STATIC
from ._view_state import compare_view, node_detail, timeline_view, turn_view
from ._widget_protocol import PROTOCOL_VERSION, DetailResult, EventRow

EXPORT_CHARS = 20_000_000  # characters of embedded data in one file, by default
EXPORT_TURNS = 500  # turns of the path, at most
DETAIL_CHARS = 20_000  # of one value in a node's detail (the widget asks the kernel for up to 200,000)
EVENT_CHARS = 2_000  # of one event's data in the inspector (as the widget's pages)
MAX_COMPARES = 40  # pairs of replies compared ahead (the Compare tab's likely picks)


def _cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters, left out of this file)"


def _details(reply: Any, timeline: dict[str, Any]) -> dict[str, DetailResult]:
    out: dict[str, DetailResult] = {}
    keys = [node["key"] for node in timeline["nodes"]] + [t["key"] for n in timeline["nodes"] for t in n["tools"]]
    for key in keys:
        try:
            detail = node_detail(reply, key)
        except KeyError:
            continue
        out[key] = {"title": detail["title"],
                    "sections": [(label, _cut(value, DETAIL_CHARS)) for label, value in detail["sections"]]}
    return out


def _events(reply: Any) -> list[EventRow]:
    rows: list[EventRow] = []
    events = reply.events
    for seq in range(len(events)):  # the length now: a streaming reply may grow meanwhile
        data, offset = events.data(seq), events.offset(seq)
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=2, default=str)
        rows.append({"message_id": reply.message_id, "seq": seq,
                     "offset_ms": None if offset is None else round(offset * 1000.0, 1),
                     "event": events.name(seq), "data": _cut(text, EVENT_CHARS) or ""})
    return rows


def _turn_data(tree: MessageTree, message: TreeMessage) -> dict[str, Any]:
    """Everything the file holds of one turn: its view, and its run's timeline, tape, events
    and node details when this session streamed it."""
    turn = turn_view(tree, message, cap=None)
    out: dict[str, Any] = {"turn": turn}
    reply = message.reply
    if reply is not None and reply.done:
        timeline = timeline_view(reply)
        out.update(timeline=timeline, tape=tape_view(reply), events=_events(reply),
                   details=_details(reply, dict(timeline)))
    return out


def _pairs(turns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs the Compare tab offers first: each turn beside its other versions and beside
    the turn before it."""
    pairs: list[tuple[str, str]] = []
    for i, turn in enumerate(turns):
        siblings = turn["siblings"]
        others = [v["id"] for v in siblings.get("versions", [])]
        others = others or [x for x in (siblings["prev"], siblings["next"]) if x]
        if i > 0:
            others.append(turns[i - 1]["id"])
        for other in others:
            if other != turn["id"]:
                pairs += [(other, turn["id"]), (turn["id"], other)]
    seen: dict[tuple[str, str], None] = {}
    for pair in reversed(pairs):  # the newest turns' pairs first
        seen.setdefault(pair, None)
    return list(seen)[:MAX_COMPARES]


def _compare(tree: MessageTree, a: str, b: str) -> list[dict[str, Any]]:
    """The Compare tab's rows for two messages of the tree (Chat.compare_records, on the tree)."""
    if a not in tree or b not in tree:
        raise KeyError(f"no message {a!r} or {b!r} in this conversation")
    reply_a, reply_b = tree[a].reply, tree[b].reply
    return compare_records(reply_a.text if reply_a else tree[a].answer or "", reply_a,
                           reply_b.text if reply_b else tree[b].answer or "", reply_b)


def export_data(tree: MessageTree, leaf_id: str | None, header: dict[str, Any], *,
                max_chars: int = EXPORT_CHARS) -> dict[str, Any]:
    """The embedded data: the traits a browser would hold, with every shown turn whole, and the
    answers to the commands the read-only view asks (details, events, tapes, comparisons)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars!r}")
    path = tree.path_to(leaf_id) if leaf_id and leaf_id in tree else []
    path = [m for m in path if m.reply is None or m.reply.done]  # a reply still streaming is not in the file
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(path[-EXPORT_TURNS:]):  # newest first: a long conversation keeps its end
        data = _turn_data(tree, message)
        size = len(json.dumps(data, ensure_ascii=False, default=str))
        if used + size > max_chars:
            if not kept:
                raise ValueError(f"the newest turn alone needs {size:,} characters, more than max_chars={max_chars:,}")
            break
        kept.append(data)
        used += size
    kept.reverse()
    left_out = len(path) - len(kept)
    turns = [d["turn"] for d in kept]
    compares: dict[str, Any] = {}
    for a, b in _pairs(turns):
        try:
            rows = _compare(tree, a, b)
        except KeyError:
            continue
        compares[f"{a}|{b}"] = compare_view(rows, word_diff(str(rows[0]["output_a"]), str(rows[0]["output_b"])))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    note = f"Exported on {when}: read-only, no kernel behind it."
    if left_out:
        note += (f" {left_out:,} earlier turn{'s are' if left_out != 1 else ' is'} left out: "
                 f"this file keeps the newest {len(kept):,} whole (within {max_chars:,} characters of data).")
    safe_header = {k: v for k, v in header.items() if k not in ("demo_apps", "conversation_id", "user_id")}
    traits = {"protocol": PROTOCOL_VERSION, "header": {**safe_header, "read_only": note},
              "transcript": {"leaf_id": turns[-1]["id"] if turns else "", "turns": turns, "older": 0},
              "timelines": {d["turn"]["id"]: d["timeline"] for d in kept if "timeline" in d},
              "live": {}, "notice": {}, "conversations": [], "attachment": {}, "focus_id": "", "compact": False}
    return {"traits": traits, "left_out": left_out,
            "tapes": {d["turn"]["id"]: d["tape"] for d in kept if "tape" in d},
            "events": {d["turn"]["id"]: d["events"] for d in kept if "events" in d},
            "details": {d["turn"]["id"]: d["details"] for d in kept if "details" in d},
            "compares": compares}


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _inline_script(source: str) -> str:
    # "</script" would end the element early; inside the bundle's strings and regexes "<\/" means the same.
    return source.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def page(data: dict[str, Any], title: str) -> str:
    """The page: the widget's stylesheet and bundle inline (allowed by hash), the data as JSON
    that no browser runs (every '<' escaped, so no text in it can close its element)."""
    script = _inline_script((STATIC / "standalone.js").read_text(encoding="utf-8"))
    style = (STATIC / "widget.css").read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    policy = (f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
              "img-src data:; font-src data:; base-uri 'none'; form-action 'none'")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head>"
            "<body><div id=\"atomemo-root\" class=\"atomemo-export\"></div>"
            f"<script type=\"application/json\" id=\"atomemo-data\">{payload}</script>"
            f"<script type=\"module\">{script}</script></body></html>")


def write_interactive(path: str | os.PathLike[str], tree: MessageTree, leaf_id: str | None,
                      header: dict[str, Any], *, max_chars: int = EXPORT_CHARS) -> tuple[pathlib.Path, int]:
    """Write the interactive file, all or nothing (write_atomic): its path, and how many earlier
    turns it left out."""
    data = export_data(tree, leaf_id, header, max_chars=max_chars)
    title = f"{header.get('app_name') or 'Atomemo chat'} (exported conversation)"
    return write_atomic(path, page(data, title)), int(data["left_out"])


def export_name(header: dict[str, Any]) -> pathlib.Path:
    """Where the widget's Export button saves: the kernel's working directory, a name that says
    what and when (never an existing file's)."""
    app = re.sub(r"[^A-Za-z0-9]+", "-", str(header.get("app_name") or "chat")).strip("-").lower()[:40] or "chat"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = pathlib.Path.cwd() / f"{app}-{stamp}.html"
    for n in range(2, 100):
        if not target.exists():
            break
        target = pathlib.Path.cwd() / f"{app}-{stamp}-{n}.html"
    return target
