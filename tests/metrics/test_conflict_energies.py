"""Semantic-conflict maths: the natural order of a scrambled ring and the energies of PC1-2 / PC3-4
against each ring, on layouts with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from iclab.metrics.graph import conflict_energies, natural_ring_edges
from iclab.worlds.graph import DAYS, GraphWorld


def test_natural_ring_edges_are_the_usual_order():
    w = GraphWorld(kind="ring", semantic_conflict="days", seed=4)
    natural = natural_ring_edges(w.word_index)
    assert len(natural) == 7
    words = w.node_words
    pairs = {frozenset((words[i], words[j])) for i, j in natural}
    assert pairs == {frozenset((DAYS[k], DAYS[(k + 1) % 7])) for k in range(7)}
    assert not {frozenset(e) for e in w.edges.tolist()} & {frozenset(e) for e in natural.tolist()}


def test_conflict_energies_find_each_ring_in_its_components():
    w = GraphWorld(kind="ring", semantic_conflict="days", seed=4)
    n = w.n_nodes
    angle_usual = 2 * np.pi * w.word_index / n  # position in the usual order
    angle_ring = 2 * np.pi * np.arange(n) / n  # position on the in-context ring
    X = np.zeros((n, 10))
    X[:, 0], X[:, 1] = 3 * np.cos(angle_usual), 3 * np.sin(angle_usual)  # large: the top components
    X[:, 2], X[:, 3] = np.cos(angle_ring), np.sin(angle_ring)
    means = np.stack([X, X + 0.01])[:, None]  # (n_walks=2, C=1, n_nodes, d)
    e = conflict_energies(means, w.edges, natural_ring_edges(w.word_index))
    # a circle is the lowest-energy layout of a 7-ring: lambda_2 (n - 1) / (2 |E|) = 0.32; the two
    # circles are not orthogonal over the nodes, so PC3-4 hold the in-context one only in part
    assert e["energy_pc12_pretrained"][0] == pytest.approx(0.3238, abs=1e-3)
    assert e["energy_pc34_context"][0] < 0.5
    assert e["energy_pc12_context"][0] > 1 and e["energy_pc34_pretrained"][0] > 1
