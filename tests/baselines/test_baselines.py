"""Tests of the in-context baselines and the error curve (spec mechanisms.md,
regression-icl; task_vectors.md, baselines per sequence).

Known answers: least squares interpolates a noiseless linear function after d points
and peaks at n = d with noise; ridge tends to least squares as α → 0 and matches
scikit-learn's Ridge; one gradient step is the averaging estimator, many steps reach the
minimum-norm solution; averaging and k-NN are enumerated on hand-built prompts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.linear_model import Ridge as SkRidge

import iclab.baselines as baselines
from iclab.baselines import (Averaging, BoostedTrees, DecisionTreeBaseline, GradientDescent, InContextPredictor,
                             KNearestNeighbors, Lasso, LeastSquares, OracleLasso, Ridge, baseline_names,
                             error_curve, make_baseline, squared_errors)
from iclab.errors import UnknownNameError
from iclab.worlds.base import VectorBatch
from iclab.worlds.regression import DecisionTree, LinearRegression, SparseLinearMixture

RNG = np.random.default_rng


def test_no_torch_import():
    for path in Path(baselines.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "torch"], path


def test_model_free_modules_load_without_torch():
    code = ("import sys, iclab.baselines, iclab.worlds.regression, iclab.metrics.decodability; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------- shared checks


@pytest.mark.parametrize("name", baseline_names())
def test_every_baseline_speaks_the_protocol(name):
    params = {"boosted-trees": {"n_estimators": 3}}.get(name, {})
    p = make_baseline(name, **params)
    assert isinstance(p, InContextPredictor) and p.name == name and p.label.startswith(name + "(")
    batch = SparseLinearMixture(points=6).sample(RNG(0), 3)
    preds = p.predict(batch.xs, batch.ys, batch.info)
    assert preds.shape == (3, 6) and np.isfinite(preds).all()
    assert (preds[:, 0] == 0).all()  # no examples: predict 0
    np.testing.assert_array_equal(preds, p.predict(batch.xs, batch.ys, batch.info))


@pytest.mark.parametrize("name", baseline_names())
def test_predictions_do_not_look_ahead(name):
    """preds[:, i] may read xs[:, :i+1] and ys[:, :i] only."""
    params = {"boosted-trees": {"n_estimators": 3}}.get(name, {})
    p = make_baseline(name, **params)
    batch = SparseLinearMixture(points=6).sample(RNG(1), 2)
    xs, ys = batch.xs.copy(), batch.ys.copy()
    xs[:, 4:] += 5.0
    ys[:, 3:] -= 7.0
    np.testing.assert_allclose(p.predict(xs, ys, batch.info)[:, :4],
                               p.predict(batch.xs, batch.ys, batch.info)[:, :4], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,params", [
    (Ridge, {"alpha": 0.0}), (Lasso, {"alpha": -1.0}), (Lasso, {"max_iter": 0}), (OracleLasso, {"alpha": 0}),
    (KNearestNeighbors, {"k": 0}), (KNearestNeighbors, {"weights": "gaussian"}), (GradientDescent, {"steps": 0}),
    (GradientDescent, {"lr": 0.0}), (DecisionTreeBaseline, {"max_depth": 0}), (BoostedTrees, {"n_estimators": 0}),
    (LeastSquares, {"rcond": 1e-3}), (Averaging, {"alpha": 1.0}),
])
def test_bad_parameters_raise(cls, params):
    with pytest.raises(ValidationError) as err:
        cls(**params)
    assert next(iter(params)) in str(err.value)


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownNameError, match="least-squares"):
        make_baseline("ols")


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="ys"):
        LeastSquares().predict(np.zeros((2, 3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="xs"):
        LeastSquares().predict(np.zeros((2, 3)), np.zeros((2, 3)))


# ---------------------------------------------------------------- least squares and ridge


def test_least_squares_recovers_w_after_d_points():
    d = 5
    batch = LinearRegression(dim=d, points=12).sample(RNG(0), 64)
    curve = error_curve(LeastSquares(), batch)
    assert curve.shape == (12,)
    assert (curve[d + 1:] < 1e-9).all()  # w recovered exactly: error 0 up to float32 rounding of ys
    assert (curve[1:d] > 0.05).all()
    assert abs(curve[0] - 1.0) < 0.3  # zero prediction: E[y²]/d = 1
    # error before interpolation: (1 - i/d) of the signal is unseen
    big = error_curve(LeastSquares(), LinearRegression(dim=d, points=d).sample(RNG(1), 4000))
    np.testing.assert_allclose(big, 1 - np.arange(d) / d, atol=0.06)


def test_least_squares_error_peaks_at_n_equals_d():
    d = 10
    batch = LinearRegression(dim=d, points=30, noise_std=0.5).sample(RNG(0), 400)
    curve = error_curve(LeastSquares(), batch)
    assert int(np.argmax(curve)) == d
    assert curve[d] > 2 * max(curve[d - 3], curve[d + 3])  # double descent: down on both sides
    assert curve[-1] < curve[d - 3]


def test_ridge_tends_to_least_squares():
    batch = LinearRegression(dim=6, points=14).sample(RNG(2), 16)
    np.testing.assert_allclose(Ridge(alpha=1e-10).predict(batch.xs, batch.ys),
                               LeastSquares().predict(batch.xs, batch.ys), rtol=1e-5, atol=1e-5)


def test_ridge_matches_sklearn():
    batch = LinearRegression(dim=4, points=9, noise_std=0.3).sample(RNG(3), 3)
    preds = Ridge(alpha=0.7).predict(batch.xs, batch.ys)
    xs, ys = batch.xs.astype(np.float64), batch.ys.astype(np.float64)
    for b in range(3):
        for i in (1, 3, 4, 8):
            fit = SkRidge(alpha=0.7, fit_intercept=False).fit(xs[b, :i], ys[b, :i])
            assert abs(preds[b, i] - fit.predict(xs[b, i:i + 1])[0]) < 1e-8


def test_ridge_beats_least_squares_near_d_with_noise():
    batch = LinearRegression(dim=8, points=16, noise_std=0.5).sample(RNG(4), 300)
    assert error_curve(Ridge(alpha=0.25), batch)[8] < error_curve(LeastSquares(), batch)[8]


# ---------------------------------------------------------------- Lasso


def test_oracle_lasso_beats_lasso_with_few_points():
    batch = SparseLinearMixture(points=9).sample(RNG(0), 40)
    lasso, oracle = error_curve(Lasso(), batch), error_curve(OracleLasso(), batch)
    assert oracle[2:8].mean() < 0.5 * lasso[2:8].mean()
    assert oracle[6] < 0.01  # 4 free coefficients, 6 points: near the noise floor σ²/d


def test_lasso_beats_least_squares_on_sparse_data():
    batch = SparseLinearMixture(points=14).sample(RNG(1), 30)
    assert error_curve(Lasso(), batch)[8:14].mean() < error_curve(LeastSquares(), batch)[8:14].mean()


def test_oracle_lasso_needs_the_support():
    batch = SparseLinearMixture(points=4).sample(RNG(0), 2)
    with pytest.raises(ValueError, match="support"):
        OracleLasso().predict(batch.xs, batch.ys)
    with pytest.raises(ValueError, match="support"):
        OracleLasso().predict(batch.xs, batch.ys, {"w": batch.info["w"]})


def test_oracle_lasso_ignores_columns_outside_the_support():
    batch = SparseLinearMixture(points=6).sample(RNG(5), 3)
    xs = batch.xs.copy()
    xs[~np.broadcast_to(batch.info["support"][:, None, :], xs.shape)] = 123.0
    np.testing.assert_allclose(OracleLasso().predict(xs, batch.ys, batch.info),
                               OracleLasso().predict(batch.xs, batch.ys, batch.info))


# ---------------------------------------------------------------- averaging and gradient descent


def test_averaging_hand_case():
    xs = np.array([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])
    ys = np.array([[2.0, 4.0, 5.0]])
    # i=1: ŵ = 2·(1,0) = (2,0), x=(0,2) -> 0;  i=2: ŵ = (2·(1,0) + 4·(0,2))/2 = (1,4), x=(1,1) -> 5
    np.testing.assert_allclose(Averaging().predict(xs, ys), [[0.0, 0.0, 5.0]])


def test_one_gradient_step_is_averaging():
    batch = LinearRegression(dim=5, points=10).sample(RNG(0), 8)
    np.testing.assert_allclose(GradientDescent(steps=1, lr=1.0).predict(batch.xs, batch.ys),
                               Averaging().predict(batch.xs, batch.ys), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(GradientDescent(steps=1, lr=0.5).predict(batch.xs, batch.ys),
                               0.5 * Averaging().predict(batch.xs, batch.ys), rtol=1e-10, atol=1e-10)


def test_gradient_descent_matches_its_closed_form():
    # with A = XᵀX/i = V diag(λ) Vᵀ and b = Xᵀy/i, T steps from 0 give
    # w_T = V diag((1 - (1 - ηλ)^T) / λ) Vᵀ b  (T η where λ = 0)
    steps, lr = 7, 0.2
    batch = LinearRegression(dim=4, points=8, noise_std=0.1).sample(RNG(1), 3)
    xs, ys = batch.xs.astype(np.float64), batch.ys.astype(np.float64)
    preds = GradientDescent(steps=steps, lr=lr).predict(batch.xs, batch.ys)
    for b in range(3):
        for i in range(1, 8):
            lam, V = np.linalg.eigh(xs[b, :i].T @ xs[b, :i] / i)
            g = np.where(np.abs(lam) > 1e-12, (1 - (1 - lr * lam) ** steps) / np.where(lam == 0, 1, lam), steps * lr)
            w = V @ (g * (V.T @ (xs[b, :i].T @ ys[b, :i] / i)))
            assert abs(preds[b, i] - xs[b, i] @ w) < 1e-10


def test_many_gradient_steps_reach_min_norm_least_squares():
    # GD from 0 stays in the row space of X, so it converges to X⁺y at every i; near
    # i = d the smallest eigenvalue of XᵀX is small and convergence slow, so skip those
    batch = LinearRegression(dim=3, points=9).sample(RNG(1), 4)
    gd = GradientDescent(steps=5000, lr=0.15).predict(batch.xs, batch.ys)
    ls = LeastSquares().predict(batch.xs, batch.ys)
    keep = [0, 1, 2, 6, 7, 8]
    np.testing.assert_allclose(gd[:, keep], ls[:, keep], atol=1e-4)


# ---------------------------------------------------------------- k-NN


def test_knn_hand_case():
    xs = np.array([0.0, 10.0, 1.0, 4.0, 2.0]).reshape(1, 5, 1)
    ys = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    # i=3: query 4, distances (4, 6, 3) -> x=1, x=0. i=4: query 2, distances (2, 8, 1, 2):
    # x=1, then x=0 and x=4 tie at 2 and the earlier example (x=0) wins
    np.testing.assert_allclose(KNearestNeighbors(k=2).predict(xs, ys), [[0, 1, 1.5, 2, 2]])
    np.testing.assert_allclose(KNearestNeighbors(k=2, weights="distance").predict(xs, ys),
                               [[0, 1, 1.1, 15 / 7, 7 / 3]])
    # k = 3 with 2 earlier examples uses both
    np.testing.assert_allclose(KNearestNeighbors(k=3).predict(xs, ys), [[0, 1, 1.5, 2, 8 / 3]])


def test_knn_distance_weights_exact_match():
    xs = np.array([0.0, 5.0, 0.0]).reshape(1, 3, 1)
    ys = np.array([[7.0, 1.0, 0.0]])
    assert KNearestNeighbors(k=2, weights="distance").predict(xs, ys)[0, 2] == 7.0


# ---------------------------------------------------------------- trees and the error curve


def test_tree_baselines_on_a_tree_world():
    batch = DecisionTree(dim=4, depth=2, points=40).sample(RNG(0), 4)
    tree = error_curve(DecisionTreeBaseline(), batch, normalizer=1.0)
    assert tree[30:].mean() < tree[:3].mean()
    boost = BoostedTrees(n_estimators=5).predict(batch.xs[:, :6], batch.ys[:, :6])
    assert boost.shape == (4, 6)


def test_error_curve_normalisation_and_protocol():
    class Zero:  # any object with the protocol is evaluated, not only Baseline subclasses
        name = "zero"

        def predict(self, xs, ys, info=None):
            return np.zeros(np.shape(ys))

    batch = LinearRegression(dim=8, points=5).sample(RNG(0), 3000)
    np.testing.assert_allclose(error_curve(Zero(), batch), 1.0, atol=0.1)  # E[y²] = d
    np.testing.assert_allclose(error_curve(Zero(), batch, normalizer=1.0), 8 * error_curve(Zero(), batch))
    np.testing.assert_allclose(squared_errors(Zero(), batch), batch.ys.astype(np.float64) ** 2)

    class Bad(Zero):
        def predict(self, xs, ys, info=None):
            return np.zeros(3)

    with pytest.raises(ValueError, match="shape"):
        error_curve(Bad(), batch)
    with pytest.raises(ValueError, match="normalizer"):
        error_curve(Zero(), batch, normalizer=0.0)
    batch = VectorBatch(np.ones((1, 2, 2)), np.array([[1.0, 3.0]]))
    np.testing.assert_allclose(error_curve(Zero(), batch), [0.5, 4.5])
