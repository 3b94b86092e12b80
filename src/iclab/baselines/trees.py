"""Tree learners on the prompt: a greedy decision tree and gradient-boosted trees.

At position ``i`` each fits scikit-learn's regressor to ``(xs[b, :i], ys[b, :i])`` and
predicts at ``xs[b, i]``. These are the baselines for the decision-tree world: greedy
CART (``DecisionTreeRegressor``, squared error) and gradient boosting
(``GradientBoostingRegressor``, standing in for Garg et al.'s XGBoost). Garg, Tsipras,
Liang and Valiant 2022, section 5; spec ``mechanisms.md``, regression-icl.

Fits use ``random_state=0``: the only randomness is the order in which tied features
are tried, fixed so that predictions are reproducible. One fit per prompt and
position: boosting costs ≈ 10-50 ms a fit, so keep batches small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.tree import DecisionTreeRegressor

from iclab.baselines.base import Baseline
from iclab.limits import MAX_ITEMS


class DecisionTreeBaseline(Baseline):
    """A greedy regression tree (CART) fitted to the examples.

    Parameters
    ----------
    max_depth : int or None, default None
        None grows the tree until leaves are pure (Garg et al. evaluate 4 and None).
    """

    name: ClassVar[str] = "decision-tree"

    max_depth: int | None = Field(None, ge=1, le=MAX_ITEMS)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        out = np.empty(len(query))
        for b in range(len(query)):
            tree = DecisionTreeRegressor(max_depth=self.max_depth, random_state=0)
            out[b] = tree.fit(train_xs[b], train_ys[b]).predict(query[b : b + 1])[0]
        return out


class BoostedTrees(Baseline):
    """Gradient-boosted regression trees (squared error) fitted to the examples.

    Parameters
    ----------
    n_estimators : int, default 100
    learning_rate : float, default 0.1
    max_depth : int, default 3
        Defaults are scikit-learn's.
    """

    name: ClassVar[str] = "boosted-trees"

    n_estimators: int = Field(100, ge=1, le=MAX_ITEMS)
    learning_rate: float = Field(0.1, gt=0.0)
    max_depth: int = Field(3, ge=1, le=MAX_ITEMS)

    def predict_next(self, train_xs: np.ndarray, train_ys: np.ndarray, query: np.ndarray,
                     info: Mapping[str, np.ndarray] | None) -> np.ndarray:
        out = np.empty(len(query))
        for b in range(len(query)):
            model = GradientBoostingRegressor(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                              max_depth=self.max_depth, random_state=0)
            out[b] = model.fit(train_xs[b], train_ys[b]).predict(query[b : b + 1])[0]
        return out
