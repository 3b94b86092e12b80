"""Two-dimensional embeddings of representations, for figures: PCA or UMAP."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np


def embed_2d(H: np.ndarray, method: Literal["pca", "umap"], seed: int, neighbors: int = 15,
             min_dist: float = 0.1) -> np.ndarray:
    """2-D coordinates (n, 2) of features ``H`` (n, d): the top two principal components
    (scikit-learn's PCA), or UMAP with ``n_neighbors`` and ``min_dist`` (umap-learn;
    McInnes et al. 2018), seeded for reproducibility."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(H)
    if method != "umap":
        raise ValueError(f"method = {method!r}; allowed: pca, umap")
    import umap

    with warnings.catch_warnings():  # a seed makes UMAP single-threaded, as iclab wants: not news to a user
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        return umap.UMAP(n_neighbors=neighbors, min_dist=min_dist, random_state=seed).fit_transform(H)
