"""k-nearest-neighbour regression on the prompt.

    ŷ_i = Σ_{j ∈ N_k(i)} v_j y_j / Σ_{j ∈ N_k(i)} v_j

where ``N_k(i)`` are the ``min(k, i)`` earlier inputs closest to ``x_i`` (Euclidean; ties
in distance go to the earlier example) and the weights ``v_j`` are 1 (``"uniform"``) or
``1 / ||x_i - x_j||`` (``"distance"``; if some distance is 0, only those examples count,
equally). Garg, Tsipras, Liang and Valiant 2022 (their ``NNModel``, k = 3); spec
``mechanisms.md``, regression-icl.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from iclab.baselines.base import Baseline
from iclab.limits import MAX_SEQ


class KNearestNeighbors(Baseline):
    """Mean (or inverse-distance mean) label of the ``k`` nearest earlier inputs.

    Parameters
    ----------
    k : int, default 3
        Neighbours; fewer (all of them) while there are fewer earlier examples.
    weights : {"uniform", "distance"}, default "uniform"
    """

    name: ClassVar[str] = "knn"

    k: int = Field(3, ge=1, le=MAX_SEQ)
    weights: Literal["uniform", "distance"] = "uniform"

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        dist = np.sqrt(((train_xs - query[:, None, :]) ** 2).sum(axis=2))  # (batch, i)
        k = min(self.k, dist.shape[1])
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (batch, k)
        y = np.take_along_axis(train_ys, nearest, axis=1)  # (batch, k)
        if self.weights == "uniform":
            return y.mean(axis=1)
        d = np.take_along_axis(dist, nearest, axis=1)  # (batch, k)
        exact = d == 0
        with np.errstate(divide="ignore"):
            v = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), 1.0 / d)
        return (v * y).sum(axis=1) / v.sum(axis=1)
