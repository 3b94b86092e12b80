"""Known answers of the ridge probe's R² and of the bootstrap interval (spec mechanisms.md,
regression-icl: probing for the OLS weight vector; confidence bands)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from iclab.metrics.bootstrap import bootstrap_mean_interval
from iclab.metrics.linear_probe import ridge_probe_r2, split_by_group

RNG = np.random.default_rng


def test_features_that_contain_the_target_linearly_give_r2_one():
    rng = RNG(0)
    targets = rng.standard_normal((600, 5))
    mix = rng.standard_normal((5, 32))
    features = targets @ mix + 3.0 + 1e-3 * rng.standard_normal((600, 32))  # a linear image, shifted
    test = split_by_group(np.arange(600) // 6, 0.25, seed=0)
    assert ridge_probe_r2(features, targets, test, alpha=1e-6) > 0.999


def test_random_features_give_r2_near_zero():
    rng = RNG(1)
    targets = rng.standard_normal((2000, 5))
    features = rng.standard_normal((2000, 16))
    test = split_by_group(np.arange(2000), 0.3, seed=1)
    r2 = ridge_probe_r2(features, targets, test, alpha=1e-3)
    assert -0.05 < r2 < 0.02


def test_partial_information_gives_the_explained_share():
    # t = h_0 + noise of equal variance: a linear probe explains half the variance
    rng = RNG(2)
    h = rng.standard_normal((20000, 4))
    t = h[:, 0] + rng.standard_normal(20000)
    test = split_by_group(np.arange(20000), 0.5, seed=2)
    assert abs(ridge_probe_r2(h, t, test, alpha=0.0) - 0.5) < 0.02


def test_matches_sklearn_ridge_on_standardised_features():
    rng = RNG(3)
    H, T = rng.standard_normal((200, 6)) * [1, 2, 3, 4, 5, 6], rng.standard_normal((200, 3))
    T += H[:, :3] * 0.3
    test = np.arange(200) >= 150
    mu, sd = H[~test].mean(0), H[~test].std(0)
    fit = Ridge(alpha=0.1 * 150).fit((H[~test] - mu) / sd, T[~test])
    expected = r2_score(T[test], fit.predict((H[test] - mu) / sd), multioutput="variance_weighted")
    assert abs(ridge_probe_r2(H, T, test, alpha=0.1) - expected) < 1e-10


def test_split_keeps_groups_together_and_is_seeded():
    groups = np.repeat(np.arange(10), 3)
    test = split_by_group(groups, 0.3, seed=0)
    assert test.sum() == 9 and all(len(set(test[groups == g])) == 1 for g in range(10))
    np.testing.assert_array_equal(test, split_by_group(groups, 0.3, seed=0))
    assert not np.array_equal(test, split_by_group(groups, 0.3, seed=5))
    with pytest.raises(ValueError, match="2 groups"):
        split_by_group(np.zeros(4), 0.5, seed=0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="train row"):
        ridge_probe_r2(np.zeros((4, 2)), np.zeros(4), np.ones(4, bool), 0.1)
    with pytest.raises(ValueError, match="alpha"):
        ridge_probe_r2(np.zeros((4, 2)), np.zeros(4), np.arange(4) < 2, -1.0)
    assert np.isnan(ridge_probe_r2(np.random.randn(4, 2), np.ones(4), np.arange(4) < 2, 0.1))


def test_bootstrap_interval_of_a_normal_mean():
    rng = RNG(4)
    v = rng.standard_normal((400, 3)) * [1.0, 2.0, 0.0] + 5.0
    lo, hi = bootstrap_mean_interval(v, RNG(0), n_resamples=2000, level=0.9)
    half = 1.645 * np.array([1.0, 2.0]) / np.sqrt(400)  # normal theory: mean ± z σ / sqrt(n)
    np.testing.assert_allclose((hi - lo)[:2] / 2, half, rtol=0.12)
    assert (lo[:2] < v.mean(0)[:2]).all() and (v.mean(0)[:2] < hi[:2]).all()
    assert lo[2] == hi[2] == 5.0  # a constant has a zero-width interval
    a = bootstrap_mean_interval(v[:, 0], RNG(1))
    np.testing.assert_array_equal(a, bootstrap_mean_interval(v[:, 0], RNG(1)))
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean_interval(v, RNG(0), level=1.0)
