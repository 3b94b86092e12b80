"""Known answers of the Lasso baselines (spec mechanisms.md, regression-icl): fitted to
convergence, they agree with the exact solution (scikit-learn's LARS path, an independent
algorithm) and satisfy the Lasso's optimality (KKT) conditions, also when the prompt has fewer
examples than dimensions, where scikit-learn's default tolerance stops far from the minimum."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.linear_model import Lasso as SkLasso
from sklearn.linear_model import LassoLars

from iclab.baselines import Lasso, OracleLasso
from iclab.baselines.lasso import LassoConvergenceError, kkt_violation, lasso_fit
from iclab.errors import IclabError
from iclab.worlds.regression import SparseLinearMixture, SparseLinearRegression

RNG = np.random.default_rng


def _exact(x, y, alpha):
    """The Lasso solution by the LARS homotopy (exact up to rounding; no tolerance)."""
    return LassoLars(alpha=alpha, fit_intercept=False).fit(x, y).coef_


def test_lasso_matches_the_exact_solution_on_16_dim_sparse_prompts():
    batch = SparseLinearMixture(points=20).sample(RNG(0), 12)
    xs, ys = batch.xs.astype(np.float64), batch.ys.astype(np.float64)
    preds = Lasso().predict(batch.xs, batch.ys)
    exact = np.zeros_like(preds)
    loose = np.zeros_like(preds)  # scikit-learn's defaults (tol 1e-4), what the baseline used to do
    for b in range(len(xs)):
        for i in range(1, 20):
            exact[b, i] = xs[b, i] @ _exact(xs[b, :i], ys[b, :i], 0.01)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loose[b, i] = xs[b, i] @ SkLasso(alpha=0.01, fit_intercept=False).fit(xs[b, :i], ys[b, :i]).coef_
    np.testing.assert_allclose(preds, exact, atol=1e-5)
    # the check has teeth: the default tolerance misses the exact answer by far when i < d = 16
    assert np.abs(loose - exact)[:, 1:16].max() > 0.1
    assert np.abs(loose - exact)[:, 1:16].max() > 1000 * np.abs(preds - exact)[:, 1:16].max()


@pytest.mark.parametrize("i,d,alpha", [(5, 16, 0.01), (12, 16, 0.01), (30, 8, 0.05), (9, 20, 0.1)])
def test_converged_lasso_satisfies_the_kkt_conditions(i, d, alpha):
    rng = RNG(i + d)
    x = rng.standard_normal((i, d))
    w_true = np.where(rng.random(d) < 0.3, rng.standard_normal(d), 0.0)
    y = x @ w_true + 0.1 * rng.standard_normal(i)
    w = lasso_fit(x, y, alpha)
    corr = x.T @ (y - x @ w) / i  # (d,): the negative gradient of the smooth part
    active = w != 0
    assert active.any()
    np.testing.assert_allclose(corr[active], alpha * np.sign(w[active]), atol=1e-6)
    assert (np.abs(corr[~active]) <= alpha + 1e-6).all()
    np.testing.assert_allclose(w, _exact(x, y, alpha), atol=1e-5)


def test_the_default_tolerance_breaks_kkt_where_the_converged_fit_does_not():
    """The KKT check above can fail: scikit-learn's default tolerance violates it on an i < d prompt."""
    batch = SparseLinearMixture(points=20).sample(RNG(0), 12)
    worst = 0.0
    for b in range(12):
        x, y = batch.xs[b, :10].astype(np.float64), batch.ys[b, :10].astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = SkLasso(alpha=0.01, fit_intercept=False).fit(x, y).coef_
        corr = x.T @ (y - x @ w) / 10
        worst = max(worst, np.abs(corr[w != 0] - 0.01 * np.sign(w[w != 0])).max(initial=0.0),
                    (np.abs(corr[w == 0]) - 0.01).max(initial=0.0))
    assert worst > 1e-4  # the converged fits above satisfy them to 1e-6


def test_no_convergence_warning_leaks():
    batch = SparseLinearRegression(dim=16, sparsity=3, points=12).sample(RNG(2), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        Lasso().predict(batch.xs, batch.ys)
        OracleLasso().predict(batch.xs, batch.ys, batch.info)


def test_a_fit_that_coordinate_descent_cannot_finish_takes_the_exact_solution():
    """max_iter too small for coordinate descent from 0: the LARS solution, checked against the KKT
    conditions (or descent started again from it), is returned, and no warning escapes."""
    batch = SparseLinearMixture(points=12).sample(RNG(0), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capped = Lasso(max_iter=2).predict(batch.xs, batch.ys)
    np.testing.assert_allclose(capped, Lasso().predict(batch.xs, batch.ys), atol=1e-5)


def test_one_example_with_nearly_tied_coordinates():
    """Found in a run: with one example whose two largest |x_j| nearly tie, coordinate descent needs more
    than 1e6 sweeps; the answer (all weight on the largest coordinate) still comes out exactly."""
    x = np.array([[1.0, 0.999999, 0.3, -0.2, 0.1]])
    y = np.array([2.0])
    w = lasso_fit(x, y, alpha=0.01, max_iter=1000)
    expected = np.zeros(5)
    expected[0] = (2.0 - 0.01) / 1.0  # x_0 w_0 = y - α sign: the stationarity condition on the active coordinate
    np.testing.assert_allclose(w, expected, atol=1e-9)
    assert kkt_violation(x, y, w, 0.01) < 1e-12


def test_a_fit_that_cannot_converge_raises_an_error_naming_what_to_change(monkeypatch):
    import iclab.baselines.lasso as lasso_module

    class Broken:  # a LARS whose answer misses the KKT conditions
        def __init__(self, **kwargs):
            pass

        def fit(self, x, y):
            self.coef_ = np.full(x.shape[1], 100.0)  # far from the minimum: 2 sweeps from here do not get there
            return self

    monkeypatch.setattr(lasso_module, "LassoLars", Broken)
    batch = SparseLinearMixture(points=12).sample(RNG(3), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LassoConvergenceError, match="max_iter=2 .*raise max_iter") as err:
            Lasso(max_iter=2).predict(batch.xs, batch.ys)
        assert isinstance(err.value, IclabError) and "\n" not in str(err.value)
        with pytest.raises(LassoConvergenceError, match="prompt 0 at position"):
            OracleLasso(max_iter=1, tol=1e-12).predict(batch.xs, batch.ys, batch.info)


@pytest.mark.parametrize("cls", [Lasso, OracleLasso])
@pytest.mark.parametrize("params", [{"tol": 0.0}, {"tol": 1.0}, {"tol": -1e-3}, {"max_iter": 0}])
def test_tol_and_max_iter_are_validated(cls, params):
    with pytest.raises(ValidationError) as err:
        cls(**params)
    assert next(iter(params)) in str(err.value)


def test_tolerance_is_passed_on():
    """A looser tolerance gives the looser answer: ``tol`` reaches the solver."""
    batch = SparseLinearMixture(points=12).sample(RNG(0), 4)
    tight = Lasso().predict(batch.xs, batch.ys)
    loose = Lasso(tol=1e-3).predict(batch.xs, batch.ys)
    assert np.abs(tight - loose).max() > 1e-4
