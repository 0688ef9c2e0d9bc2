"""Two replies side by side: the answers' word-level diff, and their node runs aligned
(a node's k-th run in one against its k-th run in the other; runs in only one of them
shown as such), with statuses, durations and whether the outputs differ. difflib does the
diffing and the alignment; the bounds keep a hostile answer from costing O(n*m)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from .reply import NodeSpan, Reply

__all__ = ["COMPARE_COLUMNS", "MAX_DIFF_TOKENS", "align_nodes", "compare_records", "word_diff"]

COMPARE_COLUMNS = ("kind", "node_id", "node_name", "node_type", "ran_in", "status_a", "status_b",
                   "duration_ms_a", "duration_ms_b", "duration_ratio", "output_a", "output_b", "output_differs")
# Words and the spaces between them diffed per answer; the rest is one block. difflib is
# quadratic on repetitive text: 1,500 tokens of "a b a b" take ~0.3 s here, 4,000 took 2.7 s.
MAX_DIFF_TOKENS = 1500
MAX_OUTPUT = 20_000  # characters of an output kept in a row
_TOKEN = re.compile(r"\s+|[^\s]+")

Segment = dict[str, str]  # {"op": "same" | "del" | "add", "text": ...}


def _merge(out: list[Segment], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1]["op"] == op:
        out[-1]["text"] += text
    else:
        out.append({"op": op, "text": text})


def word_diff(a: str, b: str, max_tokens: int = MAX_DIFF_TOKENS) -> tuple[list[Segment], list[Segment], bool]:
    """Each answer as segments: `same` in both, `del` only in a, `add` only in b. True when an
    answer was longer than `max_tokens` words and its tail is compared as one block."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    cut = len(ta) > max_tokens or len(tb) > max_tokens
    head_a, head_b = ta[:max_tokens], tb[:max_tokens]
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=head_a, b=head_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            _merge(left, "same", "".join(head_a[i1:i2]))
            _merge(right, "same", "".join(head_b[j1:j2]))
        else:
            _merge(left, "del", "".join(head_a[i1:i2]))
            _merge(right, "add", "".join(head_b[j1:j2]))
    if cut:
        rest_a, rest_b = "".join(ta[max_tokens:]), "".join(tb[max_tokens:])
        same = rest_a == rest_b
        _merge(left, "same" if same else "del", rest_a)
        _merge(right, "same" if same else "add", rest_b)
    return left, right, cut


def _runs(reply: Reply | None) -> list[tuple[str, NodeSpan]]:
    """Each node run keyed by its node and which run of that node it is (loops run nodes again)."""
    if reply is None:
        return []
    seen: dict[str, int] = {}
    keyed = []
    for span in list(reply.nodes):
        seen[span.node_id] = seen.get(span.node_id, 0) + 1
        keyed.append((f"{span.node_id}#{seen[span.node_id]}", span))
    return keyed


def _output(span: NodeSpan | None) -> str | None:
    if span is None:
        return None
    value = span.error if span.status == "failed" and span.error else span.json_output
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text[:MAX_OUTPUT]


def _row(a: NodeSpan | None, b: NodeSpan | None) -> dict[str, Any]:
    span = a or b
    assert span is not None
    da, db = (a.duration_ms if a else None), (b.duration_ms if b else None)
    out_a, out_b = _output(a), _output(b)
    return {"kind": "node", "node_id": span.node_id, "node_name": span.name, "node_type": span.type,
            "ran_in": "both" if a and b else "a only" if a else "b only",
            "status_a": a.status if a else None, "status_b": b.status if b else None,
            "duration_ms_a": da, "duration_ms_b": db,
            "duration_ratio": db / da if da and db is not None else None,
            "output_a": out_a, "output_b": out_b, "output_differs": bool(a and b and out_a != out_b)}


def align_nodes(a: Reply | None, b: Reply | None) -> list[dict[str, Any]]:
    """One row per node run, in run order: a node's k-th run in `a` beside its k-th run in `b`."""
    runs_a, runs_b = _runs(a), _runs(b)
    matcher = difflib.SequenceMatcher(a=[k for k, _ in runs_a], b=[k for k, _ in runs_b], autojunk=False)
    rows: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows.extend(_row(sa, sb) for (_, sa), (_, sb) in zip(runs_a[i1:i2], runs_b[j1:j2], strict=True))
        else:
            rows.extend(_row(sa, None) for _, sa in runs_a[i1:i2])
            rows.extend(_row(None, sb) for _, sb in runs_b[j1:j2])
    return rows


def _total_ms(reply: Reply | None) -> float | None:
    total = reply.total_time if reply else None
    return None if total is None else total * 1000.0


def compare_records(answer_a: str, reply_a: Reply | None, answer_b: str, reply_b: Reply | None) -> list[dict[str, Any]]:
    """The answers (one row, kind `answer`), then the aligned node runs."""
    da, db = _total_ms(reply_a), _total_ms(reply_b)
    answer = {"kind": "answer", "node_id": None, "node_name": None, "node_type": None, "ran_in": "both",
              "status_a": reply_a.status if reply_a else None, "status_b": reply_b.status if reply_b else None,
              "duration_ms_a": da, "duration_ms_b": db, "duration_ratio": db / da if da and db is not None else None,
              "output_a": answer_a, "output_b": answer_b, "output_differs": answer_a != answer_b}
    return [answer, *align_nodes(reply_a, reply_b)]
