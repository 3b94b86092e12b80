"""Gradient descent on the prompt's squared loss, from zero.

At position ``i``, with ``X = xs[:, :i]`` and ``y = ys[:, :i]``,

    L(w) = (1 / 2i) ||Xw - y||²,   w_0 = 0,   w_{t+1} = w_t - η (1/i) Xᵀ(X w_t - y),

and ``ŷ_i = x_iᵀ w_T`` after ``T = steps`` steps. One step with ``η = 1`` is the
averaging estimator; many steps with a small ``η`` approach least squares. This is the
algorithm that linear self-attention can implement in context (von Oswald et al. 2023,
"Transformers learn in-context by gradient descent"; Akyürek et al. 2023). Spec
``mechanisms.md``, regression-icl ("one step and n steps of gradient descent on the
prompt").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field

from iclab.baselines.base import Baseline
from iclab.limits import MAX_STEPS


def gd_weights(train_xs: np.ndarray, train_ys: np.ndarray, steps: int, lr: float) -> np.ndarray:
    """The iterate ``w_T`` per prompt: ``train_xs`` (batch, i, dim), ``train_ys`` (batch, i) -> (batch, dim)."""
    n = train_xs.shape[1]
    w = np.zeros((train_xs.shape[0], train_xs.shape[2]))  # (batch, dim)
    for _ in range(steps):
        resid = np.einsum("bid,bd->bi", train_xs, w) - train_ys  # (batch, i)
        w = w - lr / n * np.einsum("bid,bi->bd", train_xs, resid)
    return w


class GradientDescent(Baseline):
    """``steps`` steps of full-batch gradient descent on ``(1/2i)||Xw - y||²`` from 0.

    Parameters
    ----------
    steps : int, default 1
    lr : float, default 1.0
        Step size η. Steps stay stable while ``η < 2 / λ_max(XᵀX / i)``; for
        ``x ~ N(0, I_d)`` and ``i`` examples, ``λ_max ≈ (1 + sqrt(d / i))²``.
    """

    name: ClassVar[str] = "gd"

    steps: int = Field(1, ge=1, le=MAX_STEPS)
    lr: float = Field(1.0, gt=0.0)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        w = gd_weights(train_xs, train_ys, self.steps, self.lr)  # (batch, dim)
        return np.einsum("bd,bd->b", query, w)
