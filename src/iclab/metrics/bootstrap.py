"""Bootstrap confidence interval of a mean.

For values ``v_1..v_n`` (one per prompt), draw ``R`` resamples of ``n`` indices with
replacement, take each resample's mean ``m_r``, and report the ``(1 - level)/2`` and
``(1 + level)/2`` quantiles of ``m_1..m_R`` (the percentile interval). Garg, Tsipras, Liang
and Valiant 2022 draw their error curves' bands this way (1000 resamples, the 5% and 95%
quantiles, i.e. ``level = 0.9``); spec ``mechanisms.md``, regression-icl (confidence bands).
"""

from __future__ import annotations

import numpy as np


def bootstrap_mean_interval(values: np.ndarray, rng: np.random.Generator, n_resamples: int = 1000,
                            level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the mean over axis 0.

    Parameters
    ----------
    values : array-like of shape (n,) or (n, k)
        ``n`` independent draws (e.g. prompts) of ``k`` quantities (e.g. positions).
    rng : numpy.random.Generator
        Source of the resampled indices (one draw shared by every column).
    n_resamples : int, default 1000
    level : float, default 0.9
        Coverage of the interval, in (0, 1).

    Returns
    -------
    lo, hi : ndarrays of shape (k,) (or 0-d for 1-D ``values``)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[0] < 1:
        raise ValueError(f"values must have shape (n,) or (n, k) with n >= 1; got {v.shape}")
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError(f"need 0 < level < 1 and n_resamples >= 1; got level={level}, n_resamples={n_resamples}")
    flat = v.reshape(v.shape[0], -1)  # (n, k)
    idx = rng.integers(0, v.shape[0], size=(n_resamples, v.shape[0]))  # (resamples, n)
    means = np.stack([flat[row].mean(axis=0) for row in idx])  # (resamples, k)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)  # (k,) each
    return lo.reshape(v.shape[1:]), hi.reshape(v.shape[1:])
