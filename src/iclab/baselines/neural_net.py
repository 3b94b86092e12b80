"""A two-layer ReLU network fitted to the prompt by gradient descent (Adam).

At position ``i`` a fresh network

    f(x) = aᵀ relu(W x + b) + c,    W (hidden, d), b (hidden,), a (hidden,), c scalar,

is initialised as PyTorch's ``nn.Linear`` does (every entry ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``)
and trained for ``steps`` full-batch Adam steps on the squared loss of the ``i`` examples,

    L = (1/i) Σ_{j<i} (f(x_j) - y_j)²,

and ``ŷ_i = f(x_i)``. This is Garg, Tsipras, Liang and Valiant 2022's baseline for 2-layer
ReLU-net functions (their ``GDModel`` with ``NeuralNetwork``: hidden 100, Adam, lr 5e-3, 100
steps, batches of 100 examples). Differences: iclab uses the full prompt every step (the same as
theirs for prompts of at most 100 examples, where their batch of 100 is the whole prompt), and
is written in NumPy (no torch in ``baselines/``). Spec ``mechanisms.md``, regression-icl.

Randomness: the initial network of position ``i`` is drawn from ``default_rng([seed, i])`` and
shared by every prompt of the batch, so a prompt's predictions do not depend on the other
prompts in the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field

from iclab.baselines.base import Baseline
from iclab.limits import MAX_MLP, MAX_SEED, MAX_STEPS

Params = dict[str, np.ndarray]


def init_params(rng: np.random.Generator, batch: int, dim: int, hidden: int) -> Params:
    """PyTorch's default ``nn.Linear`` initialisation of both layers, one net broadcast over ``batch``.

    Shapes: ``W`` (batch, hidden, dim), ``b`` (batch, hidden), ``a`` (batch, hidden), ``c`` (batch,).
    """
    k1, k2 = 1 / np.sqrt(dim), 1 / np.sqrt(hidden)
    one = {"W": rng.uniform(-k1, k1, (hidden, dim)), "b": rng.uniform(-k1, k1, hidden),
           "a": rng.uniform(-k2, k2, hidden), "c": rng.uniform(-k2, k2, ())}
    return {k: np.broadcast_to(v, (batch, *v.shape)).copy() for k, v in one.items()}


def forward(p: Params, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f`` on ``xs`` (batch, n, dim): outputs (batch, n) and pre-activations (batch, n, hidden)."""
    pre = xs @ p["W"].transpose(0, 2, 1) + p["b"][:, None, :]  # (batch, n, hidden)
    out = (np.maximum(pre, 0.0) @ p["a"][:, :, None])[:, :, 0] + p["c"][:, None]  # (batch, n)
    return out, pre


def loss_and_grads(p: Params, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, Params]:
    """Per-prompt loss ``(1/n) Σ_j (f(x_j) - y_j)²`` (batch,) and its gradient for every parameter."""
    out, pre = forward(p, xs)
    n = xs.shape[1]
    g = 2.0 * (out - ys) / n  # (batch, n): dL/d out
    act = np.maximum(pre, 0.0)
    g_pre = g[:, :, None] * p["a"][:, None, :] * (pre > 0)  # (batch, n, hidden)
    grads = {"W": g_pre.transpose(0, 2, 1) @ xs, "b": g_pre.sum(axis=1),  # W: (batch, hidden, dim)
             "a": (g[:, None, :] @ act)[:, 0], "c": g.sum(axis=1)}  # a: (batch, 1, hidden) -> (batch, hidden)
    return ((out - ys) ** 2).mean(axis=1), grads


def fit_adam(p: Params, xs: np.ndarray, ys: np.ndarray, steps: int, lr: float,
             betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> Params:
    """``steps`` full-batch Adam steps (PyTorch's update, bias-corrected) on every prompt at once."""
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    p = {k: val.copy() for k, val in p.items()}
    b1, b2 = betas
    for t in range(1, steps + 1):
        _, grads = loss_and_grads(p, xs, ys)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


class TwoLayerNetGD(Baseline):
    """A fresh 2-layer ReLU net per position, trained by full-batch Adam on the examples.

    Parameters
    ----------
    hidden : int, default 100
        Hidden units (Garg et al.: 100).
    steps : int, default 100
        Adam steps per fit (Garg et al.: 100).
    lr : float, default 5e-3
        Adam's step size (Garg et al.: 5e-3).
    seed : int, default 0
        Seed of the initial networks (see the module docstring).
    """

    name: ClassVar[str] = "nn-gd"

    hidden: int = Field(100, ge=1, le=MAX_MLP)
    steps: int = Field(100, ge=1, le=MAX_STEPS)
    lr: float = Field(5e-3, gt=0.0)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        batch, i, dim = train_xs.shape
        p = init_params(np.random.default_rng([self.seed, i]), batch, dim, self.hidden)
        p = fit_adam(p, train_xs, train_ys, self.steps, self.lr)
        out, _ = forward(p, query[:, None, :])  # (batch, 1)
        return out[:, 0]
