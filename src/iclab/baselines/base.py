"""One call for every in-context predictor: ``predict(xs, ys) -> preds``.

An in-context predictor reads a prompt ``(x_1, y_1, ..., x_n, y_n)`` and, at every
position ``i``, predicts ``y_i`` from the examples before it and the query ``x_i``:

    preds[b, i] = A(xs[b, :i], ys[b, :i]; xs[b, i])

so ``preds[:, 0]`` uses no example (every baseline here predicts 0 there). A transformer
and every baseline share this call, so an evaluation loops over ``[model, *baselines]``
(Garg, Tsipras, Liang and Valiant 2022, their ``(xs, ys, inds) -> preds``; spec
``mechanisms.md``, regression-icl, and ``task_vectors.md`` for the oracle Lasso).

Truth: ``predict`` takes an optional ``info`` mapping (a batch's
:attr:`~iclab.worlds.base.VectorBatch.info`). Ordinary baselines ignore it; an oracle
(``needs_truth = True``) reads the key it documents and raises a :class:`ValueError`
naming that key when it is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict


@runtime_checkable
class InContextPredictor(Protocol):
    """What evaluation needs of a predictor: a ``name`` and ``predict``.

    ``predict(xs, ys, info=None)`` takes ``xs`` of shape (batch, points, dim) and ``ys`` of
    shape (batch, points) and returns ``preds`` of shape (batch, points), where
    ``preds[:, i]`` depends only on ``xs[:, :i+1]`` and ``ys[:, :i]``.
    """

    name: str

    def predict(self, xs: np.ndarray, ys: np.ndarray,
                info: Mapping[str, np.ndarray] | None = None) -> np.ndarray: ...


def check_prompts(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``xs`` (batch, points, dim) and ``ys`` (batch, points) as float64, shapes checked."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.ndim != 3:
        raise ValueError(f"xs must have shape (batch, points, dim); got shape {xs.shape}")
    if ys.shape != xs.shape[:2]:
        raise ValueError(f"ys must have shape (batch, points) = {xs.shape[:2]}; got shape {ys.shape}")
    return xs, ys


class Baseline(BaseModel):
    """Base class of the baselines: validated parameters and the prefix loop.

    Subclasses declare their parameters as pydantic fields, set ``name`` (the registry
    key), and implement either :meth:`predict_next` (one position for the whole batch;
    :meth:`predict` loops over positions) or :meth:`predict` itself when the whole curve
    has a closed form. Parameters are validated on construction, as a world's are.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: ClassVar[str] = ""
    #: True for oracles that read the truth from ``info``.
    needs_truth: ClassVar[bool] = False

    @property
    def label(self) -> str:
        """Name and parameters, for figure legends and result rows: ``"ridge(alpha=0.01)"``."""
        params = ", ".join(f"{k}={v}" for k, v in self.model_dump().items())
        return f"{self.name}({params})"

    def predict(self, xs: np.ndarray, ys: np.ndarray,
                info: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Predictions of shape (batch, points); ``preds[:, i]`` from the first ``i`` examples.

        Parameters
        ----------
        xs : array-like of shape (batch, points, dim)
        ys : array-like of shape (batch, points)
        info : mapping of str to ndarray, optional
            Per-prompt truth (leading axis ``batch``); read only by oracles.
        """
        xs, ys = check_prompts(xs, ys)
        preds = np.zeros(ys.shape)  # (batch, points); column 0 stays 0: no examples
        for i in range(1, ys.shape[1]):
            preds[:, i] = self.predict_next(xs[:, :i], ys[:, :i], xs[:, i], info)
        return preds

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        """Prediction of shape (batch,) at ``query`` (batch, dim) from ``train_xs``
        (batch, i, dim) and ``train_ys`` (batch, i), ``i >= 1``."""
        raise NotImplementedError(f"{type(self).__name__} does not define predict_next()")


def truth(info: Mapping[str, np.ndarray] | None, key: str, owner: str, batch: int) -> np.ndarray:
    """``info[key]`` for an oracle, with an error naming the key if it is missing."""
    if info is None or key not in info:
        have = sorted(info) if info is not None else []
        raise ValueError(f"{owner} is an oracle: it needs info[{key!r}] (the batch's truth); "
                         f"got info keys {have}")
    value = np.asarray(info[key])
    if value.shape[0] != batch:
        raise ValueError(f"info[{key!r}] has leading axis {value.shape[0]}, but the batch has {batch} prompts")
    return value
