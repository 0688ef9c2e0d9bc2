"""Evaluation statistics for 10,000 rows x 5 repeats, timed as a user calls them (goal: under a
second): `results.summary()` (each score's clustered-bootstrap interval, latency p50/p95 with
intervals, pass@k) and `compare(a, b)` (the per-row table, paired-bootstrap differences of the
score and of mean and p50 latency, McNemar on the rows that flipped), on two synthetic runs built
beforehand. Baseline, in the same run: the plain per-row means a user computes with pandas (no
intervals), on the same data.

    python bench/eval_stats.py [--rows 10000] [--repeats 5] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from atomemo_notebook import compare
from atomemo_notebook.evaluation._inputs import repeat_rows, rows_from
from atomemo_notebook.evaluation._records import row_record
from atomemo_notebook.evaluation._results import EvalResults

from _common import best, machine, table


def synthetic(scores: np.ndarray, latency: np.ndarray) -> EvalResults:
    """An ended evaluation whose row i, repeat j passed `scores[i, j]` in `latency[i, j]` s."""
    rows, repeats = scores.shape
    asked = repeat_rows(rows_from([f"question {i}" for i in range(rows)]), repeats)
    results = EvalResults(asked, "atomemo")
    for row in asked:
        results.records[row.index] = row_record(row, None) | {
            "row": row.number, "repeat": row.repeat, "status": "succeeded",
            "total_s": float(latency[row.number, row.repeat]), "score_contains": bool(scores[row.number, row.repeat])}
    results.end()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the same 10,000 x 5, one round after a warm-up")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 1, args.rows)
    a = rng.binomial(1, np.repeat(difficulty[:, None], args.repeats, axis=1)).astype(float)
    b = rng.binomial(1, np.repeat(np.clip(difficulty + 0.05, 0, 1)[:, None], args.repeats, axis=1)).astype(float)
    run_a = synthetic(a, rng.lognormal(0, 0.4, (args.rows, args.repeats)))
    run_b = synthetic(b, rng.lognormal(0.05, 0.4, (args.rows, args.repeats)))
    frame = pd.DataFrame({"row": np.repeat(np.arange(args.rows), args.repeats), "score": a.ravel()})

    def ours() -> None:
        run_a.summary()
        assert compare(run_a, run_b).verdict

    def baseline() -> None:
        frame.groupby("row")["score"].mean().mean()

    ours()  # warm: first-use imports (pandas' table builders), not a cost of the statistics
    ours_s, base_s = best(ours, rounds), best(baseline, rounds)
    print(machine())
    print(table(["what", "seconds"], [["results.summary() + compare(a, b) (ours)", f"{ours_s:.3f}"],
                                      ["per-row means with pandas, no intervals (baseline)", f"{base_s:.4f}"]]))
    verdict = "goal met" if ours_s < 1.0 else "GOAL MISSED"
    print(f"SUMMARY eval_stats: {args.rows:,} rows x {args.repeats} repeats: summary() and compare() in "
          f"{ours_s:.2f} s ({ours_s / base_s:.0f}x the plain per-row means); goal < 1 s: {verdict}")


if __name__ == "__main__":
    main()
