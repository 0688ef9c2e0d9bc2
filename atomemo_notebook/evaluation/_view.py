"""EvalWidget: an evaluation's results as a live table in the notebook (progress, rows
per second, ETA, Stop), whose rows open that run's answer and timeline. The table holds a
bounded number of rows (the DataFrame has them all); updates are coalesced."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..protocol._systems import capabilities_of
from ..session import _runtime as runtime
from ..views._traits import STATIC, trait
from ..views._view_state import timeline_view
from ..views._widget_protocol import EVAL_TRAITS, EvalDetailView, EvalRowView
from ._results import EvalResults

if TYPE_CHECKING:
    from ..model.reply import Reply

__all__ = ["MAX_TABLE_ROWS", "EvalWidget"]

MAX_TABLE_ROWS = 2000  # rows drawn in the table; the failed ones first when there are more
CELL_CHARS = 300
ANSWER_CHARS = 20_000  # of one answer in the drill-down
FLUSH_EVERY = 0.25  # seconds: updates while rows end are coalesced to about 4 per second


def _cut(text: Any, limit: int = CELL_CHARS) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[:limit] + "…"


def _label(record: dict[str, Any], repeats: int) -> str:
    number = str(record.get("row", ""))
    return f"{number} · {int(record.get('repeat', 0)) + 1}/{repeats}" if repeats > 1 else number


def _row_view(record: dict[str, Any], position: int, repeats: int) -> EvalRowView:
    scores = {k[len("score_"):]: v for k, v in record.items()
              if k.startswith("score_") and k != "score_errors" and (v is None or isinstance(v, int | float | bool))}
    return {"row": position, "label": _label(record, repeats), "query": _cut(record["query"]),
            "status": str(record["status"]),
            "answer": _cut(record.get("answer")), "error": _cut(record["error"]) if record.get("error") else None,
            "failed_node": record.get("failed_node"), "total_s": record.get("total_s"), "scores": scores}


def _detail(results: EvalResults, row: int, tokens: bool) -> EvalDetailView:
    replies: list[Reply] = results.replies[row] if 0 <= row < len(results.replies) else []
    record = results.records[row] if 0 <= row < len(results.records) else {}
    turns = [{"query": r.query if isinstance(r.query, str) else f"📎 {r.query.filename}",
              "answer": _cut(r.text, ANSWER_CHARS), "status": r.status,
              "error": _cut(r.run_error or (str(r.error) if r.error else None)) if r.status != "succeeded" else None}
             for r in replies]
    if not turns and record:
        turns = [{"query": str(record.get("query", "")), "answer": "", "status": str(record.get("status")),
                  "error": _cut(record.get("error")) if record.get("error") else None}]
    return {"row": row, "label": _label(record, results.repeats) if record else str(row), "turns": turns,  # type: ignore[typeddict-item]
            "timelines": [timeline_view(r) for r in replies], "tokens": tokens}


class EvalWidget(anywidget.AnyWidget):
    """The live results table of `evaluate()`: click a row to see its run."""

    _esm = STATIC / "eval.js"
    _css = STATIC / "widget.css"

    protocol = trait("protocol", "The widget protocol's version.", EVAL_TRAITS)
    system = trait("system", "The system evaluated.", EVAL_TRAITS)
    progress = trait("progress", "Rows done / failed / running, rows per second, ETA.", EVAL_TRAITS)
    rows = trait("rows", "The table: one entry per row (at most MAX_TABLE_ROWS).", EVAL_TRAITS)
    hidden_rows = traitlets.Int(0, help="Rows not in the table (see results.df)").tag(sync=True)
    score_columns = trait("score_columns", "The scorers' columns.", EVAL_TRAITS)
    selected = traitlets.Int(-1, help="The row whose run is shown (-1: none); set by a click.").tag(sync=True)
    detail = trait("detail", "The selected row's turns and timelines.", EVAL_TRAITS)

    def __init__(self, results: EvalResults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.system = results.system
        self._tokens = capabilities_of(results.system).token_streaming
        self._lock = threading.Lock()
        self._due = False
        self._flush()
        results.listeners.append(self._on_change)
        self.observe(self._on_select, names="selected")
        self.on_msg(self._on_msg)

    def _on_change(self, _: EvalResults) -> None:
        with self._lock:
            if self._due:
                return
            self._due = True
        runtime.loop().call_soon_threadsafe(runtime.loop().call_later, FLUSH_EVERY, self._flush)

    def _flush(self) -> None:
        with self._lock:
            self._due = False
        results = self.results
        records = list(results.records)
        shown = list(enumerate(records))  # (place in the table, record): with repeats, rows repeat
        if len(records) > MAX_TABLE_ROWS:  # the failed rows first: they are what one opens
            shown = sorted(shown, key=lambda item: item[1]["status"] == "succeeded")[:MAX_TABLE_ROWS]
            shown.sort(key=lambda item: item[0])
        columns = sorted({k[len("score_"):] for r in records for k in r if k.startswith("score_")
                          and k != "score_errors"})
        with self.hold_sync():
            self.progress = results.progress()
            self.rows = [_row_view(record, place, results.repeats) for place, record in shown]
            self.hidden_rows = len(records) - len(shown)
            self.score_columns = columns
            if self.selected >= 0 and results.records[self.selected]["status"] not in ("running", "not run"):
                self.detail = _detail(results, self.selected, self._tokens)

    def _on_select(self, change: dict[str, Any]) -> None:
        row = change["new"]
        self.detail = _detail(self.results, row, self._tokens) if 0 <= row < len(self.results.rows) else {}

    def _on_msg(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "stop":
            self.results.stop()
