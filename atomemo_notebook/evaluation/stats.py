"""The statistics of an evaluation, as plain functions of numbers (no I/O, no pandas): a mean
with its bootstrap interval (clustered by row when rows are asked more than once), a paired
difference between two runs of the same rows, the exact McNemar test on rows that flipped,
distribution-free intervals for latency percentiles, and pass@k / pass^k.

Everything is seeded: the same numbers give the same intervals. The bootstrap is vectorised
with numpy (which pandas brings) and drawn in chunks, so 10,000 rows x 5 repeats take a
fraction of a second and a bounded amount of memory."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "Interval",
    "mcnemar_exact",
    "mean_interval",
    "paired_difference",
    "pass_at_k",
    "pass_hat_k",
    "quantile_difference",
    "quantile_interval",
]

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0
CHUNK_CELLS = 4_000_000  # resampled cells drawn at once: bounds memory whatever the row count


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - pandas brings numpy
        raise ImportError("evaluation statistics need numpy: pip install 'atomemo-notebook[pandas]'") from None
    return numpy


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate and its `level` confidence interval [low, high], from `n` rows."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    level: float = LEVEL

    def covers(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def __str__(self) -> str:
        if self.estimate is None:
            return "n/a (no rows)"
        if self.low is None or self.high is None:
            return f"{self.estimate:+.3g} (one row: no interval)"
        return f"{self.estimate:+.3g} [{self.low:+.3g}, {self.high:+.3g}]"


def _rows(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Values as a (rows, repeats) matrix, NaN where a repeat has no value."""
    np = _numpy()
    if not len(values):
        return np.empty((0, 1))  # type: ignore[no-any-return]
    if not isinstance(values[0], Sequence | np.ndarray):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float).reshape(-1, 1)  # type: ignore[no-any-return]
    out = np.full((len(values), max(1, max(len(v) for v in values))), np.nan)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v is not None:
                out[i, j] = float(v)
    return out  # type: ignore[no-any-return]


def _resampled_stat(sums: Any, counts: Any, resamples: int, seed: int) -> Any:
    """The ratio sum/count over `resamples` draws of rows with replacement (a row's repeats
    travel together: the cluster bootstrap), drawn in chunks to bound memory."""
    np = _numpy()
    rng = np.random.default_rng(seed)
    n = len(sums)
    if n:
        distinct, freq = np.unique(np.stack([sums, counts], axis=1), axis=0, return_counts=True)
        if len(distinct) * 8 <= n:
            # Few distinct rows (pass/fail scores: at most k+1 sums of k repeats, 2k+1 paired
            # differences): a resample of n rows is fully described by how many of each distinct
            # row it drew, a multinomial draw. The same distribution, with no n-wide gather.
            drawn = rng.multinomial(n, freq / n, size=resamples).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (drawn @ distinct[:, 0]) / (drawn @ distinct[:, 1])
    out = np.empty(resamples)
    step = max(1, CHUNK_CELLS // max(n, 1))
    # Every row with the same number of values (no repeat missing): the count of a resample is
    # fixed, and one gather instead of two halves the work.
    fixed = float(counts[0]) * n if n and bool((counts == counts[0]).all()) else None
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        idx = rng.integers(0, n, size=(size, n), dtype=np.int32)
        total = sums[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + size] = total / (fixed if fixed is not None else counts[idx].sum(axis=1))
    return out


def _percentile_interval(estimate: float, draws: Any, n: int, level: float) -> Interval:
    np = _numpy()
    draws = draws[~np.isnan(draws)]
    if n < 2 or not len(draws):
        return Interval(estimate, None, None, n, level)
    tail = (1 - level) / 2 * 100
    low, high = (float(v) for v in np.percentile(draws, [tail, 100 - tail]))
    # A bound that is 0 in exact arithmetic can come out as +-1e-18 (sums of thirds, say): its
    # sign would turn "no clear difference" into "better" or "worse". Float noise that small
    # against the interval's own size is 0.
    spread = max(abs(low), abs(high))
    low, high = (0.0 if abs(v) <= 1e-9 * spread else v for v in (low, high))
    return Interval(estimate, low, high, n, level)


def mean_interval(values: Sequence[Sequence[float | None]] | Sequence[float | None], *, level: float = LEVEL,
                  resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The mean of every value and its percentile-bootstrap interval. `values`: one number per
    row, or a sequence per row (its repeats), which are resampled together as a cluster."""
    np = _numpy()
    matrix = _rows(values)
    present = ~np.isnan(matrix)
    counts = present.sum(axis=1)
    keep = counts > 0
    sums, counts = np.where(present, matrix, 0.0).sum(axis=1)[keep], counts[keep]
    n = int(keep.sum())
    if n == 0:
        return Interval(None, None, None, 0, level)
    estimate = float(sums.sum() / counts.sum())
    return _percentile_interval(estimate, _resampled_stat(sums, counts, resamples, seed), n, level)


def paired_difference(a: Sequence[float | None], b: Sequence[float | None], *, level: float = LEVEL,
                      resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """Mean of b - a over the rows both have (each a row's value: the mean of its repeats),
    with a paired-bootstrap interval: rows are resampled, each keeping its own a and b."""
    np = _numpy()
    left, right = _rows(a)[:, 0], _rows(b)[:, 0]
    if len(left) != len(right):
        raise ValueError(f"paired values need one a and one b per row, got {len(left)} and {len(right)}")
    both = ~(np.isnan(left) | np.isnan(right))
    diff = (right - left)[both]
    n = len(diff)
    if n == 0:
        return Interval(None, None, None, 0, level)
    draws = _resampled_stat(diff, np.ones(n), resamples, seed)
    return _percentile_interval(float(diff.mean()), draws, n, level)


def mcnemar_exact(broken: int, fixed: int) -> float:
    """Two-sided exact McNemar p-value: of the rows that flipped (pass -> fail `broken`, fail ->
    pass `fixed`), how surprising this split is if flips go either way with equal odds (a
    binomial test at 1/2 on the discordant rows). 1.0 when nothing flipped."""
    if broken < 0 or fixed < 0:
        raise ValueError("counts of flipped rows cannot be negative")
    n = broken + fixed
    if n == 0:
        return 1.0
    # Exact, in integers: C(n, i) term by term from the one before (O(k) big-integer steps, not
    # a fresh C(n, i) each: thousands of flipped rows take milliseconds), one division at the end.
    term = total = 1
    for i in range(min(broken, fixed)):
        term = term * (n - i) // (i + 1)
        total += term
    tail: float = total / 2 ** n
    return min(1.0, 2 * tail)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    # Summed in log space so large n neither overflows nor underflows term by term.
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
            + (n - i) * math.log1p(-p) for i in range(k + 1)]
    top = max(logs)
    return float(min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs)))


def quantile_interval(values: Sequence[float | None], q: float, *, level: float = LEVEL) -> Interval:
    """The q-quantile of `values` with a distribution-free interval from order statistics: the
    ranks l < u for which the number of values below the true quantile (Binomial(n, q)) falls in
    [l, u) with probability >= level. No resampling: exact for independent values."""
    np = _numpy()
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    data = np.sort(np.array([float(v) for v in values if v is not None and not math.isnan(float(v))]))
    n = len(data)
    if n == 0:
        return Interval(None, None, None, 0, level)
    estimate = float(np.quantile(data, q))
    tail = (1 - level) / 2
    if n > 2000:  # the normal approximation to the binomial is exact enough here, and O(1)
        spread = NormalDist().inv_cdf(1 - tail) * math.sqrt(n * q * (1 - q))
        low_rank, high_rank = math.floor(n * q - spread), math.ceil(n * q + spread)
    else:
        low_rank = 0
        while low_rank < n and _binomial_cdf(low_rank, n, q) <= tail:
            low_rank += 1
        high_rank = low_rank
        while high_rank < n and _binomial_cdf(high_rank - 1, n, q) < 1 - tail:
            high_rank += 1
    if low_rank < 1 or high_rank > n:
        return Interval(estimate, None, None, n, level)  # too few values for this level
    return Interval(estimate, float(data[low_rank - 1]), float(data[high_rank - 1]), n, level)


def quantile_difference(a: Sequence[float | None], b: Sequence[float | None], q: float = 0.5, *,
                        level: float = LEVEL, resamples: int = 1000, seed: int = SEED) -> Interval:
    """quantile_q(b) - quantile_q(a) over the rows both have, with a paired-bootstrap interval."""
    np = _numpy()
    left, right = _rows(a)[:, 0], _rows(b)[:, 0]
    both = ~(np.isnan(left) | np.isnan(right))
    left, right = left[both], right[both]
    n = len(left)
    if n == 0:
        return Interval(None, None, None, 0, level)
    estimate = float(np.quantile(right, q) - np.quantile(left, q))
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    step = max(1, CHUNK_CELLS // (2 * n))
    sides = [_ranked(right), _ranked(left)]
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        idx = rng.integers(0, n, size=(size, n), dtype=np.int32)
        high, low = (_resampled_quantile(ranked, idx, q) for ranked in sides)
        draws[start:start + size] = high - low
    return _percentile_interval(estimate, draws, n, level)


def _ranked(values: Any) -> tuple[Any, Any]:
    """(each value's rank, the values sorted): a resample's order statistics are its ranks'."""
    np = _numpy()
    order = np.argsort(values, kind="stable")
    rank = np.empty(len(values), dtype=np.int32)
    rank[order] = np.arange(len(values), dtype=np.int32)
    return rank, values[order]


def _resampled_quantile(ranked: tuple[Any, Any], idx: Any, q: float) -> Any:
    """np.quantile(values[idx], q, axis=1) (its default, linear method), found by partitioning
    the drawn ranks at the one or two order statistics it needs: about 3x faster than quantile
    on the values, with the same result."""
    np = _numpy()
    rank, ordered = ranked
    position = (idx.shape[1] - 1) * q
    low = math.floor(position)
    frac = position - low
    drawn = np.partition(rank[idx], [low, low + 1] if frac else [low], axis=1)
    below = ordered[drawn[:, low]]
    return below + (ordered[drawn[:, low + 1]] - below) * frac if frac else below


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of k asks passes, from n asks of which c passed (the
    unbiased estimator: 1 - C(n-c, k) / C(n, k))."""
    _check(n, c, k)
    return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that all k asks pass, from n asks of which c passed (C(c, k) / C(n, k))."""
    _check(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= passed <= asked and 1 <= k <= asked, got asked={n}, passed={c}, k={k}")
