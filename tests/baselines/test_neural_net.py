"""Known answers of the 2-layer ReLU net fitted on the prompt by Adam (Garg et al.'s baseline for
ReLU-net functions; spec mechanisms.md, regression-icl): its gradient is the loss's gradient
(finite differences), its first Adam step moves every parameter by lr against the gradient's sign,
given enough steps it fits the examples, and it is initialised as PyTorch's nn.Linear."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from iclab.baselines import Averaging, TwoLayerNetGD, error_curve, make_baseline
from iclab.baselines.neural_net import fit_adam, forward, init_params, loss_and_grads
from iclab.worlds.regression import ReluNet

RNG = np.random.default_rng


def test_gradients_match_finite_differences():
    rng = RNG(0)
    xs, ys = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 7))
    p = init_params(rng, 2, 3, 5)
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in p.items()}  # per-prompt nets
    _, grads = loss_and_grads(p, xs, ys)
    h = 1e-6
    for k, v in p.items():
        for idx in np.ndindex(v.shape):
            up = {kk: vv.copy() for kk, vv in p.items()}
            dn = {kk: vv.copy() for kk, vv in p.items()}
            up[k][idx] += h
            dn[k][idx] -= h
            b = idx[0]  # each prompt's loss depends on its own net only
            numeric = (loss_and_grads(up, xs, ys)[0][b] - loss_and_grads(dn, xs, ys)[0][b]) / (2 * h)
            assert abs(numeric - grads[k][idx]) < 1e-6, (k, idx)


def test_first_adam_step_moves_each_parameter_by_lr_against_its_gradient():
    rng = RNG(1)
    xs, ys = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5))
    p = init_params(rng, 3, 4, 6)
    _, grads = loss_and_grads(p, xs, ys)
    q = fit_adam(p, xs, ys, steps=1, lr=0.01)
    for k in p:
        # Adam's bias-corrected first step is lr · g / (|g| + eps)
        np.testing.assert_allclose(q[k] - p[k], -0.01 * grads[k] / (np.abs(grads[k]) + 1e-8), atol=1e-12)


def test_initialisation_follows_pytorch_linear():
    p = init_params(RNG(2), 4, 9, 400)
    assert p["W"].shape == (4, 400, 9) and p["b"].shape == (4, 400) and p["a"].shape == (4, 400)
    assert p["c"].shape == (4,)
    assert np.abs(p["W"]).max() <= 1 / 3 and np.abs(p["a"]).max() <= 1 / 20
    assert np.abs(p["W"]).max() > 0.3 and np.abs(p["a"]).max() > 0.045  # uniform up to the bound
    np.testing.assert_array_equal(p["W"][0], p["W"][3])  # one initial net for the whole batch


def test_enough_steps_fit_the_examples():
    rng = RNG(3)
    xs, ys = rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6))
    p = init_params(rng, 4, 3, 100)
    before = loss_and_grads(p, xs, ys)[0]
    after = loss_and_grads(fit_adam(p, xs, ys, steps=2000, lr=1e-2), xs, ys)[0]
    assert (after < 2e-2 * before).all() and np.median(after) < 1e-6


def test_predict_uses_the_fitted_net_and_beats_averaging_on_relu_nets():
    batch = ReluNet(dim=4, hidden=50, points=32).sample(RNG(4), 16)
    nn_gd = TwoLayerNetGD(steps=200, lr=1e-2)
    preds = nn_gd.predict(batch.xs, batch.ys)
    i = 30
    p = init_params(np.random.default_rng([0, i]), 16, 4, 100)
    p = fit_adam(p, batch.xs[:, :i].astype(np.float64), batch.ys[:, :i].astype(np.float64), 200, 1e-2)
    np.testing.assert_allclose(preds[:, i], forward(p, batch.xs[:, i:i + 1].astype(np.float64))[0][:, 0])
    curve, avg = error_curve(nn_gd, batch), error_curve(Averaging(), batch)
    assert curve[20:].mean() < avg[20:].mean()


def test_same_seed_same_predictions_and_other_seed_other():
    batch = ReluNet(dim=3, points=5).sample(RNG(5), 2)
    a = make_baseline("nn-gd", steps=5).predict(batch.xs, batch.ys)
    np.testing.assert_array_equal(a, make_baseline("nn-gd", steps=5).predict(batch.xs, batch.ys))
    assert not np.array_equal(a, make_baseline("nn-gd", steps=5, seed=1).predict(batch.xs, batch.ys))
    # a prompt's predictions do not depend on the other prompts of the batch
    np.testing.assert_allclose(a[1:], make_baseline("nn-gd", steps=5).predict(batch.xs[1:], batch.ys[1:]))


@pytest.mark.parametrize("params", [{"hidden": 0}, {"steps": 0}, {"lr": 0.0}, {"seed": -1}])
def test_parameters_are_validated(params):
    with pytest.raises(ValidationError) as err:
        TwoLayerNetGD(**params)
    assert next(iter(params)) in str(err.value)
