"""Squared error of an in-context predictor against the number of examples.

    e_i = (1/B) Σ_b (preds[b, i] - ys[b, i])² / d

the mean squared error at position ``i`` (after ``i`` in-context examples) divided by the
input dimension ``d``. For ``w, x ~ N(0, I_d)``, ``E[y²] = d``, so the zero predictor
scores 1 on linear functions. Garg, Tsipras, Liang and Valiant 2022, figures 2-4
(normalised squared error); spec ``mechanisms.md``, regression-icl.
"""

from __future__ import annotations

import numpy as np

from iclab.baselines.base import InContextPredictor
from iclab.worlds.base import VectorBatch


def squared_errors(predictor: InContextPredictor, batch: VectorBatch) -> np.ndarray:
    """``(preds - ys)²`` of shape (batch, points); the batch's ``info`` goes to ``predict``."""
    preds = np.asarray(predictor.predict(batch.xs, batch.ys, batch.info), dtype=np.float64)
    ys = np.asarray(batch.ys, dtype=np.float64)
    if preds.shape != ys.shape:
        raise ValueError(f"{predictor.name} returned predictions of shape {preds.shape}; "
                         f"expected (batch, points) = {ys.shape}")
    return (preds - ys) ** 2


def error_curve(predictor: InContextPredictor, batch: VectorBatch, normalizer: float | None = None) -> np.ndarray:
    """Mean squared error per number of in-context examples, shape (points,).

    Parameters
    ----------
    predictor : InContextPredictor
    batch : VectorBatch
        ``xs`` (batch, points, dim), ``ys`` (batch, points).
    normalizer : float, optional
        Divides the mean squared error; default the dimension ``d`` (Garg et al.). Pass
        e.g. the support size for sparse functions, or ``E[y²]``.

    Returns
    -------
    ndarray of shape (points,)
        Entry ``i`` is the error of predicting ``ys[:, i]`` from ``i`` examples.
    """
    norm = batch.xs.shape[2] if normalizer is None else normalizer
    if not norm > 0:
        raise ValueError(f"normalizer must be > 0; got {normalizer}")
    return squared_errors(predictor, batch).mean(axis=0) / norm
