"""Least squares and ridge regression on the prompt.

At position ``i`` both fit ``w`` to the first ``i`` examples ``X = xs[:, :i]``
(i, dim) and ``y = ys[:, :i]`` and predict ``x_iᵀ ŵ``:

- least squares: ``ŵ = X⁺ y``, the minimum-norm solution (pseudo-inverse), which
  interpolates when ``i <= d``. With noisy labels its error peaks at ``i = d``, where
  ``X`` is square and its smallest singular value is near 0 (double descent).
- ridge: ``ŵ = argmin ||Xw - y||² + α||w||² = (XᵀX + αI)⁻¹ Xᵀy``; for ``w ~ N(0, I)`` and
  noise variance σ², ``α = σ²`` gives the posterior mean, the Bayes-optimal prediction.

Garg, Tsipras, Liang and Valiant 2022 (their ``LeastSquaresModel``); spec
``mechanisms.md``, regression-icl; ``task_vectors.md`` (baselines per sequence).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field

from iclab.baselines.base import Baseline


def least_squares_weights(train_xs: np.ndarray, train_ys: np.ndarray) -> np.ndarray:
    """``X⁺ y`` per prompt: ``train_xs`` (batch, i, dim), ``train_ys`` (batch, i) -> (batch, dim)."""
    return np.einsum("bdi,bi->bd", np.linalg.pinv(train_xs), train_ys)


def ridge_weights(train_xs: np.ndarray, train_ys: np.ndarray, alpha: float) -> np.ndarray:
    """``(XᵀX + αI)⁻¹ Xᵀy`` per prompt, from the thin SVD: (batch, i, dim), (batch, i) -> (batch, dim)."""
    u, s, vh = np.linalg.svd(train_xs, full_matrices=False)  # (b, i, r), (b, r), (b, r, dim)
    coef = s / (s**2 + alpha) * np.einsum("bir,bi->br", u, train_ys)  # (batch, r)
    return np.einsum("brd,br->bd", vh, coef)


class LeastSquares(Baseline):
    """Minimum-norm ordinary least squares, ``ŷ_i = x_iᵀ X⁺ y``.

    ``X⁺`` is ``numpy.linalg.pinv`` with its default cut-off (singular values below
    ``1e-15 · max singular value`` count as 0). No parameters.
    """

    name: ClassVar[str] = "least-squares"

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        w = least_squares_weights(train_xs, train_ys)  # (batch, dim)
        return np.einsum("bd,bd->b", query, w)


class Ridge(Baseline):
    """Ridge regression, ``ŷ_i = x_iᵀ (XᵀX + αI)⁻¹ Xᵀy``, without intercept.

    Computed from the thin SVD ``X = U S Vᵀ`` as ``ŵ = V diag(s / (s² + α)) Uᵀ y``, which
    stays accurate as ``α → 0``, where it tends to the least-squares ``X⁺ y``.

    Parameters
    ----------
    alpha : float, default 0.01
        Penalty ``α > 0`` (scikit-learn's convention: the squared error is summed, not
        averaged). 0.01 is the Bayes-optimal value for the task-vectors world's σ² = 0.01
        on dense ``w ~ N(0, I)``.
    """

    name: ClassVar[str] = "ridge"

    alpha: float = Field(0.01, gt=0.0)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        w = ridge_weights(train_xs, train_ys, self.alpha)  # (batch, dim)
        return np.einsum("bd,bd->b", query, w)
