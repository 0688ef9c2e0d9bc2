"""EvalResults: what an evaluation found, filling in live while it runs (the kernel stays
free): one record per row, every reply, progress, the per-node summary, DataFrames; in a
notebook it shows as a table whose rows open that run's chat and timeline."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model._records import TIMELINE_COLUMNS, timeline_records, to_dataframe
from ..model.reply import Reply
from ._inputs import EvalRow
from ._records import ROW_COLUMNS, row_record

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "EvalResults"]

SUMMARY_COLUMNS = ("kind", "name", "runs", "failed", "p50_ms", "p95_ms", "mean", "mean_low", "mean_high",
                   "p50_low_ms", "p50_high_ms", "p95_low_ms", "p95_high_ms", "note")
BY_ROW_COLUMNS = ("row", "query", "asks", "succeeded", "agree", "flaky", "total_s_min", "total_s_max")

BAR_EVERY = 0.5  # seconds between lines of the text progress bar


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


class EvalResults:
    """The rows of one evaluation, filled in live as each ends: `df`, `timeline_df`, `summary()`;
    `wait()` blocks until every row is done, `stop()` ends the run early. In a notebook it shows
    as a live table."""

    def __init__(self, rows: list[EvalRow], system: str) -> None:
        self.rows = rows
        self.system = system
        self.repeats = 1 + max((row.repeat for row in rows), default=0)  # asks of each row
        self.records: list[dict[str, Any]] = [row_record(row, None) for row in rows]
        self.replies: list[list[Reply]] = [[] for _ in rows]
        self.problems: list[str] = []  # failures of the evaluation itself (never of a row)
        self.error: BaseException | None = None  # the one that ended the run: wait() raises it
        self.waiting: str | None = None  # why no row is asked yet (another run holds the cache)
        self.stopping = False
        self.cancel: Callable[[], Any] = lambda: None
        self.listeners: list[Callable[[EvalResults], None]] = []  # views, on every change: quick
        self._running: set[int] = set()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._ended: float | None = None
        self.future: Future[None] | None = None

    def __repr__(self) -> str:
        p = self.progress()
        return (f"EvalResults({self.system}, rows={p['total']}, done={p['done']}, failed={p['failed']}, "
                f"running={p['running']}{', finished' if p['finished'] else ''})")

    # -- called by the runner (on the evaluation's loop) ----------------------------------------
    def begin(self, row: EvalRow) -> None:
        with self._lock:
            self._running.add(row.index)
            self.records[row.index] = self.records[row.index] | {"status": "running"}
        self._changed()

    def finish(self, row: EvalRow, record: dict[str, Any], replies: list[Reply]) -> None:
        with self._lock:
            self._running.discard(row.index)
            self.records[row.index] = record
            self.replies[row.index] = replies
        self._changed()

    def wait_for(self, why: str | None) -> None:
        self.waiting = why
        self._changed()

    def fail(self, error: BaseException) -> None:
        """The run's machinery failed (not a row): the run ends, and wait() raises this."""
        with self._lock:
            if error is self.error:
                return
            if self.error is None:
                self.error = error
            self.problems.append(_describe(error))
        self.stopping = True

    def end(self) -> None:
        with self._lock:
            why = f"the evaluation failed: {_describe(self.error)}" if self.error else "the evaluation was stopped"
            for index in self._running:  # asked, then stopped: not finished, not cached
                self.records[index] = self.records[index] | {"status": "stopped", "error": why}
            self._running.clear()
            self._ended = time.monotonic()
        self._done.set()
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener(self)

    # -- the Python API --------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def progress(self) -> dict[str, Any]:
        """Rows done / failed / running, rows per second and the time left, now."""
        with self._lock:
            statuses = [r["status"] for r in self.records]
            numbers = [r["row"] for r in self.records] if self.repeats > 1 else None
        done = sum(s in ("succeeded", "failed", "paused") for s in statuses)
        failed = sum(s == "failed" for s in statuses)
        elapsed = (self._ended or time.monotonic()) - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = len(statuses) - done
        return {"total": len(statuses), "done": done, "failed": failed,
                "running": sum(s == "running" for s in statuses), "stopped": sum(s == "stopped" for s in statuses),
                "rows_per_s": round(rate, 3), "elapsed_s": round(elapsed, 3),
                "eta_s": None if self.finished or not rate else round(left / rate, 1), "finished": self.finished,
                "error": _describe(self.error) if self.error else None, "waiting": self.waiting,
                **({} if numbers is None else _rows_progress(numbers, statuses, self.repeats))}

    def wait(self, timeout: float | None = None, *, bar: bool | None = None) -> EvalResults:
        """Block until every row has ended. Outside a notebook a plain-text progress bar goes
        to stderr (`bar=False`: none). Ctrl-C stops the evaluation, keeping every finished row.
        When the evaluation itself failed (its cache could not be written, the app not loaded...),
        raises that error: the finished rows stay in the results."""
        show = _outside_notebook() if bar is None else bar
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._done.wait(BAR_EVERY):
                if show:
                    _draw(self.progress())
                if self.future is not None and self.future.done() and not self._done.is_set():
                    # The run ended without saying so: a bug, but never a wait that never returns.
                    failed = None if self.future.cancelled() else self.future.exception()
                    problem = failed or RuntimeError("the evaluation ended before its rows did")
                    self.fail(problem)
                    self.end()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the evaluation did not end within {timeout:g} s")
        except KeyboardInterrupt:
            self.stop()
            self._done.wait(30)
            raise
        finally:
            if show:
                _draw(self.progress(), final=True)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        """Stop: rows not yet asked are not asked; rows being asked end `stopped`; finished rows stay."""
        self.stopping = True
        from ..session import _runtime as runtime

        runtime.call_soon(self.cancel)

    @property
    def df(self) -> pd.DataFrame:
        """One row per input, in input order: answer, status, failed node, error, timings, tokens, scores."""
        with self._lock:
            records = list(self.records)
        extra = sorted({k for r in records for k in r} - set(ROW_COLUMNS) - {"score_errors", "repeat"})
        first = ["row", "repeat"] if self.repeats > 1 else ["row"]  # which ask of the row, beside it
        columns = [*first, *ROW_COLUMNS[1:], *extra,
                   *(["score_errors"] if any("score_errors" in r for r in records) else [])]
        return to_dataframe(records, columns)

    def timeline_records(self) -> list[dict[str, Any]]:
        """One row per node run (and tool call) of every execution, with its `row`."""
        out: list[dict[str, Any]] = []
        for index, replies in enumerate(list(self.replies)):
            out.extend({"row": index} | record for record in timeline_records(replies))
        return out

    @property
    def timeline_df(self) -> pd.DataFrame:
        return to_dataframe(self.timeline_records(), ("row", *TIMELINE_COLUMNS))

    def _ended_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r["status"] in ("succeeded", "failed")]

    def score_columns(self) -> list[str]:
        keys: set[str] = set().union(*self._ended_records())  # every record's keys at C speed
        return sorted(k for k in keys if k.startswith("score_") and k != "score_errors")

    def per_row(self, column: str) -> dict[int, list[float]]:
        """Input row -> the numeric values of `column` over its ended asks (its repeats)."""
        return self.per_rows([column])[column]

    def per_rows(self, columns: list[str]) -> dict[str, dict[int, list[float]]]:
        """`per_row` of several columns in one pass over the records."""
        out: dict[str, dict[int, list[float]]] = {column: {} for column in columns}
        for r in self._ended_records():
            row = int(r["row"])
            for column in columns:
                value = r.get(column)
                if isinstance(value, int | float) and value == value:  # not NaN
                    out[column].setdefault(row, []).append(float(value))
        return out

    def summary_records(self, *, seed: int = 0) -> list[dict[str, Any]]:
        """Per node: runs, failures, p50/p95 duration; per score: its mean with a 95% bootstrap
        interval (rows resampled, each with its repeats); pass@k and pass^k when rows were asked k
        times; the whole run's latency p50/p95 with distribution-free intervals; usage totals."""
        from . import stats

        blank = dict.fromkeys(SUMMARY_COLUMNS)
        nodes: dict[str, dict[str, Any]] = {}
        for record in self.timeline_records():
            if record["kind"] != "node":
                continue
            entry = nodes.setdefault(record["node_name"], {"runs": 0, "failed": 0, "durations": []})
            entry["runs"] += 1
            entry["failed"] += record["status"] == "failed"
            if record["duration_ms"] is not None:
                entry["durations"].append(float(record["duration_ms"]))
        out = [blank | {"kind": "node", "name": name, "runs": e["runs"], "failed": e["failed"],
                        "p50_ms": _percentile(e["durations"], 0.5), "p95_ms": _percentile(e["durations"], 0.95)}
               for name, e in nodes.items()]
        records = self._ended_records()
        scores = self.score_columns()
        score_values = self.per_rows(scores)
        for column in scores:
            by_row = score_values[column]
            interval = stats.mean_interval(list(by_row.values()), seed=seed)
            out.append(blank | {"kind": "score", "name": column[len("score_"):],
                                "runs": sum(len(v) for v in by_row.values()), "mean": interval.estimate,
                                "mean_low": interval.low, "mean_high": interval.high})
            verdicts = [v for v in by_row.values() if all(x in (0.0, 1.0) for x in v)]
            if self.repeats > 1 and verdicts and len(verdicts) == len(by_row):
                k = self.repeats
                full = [v for v in verdicts if len(v) == k]  # rows with every repeat ended
                for kind, estimator in (("pass@k", stats.pass_at_k), ("pass^k", stats.pass_hat_k)):
                    per = [estimator(k, int(sum(v)), k) for v in full]
                    out.append(blank | {"kind": kind, "name": f"{column[len('score_'):]} (k={k})", "runs": len(full),
                                        "mean": sum(per) / len(per) if per else None})
        totals = [float(r["total_s"]) * 1000 for r in records if r.get("total_s") is not None]
        p50, p95 = stats.quantile_interval(totals, 0.5), stats.quantile_interval(totals, 0.95)
        succeeded = sum(r["status"] == "succeeded" for r in records) / len(records) if records else None
        out.append(blank | {"kind": "rows", "name": "all rows", "runs": len(records),
                            "failed": sum(r["status"] == "failed" for r in records), "p50_ms": p50.estimate,
                            "p95_ms": p95.estimate, "p50_low_ms": p50.low, "p50_high_ms": p50.high,
                            "p95_low_ms": p95.low, "p95_high_ms": p95.high,
                            "mean": succeeded})
        for column in ("total_tokens", "cost"):
            values = [r[column] for r in records if isinstance(r.get(column), int | float)]
            if values:
                currency = next((r["currency"] for r in records if r.get("currency")), None)
                out.append(blank | {"kind": "usage", "name": column, "runs": len(values), "mean": float(sum(values)),
                                    "note": f"total over {len(values)} asks" + (f", {currency}" if column == "cost"
                                                                                 and currency else "")})
        if not any(isinstance(r.get("total_tokens"), int) for r in records) and records:
            out.append(blank | {"kind": "usage", "name": "usage", "runs": 0,
                                "note": _no_usage(self.system)})
        return out

    def summary(self, *, seed: int = 0) -> pd.DataFrame:
        """A small table: per node p50/p95 duration and failures; each score's mean with its 95%
        interval (`mean_low`, `mean_high`); pass@k and pass^k with repeats; all rows (`mean`: the
        share that succeeded; latency p50/p95 with intervals); token and cost totals where the
        system reports them, and a note where it does not. Seeded: the same rows give the same
        intervals."""
        return to_dataframe(self.summary_records(seed=seed), SUMMARY_COLUMNS)

    def by_row(self) -> pd.DataFrame:
        """One line per input row over its repeats: asks, successes, each score's pass rate,
        whether the k asks agree (the same verdict of every scorer; with no scorer, the same
        normalised answer), and latency spread. Flaky rows (asks that disagree, or whose runs
        succeeded and failed) come first."""
        with self._lock:
            records = [r for r in self.records if r["status"] in ("succeeded", "failed")]
        scores = self.score_columns()
        grouped: dict[int, list[dict[str, Any]]] = {}
        for r in records:
            grouped.setdefault(int(r["row"]), []).append(r)
        lines = []
        for number, asks in sorted(grouped.items()):
            line: dict[str, Any] = {"row": number, "query": asks[0]["query"], "asks": len(asks),
                                    "succeeded": sum(a["status"] == "succeeded" for a in asks)}
            flaky = False
            for column in scores:
                values = [float(a[column]) for a in asks if isinstance(a.get(column), int | float)]
                line[f"pass_rate_{column[len('score_'):]}"] = sum(values) / len(values) if values else None
                flaky = flaky or len(set(values)) > 1
            answers = {" ".join(str(a.get("answer") or "").lower().split()) for a in asks}
            line["agree"] = not flaky if scores else len(answers) == 1
            # Flaky: its asks disagree on what matters: a scorer's verdict, else (no scorer to
            # judge) the answer itself; and always on whether the run succeeded.
            line["flaky"] = (flaky if scores else not line["agree"]) or len({a["status"] for a in asks}) > 1
            times = [float(a["total_s"]) for a in asks if a.get("total_s") is not None]
            line["total_s_min"], line["total_s_max"] = (min(times), max(times)) if times else (None, None)
            lines.append(line)
        lines.sort(key=lambda line: not line["flaky"])  # stable: flaky rows first, each group in row order
        rates = [f"pass_rate_{c[len('score_'):]}" for c in scores]
        return to_dataframe(lines, [*BY_ROW_COLUMNS[:4], *rates, *BY_ROW_COLUMNS[4:]])

    def flaky(self) -> list[int]:
        """Input rows whose repeats disagree (mixed verdicts; with no scorer, different answers;
        or mixed statuses)."""
        table = self.by_row()
        return [int(r) for r in table[table["flaky"]]["row"]] if len(table) else []

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Save as one Parquet file (needs pyarrow: the `parquet` extra): the table's columns,
        plus what `load_evaluation(path)` needs to rebuild every row and timeline offline.
        Written all or nothing."""
        from ._parquet import write_parquet

        return write_parquet(self, path)

    def export_html(self, row: int, path: str | os.PathLike[str]) -> Path:
        """One row's asks as one interactive HTML file (as ChatWidget.export_html(path,
        interactive=True)): its question(s) and answer(s) read-only, with the timeline, graph,
        events and time travel of each run, working from disk with no Python and no network."""
        from ..model.tree import MessageTree
        from ..views._export import write_interactive

        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < len(self.rows):
            raise ValueError(f"row must be a table position from 0 to {len(self.rows) - 1}, got {row!r}")
        replies = [r for r in self.replies[row] if r.message_id]
        if not replies:
            raise ValueError(f"row {row} has no finished reply to export (status {self.records[row]['status']!r})")
        tree = MessageTree()
        for reply in replies:
            tree.add_reply(reply, source="evaluation")
        header = {"app_name": f"Evaluation row {self.records[row].get('row', row)}", "system": self.system}
        return write_interactive(path, tree, replies[-1].message_id, header)[0]

    def failed(self) -> list[int]:
        return [r["row"] for r in self.records if r["status"] == "failed"]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from ._view import EvalWidget

        return EvalWidget(self)._repr_mimebundle_(**kwargs)

    def export_spans(self, endpoint: str | None = None, *, name: str = "evaluation", **options: Any) -> int:
        """Each row as one trace (its runs under a root tagged with `name`, the row, its key and
        scores), sent over OTLP/HTTP, so a tracing tool can filter this run (see `export_spans`)."""
        from ..model._spans import export_spans

        return export_spans(self, endpoint=endpoint, evaluation=name, **options)


def _no_usage(system: str) -> str:
    """Why the summary shows no usage total: the system's own reason, or that these runs had none."""
    from ..protocol._systems import SYSTEMS

    record = SYSTEMS.get(system)
    return (record.no_usage if record else "") or "the runs reported no token usage or cost"


def _rows_progress(numbers: list[Any], statuses: list[str], repeats: int) -> dict[str, Any]:
    """With repeats, `done`/`total` count asks; these count input rows (a row is done when every
    one of its repeats has ended)."""
    ended: dict[Any, int] = {}
    for number, status in zip(numbers, statuses, strict=True):
        ended[number] = ended.get(number, 0) + (status in ("succeeded", "failed", "paused"))
    return {"repeats": repeats, "rows_total": len(ended), "rows_done": sum(n == repeats for n in ended.values())}


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}"


def _outside_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or type(shell).__name__ != "ZMQInteractiveShell"


def _draw(p: dict[str, Any], *, final: bool = False) -> None:
    """A one-line bar, redrawn in place (no dependency: a line of text is all it takes)."""
    width = 30
    filled = int(width * p["done"] / p["total"]) if p["total"] else width
    eta = f" eta {p['eta_s']:.0f}s" if p["eta_s"] is not None else ""
    asks = (f" asks ({p['rows_done']}/{p['rows_total']} rows x {p['repeats']})" if "repeats" in p else "")
    unit = "asks" if asks else "rows"
    line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {p['done']}/{p['total']}{asks} done, {p['failed']} failed, "
            f"{p['running']} running, {p['rows_per_s']:.1f} {unit}/s{eta}"
            + (f" (waiting: {p['waiting']})" if p["waiting"] else ""))
    sys.stderr.write(line + ("\n" if final else ""))
    sys.stderr.flush()
