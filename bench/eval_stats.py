"""Evaluation statistics: the summary's intervals and a paired comparison for 10,000 rows x 5
repeats (goal: under a second). Baseline, in the same run: the plain per-row means a user
computes with pandas (no intervals), on the same data.

    python bench/eval_stats.py [--rows 10000] [--repeats 5] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from atomemo_notebook.evaluation.stats import mcnemar_exact, mean_interval, paired_difference, quantile_interval

from _common import best, machine, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the same 10,000 x 5, one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 1, args.rows)
    a = rng.binomial(1, np.repeat(difficulty[:, None], args.repeats, axis=1)).astype(float)
    b = rng.binomial(1, np.repeat(np.clip(difficulty + 0.05, 0, 1)[:, None], args.repeats, axis=1)).astype(float)
    latency = rng.lognormal(0, 0.4, (args.rows, args.repeats))
    a_rows = [list(r) for r in a]
    frame = pd.DataFrame({"row": np.repeat(np.arange(args.rows), args.repeats), "score": a.ravel()})

    def ours() -> None:
        mean_interval(a_rows)
        quantile_interval(list(latency.ravel()), 0.5)
        quantile_interval(list(latency.ravel()), 0.95)
        paired_difference(list(a.mean(axis=1)), list(b.mean(axis=1)))
        passes_a, passes_b = a.mean(axis=1) > 0.5, b.mean(axis=1) > 0.5
        mcnemar_exact(int((passes_a & ~passes_b).sum()), int((~passes_a & passes_b).sum()))

    def baseline() -> None:
        frame.groupby("row")["score"].mean().mean()

    ours_s, base_s = best(ours, rounds), best(baseline, rounds)
    print(machine())
    print(table(["what", "seconds"], [["summary intervals + paired comparison (ours)", f"{ours_s:.3f}"],
                                      ["per-row means with pandas, no intervals (baseline)", f"{base_s:.4f}"]]))
    verdict = "goal met" if ours_s < 1.0 else "GOAL MISSED"
    print(f"SUMMARY eval_stats: {args.rows:,} rows x {args.repeats} repeats: intervals and a paired comparison in "
          f"{ours_s:.2f} s ({ours_s / base_s:.0f}x the plain per-row means); goal < 1 s: {verdict}")


if __name__ == "__main__":
    main()
