"""In-context predictors that are not transformers (least squares, Lasso, k-NN, ...).

Every baseline speaks the :class:`InContextPredictor` call ``predict(xs, ys, info=None)``
and is registered by name below; adding one is a class plus a line in ``_REGISTRY``.
"""

from __future__ import annotations

from iclab.baselines.averaging import Averaging
from iclab.baselines.base import Baseline, InContextPredictor
from iclab.baselines.evaluate import error_curve, squared_errors
from iclab.baselines.gradient_descent import GradientDescent
from iclab.baselines.knn import KNearestNeighbors
from iclab.baselines.lasso import Lasso, OracleLasso
from iclab.baselines.least_squares import LeastSquares, Ridge
from iclab.baselines.neural_net import TwoLayerNetGD
from iclab.baselines.trees import BoostedTrees, DecisionTreeBaseline
from iclab.errors import UnknownNameError

_REGISTRY: dict[str, type[Baseline]] = {
    LeastSquares.name: LeastSquares,
    Ridge.name: Ridge,
    Lasso.name: Lasso,
    OracleLasso.name: OracleLasso,
    Averaging.name: Averaging,
    KNearestNeighbors.name: KNearestNeighbors,
    GradientDescent.name: GradientDescent,
    DecisionTreeBaseline.name: DecisionTreeBaseline,
    BoostedTrees.name: BoostedTrees,
    TwoLayerNetGD.name: TwoLayerNetGD,
}


def baseline_names() -> list[str]:
    """Names of the registered baselines, sorted."""
    return sorted(_REGISTRY)


def baseline_class(name: str) -> type[Baseline]:
    """The baseline class registered as ``name``; lists the known names if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("baseline", name, baseline_names()) from None


def make_baseline(name: str, **params) -> Baseline:
    """Build the baseline registered as ``name`` with validated parameters."""
    return baseline_class(name)(**params)


__all__ = ["Averaging", "Baseline", "BoostedTrees", "DecisionTreeBaseline", "GradientDescent",
           "InContextPredictor", "KNearestNeighbors", "Lasso", "LeastSquares", "OracleLasso", "Ridge",
           "TwoLayerNetGD",            "baseline_class", "baseline_names", "error_curve", "make_baseline", "squared_errors"]
