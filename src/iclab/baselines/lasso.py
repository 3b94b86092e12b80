"""Lasso on the prompt, and the oracle Lasso that knows the true support.

At position ``i``, with ``X = xs[b, :i]`` and ``y = ys[b, :i]``:

- Lasso: ``ŵ = argmin (1 / 2i) ||Xw - y||² + α ||w||₁`` (scikit-learn's objective, no
  intercept), ``ŷ_i = x_iᵀ ŵ``;
- oracle Lasso: the same problem over the columns of the prompt's true support ``S``
  only (``w_j = 0`` for ``j ∉ S``), the Lasso restricted to the true basis.

Garg, Tsipras, Liang and Valiant 2022 (their ``LassoModel``, for sparse linear functions);
Han, Song, Gore and Agrawal, ICML 2025 (the oracle, for the sparse mixture); spec
``mechanisms.md``, regression-icl, and ``task_vectors.md``, synthetic part.

Each prompt and position is one scikit-learn fit, so these cost ``batch · points``
fits (≈ 0.3 ms each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field
from sklearn.linear_model import Lasso as _SkLasso

from iclab.baselines.base import Baseline, check_prompts, truth


def _lasso_predict(x: np.ndarray, y: np.ndarray, query: np.ndarray, alpha: float, max_iter: int) -> float:
    """One Lasso fit on ``x`` (i, p), ``y`` (i,), evaluated at ``query`` (p,)."""
    if x.shape[1] == 0:
        return 0.0
    fit = _SkLasso(alpha=alpha, fit_intercept=False, max_iter=max_iter).fit(x, y)
    return float(query @ fit.coef_)


class Lasso(Baseline):
    """L1-penalised least squares, ``ŵ = argmin (1/2i)||Xw - y||² + α||w||₁``.

    Parameters
    ----------
    alpha : float, default 0.01
        Penalty ``α > 0``; small values approach basis pursuit, which suits noiseless
        sparse ``w`` (Garg et al. compare α from 1e-4 to 1).
    max_iter : int, default 10000
        Coordinate-descent iterations per fit.
    """

    name: ClassVar[str] = "lasso"

    alpha: float = Field(0.01, gt=0.0)
    max_iter: int = Field(10_000, ge=1)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        return np.array([_lasso_predict(train_xs[b], train_ys[b], query[b], self.alpha, self.max_iter)
                         for b in range(len(query))])


class OracleLasso(Baseline):
    """Lasso restricted to the prompt's true support: ``w_j = 0`` for ``j ∉ S_b``.

    Reads ``info["support"]``, a bool array of shape (batch, dim) (the sparse worlds put
    it in every batch). Parameters as :class:`Lasso`.

    Parameters
    ----------
    alpha : float, default 0.01
    max_iter : int, default 10000
    """

    name: ClassVar[str] = "oracle-lasso"
    needs_truth: ClassVar[bool] = True

    alpha: float = Field(0.01, gt=0.0)
    max_iter: int = Field(10_000, ge=1)

    def predict(self, xs: np.ndarray, ys: np.ndarray,
                info: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        xs, ys = check_prompts(xs, ys)
        support = truth(info, "support", type(self).__name__, len(xs)).astype(bool)  # (batch, dim)
        if support.shape != (xs.shape[0], xs.shape[2]):
            raise ValueError(f"info['support'] must have shape (batch, dim) = "
                             f"{(xs.shape[0], xs.shape[2])}; got {support.shape}")
        preds = np.zeros(ys.shape)  # (batch, points)
        for b in range(xs.shape[0]):
            x = xs[b][:, support[b]]  # (points, |S_b|)
            for i in range(1, ys.shape[1]):
                preds[b, i] = _lasso_predict(x[:i], ys[b, :i], x[i], self.alpha, self.max_iter)
        return preds
