"""Distribution shifts of the regression prompts at evaluation (Garg et al. 2022, section 4).

Two kinds. Shifts of the whole prompt change the world (its input distribution or its noise)
and are evaluated like the unshifted prompts, every position of one batch:

- ``scaled-x``: ``x = scale · z``, ``z ~ N(0, I_d)`` (Garg et al.'s scale-x);
- ``skewed``: ``x ~ N(0, Σ)``, ``Σ`` with eigenvalues ∝ 1/(i+1)² and trace d in a random basis
  (:class:`~iclab.worlds.regression.XSampler`, kind ``"skewed"``);
- ``noisy-y``: label noise of standard deviation ``noise_std`` (Garg et al.'s noisy-LR
  evaluation, without their renormalisation of y).

Shifts of the query move only the point whose label is predicted, so, as Garg et al. do, they
are evaluated one position at a time: for ``i`` examples, a prompt of ``i + 1`` points whose first
``i`` come from the training-like distribution and whose last is the shifted query:

- ``orthant``: the examples' x lie in one orthant (a random sign pattern per prompt, the same
  for all its points), the query is ``N(0, I_d)`` (their "random quadrants");
- ``opposite-orthant``: the query lies in the opposite orthant (their "opposite quadrants");
- ``subspace``: the query is orthogonal to the span of the ``i`` examples, rescaled to its own
  norm (their "orthogonal train/test"); defined while ``i < d``.

Labels always come from the prompt's own function (``world.evaluate``) plus the world's noise.
Spec ``mechanisms.md``, regression-icl (distribution shifts). NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from iclab.worlds.base import VectorBatch
from iclab.worlds.regression import RegressionWorld, XSampler

PROMPT_SHIFTS = ("scaled-x", "skewed", "noisy-y")
QUERY_SHIFTS = ("orthant", "opposite-orthant", "subspace")

#: shift -> how the report names it
SHIFT_NAMES = {"none": "no shift", "scaled-x": "x scaled", "skewed": "skewed covariance",
               "orthant": "examples in one orthant", "opposite-orthant": "query in the opposite orthant",
               "noisy-y": "noisy y", "subspace": "query outside the examples' span"}


def shifted_world(world: RegressionWorld, shift: str, scale: float, noise_std: float) -> RegressionWorld:
    """The world of a prompt shift (``scaled-x``, ``skewed``, ``noisy-y``), without curriculum."""
    base = world.model_copy(update={"curriculum": None})
    if shift == "scaled-x":
        return base.model_copy(update={"x": XSampler(scale=scale)})
    if shift == "skewed":
        return base.model_copy(update={"x": XSampler(kind="skewed")})
    if shift == "noisy-y":
        return base.model_copy(update={"noise_std": noise_std})
    raise ValueError(f"{shift!r} is not a prompt shift; prompt shifts: {', '.join(PROMPT_SHIFTS)}")


def _orthogonal_queries(xs: np.ndarray) -> np.ndarray:
    """For each position ``i < d``: ``x_i`` minus its projection on ``span(x_0..x_{i-1})``, rescaled to
    ``||x_i||``. Shape (batch, points, dim); positions ``i >= d`` (no orthogonal direction) are NaN."""
    out = np.full(xs.shape, np.nan)
    d = xs.shape[2]
    for i in range(min(xs.shape[1], d)):
        q = xs[:, i]  # (batch, dim)
        if i > 0:
            _, _, vt = np.linalg.svd(xs[:, :i], full_matrices=False)  # (batch, i, dim): an orthonormal basis
            q = q - np.einsum("bkd,bk->bd", vt, np.einsum("bkd,bd->bk", vt, q))
        out[:, i] = q * (np.linalg.norm(xs[:, i], axis=1) / np.linalg.norm(q, axis=1))[:, None]
    return out


def query_shift_errors(predict: Callable[[np.ndarray, np.ndarray], np.ndarray], world: RegressionWorld,
                       shift: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Squared errors of ``predict`` under a query shift, shape (n, points); NaN where undefined
    (position 0, and positions ``i >= d`` for ``subspace``).

    ``predict(xs, ys)`` is any in-context predictor's call; it sees prompts of ``i + 1`` points and
    only its last prediction is scored. The functions and the draws are the same for every
    ``predict`` given the same ``rng`` state.
    """
    world = world.model_copy(update={"curriculum": None})
    info = world.draw_functions(rng, n)
    z = rng.standard_normal((n, world.points, world.dim))  # (batch, points, dim)
    if shift == "subspace":
        examples, queries = z, _orthogonal_queries(z)
    elif shift in ("orthant", "opposite-orthant"):
        signs = np.where(rng.random((n, 1, world.dim)) < 0.5, -1.0, 1.0)  # (batch, 1, dim): the orthant
        examples = np.abs(z) * signs
        queries = z if shift == "orthant" else -examples
    else:
        raise ValueError(f"{shift!r} is not a query shift; query shifts: {', '.join(QUERY_SHIFTS)}")
    noise = world.noise_std * rng.standard_normal((n, world.points))  # (batch, points)
    out = np.full((n, world.points), np.nan)
    for i in range(1, world.points):
        if np.isnan(queries[:, i]).any():
            continue
        xs = np.concatenate([examples[:, :i], queries[:, i:i + 1]], axis=1).astype(np.float32)  # (batch, i+1, dim)
        ys = (world.evaluate(xs.astype(np.float64), info) + noise[:, :i + 1]).astype(np.float32)  # (batch, i+1)
        pred = np.asarray(predict(xs, ys), dtype=np.float64)[:, -1]
        out[:, i] = (pred - ys[:, -1].astype(np.float64)) ** 2
    return out


def prompt_shift_batch(world: RegressionWorld, shift: str, rng: np.random.Generator, n: int, scale: float,
                       noise_std: float) -> VectorBatch:
    """``n`` prompts of a prompt shift."""
    return shifted_world(world, shift, scale, noise_std).sample(rng, n)
