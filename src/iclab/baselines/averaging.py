"""The averaging estimator: one step of gradient descent from zero, scaled.

    ŵ_i = (1/i) Σ_{j<i} y_j x_j,    ŷ_i = x_iᵀ ŵ_i

For ``x ~ N(0, I)`` and ``y = wᵀx``, ``E[y x] = w``, so ``ŵ_i`` is unbiased but does not
interpolate. It equals one gradient step with learning rate 1 on
``(1/2i) ||Xw - y||²`` from ``w = 0``. Garg, Tsipras, Liang and Valiant 2022 (their
``AveragingModel``); spec ``mechanisms.md``, regression-icl; ``task_vectors.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from iclab.baselines.base import Baseline, check_prompts


class Averaging(Baseline):
    """``ŷ_i = x_iᵀ (1/i) Σ_{j<i} y_j x_j``; no parameters. Vectorised over positions."""

    name: ClassVar[str] = "averaging"

    def predict(self, xs: np.ndarray, ys: np.ndarray,
                info: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        xs, ys = check_prompts(xs, ys)
        sums = np.cumsum(xs * ys[..., None], axis=1)  # (batch, points, dim): Σ_{j<=i} y_j x_j
        preds = np.zeros(ys.shape)  # (batch, points)
        count = np.arange(1, ys.shape[1])  # (points - 1,): examples before position i
        w = sums[:, :-1] / count[None, :, None]  # (batch, points - 1, dim): ŵ_i for i >= 1
        preds[:, 1:] = np.einsum("bpd,bpd->bp", xs[:, 1:], w)
        return preds
