"""ComparisonWidget: `compare(a, b)` in the notebook: the verdict, then the paired rows (the
ones that regressed first, then the ones that improved), each opening both runs side by side
as the chat's Compare tab draws two replies: the answers' word diff and the node runs aligned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..model._compare import compare_records, word_diff
from ..views._traits import STATIC, trait
from ..views._view_state import compare_view
from ..views._widget_protocol import COMPARISON_TRAITS, ComparisonPairView, ComparisonRowView
from ._view import ANSWER_CHARS, MAX_TABLE_ROWS, _cut

if TYPE_CHECKING:
    from ..model.reply import Reply
    from ._comparison import Comparison

__all__ = ["ComparisonWidget", "pair_view", "row_views"]


def _label(row: dict[str, Any]) -> str:
    return str(row.get("row", ""))


def _pair_label(row: dict[str, Any], record_a: dict[str, Any], record_b: dict[str, Any]) -> str:
    """The row, and which of its asks are side by side when it was asked more than once."""
    if "asks_a" not in row:
        return _label(row)
    shown = [f"{side} ask {int(record.get('repeat', 0)) + 1}/{row[f'asks_{side.lower()}']}"
             for side, record in (("A", record_a), ("B", record_b)) if record]
    return f"{_label(row)} · {', '.join(shown)}"


def _scores(row: dict[str, Any], columns: list[str], side: str) -> dict[str, float | bool | None]:
    out: dict[str, float | bool | None] = {}
    for column in columns:
        value = row.get(f"{column}_{side}")
        out[column[len("score_"):]] = value if value is None or isinstance(value, bool | int | float) else None
    return out


def row_views(comparison: Comparison) -> list[ComparisonRowView]:
    """The table's rows as the widget draws them: at most MAX_TABLE_ROWS, in the table's order
    (so the rows that flipped, which come first, are always among them)."""
    columns = comparison._score_columns
    return [{"row": place, "label": _label(row), "query": _cut(row["query"]), "flip": row["flip"],
             "status_a": str(row["status_a"]), "status_b": str(row["status_b"]),
             "answer_changed": bool(row["answer_changed"]), "scores_a": _scores(row, columns, "a"),
             "scores_b": _scores(row, columns, "b")}
            for place, row in enumerate(comparison._rows[:MAX_TABLE_ROWS])]


def _last(replies: list[Reply]) -> Reply | None:
    return replies[-1] if replies else None  # the scored reply: a file's upload turn comes before it


def pair_view(comparison: Comparison, place: int) -> ComparisonPairView:
    """Row `place` of the comparison's table: both runs' answers (word diff) and node runs
    (aligned), their errors and scores."""
    if not isinstance(place, int) or not 0 <= place < len(comparison._rows):
        raise IndexError(f"the comparison has rows 0 to {len(comparison._rows) - 1}, not {place!r}")
    row = comparison._rows[place]
    place_a, place_b = comparison._places[place]
    record_a = comparison.a.records[place_a]
    record_b: dict[str, Any] = {} if place_b is None else comparison.b.records[place_b]
    reply_a = _last(comparison.a.replies[place_a])
    reply_b = None if place_b is None else _last(comparison.b.replies[place_b])
    answer_a = str(record_a.get("answer") or "")[:ANSWER_CHARS]
    answer_b = str(record_b.get("answer") or "")[:ANSWER_CHARS]
    records = compare_records(answer_a, reply_a, answer_b, reply_b)
    result = compare_view(records, word_diff(answer_a, answer_b))
    # A run with no reply (failed before one, or absent from b) still says what it was.
    result["status_a"] = result["status_a"] or str(row["status_a"])
    result["status_b"] = result["status_b"] or str(row["status_b"])
    columns = comparison._score_columns
    scores_a, scores_b = _scores(row, columns, "a"), _scores(row, columns, "b")
    return {"row": place, "label": _pair_label(row, record_a, record_b),
            "query": _cut(row["query"], ANSWER_CHARS), "flip": str(row["flip"]),
            "compare": result,  # type: ignore[typeddict-item]
            "error_a": _cut(record_a["error"]) if record_a.get("error") else None,
            "error_b": _cut(record_b["error"]) if record_b.get("error") else None,
            "scores": [(name, scores_a[name], scores_b[name]) for name in scores_a]}


class ComparisonWidget(anywidget.AnyWidget):
    """A comparison in the notebook: click a row to see both runs side by side."""

    _esm = STATIC / "eval.js"
    _css = STATIC / "widget.css"

    protocol = trait("protocol", "The widget protocol's version.", COMPARISON_TRAITS)
    title = trait("title", "What is compared: A's system and B's.", COMPARISON_TRAITS)
    verdict = trait("verdict", "One line per measure.", COMPARISON_TRAITS)
    rows = trait("rows", "The paired rows, those that regressed first (at most MAX_TABLE_ROWS).",
                 COMPARISON_TRAITS)
    hidden_rows = traitlets.Int(0, help="Rows not in the table (see comparison.df)").tag(sync=True)
    score_columns = trait("score_columns", "The scores of either run.", COMPARISON_TRAITS)
    selected = traitlets.Int(-1, help="The row whose two runs are shown (-1: none); set by a click.").tag(sync=True)
    pair = trait("pair", "The selected row's two runs side by side.", COMPARISON_TRAITS)

    def __init__(self, comparison: Comparison, selected: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comparison = comparison
        with self.hold_sync():
            self.title = f"Comparison · A: {comparison.a.system} · B: {comparison.b.system}"
            self.verdict = list(comparison.verdict)
            self.rows = row_views(comparison)
            self.hidden_rows = len(comparison._rows) - len(self.rows)
            self.score_columns = [c[len("score_"):] for c in comparison._score_columns]
        self.observe(self._on_select, names="selected")
        if selected is not None:
            pair_view(comparison, selected)  # a wrong row raises here, not in the observer
            self.selected = selected

    def _on_select(self, change: dict[str, Any]) -> None:
        place = change["new"]
        self.pair = pair_view(self.comparison, place) if 0 <= place < len(self.comparison._rows) else {}
