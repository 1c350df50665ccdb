"""The verdict engine on hand-made values: every outcome, paired against unpaired, equivalence, several parts."""
import math

import numpy as np
import pytest
from scipy import stats

from diffrep.report.targets import all_targets
from diffrep.report.verdicts import (
    CONTRADICTS,
    INCONCLUSIVE,
    NOT_TESTED,
    REPRODUCES,
    Comparison,
    combine,
    interval,
    judge,
    not_tested,
)

HIGHER, LOWER = Comparison("accuracy", "higher"), Comparison("NELBO", "lower")


def test_the_paired_interval_is_the_t_interval_of_the_differences():
    a, b = np.array([0.8, 0.7, 0.9, 0.85]), np.array([0.6, 0.65, 0.7, 0.6])
    mean, low, high, n = interval(a, b, paired=True)
    d = a - b
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert n == 4 and mean == pytest.approx(d.mean()) and (low, high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_the_unpaired_interval_is_welchs():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.5, 3.5, 4.0])
    mean, low, high, _ = interval(a, b, paired=False)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert mean == pytest.approx(-1.0) and (low, high) == pytest.approx((ci.low, ci.high))


def test_a_clear_win_a_clear_loss_and_an_overlap():
    a = [0.80, 0.82, 0.81, 0.79]
    assert judge("win", HIGHER, a, [0.60, 0.61, 0.62, 0.60], unit="draws", paired=True).outcome == REPRODUCES
    assert judge("loss", HIGHER, a, [0.90, 0.93, 0.91, 0.90], unit="draws", paired=True).outcome == CONTRADICTS
    assert judge("tie", HIGHER, a, [0.82, 0.78, 0.83, 0.78], unit="draws", paired=True).outcome == INCONCLUSIVE
    assert judge("lower", LOWER, [2.0, 2.1, 2.0], [2.5, 2.6, 2.5], unit="seeds", paired=True).outcome == REPRODUCES


def test_pairing_decides_when_the_units_share_their_noise():
    """Draws that are hard for both methods alike: paired, A is always 0.02 above B; unpaired, the draws' spread
    (0.1) swamps it."""
    base = np.array([0.5, 0.6, 0.7, 0.8, 0.55, 0.75])
    a, b = base + 0.02, base
    assert judge("paired", HIGHER, a, b, unit="draws", paired=True).outcome == REPRODUCES
    assert judge("unpaired", HIGHER, a, b, unit="draws", paired=False).outcome == INCONCLUSIVE


def test_equivalence_by_two_one_sided_tests_inside_and_outside_its_margin():
    same = Comparison("FID", "within", margin=0.1, relative=True)
    ref = np.array([10.0, 10.4, 9.8, 10.2])
    inside = judge("inside", same, ref + np.array([0.1, -0.1, 0.05, 0.0]), ref, unit="splits", paired=True)
    outside = judge("outside", same, ref * 1.5, ref, unit="splits", paired=True)
    wide = judge("wide", same, ref + np.array([3.0, -3.0, 2.0, -2.5]), ref, unit="splits", paired=True)
    assert (inside.outcome, outside.outcome, wide.outcome) == (REPRODUCES, CONTRADICTS, INCONCLUSIVE)
    assert inside.margin == pytest.approx(1.01) and "90 %" in inside.text()


def test_a_margin_must_be_cleared_for_a_directional_claim():
    lower_1pc = Comparison("FID", "lower", margin=0.01, relative=True)
    b = np.array([10.0, 10.1, 9.9, 10.0])
    assert judge("tie", lower_1pc, b - 0.05, b, unit="splits", paired=True).outcome == INCONCLUSIVE  # 0.5 % lower
    assert judge("clear", lower_1pc, b - 1.0, b, unit="splits", paired=True).outcome == REPRODUCES


def test_non_inferiority():
    at_most = Comparison("FID", "not_above", margin=0.1, relative=True)
    b = np.array([10.0, 10.2, 9.8, 10.0])
    assert judge("better", at_most, b - 2, b, unit="splits", paired=True).outcome == REPRODUCES
    assert judge("much worse", at_most, b + 3, b, unit="splits", paired=True).outcome == CONTRADICTS


def test_one_value_a_side_has_no_interval_and_one_seed_is_said():
    record = judge("single", HIGHER, [0.9], [0.1], unit="sample sets", paired=True)
    assert record.outcome == INCONCLUSIVE and math.isnan(record.low) and "no interval" in record.text()
    assert "one training seed: evaluation noise only" in judge("x", HIGHER, [1, 2], [0, 1], unit="draws", paired=True).text()
    assert "one training seed" not in judge("x", HIGHER, [1, 2], [0, 1], unit="seeds", paired=True, seeds=2).text()


def test_a_missing_or_diverged_side_is_not_tested():
    assert judge("nan", LOWER, [np.nan, 1.0], [1.0, 1.0], unit="images", paired=True).outcome == NOT_TESTED
    assert judge("empty", LOWER, [], [1.0], unit="images", paired=False).outcome == NOT_TESTED


def test_a_claim_reproduces_only_when_every_part_does_and_names_the_failed_part():
    win = judge("NELBO", LOWER, [1.0, 1.1, 1.0], [2.0, 2.1, 2.0], unit="images", paired=True)
    loss = judge("FID", LOWER, [20.0, 21.0, 20.5], [15.0, 15.5, 15.2], unit="splits", paired=True)
    tie = judge("FID", LOWER, [20.0, 21.0, 20.5], [20.5, 20.4, 20.6], unit="splits", paired=True)
    assert combine("lsgm-end-to-end", [win, win]).outcome == REPRODUCES
    both = combine("lsgm-end-to-end", [win, loss])
    assert both.outcome == CONTRADICTS and "[not reproduced: FID]" in both.line()
    assert combine("x", [win, tie]).outcome == INCONCLUSIVE
    assert combine("x", [not_tested("a", "no run"), not_tested("b", "no run")]).outcome == NOT_TESTED
    assert combine("x", []).outcome == NOT_TESTED


def test_a_bad_comparison_is_refused():
    with pytest.raises(ValueError, match="unknown comparison"):
        Comparison("x", "bigger")
    with pytest.raises(ValueError, match="positive margin"):
        Comparison("x", "within")


def test_every_comparison_in_the_targets_file_is_valid():
    comparisons = [t.comparison(k) for t in all_targets() for k in t.compare]
    assert len(comparisons) >= 25 and {c.sense for c in comparisons} == {"higher", "lower", "within", "not_above"}
