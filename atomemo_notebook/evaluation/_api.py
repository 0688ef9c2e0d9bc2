"""evaluate() and compare(): the entry points of batch evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model.chat import AsyncChat, Chat
from ._cache import ASKED_AGAIN, Cache
from ._comparison import COMPARE_COLUMNS, Comparison
from ._inputs import repeat_rows, rows_from
from ._results import EvalResults
from ._runner import run_evaluation
from ._scorers import Scorer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COMPARE_COLUMNS", "MAX_CONCURRENCY", "compare", "compare_nodes", "evaluate", "load_evaluation"]

MAX_CONCURRENCY = 64  # bounded, always: a server is not a load-test target by accident


def _chat(target: Any) -> AsyncChat:
    from ..session._connect import as_async, connect

    if isinstance(target, str):
        return connect(target, asynchronous=True)
    if isinstance(target, AsyncChat | Chat):
        return as_async(target)
    chat = getattr(target, "chat", None)  # a ChatWidget
    if isinstance(chat, AsyncChat):
        return chat
    raise TypeError("evaluate() needs a Chat, an AsyncChat, a ChatWidget or a system name, "
                    f"not {type(target).__name__}")


def evaluate(target: Any, data: Any, *, query: str = "query", expected: str = "expected", inputs: str = "inputs",
             conversation: str = "conversation", file: str = "file", scorers: Sequence[Scorer] = (),
             concurrency: int = 4, row_timeout: float = 120.0, cache: str | Path | None = None,
             rerun_failed: bool = False, repeats: int = 1,
             respond: Callable[[dict[str, Any], Any], Any] | None = None) -> EvalResults:
    """Ask every row of `data` (a DataFrame, a list of strings or of dicts) of the workflow
    behind `target`, each row in a new conversation (rows sharing a `conversation` value are
    one script, asked in order), at most `concurrency` at a time, each within `row_timeout`
    seconds. Returns at once: the results fill in live; `.wait()` blocks. With `cache`, each
    finished row is saved as it ends and a rerun asks only what is not there (and, with
    `rerun_failed=True`, what failed). `repeats=k` asks each row k times, each in its own
    conversation and cached on its own: `results.by_row()` shows which rows are flaky, and
    `summary()` gives pass@k and pass^k beside every score's interval. Against a workflow app
    (connect("dify", app_type="workflow")), a row's columns but `expected`, `conversation` and
    `file` are the run's inputs, and scorers see its outputs (`reply.outputs`; `exact` compares
    an expected dict with them). A run that waits for a
    person (Dify's Human Input) is answered by `respond(row, form)` -> an action id, or
    `(action, {input: value})`, or None to leave it; without `respond` the row ends `paused`,
    its form in the `form` column (and it is not cached: a rerun asks it again)."""
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    if respond is not None and not callable(respond):
        raise TypeError(f"respond must be callable (row, form) -> action, got {respond!r}")
    if not row_timeout > 0:
        raise ValueError("row_timeout must be > 0 seconds")
    for scorer in scorers:
        if not callable(scorer):
            raise TypeError(f"a scorer must be callable (row, reply) -> value, got {scorer!r}")
    chat = _chat(target)
    # A workflow app's run takes inputs, not a question: each row's columns are its inputs.
    rows = repeat_rows(rows_from(data, query=query, expected=expected, inputs=inputs, conversation=conversation,
                                 file=file, takes_inputs=chat.backend.plans.takes_inputs), repeats)
    store = Cache(cache, chat.system) if cache is not None else None
    if store is not None:
        store.warn(ASKED_AGAIN)
    results = EvalResults(rows, chat.system)
    from ..session import _runtime as runtime

    results.future = runtime.submit(run_evaluation(results, chat, list(scorers), concurrency, float(row_timeout),
                                                   store, rerun_failed, respond))
    return results


def load_evaluation(path: str | Path) -> EvalResults:
    """An evaluation rebuilt offline from its cache (or from `results.to_parquet()`'s file):
    every finished row, its replies folded again from their saved events through the system's
    own adapter. Nothing is asked."""
    from ._inputs import EvalRow
    from ._parquet import is_parquet, read_parquet

    if is_parquet(path):
        system, saved_rows, records, replies = read_parquet(path)
        saved = EvalResults(saved_rows, system)
        for row, record, turns in zip(saved_rows, records, replies, strict=True):
            saved.finish(row, record, turns)
        saved.end()
        return saved

    store = Cache(path, None)
    store.warn("their rows are missing, or failed with the line's error")
    entries = sorted(store.rows.values(), key=lambda e: (int(e.record.get("repeat", 0)), int(e.record.get("row", 0))))
    repeated = any("repeat" in e.record for e in entries)
    rows = [EvalRow(index=i, key=e.key, query=str(e.record.get("query", "")), inputs={},
                    expected=e.record.get("expected"), conversation=e.record.get("conversation"), file=None,
                    data=dict(e.record), repeat=int(e.record.get("repeat", 0)),
                    row=int(e.record.get("row", 0)) if repeated else None) for i, e in enumerate(entries)]
    results = EvalResults(rows, str(store.system))
    for row, entry in zip(rows, entries, strict=True):
        broken = {"status": "failed", "error": entry.problem} if entry.problem else {}  # file:line: why
        mine = {"row": row.number, "cached": True} | ({"repeat": row.repeat} if repeated else {})
        results.finish(row, entry.record | mine | broken, entry.replies)
    results.end()
    return results


def compare(a: EvalResults, b: EvalResults, *, seed: int = 0) -> Comparison:
    """Two evaluations of the same rows (two versions, two systems, before and after), rows
    paired by content (their key). Opens with a verdict, one line per measure: each score's mean
    difference b - a with a paired-bootstrap 95% interval and, for pass/fail scores, the rows
    fixed and broken with the exact McNemar test; p50 and mean latency, cost and tokens the same
    way. Indexing it reads the per-row table (statuses, `answer_changed`, the latency ratio b / a,
    both runs' scores, `flip`), the rows that regressed first, then the ones that improved.
    `.node_changes()`: per node, the p50 duration change with its interval. Seeded."""
    return Comparison(a, b, seed=seed)


def compare_nodes(a: EvalResults, b: EvalResults) -> pd.DataFrame:
    """Per node: runs, failures and p50/p95 durations of both evaluations, side by side."""
    from ..model._records import to_dataframe

    left = {r["name"]: r for r in a.summary_records() if r["kind"] == "node"}
    right = {r["name"]: r for r in b.summary_records() if r["kind"] == "node"}
    rows = []
    for name in [*left, *(n for n in right if n not in left)]:
        la, rb = left.get(name, {}), right.get(name, {})
        p50a, p50b = la.get("p50_ms"), rb.get("p50_ms")
        rows.append({"node": name, "runs_a": la.get("runs", 0), "runs_b": rb.get("runs", 0),
                     "failed_a": la.get("failed", 0), "failed_b": rb.get("failed", 0), "p50_ms_a": p50a,
                     "p50_ms_b": p50b, "p95_ms_a": la.get("p95_ms"), "p95_ms_b": rb.get("p95_ms"),
                     "p50_ratio": p50b / p50a if p50a and p50b is not None else None})
    return to_dataframe(rows, ["node", "runs_a", "runs_b", "failed_a", "failed_b", "p50_ms_a", "p50_ms_b",
                               "p95_ms_a", "p95_ms_b", "p50_ratio"])
