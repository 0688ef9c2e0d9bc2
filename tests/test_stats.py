"""The evaluation's statistics against known answers: intervals that cover a known difference
as often as they promise, an A/A comparison that covers 0, McNemar against a hand-computed
table, and identical runs that differ by exactly nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atomemo_notebook.evaluation.stats import (
    mcnemar_exact,
    mean_interval,
    paired_difference,
    pass_at_k,
    pass_hat_k,
    quantile_difference,
    quantile_interval,
)

TRIALS = 100


def test_a_known_shift_of_a_tenth_on_200_rows_is_covered_at_least_93_times_in_100():
    covered = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng(1000 + trial)
        a = rng.normal(0.5, 0.3, 200)
        b = a + 0.1 + rng.normal(0, 0.2, 200)  # the true mean difference b - a is 0.1
        covered += paired_difference(list(a), list(b), seed=trial).covers(0.1)
    assert covered >= 93


def test_an_a_a_comparison_covers_zero_as_often():
    covered = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng(5000 + trial)
        a = rng.binomial(1, 0.7, 200).astype(float)
        b = rng.binomial(1, 0.7, 200).astype(float)  # the same system twice: no true difference
        covered += paired_difference(list(a), list(b), seed=trial).covers(0.0)
    assert covered >= 93


def test_a_clustered_mean_covers_the_true_mean_where_pretending_repeats_are_rows_does_not():
    covered, naive_covered, wider = 0, 0, 0
    for trial in range(TRIALS):
        rng = np.random.default_rng(9000 + trial)
        difficulty = rng.uniform(0, 1, 150)  # each row has its own pass rate: repeats are correlated
        runs = rng.binomial(1, np.repeat(difficulty[:, None], 5, axis=1)).astype(float)
        clustered = mean_interval([list(r) for r in runs], seed=trial)
        covered += clustered.covers(0.5)
        naive = mean_interval(list(runs.ravel()), seed=trial)
        naive_covered += naive.covers(0.5)
        wider += (clustered.high - clustered.low) > (naive.high - naive.low)
    # Repeats of a row are correlated: resampling them as independent rows claims a precision the
    # data do not have (76 of these 100 intervals cover the truth); resampling rows keeps ~95%.
    assert covered >= 90 and naive_covered <= 85
    assert wider >= 95


def test_mcnemar_matches_a_hand_computed_table():
    # 2 broken, 14 fixed: 16 discordant rows; P(X <= 2) for Binomial(16, 1/2) = (1 + 16 + 120) / 65536.
    assert mcnemar_exact(2, 14) == pytest.approx(2 * 137 / 65536)
    assert mcnemar_exact(14, 2) == mcnemar_exact(2, 14)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_identical_runs_differ_by_exactly_nothing():
    values = [0.0, 1.0, 1.0, 0.5, 0.25] * 20
    same = paired_difference(values, values)
    assert (same.estimate, same.low, same.high, same.n) == (0.0, 0.0, 0.0, 100)
    latency = [0.1 * i for i in range(1, 101)]
    assert quantile_difference(latency, latency).estimate == 0.0


def test_the_same_numbers_give_the_same_interval_and_another_seed_another():
    values = list(np.random.default_rng(3).normal(size=300))
    assert mean_interval(values, seed=7) == mean_interval(values, seed=7)
    assert mean_interval(values, seed=7) != mean_interval(values, seed=8)


def test_missing_values_and_empty_inputs_are_said_not_invented():
    assert mean_interval([]).estimate is None
    one = mean_interval([0.5])
    assert one.estimate == 0.5 and one.low is None and "no interval" in str(one)
    partial = mean_interval([[1.0, None], [0.0, 0.0], [None, None]])
    assert partial.n == 2 and partial.estimate == pytest.approx(1 / 3)
    pair = paired_difference([1.0, None, 0.0], [0.0, 1.0, 0.0])
    assert pair.n == 2 and pair.estimate == -0.5
    with pytest.raises(ValueError, match="one a and one b per row"):
        paired_difference([1.0], [1.0, 0.0])


def test_a_median_interval_from_order_statistics_covers_the_true_median():
    covered = 0
    for trial in range(TRIALS):
        sample = np.random.default_rng(700 + trial).exponential(1.0, 200)
        covered += quantile_interval(list(sample), 0.5).covers(math.log(2))
    assert covered >= 93
    small = quantile_interval([1.0, 2.0, 3.0], 0.5)
    assert small.estimate == 2.0 and small.low is None  # three values cannot bound a median at 95%
    with pytest.raises(ValueError):
        quantile_interval([1.0], 1.5)


def test_a_p50_latency_shift_is_found_with_its_interval():
    rng = np.random.default_rng(11)
    a = rng.lognormal(0, 0.3, 400)
    b = a * 1.5  # every row 50% slower: the median moves by half of a's median
    shift = quantile_difference(list(a), list(b))
    assert shift.covers(float(np.median(b) - np.median(a))) and shift.low > 0


def test_pass_at_k_and_pass_hat_k():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 1, 5) == 1.0 and pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    assert pass_hat_k(5, 5, 5) == 1.0 and pass_hat_k(5, 4, 5) == 0.0
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


@pytest.mark.parametrize("level", [0.80, 0.95, 0.99])
def test_a_large_sample_quantile_interval_takes_its_level_from_the_normal_quantile(level):
    # Past 2,000 values the ranks come from the normal approximation: they must match the exact
    # binomial ranks (computed here with numpy) within a rank, at every level, not only at 95%.
    rng = np.random.default_rng(7)
    values = np.sort(rng.exponential(100.0, size=4000))
    interval = quantile_interval(list(values), 0.5, level=level)
    n, tail = len(values), (1 - level) / 2
    cdf = np.cumsum([math.comb(n, i) for i in range(n + 1)]) / 2 ** n  # Binomial(n, 1/2), exact
    low_rank = int(np.searchsorted(cdf, tail, side="right"))
    high_rank = int(np.searchsorted(cdf, 1 - tail, side="left")) + 1
    assert interval.low is not None and interval.high is not None
    assert abs(int(np.searchsorted(values, interval.low)) + 1 - low_rank) <= 1
    assert abs(int(np.searchsorted(values, interval.high)) + 1 - high_rank) <= 1


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 2000])
@pytest.mark.parametrize("q", [0.05, 0.37, 0.5, 0.95])
def test_a_resampled_quantile_from_ranks_is_numpys_quantile_of_the_resample(n, q):
    from atomemo_notebook.evaluation.stats import _ranked, _resampled_quantile

    rng = np.random.default_rng(n)
    values = np.round(rng.lognormal(0, 0.4, n), 2)  # rounded: ties too
    idx = rng.integers(0, n, size=(50, n), dtype=np.int32)
    assert np.allclose(_resampled_quantile(_ranked(values), idx, q), np.quantile(values[idx], q, axis=1),
                       rtol=1e-12, atol=0)


def test_a_bound_that_is_zero_is_not_float_noise_with_a_sign():
    # Means of three pass/fail asks (thirds) summed in a different order: a bound of exactly 0
    # came out as +8e-18 or -3e-18, so "no clear difference" read as "B better" or "B worse".
    for seed in range(300):
        rng = np.random.default_rng(seed)
        a, b = rng.binomial(3, 0.7, 20) / 3, rng.binomial(3, 0.7, 20) / 3
        for s in range(3):
            interval = paired_difference(list(a), list(b), seed=s)
            assert interval.low is not None and interval.high is not None
            assert not (0 < abs(interval.low) < 1e-9) and not (0 < abs(interval.high) < 1e-9), (seed, s, interval)
