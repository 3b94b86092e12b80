"""Lasso on the prompt, and the oracle Lasso that knows the true support.

At position ``i``, with ``X = xs[b, :i]`` and ``y = ys[b, :i]``:

- Lasso: ``ŵ = argmin (1 / 2i) ||Xw - y||² + α ||w||₁`` (scikit-learn's objective, no
  intercept), ``ŷ_i = x_iᵀ ŵ``;
- oracle Lasso: the same problem over the columns of the prompt's true support ``S``
  only (``w_j = 0`` for ``j ∉ S``), the Lasso restricted to the true basis.

Garg, Tsipras, Liang and Valiant 2022 (their ``LassoModel``, for sparse linear functions);
Han, Song, Gore and Agrawal, ICML 2025 (the oracle, for the sparse mixture); spec
``mechanisms.md``, regression-icl, and ``task_vectors.md``, synthetic part.

Convergence. Each fit is scikit-learn's coordinate descent, run until the duality gap of
``(1/2)||Xw - y||² + iα||w||₁`` is below ``tol · ||y||²`` (scikit-learn's criterion). Its
default ``tol = 1e-4`` stops far from the minimum when ``i < d`` (the problem is
underdetermined and coordinate descent slow): on 16-dimensional sparse prompts such fits
predict up to several times the converged value. The default here, ``tol = 1e-10``, gives
predictions within about 1e-6 of the exact solution (scikit-learn's LARS path,
``LassoLars``, the reference of the tests), and a converged ``ŵ`` satisfies the Lasso's
optimality (KKT) conditions

    (1/i) X_jᵀ(y - Xŵ) = α sign(ŵ_j)  if ŵ_j ≠ 0,      |(1/i) X_jᵀ(y - Xŵ)| ≤ α  if ŵ_j = 0.

A fit that has not reached ``tol`` after ``max_iter`` sweeps (this happens with one or two
examples, whose nearly collinear columns make coordinate descent crawl) is replaced by the
exact solution of the LARS path (``LassoLars``) if that satisfies the KKT conditions to
``1e-6 α``, or else by coordinate descent started again from that solution; failing all
three, it raises :class:`LassoConvergenceError` (naming the prompt, the
position and what to change). No ``ConvergenceWarning`` reaches the user, and an unconverged
fit is never returned. Garg et al. turn the warning into an error; their ``max_iter`` is 1e5;
at ``α = 0.01`` a few 16-dimensional fits with ``i < d`` need ≈ 2e5 sweeps, so the default
here is 1e6.

Each prompt and position is one fit, so these cost ``batch · points`` fits (≈ 1-2 ms each
at the default ``tol``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso as _SkLasso
from sklearn.linear_model import LassoLars

from iclab.baselines.base import Baseline, check_prompts, truth
from iclab.errors import IclabError
from iclab.limits import MAX_STEPS


class LassoConvergenceError(IclabError, RuntimeError):
    """A Lasso fit that did not reach its tolerance within ``max_iter`` coordinate-descent sweeps."""


def kkt_violation(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> float:
    """Largest violation of the Lasso's optimality conditions at ``w`` (0 at the exact minimum): with
    ``c = (1/i) xᵀ(y - xw)``, ``|c_j - α sign(w_j)|`` where ``w_j ≠ 0`` and ``|c_j| - α`` (if positive) where
    ``w_j = 0``."""
    c = x.T @ (y - x @ w) / len(y)  # (p,)
    active = w != 0
    on = np.abs(c[active] - alpha * np.sign(w[active])).max(initial=0.0)
    off = (np.abs(c[~active]) - alpha).max(initial=0.0)
    return float(max(on, off, 0.0))


def lasso_fit(x: np.ndarray, y: np.ndarray, alpha: float, tol: float = 1e-10, max_iter: int = 1_000_000,
              where: str = "") -> np.ndarray:
    """``argmin (1/2i)||xw - y||² + α||w||₁`` of ``x`` (i, p), ``y`` (i,): ``w`` of shape (p,).

    Coordinate descent from 0 (scikit-learn's ``Lasso``, no intercept) until the duality gap is below
    ``tol · ||y||²``. If ``max_iter`` sweeps do not get there (nearly collinear columns, as with one or
    two examples, make coordinate descent crawl), the exact solution of the LARS path (scikit-learn's
    ``LassoLars``) is taken instead, provided it satisfies the optimality conditions to ``1e-6 α``
    (:func:`kkt_violation`); where it does not (its path can degenerate), coordinate descent starts again
    from it; failing that, :class:`LassoConvergenceError` (``where`` says which fit it was).
    """
    if x.shape[1] == 0:
        return np.zeros(0)

    def descend(start: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        fit = _SkLasso(alpha=alpha, fit_intercept=False, tol=tol, max_iter=max_iter, warm_start=start is not None)
        if start is not None:
            fit.coef_ = start.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                return fit.fit(x, y).coef_, ""
            except ConvergenceWarning as w:
                return None, " ".join(str(w).split())

    w, message = descend(None)
    if w is not None:
        return w
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LARS's own warnings: its answer is judged by the KKT check below
        exact = LassoLars(alpha=alpha, fit_intercept=False).fit(x, y).coef_
    if kkt_violation(x, y, exact, alpha) <= 1e-6 * alpha:
        return exact
    w, message = descend(exact)  # LARS lands near the minimum even where its path degenerates
    if w is not None:
        return w
    raise LassoConvergenceError(
        f"Lasso(alpha={alpha}) did not converge{where}: after max_iter={max_iter} sweeps the duality gap is "
        f"above tol={tol} × ||y||², also from the LARS solution; raise max_iter, or loosen tol (predictions are "
        f"then only approximate), or raise alpha. scikit-learn: {message}")


class Lasso(Baseline):
    """L1-penalised least squares, ``ŵ = argmin (1/2i)||Xw - y||² + α||w||₁``, fitted to convergence.

    Parameters
    ----------
    alpha : float, default 0.01
        Penalty ``α > 0``; small values approach basis pursuit, which suits noiseless
        sparse ``w`` (Garg et al. compare α from 1e-4 to 1).
    tol : float, default 1e-10
        Stop when the duality gap is below ``tol · ||y||²`` (see the module docstring);
        ``0 < tol < 1``.
    max_iter : int, default 1000000
        Most coordinate-descent sweeps per fit; a fit that needs more takes the LARS solution if it
        passes the KKT check, else raises :class:`LassoConvergenceError`.
    """

    name: ClassVar[str] = "lasso"

    alpha: float = Field(0.01, gt=0.0)
    tol: float = Field(1e-10, gt=0.0, lt=1.0)
    max_iter: int = Field(1_000_000, ge=1, le=MAX_STEPS)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        i = train_xs.shape[1]
        return np.array([query[b] @ lasso_fit(train_xs[b], train_ys[b], self.alpha, self.tol, self.max_iter,
                                              f" on prompt {b} at position {i}")
                         for b in range(len(query))])


class OracleLasso(Baseline):
    """Lasso restricted to the prompt's true support: ``w_j = 0`` for ``j ∉ S_b``.

    Reads ``info["support"]``, a bool array of shape (batch, dim) (the sparse worlds put
    it in every batch). Parameters and convergence as :class:`Lasso`.

    Parameters
    ----------
    alpha : float, default 0.01
    tol : float, default 1e-10
    max_iter : int, default 1000000
    """

    name: ClassVar[str] = "oracle-lasso"
    needs_truth: ClassVar[bool] = True

    alpha: float = Field(0.01, gt=0.0)
    tol: float = Field(1e-10, gt=0.0, lt=1.0)
    max_iter: int = Field(1_000_000, ge=1, le=MAX_STEPS)

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
                w = lasso_fit(x[:i], ys[b, :i], self.alpha, self.tol, self.max_iter, f" on prompt {b} at position {i}")
                preds[b, i] = x[i] @ w
        return preds
