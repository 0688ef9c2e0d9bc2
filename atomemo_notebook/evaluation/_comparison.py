"""Two evaluations of the same rows, compared so a person can trust the answer: per measure the
difference b - a with a paired 95% interval (rows paired by their key, each row's repeats
averaged), the exact McNemar test on pass/fail rows that flipped, a one-line verdict per
measure, and the rows that regressed before the ones that improved."""

from __future__ import annotations

import functools
import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats
from ._results import EvalResults

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COMPARE_COLUMNS", "MEASURE_COLUMNS", "Comparison"]

COMPARE_COLUMNS = ("row", "query", "status_a", "status_b", "answer_changed", "answer_a", "answer_b",
                   "total_s_a", "total_s_b", "latency_ratio")
MEASURE_COLUMNS = ("measure", "a", "b", "difference", "low", "high", "rows", "fixed", "broken", "p_value", "verdict")
FLIP_ORDER = {"regressed": 0, "improved": 1, "": 2}
MEASURED = ("total_s", "cost", "total_tokens")  # per-row amounts compared beside the scores


def _base_key(key: str) -> str:
    return key.split("~", 1)[0]  # a repeat's key is its row's plus ~r (inputs.repeat_rows)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _groups(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Row key -> the places of its asks (its repeats), in the order the rows came."""
    out: dict[str, list[int]] = {}
    for place, record in enumerate(records):
        out.setdefault(_base_key(record["key"]), []).append(place)
    return out


def _status(records: list[dict[str, Any]]) -> str:
    """A row's status over its asks: theirs when they agree, else "mixed"."""
    statuses = {str(r["status"]) for r in records}
    return statuses.pop() if len(statuses) == 1 else "mixed"


def _all_succeeded(records: list[dict[str, Any]]) -> bool:
    return all(r["status"] == "succeeded" for r in records)


def _first_miss(records: list[dict[str, Any]], scores: list[str]) -> int:
    """The repeat of a row's first ask that failed or scored 0 (0 when none did)."""
    for index, record in enumerate(records):
        if record["status"] != "succeeded" or any(
                isinstance(record.get(c), bool | int | float) and record.get(c) == 0 for c in scores):
            return index
    return 0


class Comparison:
    """What `compare(a, b)` found. `verdict`: one line per measure; `measures`: the numbers
    behind them; indexing it reads the per-row table (`df`), whose rows that regressed come
    first, then the ones that improved. Shows in a notebook as the verdict and that table."""

    def __init__(self, a: EvalResults, b: EvalResults, *, seed: int = 0) -> None:
        self.a, self.b, self.seed = a, b, seed
        self.measures: list[dict[str, Any]] = []
        # Each run's asks by row key (a row's repeats share it), and row number -> key, from them.
        self._groups = (_groups(a.records), _groups(b.records))
        self._keys = tuple({int(results.records[places[0]]["row"]): key for key, places in groups.items()}
                           for results, groups in zip((a, b), self._groups, strict=True))
        keys: set[str] = set().union(*a.records, *b.records)  # every record's keys at C speed
        self._score_columns = sorted(k for k in keys if k.startswith("score_") and k != "score_errors")
        # Every number the table and the verdict read, per row key, in one pass over each run.
        self._values: dict[tuple[int, str], dict[str, list[float]]] = {}  # (side, column) -> key -> values
        for side, results in enumerate((a, b)):
            key_of = self._keys[side]
            for column, by_row in results.per_rows([*self._score_columns, *MEASURED]).items():
                self._values[(side, column)] = {key_of[row]: v for row, v in by_row.items() if row in key_of}
        self._rows = self._row_table()
        self._measure_scores()
        self._measure_latency()
        self._measure_cost()

    # -- the per-row table ----------------------------------------------------------------------
    def _row_table(self) -> list[dict[str, Any]]:
        """One line per input row (its asks in either run together, paired by the row's key), with
        the same per-row numbers the verdict tests: a pass/fail score passes when every ask of the
        row passed, so the rows listed as regressed are the verdict's "broken" ones (and those whose
        runs went from all succeeded to a failure); improved likewise."""
        scores = self._score_columns
        groups_a, groups_b = self._groups
        common = [key for key in groups_a if key in groups_b]
        if self.a.records and self.b.records and not common:
            raise ValueError(
                f"these two evaluations share no row ({len(groups_a)} rows in a, {len(groups_b)} in b): rows are "
                "paired by their key (the question, its inputs and expected answer), so compare runs of the same rows")
        self.paired_rows = len(common)
        repeated = any(len(p) > 1 for p in [*groups_a.values(), *groups_b.values()])
        # The numbers the verdict reads (per input row, its asks' values), by row key.
        means = {column: (self._by_key(0, column), self._by_key(1, column)) for column in scores}
        binary = {column: all(v in (0.0, 1.0) for side in means[column] for values in side.values() for v in values)
                  for column in scores}
        self._places: list[tuple[int, int | None]] = []  # per table row: the asks shown side by side
        rows = []
        for key, places_a in groups_a.items():
            places_b = groups_b.get(key, [])
            left = [self.a.records[p] for p in places_a]
            right = [self.b.records[p] for p in places_b]
            ta = _mean(self._values[(0, "total_s")].get(key, []))
            tb = _mean(self._values[(1, "total_s")].get(key, []))
            row: dict[str, Any] = {
                "row": left[0]["row"], "query": left[0]["query"], "status_a": _status(left),
                "status_b": _status(right) if right else "absent",
                "answer_changed": bool(right) and {r.get("answer") for r in left} != {r.get("answer") for r in right},
                "total_s_a": ta, "total_s_b": tb,
                "latency_ratio": tb / ta if ta is not None and tb is not None and ta > 0 else None}
            if repeated:
                row["asks_a"], row["asks_b"] = len(left), len(right)
            flips = []
            for column in scores:
                va, vb = _mean(means[column][0].get(key, [])), _mean(means[column][1].get(key, []))
                row[f"{column}_a"], row[f"{column}_b"] = va, vb
                if binary[column] and va is not None and vb is not None:
                    flips.append("regressed" if va == 1.0 > vb else "improved" if vb == 1.0 > va else "")
            if right and _all_succeeded(left) and not _all_succeeded(right):
                flips.append("regressed")
            elif right and _all_succeeded(right) and not _all_succeeded(left):
                flips.append("improved")
            row["flip"] = "regressed" if "regressed" in flips else "improved" if "improved" in flips else ""
            # The asks shown side by side: where the row let down, its first ask that did (and the
            # other run's ask of the same repeat); otherwise each run's first.
            shown = _first_miss(right, scores) if row["flip"] == "regressed" else (
                _first_miss(left, scores) if row["flip"] == "improved" else 0)
            place_a = places_a[min(shown, len(places_a) - 1)]
            place_b = places_b[min(shown, len(places_b) - 1)] if places_b else None
            row["answer_a"] = self.a.records[place_a].get("answer")
            row["answer_b"] = None if place_b is None else self.b.records[place_b].get("answer")
            rows.append(row)
            self._places.append((place_a, place_b))
        order = sorted(range(len(rows)), key=lambda i: FLIP_ORDER[rows[i]["flip"]])  # stable: groups keep row order
        self._places = [self._places[i] for i in order]
        return [rows[i] for i in order]

    @functools.cached_property
    def df(self) -> pd.DataFrame:
        """The per-row table, built once (the comparison does not change after it is made)."""
        from ..model._records import to_dataframe

        extra = ["asks_a", "asks_b"] if any("asks_a" in r for r in self._rows) else []
        columns = [*COMPARE_COLUMNS, *extra, *(f"{c}_{s}" for c in self._score_columns for s in "ab"), "flip"]
        return to_dataframe(self._rows, columns)

    def __getitem__(self, key: Any) -> Any:
        return self.df[key]

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def columns(self) -> Any:
        return self.df.columns

    def regressed(self) -> pd.DataFrame:
        """The rows that went from pass to fail: a pass/fail score that every ask of the row passed
        in a and not in b (the verdict's "broken" rows), or asks that all succeeded in a and not in b."""
        frame = self.df
        return frame[frame["flip"] == "regressed"]

    def improved(self) -> pd.DataFrame:
        """The rows that went from fail to pass (the verdict's "fixed" rows, and runs that failed in a
        and all succeeded in b)."""
        frame = self.df
        return frame[frame["flip"] == "improved"]

    # -- the measures ----------------------------------------------------------------------------
    def _by_key(self, side: int, column: str) -> dict[str, list[float]]:
        """Row key -> the values of `column` over the row's ended asks in run a (0) or b (1):
        what the verdict and the table both read."""
        return self._values[(side, column)]

    def _paired(self, column: str) -> tuple[list[float | None], list[float | None], list[str]]:
        a, b = self._by_key(0, column), self._by_key(1, column)
        left, right, keys = [], [], []
        for key, values in a.items():
            other = b.get(key)
            if other:
                left.append(_mean(values))
                right.append(_mean(other))
                keys.append(key)
        return left, right, keys

    def _measure_scores(self) -> None:
        for column in self._score_columns:
            left, right, _ = self._paired(column)
            diff = stats.paired_difference(left, right, seed=self.seed)
            name = column[len("score_"):]
            entry: dict[str, Any] = {"measure": name, "a": _mean([v for v in left if v is not None]),
                                     "b": _mean([v for v in right if v is not None]), "difference": diff.estimate,
                                     "low": diff.low, "high": diff.high, "rows": diff.n, "fixed": None,
                                     "broken": None, "p_value": None}
            a_rows, b_rows = self._by_key(0, column), self._by_key(1, column)
            if all(v in (0.0, 1.0) for values in [*a_rows.values(), *b_rows.values()] for v in values):
                verdicts = [(None if x is None else x == 1.0, None if y is None else y == 1.0)
                            for x, y in zip(left, right, strict=True)]
                # A row passes when every repeat passed (its mean is 1), as pass^k counts it: a
                # row that passes two asks in three is not one a user can rely on.
                fixed = sum(1 for x, y in verdicts if x is False and y is True)
                broken = sum(1 for x, y in verdicts if x is True and y is False)
                entry |= {"fixed": fixed, "broken": broken, "p_value": stats.mcnemar_exact(broken, fixed)}
            entry["verdict"] = _score_verdict(name, diff, entry)
            self.measures.append(entry)

    def _measure_latency(self) -> None:
        left, right, _ = self._paired("total_s")
        ms_a = [None if v is None else v * 1000 for v in left]
        ms_b = [None if v is None else v * 1000 for v in right]
        p50 = stats.quantile_difference(ms_a, ms_b, 0.5, seed=self.seed)
        mean = stats.paired_difference(ms_a, ms_b, seed=self.seed)
        for name, diff in (("p50 latency", p50), ("mean latency", mean)):
            self.measures.append({"measure": name, "a": None, "b": None, "difference": diff.estimate,
                                  "low": diff.low, "high": diff.high, "rows": diff.n, "fixed": None, "broken": None,
                                  "p_value": None, "verdict": _amount_verdict(name, diff, "ms", "slower", "faster")})

    def _measure_cost(self) -> None:
        for column, unit in (("cost", ""), ("total_tokens", " tokens")):
            left, right, _ = self._paired(column)
            if not left:
                continue
            diff = stats.paired_difference(left, right, seed=self.seed)
            self.measures.append({"measure": column, "a": None, "b": None, "difference": diff.estimate,
                                  "low": diff.low, "high": diff.high, "rows": diff.n, "fixed": None, "broken": None,
                                  "p_value": None,
                                  "verdict": _amount_verdict(column, diff, unit.strip(), "costlier", "cheaper")})

    def node_changes(self) -> pd.DataFrame:
        """Per node: the p50 duration of both runs and the change b - a with a paired 95%
        interval (rows where both ran the node, each row's runs of it averaged)."""
        from ..model._records import to_dataframe

        def per_row(results: EvalResults) -> dict[str, dict[str, list[float]]]:
            key_of = {int(r["row"]): _base_key(r["key"]) for r in results.records}
            out: dict[str, dict[str, list[float]]] = {}
            for record in results.timeline_records():
                if record["kind"] == "node" and record["duration_ms"] is not None:
                    row = results.records[record["row"]]["row"]
                    out.setdefault(record["node_name"], {}).setdefault(key_of[int(row)], []).append(
                        float(record["duration_ms"]))
            return out

        a, b = per_row(self.a), per_row(self.b)
        lines = []
        for node in [*a, *(n for n in b if n not in a)]:
            keys = [k for k in a.get(node, {}) if k in b.get(node, {})]
            left = [_mean(a[node][k]) for k in keys]
            right = [_mean(b[node][k]) for k in keys]
            diff = stats.quantile_difference(left, right, 0.5, seed=self.seed)
            all_a = [v for vs in a.get(node, {}).values() for v in vs]
            all_b = [v for vs in b.get(node, {}).values() for v in vs]
            lines.append({"node": node, "p50_ms_a": stats.quantile_interval(all_a, 0.5).estimate,
                          "p50_ms_b": stats.quantile_interval(all_b, 0.5).estimate, "change_ms": diff.estimate,
                          "low": diff.low, "high": diff.high, "rows": diff.n})
        return to_dataframe(lines, ["node", "p50_ms_a", "p50_ms_b", "change_ms", "low", "high", "rows"])

    # -- what a person reads ---------------------------------------------------------------------
    @property
    def verdict(self) -> list[str]:
        return [m["verdict"] for m in self.measures]

    def measures_df(self) -> pd.DataFrame:
        from ..model._records import to_dataframe

        return to_dataframe(self.measures, MEASURE_COLUMNS)

    def __repr__(self) -> str:
        flips = {f: sum(r["flip"] == f for r in self._rows) for f in ("regressed", "improved")}
        absent = len(self._rows) - self.paired_rows
        return ("\n".join(["Comparison of two evaluations (b - a, 95% intervals):", *self.verdict])
                + f"\n{flips['regressed']} rows regressed, {flips['improved']} improved, "
                  f"of {self.paired_rows} rows in both"
                + (f" ({absent} only in a)" if absent else ""))

    def to_html(self, path: str | os.PathLike[str], *, title: str = "Evaluation comparison") -> Path:
        """A small static HTML report (the verdict, the rows that regressed then improved, a
        latency plot): no script, no remote load; written all or nothing."""
        from ..protocol._files import write_atomic
        from ._report import comparison_html

        return write_atomic(path, comparison_html(self, title))

    def pair(self, row: int) -> dict[str, Any]:
        """Row `row` of the table (`df`'s index: `regressed().index[0]` is the first that
        regressed) as its two runs side by side: both answers as a word diff, both runs' node
        runs aligned, their errors and scores. What the widget draws when the row is opened."""
        from ._comparison_view import pair_view

        return dict(pair_view(self, row))

    def open(self, row: int | None = None) -> Any:
        """The comparison as a widget (the verdict, then the rows that regressed and improved),
        with row `row` (`df`'s index) opened: both runs' answers and node runs side by side.
        A click on another row opens that one."""
        from ._comparison_view import ComparisonWidget

        return ComparisonWidget(self, row)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # The widget where widgets render; the static verdict and table wherever they do not.
        bundle = self.open()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/html"] = self._repr_html_()
        return bundle

    def _repr_html_(self) -> str:
        lines = "".join(f"<li>{html.escape(v)}</li>" for v in self.verdict)
        table = self.df[["row", "query", "status_a", "status_b", "flip", "answer_changed"]].to_html(
            index=False, escape=True, max_rows=50)
        return f"<div class='am-comparison'><ul>{lines}</ul>{table}</div>"


def _digits(*values: float) -> int:
    """Two decimals (0.12, 0.08), or enough for two significant digits when even the largest of
    an estimate and its bounds is below 0.01 (0.0031: a cost per ask); none from 10 (80 ms).
    One format for all three."""
    largest = max(abs(v) for v in values)
    if largest >= 10:
        return 0
    if largest == 0 or largest >= 0.01:
        return 2
    return min(-math.floor(math.log10(largest)) + 1, 12)


def _fmt(value: float, unit: str = "", digits: int | None = None) -> str:
    text = f"{value:+.{_digits(value) if digits is None else digits}f}"
    return text + (f" {unit}" if unit else "")


def _span(diff: stats.Interval, unit: str = "", *, magnitude: bool = False) -> str:
    """"+0.12 [+0.05, +0.19]"; with `magnitude`, the size of a difference whose direction the
    words already say ("worse by 0.16 [0.10, 0.22]"): bounds swapped and signs dropped."""
    if diff.estimate is None or diff.low is None or diff.high is None:
        raise ValueError("an interval without bounds has no span")
    d = _digits(diff.estimate, diff.low, diff.high)
    if magnitude:  # both bounds on one side of 0 here: their sizes, smaller first
        value = abs(diff.estimate)
        low, high = sorted((abs(diff.low), abs(diff.high)))
        text = f"{value:.{d}f}" + (f" {unit}" if unit else "")
        return f"{text} [{low:.{d}f}, {high:.{d}f}]"
    return f"{_fmt(diff.estimate, unit, d)} [{_fmt(diff.low, '', d)}, {_fmt(diff.high, '', d)}]"


def _score_verdict(name: str, diff: stats.Interval, entry: dict[str, Any]) -> str:
    flips = (f", {entry['fixed']} rows fixed, {entry['broken']} broken (McNemar p={entry['p_value']:.2g})"
             if entry.get("fixed") is not None else "")
    return _verdict(name, diff, "", "better", "worse", flips, missing="no rows scored in both runs")


def _amount_verdict(name: str, diff: stats.Interval, unit: str, more: str, less: str) -> str:
    return _verdict(name, diff, unit, more, less, "", missing="not measured in both runs")


def _verdict(name: str, diff: stats.Interval, unit: str, more: str, less: str, flips: str, *, missing: str) -> str:
    """One line a person reads: the direction in words when the interval excludes 0, its size
    after ("B slower by 80 ms [40, 120]"); otherwise no clear difference, signed."""
    if diff.estimate is None:
        return f"{name}: {missing}"
    if diff.low is None or diff.high is None:
        return f"{name}: {_fmt(diff.estimate, unit)} on one row, too few to say{flips}"
    if diff.low > 0:
        # A better score reads signed ("+0.12 [+0.05, +0.19]"); anything else as a size.
        return f"{name}: B {more} by {_span(diff, unit, magnitude=bool(unit) or more != 'better')}{flips}"
    if diff.high < 0:
        return f"{name}: B {less} by {_span(diff, unit, magnitude=True)}{flips}"
    return f"{name}: no clear difference, {_span(diff, unit)}{flips}"
