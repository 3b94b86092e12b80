"""A linear probe: how much of a target a ridge regression on features recovers, as held-out R².

Features ``h_j ∈ R^p`` (hidden states) and targets ``t_j ∈ R^k`` (e.g. the least-squares
weight vector of the prompt the state was read from) are split into train and test rows. On
the train rows the features are standardised (``z = (h - μ) / s``, per coordinate; ``s`` is
floored at 1e-8) and the centred targets regressed on them with a ridge penalty,

    B = (ZᵀZ + α n I)⁻¹ Zᵀ (T - t̄),        t̂ = t̄ + z B,

with ``n`` the number of train rows (so ``α`` is per row, as in scikit-learn's ``Ridge`` on
averaged losses). On the test rows,

    R² = 1 - Σ_j ||t_j - t̂_j||² / Σ_j ||t_j - t̄_test||²,

the variance-weighted R² over target coordinates (scikit-learn's
``r2_score(multioutput="variance_weighted")``): 1 when the target is a linear function of the
features, about 0 (or below) when the features carry nothing about it. Akyürek, Schuurmans,
Andreas, Ma and Zhou 2023, "What learning algorithm is in-context learning? Investigations
with linear models", section 5 (probing for the OLS weight vector); spec ``mechanisms.md``,
regression-icl.
"""

from __future__ import annotations

import numpy as np


def split_by_group(groups: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Test mask of shape (n,): all rows of a random ``test_fraction`` of the groups (prompts), so a
    prompt's states are never in both halves. At least one group lands on each side."""
    groups = np.asarray(groups)
    ids = np.unique(groups)
    if len(ids) < 2:
        raise ValueError(f"a train/test split needs at least 2 groups (prompts); got {len(ids)}")
    n_test = min(len(ids) - 1, max(1, int(round(test_fraction * len(ids)))))
    test_ids = np.random.default_rng(seed).permutation(ids)[:n_test]
    return np.isin(groups, test_ids)


def ridge_probe_r2(features: np.ndarray, targets: np.ndarray, test: np.ndarray, alpha: float) -> float:
    """Held-out R² of the ridge probe (module docstring).

    Parameters
    ----------
    features : array-like of shape (n, p)
    targets : array-like of shape (n,) or (n, k)
    test : bool array of shape (n,)
        Rows held out; the rest fit the probe. Each side needs at least one row.
    alpha : float
        Ridge penalty per train row, ``>= 0``.

    Returns
    -------
    float
        NaN if the test targets do not vary.
    """
    H = np.asarray(features, dtype=np.float64)
    T = np.asarray(targets, dtype=np.float64).reshape(len(H), -1)  # (n, k)
    test = np.asarray(test, dtype=bool)
    if H.ndim != 2 or test.shape != (len(H),):
        raise ValueError(f"features must be (n, p) and test (n,); got {H.shape} and {test.shape}")
    if test.all() or not test.any():
        raise ValueError("the split needs at least one train row and one test row")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0; got {alpha}")
    Htr, Ttr = H[~test], T[~test]
    mu, sd = Htr.mean(axis=0), np.maximum(Htr.std(axis=0), 1e-8)  # (p,)
    Z = (Htr - mu) / sd  # (n_train, p)
    t_bar = Ttr.mean(axis=0)  # (k,)
    gram = Z.T @ Z + alpha * len(Z) * np.eye(Z.shape[1])  # (p, p)
    B = np.linalg.lstsq(gram, Z.T @ (Ttr - t_bar), rcond=None)[0]  # (p, k)
    pred = t_bar + ((H[test] - mu) / sd) @ B  # (n_test, k)
    ss_tot = ((T[test] - T[test].mean(axis=0)) ** 2).sum()
    if ss_tot == 0:
        return float("nan")
    return float(1 - ((T[test] - pred) ** 2).sum() / ss_tot)
