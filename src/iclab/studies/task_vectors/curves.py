"""Curves the task-vectors study reads off its rows: loss and TD over training, TD against
error or accuracy. Pure functions of stored rows, shared by measuring and reporting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iclab.metrics.fit import r_squared
from iclab.rows import Rows

Point = tuple[float, float, str]  # (TD, score, "name@where")


@dataclass(frozen=True)
class TrainingCurves:
    """The synthetic part's probe rows as arrays over the probe steps.

    Attributes
    ----------
    steps : ndarray of shape (steps,)
    loss : ndarray of shape (steps,)
        Eval loss over all prompts.
    loss_by_basis : dict of str to ndarray of shape (steps,)
    td, td_repr : ndarray of shape (layers, steps)
        Mean TD per layer at ``probe.td_position`` and at ``probe.repr_position``.
    """

    steps: np.ndarray
    loss: np.ndarray
    loss_by_basis: dict[str, np.ndarray]
    td: np.ndarray
    td_repr: np.ndarray


def training_curves(rows: Rows, n_bases: int, n_layers: int, td_pos: int, repr_pos: int) -> TrainingCurves:
    loss_rows = rows.where(probe="synthetic", metric="loss")
    steps, loss = loss_rows.where(label="all").series("step")
    by_basis = {str(b): loss_rows.where(label=str(b)).series("step")[1] for b in range(n_bases)}
    td_rows = rows.where(probe="td", metric="td")

    def td_at(pos: int) -> np.ndarray:
        return np.stack([td_rows.where(layer=layer, pos=pos).series("step")[1] for layer in range(n_layers)])

    td = td_at(td_pos)
    return TrainingCurves(steps, loss, by_basis, td, td_at(repr_pos) if repr_pos != td_pos else td)


def td_vs_loss(rows: Rows, curves: TrainingCurves, td_pos: int, rank: int) -> tuple[int, list[Point]]:
    """The final best layer, and one point per basis and probe step: the basis's TD at that layer
    against its eval loss divided by ``rank``."""
    best_layer = int(np.argmax(curves.td[:, -1]))
    td_task = rows.where(probe="td", metric="td_task", layer=best_layer, pos=td_pos)
    by_basis = {b: dict(zip(*td_task.where(label=b).series("step"))) for b in curves.loss_by_basis}
    return best_layer, [(by_basis[b][s], float(curves.loss_by_basis[b][i]) / rank, f"{b}@{s}")
                        for i, s in enumerate(curves.steps) for b in curves.loss_by_basis]


def points_r2(points: list[Point]) -> float:
    """R² of the second coordinate on the first over ``points``."""
    return r_squared(np.array([p[0] for p in points]), np.array([p[1] for p in points]))


def marked_steps(steps: np.ndarray, loss: np.ndarray, shares: list[float], reference: float) -> list[int]:
    """For each share ``q``: the first step at which ``reference - loss >= q (reference - min loss)``.

    ``reference`` is the loss of predicting 0 (``mean y²`` of the prompts), so the marks
    follow the in-context gain, not the first steps in which an untrained read-out learns
    to output about 0. No marks if the loss never falls below ``reference``.
    """
    gain = reference - loss  # (steps,)
    if not gain.max() > 0:
        return []
    out = [int(steps[np.argmax(gain >= q * gain.max())]) for q in shares]
    return sorted(dict.fromkeys(out))


def family_td(rows: Rows, family: str, shots: int) -> np.ndarray:
    """Mean TD per layer of a task family at ``shots`` (rows of one model), shape (layers,)."""
    return rows.where(probe="td", metric="td", label=family, pos=shots).series("layer")[1]


def td_accuracy_points(rows: Rows, tasks: list[str], shots: int, layer: int, tag) -> list[Point]:
    """(TD of the task at ``layer``, accuracy of the task, "task@tag") for each task in ``tasks``
    (the family's tasks without Null, which has no accuracy), from the rows of one model at ``shots``."""
    at = rows.where(pos=shots)
    acc = at.where(probe="accuracy", metric="accuracy", label=set(tasks))
    td_task = at.where(probe="td", metric="td_task", layer=layer)
    return [(td_task.value(label=r.label), r.value, f"{r.label.split('-', 1)[-1]}@{tag}") for r in acc]
