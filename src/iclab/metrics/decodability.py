"""Task decodability (TD): how well a leave-one-out k-NN vote recovers the latent task.

Given features ``h_1..h_n`` (hidden states at one layer, one per prompt) with task labels
``z_1..z_n``, each point's task is predicted by a majority vote of the ``k`` points
nearest to it (Euclidean) among all *other* points:

    ẑ_j = argmax_t |{ m ∈ N_k(j) : z_m = t }|,    N_k(j) ⊂ {1..n} \\ {j}

    TD_t = |{ j : z_j = t, ẑ_j = t }| / |{ j : z_j = t }|,    TD = (1/T) Σ_t TD_t

Han, Song, Gore and Agrawal, ICML 2025, "Emergence and Effectiveness of Task Vectors in
In-Context Learning: An Encoder Decoder Perspective"; spec ``task_vectors.md``, task
decodability (k = 10, N = 100 prompts per task, a Null class among the tasks).

The mean is over tasks (macro average), so a task with more prompts does not weigh more;
with equally many prompts per task, as the spec prescribes, it equals the overall share
of correct votes.

Ties, broken so the result depends on nothing but the data and its order:

- *neighbours*: points are ranked by (distance, index); among points at the same distance
  the one that comes first in ``H`` is nearer. Distances are computed pair by pair
  (``scipy.spatial.distance.cdist``), so identical points are at distance exactly 0.
- *votes*: among the tasks with the most votes, the one whose nearest voter is nearest
  wins (the vote falls back to the closest neighbour of the tied tasks), which does not
  favour any label by its name or order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

# rows of the distance matrix computed at once; bounds memory at _CHUNK · n floats
_CHUNK = 512


def _check(H: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    H = np.asarray(H, dtype=np.float64)
    z = np.asarray(z)
    if H.ndim != 2:
        raise ValueError(f"H must have shape (n, d); got shape {H.shape}")
    if z.shape != (H.shape[0],):
        raise ValueError(f"z must have shape (n,) = ({H.shape[0]},); got shape {z.shape}")
    if not np.isfinite(H).all():
        raise ValueError("H has non-finite values (nan or inf)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    if k > H.shape[0] - 1:
        raise ValueError(f"k ({k}) must be <= n - 1 ({H.shape[0] - 1}): each point votes among the others")
    return H, z


def loo_knn_predict(H: np.ndarray, z: np.ndarray, k: int = 10) -> np.ndarray:
    """Leave-one-out k-NN majority vote ``ẑ`` of shape (n,), with the module's tie rules.

    Parameters
    ----------
    H : array-like of shape (n, d)
        One feature vector per point.
    z : array-like of shape (n,)
        Task label of each point (ints or strings).
    k : int, default 10
        Voters per point, ``1 <= k <= n - 1``.

    Returns
    -------
    ndarray of shape (n,)
        Predicted label of each point, with the dtype of ``z``.
    """
    H, z = _check(H, z, k)
    labels, codes = np.unique(z, return_inverse=True)  # codes: (n,) in [0, T)
    n, T = len(z), len(labels)
    pred = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        dist = cdist(H[rows], H, "sqeuclidean")  # (chunk, n)
        dist[np.arange(len(rows)), rows] = np.inf  # leave the point itself out
        # a stable sort ranks equal distances by index
        voters = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (chunk, k), nearest first
        votes = codes[voters]  # (chunk, k)
        counts = np.zeros((len(rows), T), dtype=np.int64)  # (chunk, T)
        np.add.at(counts, (np.arange(len(rows))[:, None], votes), 1)
        top = counts.max(axis=1, keepdims=True)  # (chunk, 1)
        tied = np.take_along_axis(counts, votes, axis=1) == top  # (chunk, k): voter's task is a winner
        first = np.argmax(tied, axis=1)  # nearest voter of a winning task
        pred[rows] = votes[np.arange(len(rows)), first]
    return labels[pred]


def task_decodability(H: np.ndarray, z: np.ndarray, k: int = 10) -> tuple[float, dict[Any, float]]:
    """Task decodability: the mean over tasks of the share of points whose LOO k-NN vote is right.

    ``TD_t = |{j : z_j = t, ẑ_j = t}| / |{j : z_j = t}|`` and ``TD = mean_t TD_t`` with
    ``ẑ`` from :func:`loo_knn_predict`. Han et al., ICML 2025; spec ``task_vectors.md``.

    Parameters
    ----------
    H : array-like of shape (n, d)
        Hidden states, one per prompt, pooled over tasks.
    z : array-like of shape (n,)
        Latent task of each prompt.
    k : int, default 10

    Returns
    -------
    mean_td : float
        Mean of the per-task values; chance is ``1 / n_tasks`` for balanced tasks.
    per_task : dict
        Task label (a Python scalar) -> TD_t, in sorted label order.
    """
    z = np.asarray(z)
    correct = loo_knn_predict(H, z, k) == z  # (n,)
    per_task = {t.item() if hasattr(t, "item") else t: float(correct[z == t].mean()) for t in np.unique(z)}
    return float(np.mean(list(per_task.values()))), per_task


@dataclass(frozen=True)
class DecodabilityProfile:
    """Task decodability at every layer.

    Attributes
    ----------
    layers : tuple
        Layer keys in order (0-based ints, or the dict's keys).
    mean : ndarray of shape (layers,)
        Mean TD per layer.
    per_task : dict
        Task label -> ndarray of shape (layers,).
    k : int
        Voters per point.
    """

    layers: tuple
    mean: np.ndarray
    per_task: dict[Any, np.ndarray]
    k: int

    @property
    def best_layer(self) -> Any:
        """The layer of highest mean TD (the first one if several tie)."""
        return self.layers[int(np.argmax(self.mean))]

    @property
    def best(self) -> float:
        """The highest mean TD over layers."""
        return float(np.max(self.mean))


def td_profile(H_layers: np.ndarray | Mapping[Any, np.ndarray], z: np.ndarray, k: int = 10) -> DecodabilityProfile:
    """Task decodability at each layer: :func:`task_decodability` per layer, same labels.

    Spec ``task_vectors.md`` ("compute at every layer; report the profile over layers and
    the best layer"); Han et al., ICML 2025.

    Parameters
    ----------
    H_layers : array-like of shape (layers, n, d), or mapping of layer -> (n, d)
        Hidden states of the same ``n`` prompts at each layer. An array's layers are
        numbered 0, 1, ...; a mapping keeps its keys and order.
    z : array-like of shape (n,)
    k : int, default 10

    Returns
    -------
    DecodabilityProfile
    """
    if isinstance(H_layers, Mapping):
        items = list(H_layers.items())
    else:
        arr = np.asarray(H_layers)
        if arr.ndim != 3:
            raise ValueError(f"H_layers must have shape (layers, n, d) or be a dict; got shape {arr.shape}")
        items = list(enumerate(arr))
    if not items:
        raise ValueError("H_layers has no layers")
    means, per = [], []
    for _, H in items:
        m, p = task_decodability(H, z, k)
        means.append(m)
        per.append(p)
    per_task = {t: np.array([p[t] for p in per]) for t in per[0]}
    return DecodabilityProfile(tuple(layer for layer, _ in items), np.array(means), per_task, k)
