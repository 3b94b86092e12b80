"""Graph metrics against hand-computed answers and independent computations."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.spatial import procrustes
from scipy.stats import ortho_group

from iclab.errors import InputError
from iclab.metrics.graph import (
    canonical_correlations,
    dirichlet_energy,
    drop_absent_nodes,
    edge_array,
    expected_permutation_energy,
    node_means,
    normalized_dirichlet_energy,
    pca,
    permutation_energies,
    procrustes_r2,
    rule_following,
    spectral_embedding,
)

PATH4 = [(0, 1), (1, 2), (2, 3)]


def _grid(rows: int = 4, cols: int = 4) -> nx.Graph:
    return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols), ordering="sorted")


def test_dirichlet_energy_path_by_hand():
    # x = 0,1,2,3: centred -1.5,-.5,.5,1.5, total variance 5/4; each edge (1/sqrt(1.25))^2
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert dirichlet_energy(X, PATH4) == pytest.approx(3 / 1.25)
    # 2-D: (0,0),(1,0),(1,1),(0,1): centred (+-.5,+-.5), variance .5; each edge 1/.5
    Y = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert dirichlet_energy(Y, PATH4) == pytest.approx(6.0)


def test_dirichlet_energy_ignores_scale_shift_and_edge_duplicates():
    X = np.random.default_rng(0).normal(size=(4, 3))
    e = dirichlet_energy(X, PATH4)
    assert dirichlet_energy(0.01 * X + 5, PATH4) == pytest.approx(e)
    assert dirichlet_energy(X, PATH4 + [(1, 0), (3, 2)]) == pytest.approx(e)
    assert np.isnan(dirichlet_energy(np.ones((4, 2)), PATH4))
    with pytest.raises(InputError):
        dirichlet_energy(X, [(0, 0)])


def test_expected_permutation_energy_matches_monte_carlo():
    G = _grid()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 5)) * [1, 2, 3, 4, 5]
    null = permutation_energies(X, G, rng, n_perm=4000)
    exact = expected_permutation_energy(16, G.number_of_edges())
    assert exact == pytest.approx(24 * 32 / 15)
    assert abs(null.mean() - exact) < 4 * null.std() / np.sqrt(null.size)
    # the path graph by enumeration of all 24 permutations
    import itertools
    X4 = np.array([[0.0], [1.0], [2.0], [7.0]])
    mean = np.mean([dirichlet_energy(X4[list(p)], PATH4) for p in itertools.permutations(range(4))])
    assert mean == pytest.approx(expected_permutation_energy(4, 3))


def test_normalized_energy_random_placement_is_about_one():
    rng = np.random.default_rng(2)
    G = _grid()
    values = [normalized_dirichlet_energy(rng.normal(size=(16, 8)), G) for _ in range(200)]
    assert np.mean(values) == pytest.approx(1.0, abs=0.03)


def test_spectral_embedding_beats_random_placements():
    G = _grid()
    S = spectral_embedding(G, k=2)
    assert S.shape == (16, 2)
    assert np.allclose(S.T @ S, np.eye(2)) and np.allclose(S.sum(axis=0), 0)
    e = normalized_dirichlet_energy(S, G)
    rng = np.random.default_rng(3)
    assert all(e < normalized_dirichlet_energy(rng.normal(size=(16, 2)), G) for _ in range(100))
    # the minimum over standardised X is n * lambda_2 (lambda_2 = 2 - 2 cos(pi / 4) on a 4x4 grid)
    assert dirichlet_energy(S, G) == pytest.approx(16 * (2 - 2 * np.cos(np.pi / 4)))


def test_spectral_embedding_of_ring_is_a_circle_and_takes_adjacency():
    ring = nx.cycle_graph(10)
    S = spectral_embedding(ring, k=2)
    radius = np.linalg.norm(S, axis=1)
    assert np.allclose(radius, radius[0])
    assert np.allclose(np.abs(spectral_embedding(nx.to_numpy_array(ring), 2)), np.abs(S))
    with pytest.raises(InputError):
        spectral_embedding(ring, k=10)


def test_procrustes_r2_rotated_scaled_copy_and_random():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(16, 3))
    Y = 2.5 * X @ ortho_group.rvs(3, random_state=5) + 7.0
    assert procrustes_r2(X, Y) == pytest.approx(1.0)
    assert procrustes_r2(X[:, :2], np.c_[X[:, :2], np.zeros(16)]) == pytest.approx(1.0)  # widths differ
    A, B = rng.normal(size=(16, 2)), rng.normal(size=(16, 2))
    assert procrustes_r2(A, B) == pytest.approx(1 - procrustes(A, B)[2])
    assert procrustes_r2(A, B) == pytest.approx(procrustes_r2(B, A))
    random = [procrustes_r2(rng.normal(size=(16, 2)), rng.normal(size=(16, 2))) for _ in range(100)]
    assert np.mean(random) < 0.2


def test_canonical_correlations():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 2))
    assert np.allclose(canonical_correlations(X, X @ [[2.0, 1.0], [0.0, 3.0]] + 1), 1.0)
    rho = canonical_correlations(X, rng.normal(size=(40, 2)))
    assert rho.shape == (2,) and np.all(rho < 0.6)


def test_pca_coordinates_and_variance():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 5)) * [10, 3, 1, 0.1, 0.1]
    coords, ratio = pca(X, k=2)
    assert coords.shape == (30, 2) and ratio.shape == (2,)
    assert ratio[0] > ratio[1] and ratio.sum() < 1
    Xc = X - X.mean(axis=0)
    assert np.allclose(coords.var(axis=0).sum() / Xc.var(axis=0).sum(), ratio.sum())
    with pytest.raises(InputError):
        pca(X, k=6)


def test_rule_following_scripted_logits():
    ring = nx.to_numpy_array(nx.cycle_graph(4)).astype(bool)  # 0-1-2-3-0
    nodes = np.array([[0, 1, 2, 3]])  # (batch, pos)
    logits = np.full((1, 4, 4), -5.0)
    top = [1, 3, 0, 2]  # neighbour, not, not, neighbour
    logits[0, np.arange(4), top] = 5.0
    r = rule_following(logits, nodes, ring)
    assert r.correct.tolist() == [[True, False, False, True]]
    assert r.correct.mean() == 0.5
    uniform = rule_following(np.zeros((4, 4)), np.arange(4), ring)
    assert np.allclose(uniform.neighbor_mass, 0.5)  # 2 of 4 labels are neighbours
    assert r.neighbor_mass[0, 0] == pytest.approx((np.exp(5) + np.exp(-5)) / (np.exp(5) + 3 * np.exp(-5)))
    with pytest.raises(InputError):
        rule_following(logits, nodes[:, :3], ring)


def test_node_means_window_and_absent_nodes():
    nodes = np.array([[0, 1, 0, 2, 1, 0]])  # (batch=1, pos=6)
    hidden = np.arange(6, dtype=float)[None, :, None] * [1.0, 10.0]  # (1, 6, 2)
    m = node_means(hidden, nodes, window_end=6, window=4, n_nodes=4)  # positions 2..5
    assert m.shape == (4, 2)
    assert np.allclose(m[0], [3.5, 35.0]) and np.allclose(m[1], [4.0, 40.0]) and np.allclose(m[2], [3.0, 30.0])
    assert np.isnan(m[3]).all()
    full = node_means(hidden[0], nodes[0], window_end=3, window=None)  # 2-D hidden, positions 0..2
    assert full.shape == (3, 2) and np.allclose(full[0], [1.0, 10.0])  # n_nodes from all of nodes
    assert np.isnan(full[2]).all()
    # pooled over the batch, negative nodes ignored
    two = node_means(np.ones((2, 3, 1)) * [[[1.0]], [[3.0]]], np.array([[0, -1, 0], [0, 1, 1]]), 3, n_nodes=2)
    assert np.allclose(two[:, 0], [(1 + 1 + 3) / 3, 3.0])


def test_drop_absent_nodes_keeps_induced_subgraph():
    X = np.array([[0.0], [np.nan], [2.0], [3.0]])
    Xk, e, kept = drop_absent_nodes(X, PATH4)
    assert kept.tolist() == [0, 2, 3] and e.tolist() == [[1, 2]] and Xk.shape == (3, 1)
    with pytest.raises(InputError):
        dirichlet_energy(X, PATH4)


def test_edge_array_accepts_graph():
    assert edge_array(nx.path_graph(4)).tolist() == [[0, 1], [1, 2], [2, 3]]
