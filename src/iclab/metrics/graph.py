"""Graph metrics for in-context graph tracing: energies, spectral embedding, alignment.

Park et al., ICLR 2025, "ICLR: In-Context Learning of Representations"; spec
``graph_tracing.md``, Measurements. All functions are model-free: NumPy arrays in,
numbers or arrays out.

- :func:`node_means`: the representation of each node, the mean hidden state at the
  positions of its label in a trailing window of the context.
- :func:`dirichlet_energy`, :func:`normalized_dirichlet_energy`: how smooth a node
  configuration is over the graph.
- :func:`spectral_embedding`: the configuration of minimal energy.
- :func:`procrustes_r2`, :func:`canonical_correlations`: agreement of two configurations.
- :func:`pca`: low-dimensional coordinates for figures.
- :func:`rule_following`: whether the next-label prediction is a neighbour.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import networkx as nx
import numpy as np
from scipy.linalg import eigh
from scipy.special import softmax
from sklearn.decomposition import PCA

from iclab.errors import InputError

# -- representations --------------------------------------------------------------------


def node_means(hidden: np.ndarray, nodes: np.ndarray, window_end: int, window: int | None = 200,
               n_nodes: int | None = None) -> np.ndarray:
    """Mean hidden state of each node over a trailing window of positions.

    Definition: ``x_v = mean{ h[b, t] : nodes[b, t] = v, end - window <= t < end }``,
    pooled over the batch. Park et al., ICLR 2025; spec ``graph_tracing.md``,
    Representations (default window: the last 200 tokens).

    Parameters
    ----------
    hidden : ndarray of shape (batch, pos, d_model) or (pos, d_model)
        Hidden states at one layer; position t holds the state at the label of
        ``nodes[b, t]``.
    nodes : ndarray of shape (batch, pos) or (pos,), int
        Node of each position; negative entries (e.g. a BOS position) are ignored.
    window_end : int
        End (exclusive) of the window, i.e. the context length measured.
    window : int or None, default 200
        Window length, clipped at position 0; None takes every position before the end.
    n_nodes : int, optional
        Number of rows; default ``nodes.max() + 1``. Pass it, or an absent last node
        loses its row.

    Returns
    -------
    ndarray of shape (n_nodes, d_model)
        NaN rows for nodes that do not occur in the window.
    """
    hidden, nodes = np.asarray(hidden), np.asarray(nodes)
    if hidden.ndim == 2:
        hidden = hidden[None]  # (1, pos, d_model)
    nodes = nodes.reshape(-1, nodes.shape[-1])  # (batch, pos)
    if hidden.shape[:2] != nodes.shape:
        raise InputError(f"node_means: hidden {hidden.shape} and nodes {nodes.shape} "
                              "disagree on (batch, pos)")
    if not 0 < window_end <= nodes.shape[1]:
        raise InputError(f"node_means: window_end must be in [1, {nodes.shape[1]}]; got {window_end}")
    n_nodes = int(nodes.max()) + 1 if n_nodes is None else n_nodes
    start = 0 if window is None else max(0, window_end - window)
    h = hidden[:, start:window_end].reshape(-1, hidden.shape[-1])  # (batch * win, d_model)
    v = nodes[:, start:window_end].reshape(-1)  # (batch * win,)
    dtype = np.result_type(h.dtype, np.float32)
    onehot = (v[None, :] == np.arange(n_nodes)[:, None]).astype(dtype)  # (n_nodes, batch * win)
    counts = onehot.sum(axis=1, keepdims=True)  # (n_nodes, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (onehot @ h) / np.where(counts > 0, counts, np.nan)


# -- energies ---------------------------------------------------------------------------


def edge_array(edges) -> np.ndarray:
    """Undirected edges as an int array of shape (n_edges, 2), each ``i < j``, unique.

    Accepts an array-like of pairs or a networkx graph on nodes ``0 .. n-1``; a pair
    given in both directions counts once. Self-loops are an error.
    """
    if isinstance(edges, nx.Graph):
        edges = list(edges.edges)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if np.any(e[:, 0] == e[:, 1]):
        raise InputError("edges: self-loops have no Dirichlet energy; remove them")
    return np.unique(np.sort(e, axis=1), axis=0)


def standardize(X: np.ndarray) -> np.ndarray:
    """Centre each column over nodes, then scale to unit total variance.

    Definition: ``Z = (X - mean_i x_i) / s`` with ``s^2 = sum_i ||x_i - mean||^2 / n``, so
    ``sum_i ||z_i||^2 = n``. X is (n_nodes, d); a configuration with no spread
    (all rows equal) has no scale and gives NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise InputError("standardize: X has NaN or inf rows (absent nodes?); drop them with "
                              "drop_absent_nodes first")
    Xc = X - X.mean(axis=0)  # (n_nodes, d)
    scale = np.sqrt((Xc**2).sum() / X.shape[0])
    return Xc / scale if scale > 0 else np.full_like(Xc, np.nan)


def dirichlet_energy(X: np.ndarray, edges) -> float:
    """Dirichlet energy of a standardised node configuration.

    Definition: ``E(X) = sum_{(i,j) in E} ||z_i - z_j||^2 = tr(Z^T L Z)`` where Z is X
    centred over nodes and scaled to unit total variance (:func:`standardize`), so
    shrinking every vector cannot lower it. Park et al., ICLR 2025; spec
    ``graph_tracing.md``, Dirichlet energy.

    Parameters
    ----------
    X : ndarray of shape (n_nodes, d)
        Node configuration, e.g. :func:`node_means` at one layer (d = d_model) or its
        top principal components.
    edges : array-like of shape (n_edges, 2), or networkx.Graph
        Undirected edges on nodes ``0 .. n_nodes-1``.

    Returns
    -------
    float
        NaN if every row of X is the same.
    """
    Z, e = standardize(X), edge_array(edges)
    return float(((Z[e[:, 0]] - Z[e[:, 1]]) ** 2).sum())


def expected_permutation_energy(n_nodes: int, n_edges: int) -> float:
    """Expected :func:`dirichlet_energy` when the rows of X are uniformly permuted.

    Definition: ``E_pi[E(X_pi)] = |E| * 2n / (n - 1)``, the same for every X with spread.
    Derivation: standardising is permutation invariant; an edge lands on a uniform pair
    ``a != b`` of nodes, and for centred Z with ``sum ||z_a||^2 = n``,
    ``sum_{a != b} ||z_a - z_b||^2 = 2n * sum_a ||z_a||^2 = 2n^2``, so each edge expects
    ``2n^2 / (n(n-1)) = 2n / (n-1)``. Spec ``graph_tracing.md``, Dirichlet energy.
    """
    if n_nodes < 2:
        raise InputError(f"expected_permutation_energy: need >= 2 nodes; got {n_nodes}")
    return n_edges * 2.0 * n_nodes / (n_nodes - 1)


def normalized_dirichlet_energy(X: np.ndarray, edges) -> float:
    """Dirichlet energy relative to its expectation under a random permutation of nodes.

    Definition: ``E(X) / E_pi[E(X_pi)] = E(X) (n - 1) / (2n |E|)``; 1 means no graph
    structure, below 1 means graph neighbours sit closer than random pairs (the minimum,
    ``lambda_2 (n - 1) / (2 |E|)``, is reached by the Fiedler vector; for a square grid also
    by the 2-D :func:`spectral_embedding`). Exact closed form
    (:func:`expected_permutation_energy`); :func:`permutation_energies` gives the
    Monte-Carlo null. Park et al., ICLR 2025; spec ``graph_tracing.md``, Dirichlet energy.

    Parameters
    ----------
    X : ndarray of shape (n_nodes, d)
    edges : array-like of shape (n_edges, 2), or networkx.Graph

    Returns
    -------
    float
    """
    e = edge_array(edges)
    return dirichlet_energy(X, e) / expected_permutation_energy(np.asarray(X).shape[0], e.shape[0])


def permutation_energies(X: np.ndarray, edges, rng: np.random.Generator, n_perm: int = 100) -> np.ndarray:
    """Dirichlet energies of X with its rows uniformly permuted, shape (n_perm,).

    The Monte-Carlo null of :func:`normalized_dirichlet_energy` (its mean tends to
    :func:`expected_permutation_energy`), e.g. for a permutation p-value.
    """
    Z, e = standardize(X), edge_array(edges)
    out = np.empty(n_perm)
    for k in range(n_perm):
        p = rng.permutation(Z.shape[0])
        out[k] = ((Z[p[e[:, 0]]] - Z[p[e[:, 1]]]) ** 2).sum()
    return out


def drop_absent_nodes(X: np.ndarray, edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Restrict a configuration and its graph to the nodes with finite rows.

    Returns ``(X_kept (n_kept, d), edges_kept (n_edges_kept, 2) renumbered, kept (n_kept,))``,
    the induced subgraph, for nodes that :func:`node_means` left NaN.
    """
    X = np.asarray(X)
    kept = np.nonzero(np.all(np.isfinite(X), axis=1))[0]
    e = edge_array(edges)
    new = np.full(X.shape[0], -1)
    new[kept] = np.arange(kept.size)
    e = new[e]
    return X[kept], e[np.all(e >= 0, axis=1)], kept


# -- spectral embedding -------------------------------------------------------------------


def spectral_embedding(graph, k: int = 2) -> np.ndarray:
    """Laplacian eigenvectors 2 .. k+1 of a graph: its minimal-energy configuration.

    Definition: ``L = D - A``, ``L u_i = lambda_i u_i`` with ``lambda_1 <= lambda_2 <= ...``;
    returns ``[u_2, ..., u_{k+1}]``. Among centred configurations with orthonormal
    columns it minimises ``tr(U^T L U)``, the Dirichlet energy; the seed's
    energy-minimisation hypothesis predicts that representations approach it. Park et
    al., ICLR 2025; spec ``graph_tracing.md``, Spectral embedding.

    Parameters
    ----------
    graph : networkx.Graph on nodes ``0 .. n-1``, or ndarray of shape (n_nodes, n_nodes)
        Graph or (symmetric, possibly weighted) adjacency matrix.
    k : int, default 2

    Returns
    -------
    ndarray of shape (n_nodes, k)
        Unit-norm columns, each signed so that its largest-magnitude entry is positive.
        Within a repeated eigenvalue (e.g. the x and y modes of a square grid) the
        basis is arbitrary: compare with rotation-invariant scores (:func:`procrustes_r2`).
    """
    if isinstance(graph, nx.Graph):
        A = nx.to_numpy_array(graph, nodelist=range(graph.number_of_nodes()))
    else:
        A = np.asarray(graph, dtype=np.float64)
    n = A.shape[0]
    if not 1 <= k <= n - 1:
        raise InputError(f"spectral_embedding: k must be in [1, {n - 1}] for {n} nodes; got {k}")
    L = np.diag(A.sum(axis=1)) - A  # (n_nodes, n_nodes)
    _, U = eigh(L, subset_by_index=[1, k])  # (n_nodes, k), ascending eigenvalues
    peak = U[np.argmax(np.abs(U), axis=0), np.arange(k)]
    return U * np.sign(peak)


# -- agreement of configurations ------------------------------------------------------


def procrustes_r2(X: np.ndarray, Y: np.ndarray) -> float:
    """Share of Y's variance that a rotated, scaled copy of X explains (orthogonal Procrustes).

    Definition: with X and Y centred and scaled to unit Frobenius norm,
    ``R^2 = 1 - min_{s, R^T R = I} ||s X R - Y||_F^2 = ||X^T Y||_*^2`` (the nuclear norm:
    the sum of singular values), in [0, 1], symmetric in X and Y. Equals
    ``1 - disparity`` of ``scipy.spatial.procrustes``; widths p and q may differ (the
    narrower one is padded with zeros). Spec ``graph_tracing.md``, Spectral embedding.

    Parameters
    ----------
    X : ndarray of shape (n_nodes, p)
    Y : ndarray of shape (n_nodes, q)

    Returns
    -------
    float
        NaN if either configuration has no spread. With p or q near n_nodes even random
        configurations agree: compare low-dimensional ones (e.g. top 2-3 components).
    """
    Xs, Ys = _unit_frobenius(X), _unit_frobenius(Y)
    if Xs.shape[0] != Ys.shape[0]:
        raise InputError(f"procrustes_r2: X has {Xs.shape[0]} rows and Y {Ys.shape[0]}; need the same nodes")
    nuclear = np.linalg.svd(Xs.T @ Ys, compute_uv=False).sum()  # Xs.T @ Ys: (p, q)
    return float(min(nuclear**2, 1.0))


def canonical_correlations(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Canonical correlations between two configurations, descending, shape (min(rank X, rank Y),).

    Definition: the singular values of ``Q_X^T Q_Y``, with ``Q_X``, ``Q_Y`` orthonormal
    bases of the centred column spaces. Their mean square is a CCA agreement score in
    [0, 1], invariant to any invertible linear map of either side (so it needs
    p + q well below n_nodes to mean anything). Spec ``graph_tracing.md``, Spectral
    embedding ("e.g. CCA or Procrustes R^2").

    Parameters
    ----------
    X : ndarray of shape (n_nodes, p)
    Y : ndarray of shape (n_nodes, q)
    """
    Qx, Qy = _orthonormal_basis(X), _orthonormal_basis(Y)
    return np.clip(np.linalg.svd(Qx.T @ Qy, compute_uv=False), 0.0, 1.0)


def _unit_frobenius(X: np.ndarray) -> np.ndarray:
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    norm = np.linalg.norm(Xc)
    return Xc / norm if norm > 0 else np.full_like(Xc, np.nan)


def _orthonormal_basis(X: np.ndarray) -> np.ndarray:
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    # drop directions at round-off level, which would otherwise correlate at random
    return U[:, s > s.max(initial=0.0) * max(Xc.shape) * np.finfo(float).eps]


# -- PCA ----------------------------------------------------------------------------------


class PCAResult(NamedTuple):
    """Coordinates (n_samples, k) and explained variance ratio (k,) of a PCA."""

    coords: np.ndarray
    explained_variance_ratio: np.ndarray


def pca(X: np.ndarray, k: int = 2) -> PCAResult:
    """Top-k principal components of a node configuration (scikit-learn PCA, full SVD).

    Definition: ``coords = (X - mean) V_k`` with ``V_k`` the top-k right singular vectors
    of the centred X (signs fixed by scikit-learn's ``svd_flip``). Spec
    ``graph_tracing.md``, PCA.

    Parameters
    ----------
    X : ndarray of shape (n_nodes, d_model)
    k : int, default 2
        At most ``min(n_nodes, d_model)``.
    """
    X = np.asarray(X, dtype=np.float64)
    if not 1 <= k <= min(X.shape):
        raise InputError(f"pca: k must be in [1, {min(X.shape)}] for X of shape {X.shape}; got {k}")
    model = PCA(n_components=k, svd_solver="full").fit(X)
    return PCAResult(model.transform(X), model.explained_variance_ratio_)


# -- rule following -----------------------------------------------------------------------


class RuleFollowing(NamedTuple):
    """Per-position rule following: ``correct`` (bool) and ``neighbor_mass`` (float), shape (...)."""

    correct: np.ndarray
    neighbor_mass: np.ndarray


def rule_following(logits_over_labels: np.ndarray, current_nodes: np.ndarray,
                   adjacency: np.ndarray) -> RuleFollowing:
    """Whether the predicted next label is a neighbour of the current node.

    Definition: with ``p = softmax(logits over the node labels)`` at a position whose
    node is v, ``correct = A[v, argmax p]`` and ``neighbor_mass = sum_{u in N(v)} p_u``.
    Park et al., ICLR 2025; spec ``graph_tracing.md``, Rule-following accuracy.

    Parameters
    ----------
    logits_over_labels : ndarray of shape (..., n_nodes)
        Next-token logits restricted to the label tokens, column u for node u's label
        (e.g. ``logits[..., labels]``).
    current_nodes : ndarray of shape (...), int
        Node at each position (the one whose successor is predicted).
    adjacency : ndarray of shape (n_nodes, n_nodes), bool

    Returns
    -------
    RuleFollowing
        Both fields of shape (...). Ties in the argmax go to the lowest node index.
    """
    logits = np.asarray(logits_over_labels, dtype=np.float64)
    nodes, A = np.asarray(current_nodes), np.asarray(adjacency, dtype=bool)
    if logits.shape[:-1] != nodes.shape or logits.shape[-1] != A.shape[0]:
        raise InputError(f"rule_following: logits {logits.shape} need shape current_nodes {nodes.shape} "
                              f"+ (n_nodes={A.shape[0]},)")
    valid = A[nodes]  # (..., n_nodes)
    top = np.argmax(logits, axis=-1)  # (...)
    correct = np.take_along_axis(valid, top[..., None], axis=-1)[..., 0]
    mass = (softmax(logits, axis=-1) * valid).sum(axis=-1)
    return RuleFollowing(correct, mass)


def natural_ring_edges(order: np.ndarray) -> np.ndarray:
    """Edges, in ring-node numbering, between nodes whose items are neighbours in the
    natural cyclic order (Monday–Tuesday, ..., Sunday–Monday); ``order`` (n,) is the item
    of each ring node (``GraphWorld.word_index``)."""
    n = order.size
    gap = (order[:, None] - order[None, :]) % n  # (n, n)
    return edge_array(np.argwhere(np.triu(gap == 1) | np.triu(gap == n - 1)))


def conflict_energies(means: np.ndarray, ring: np.ndarray, natural: np.ndarray) -> dict[str, np.ndarray]:
    """Normalised energies of PC1-2 and PC3-4 against the in-context ring and the pretrained
    order, averaged over walks.

    ``means`` is (n_walks, C, n_nodes, d_model) (NaN rows for absent nodes); returns arrays of
    shape (C,) named ``energy_pc12_context``, ``energy_pc34_context``,
    ``energy_pc12_pretrained``, ``energy_pc34_pretrained``.
    """
    n_walks, C = means.shape[:2]
    out = {f"energy_pc{pcs}_{graph}": np.full((n_walks, C), np.nan)
           for graph in ("context", "pretrained") for pcs in ("12", "34")}
    for w in range(n_walks):
        for ci in range(C):
            X = means[w, ci]  # (n_nodes, d_model)
            if not np.isfinite(X).all() or min(X.shape) < 4:  # measured only when every item is in the window
                continue
            coords = pca(X, k=4).coords  # (n_nodes, 4)
            for graph, edges in (("context", ring), ("pretrained", natural)):
                out[f"energy_pc12_{graph}"][w, ci] = normalized_dirichlet_energy(coords[:, :2], edges)
                out[f"energy_pc34_{graph}"][w, ci] = normalized_dirichlet_energy(coords[:, 2:4], edges)
    with warnings.catch_warnings():  # a context no walk could measure stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: np.nanmean(v, axis=0) for k, v in out.items()}
