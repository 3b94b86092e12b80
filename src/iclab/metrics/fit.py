"""Goodness of a linear fit between two measurements (e.g. task decodability against accuracy)."""

from __future__ import annotations

import numpy as np


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares line of ``y`` on ``x``: the squared Pearson correlation,

        R² = cov(x, y)² / (var(x) var(y)),

    for arrays of shape (n,); NaN if n < 2 or either is constant.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)
