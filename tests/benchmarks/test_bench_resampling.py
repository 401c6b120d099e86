"""Resampling over references (clusters) beside images, the exact sign-flip test and the t-interval."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from benchmarks.protocols.bootstrap import (
    PairedBootstrap,
    bootstrap_srocc_ci,
    compare_srocc,
    sign_flip_test,
    t_interval,
    within_group_srocc,
)
from scipy import stats
from scipy.stats import spearmanr


def _clustered(n_refs: int = 5, per_ref: int = 20, seed: int = 0):
    """Data whose images share a strong per-reference effect: images are not independent within a reference."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"ref{g}" for g in range(n_refs)], per_ref)
    labels = rng.normal(size=groups.size)
    shift_a = np.repeat(rng.normal(scale=2.0, size=n_refs), per_ref)  # a is good on some references only
    a = labels + shift_a * rng.normal(size=groups.size)
    b = labels + 1.0 * rng.normal(size=groups.size)
    return labels, groups, a, b


def test_reference_resamples_are_whole_references():
    labels, groups, _, _ = _clustered()
    boot = PairedBootstrap(labels, n_boot=50, seed=1, groups=list(groups))
    assert boot.unit == "reference" and boot.n_clusters == 5
    for idx in boot.indices:
        drawn = groups[idx]
        counts = {g: int(np.sum(drawn == g)) for g in set(drawn)}
        assert all(c % 20 == 0 for c in counts.values())  # every drawn reference brings all its 20 images
        assert idx.size == 100  # 5 references drawn, each with 20 images


def test_reference_bootstrap_sroccs_are_spearman_on_the_resampled_images():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(4), [3, 7, 5, 9])
    labels, values = rng.normal(size=groups.size), rng.normal(size=groups.size)
    boot = PairedBootstrap(labels, n_boot=30, seed=2, groups=list(groups))
    got = boot.sroccs(values)
    for b in range(30):
        idx = boot.indices[b]
        assert got[b] == pytest.approx(spearmanr(values[idx], labels[idx]).statistic, abs=1e-12)


def test_reference_interval_is_wider_than_the_image_interval_when_references_differ():
    labels, groups, a, b = _clustered()
    image = PairedBootstrap(labels, n_boot=1000, seed=0)
    reference = PairedBootstrap(labels, n_boot=1000, seed=0, groups=list(groups))
    width = {}
    for boot in (image, reference):
        low, high = boot.interval(boot.sroccs(a) - boot.sroccs(b))
        width[boot.unit] = high - low
    assert width["reference"] > 1.3 * width["image"]


def test_resampling_needs_two_references_and_one_per_image():
    with pytest.raises(ValueError, match="2 references"):
        PairedBootstrap(np.arange(5.0), n_boot=5, groups=["a"] * 5)
    with pytest.raises(ValueError, match="one reference per image"):
        PairedBootstrap(np.arange(5.0), n_boot=5, groups=["a", "b"])


def test_bootstrap_srocc_ci_by_reference_contains_the_estimate():
    labels, groups, a, _ = _clustered()
    ci = bootstrap_srocc_ci(a, labels, True, True, n_boot=300, groups=list(groups))
    assert ci.low <= ci.estimate <= ci.high


def test_sign_flip_is_exact_over_all_patterns():
    d = np.array([0.3, -0.1, 0.2, 0.25, 0.05])
    result = sign_flip_test(d)
    patterns = [np.mean(np.array(s) * d) for s in itertools.product((1, -1), repeat=5)]
    expected = np.mean(np.abs(patterns) >= abs(d.mean()) - 1e-15)
    assert result.exact and result.n_patterns == 32
    assert result.p_value == pytest.approx(expected)
    assert result.positive == 4


def test_five_references_can_never_reach_two_sided_five_percent():
    result = sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0])  # every reference favours the same side, strongly
    assert result.p_value == result.min_p_value == pytest.approx(2 / 32)
    assert result.p_value > 0.05


def test_sign_flip_of_no_difference_is_not_significant():
    assert sign_flip_test([0.0, 0.0, 0.0]).p_value == 1.0
    with pytest.raises(ValueError):
        sign_flip_test([])


def test_t_interval_matches_scipy():
    d = np.array([-0.05, -0.02, -0.04, 0.01, -0.03])
    low, high, p = t_interval(d)
    ref = stats.ttest_1samp(d, 0.0)
    assert p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_within_group_srocc_and_compare_srocc():
    labels, groups, a, b = _clustered()
    within = within_group_srocc(a, labels, list(groups))
    assert list(within) == [f"ref{g}" for g in range(5)]
    idx = groups == "ref2"
    assert within["ref2"] == pytest.approx(spearmanr(a[idx], labels[idx]).statistic)
    image = PairedBootstrap(labels, n_boot=200, seed=0)
    reference = PairedBootstrap(labels, n_boot=200, seed=0, groups=list(groups))
    c = compare_srocc(a, b, labels, image, reference, list(groups))
    assert c.diff == pytest.approx(c.srocc_a - c.srocc_b)
    assert c.n_references == 5 and c.sign_flip_min_p == pytest.approx(0.0625)
    assert c.significant == (c.t_low > 0 or c.t_high < 0)
    with pytest.raises(ValueError, match="resample"):
        compare_srocc(a, b, labels, reference, image, list(groups))


def test_one_sided_sign_flip_reaches_one_in_32_with_five_references():
    """Correction 1: only the two-sided test has the .0625 floor; one-sided, 5/5 references give 1/32."""
    higher = sign_flip_test([0.01, 0.2, 0.03, 0.4, 0.05])
    assert higher.p_value == pytest.approx(2 / 32) and higher.p_greater == pytest.approx(1 / 32)
    assert higher.p_greater < 0.05 < higher.p_value
    assert higher.p_less == 1.0 and higher.one_sided(True) == higher.p_greater
    lower = sign_flip_test([-0.01, -0.2, -0.03, -0.4, -0.05])
    assert lower.p_less == pytest.approx(1 / 32) and lower.one_sided(False) == lower.p_less


def test_one_sided_sign_flip_equals_a_hand_enumeration():
    d = np.array([0.3, -0.1, 0.2, 0.25, 0.05])
    means = [np.mean(np.array(signs) * d) for signs in itertools.product((1, -1), repeat=5)]
    result = sign_flip_test(d)
    # by hand: of the 32 sign patterns, the flipped means at least the observed .14: (+,+,+,+,+) .14,
    # (+,−,+,+,+) .18 (flipping −.1), (+,+,+,+,−) .12 no, (+,−,+,+,−) .16 → 3 patterns
    assert sum(m >= d.mean() - 1e-15 for m in means) == 3
    assert result.p_greater == pytest.approx(3 / 32)
    assert result.p_less == pytest.approx(sum(m <= d.mean() + 1e-15 for m in means) / 32) == pytest.approx(30 / 32)


def test_compare_srocc_primary_interval_is_the_t_interval_over_references():
    """Correction 2: the primary interval is a t-interval over per-reference within-reference SROCC differences."""
    labels, groups, a, b = _clustered()
    image = PairedBootstrap(labels, n_boot=200, seed=0)
    reference = PairedBootstrap(labels, n_boot=200, seed=0, groups=list(groups))
    c = compare_srocc(a, b, labels, image, reference, list(groups))
    per_reference = np.array([spearmanr(a[groups == g], labels[groups == g]).statistic
                              - spearmanr(b[groups == g], labels[groups == g]).statistic for g in np.unique(groups)])
    test = stats.ttest_1samp(per_reference, 0.0)
    ci = test.confidence_interval(0.95)
    assert c.within_diff == pytest.approx(per_reference.mean())
    assert (c.t_low, c.t_high, c.t_p) == pytest.approx((ci.low, ci.high, test.pvalue))
    flip = sign_flip_test(per_reference)
    assert (c.sign_flip_p, c.sign_flip_p_greater, c.sign_flip_p_less) == (flip.p_value, flip.p_greater, flip.p_less)
    assert c.within_diff != pytest.approx(c.diff)  # not the pooled SROCC difference of the secondary columns
