"""Graph-tracing worlds: graph shapes, walks, labels, word resolution, validation."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pydantic import ValidationError

from iclab.errors import InputError
from iclab.worlds.graph import DAYS, DEFAULT_WORDS, MONTHS, GraphWorld, resolve_word_labels
from iclab.worlds.graph_pretrain import RandomGraphWalks


def _steps_on_edges(nodes: np.ndarray, adjacency: np.ndarray) -> bool:
    return bool(adjacency[nodes[:, :-1], nodes[:, 1:]].all())


@pytest.mark.parametrize(("params", "n_nodes", "n_edges"), [
    ({}, 16, 24),  # 4x4 grid: 2 * 4 * 3 edges
    ({"kind": "grid", "rows": 3, "cols": 5}, 15, 3 * 4 + 5 * 2),
    ({"kind": "ring"}, 10, 10),
    ({"kind": "ring", "ring_nodes": 6}, 6, 6),
    ({"kind": "hex"}, 16, 19),  # 2x2 hexagons
    ({"kind": "hex", "hex_rows": 1, "hex_cols": 1}, 6, 6),
])
def test_graph_sizes(params, n_nodes, n_edges):
    w = GraphWorld(**params)
    assert w.n_nodes == n_nodes and len(w.edges) == n_edges
    assert w.adjacency.sum() == 2 * n_edges and not w.adjacency.diagonal().any()
    assert sorted(w.graph.nodes) == list(range(n_nodes))


def test_grid_numbering_is_row_major():
    w = GraphWorld(rows=3, cols=4)
    assert w.neighbors(0).tolist() == [1, 4]
    assert w.neighbors(5).tolist() == [1, 4, 6, 9]


def test_walks_step_along_edges_and_batch_info():
    for kind in ("grid", "ring", "hex"):
        w = GraphWorld(kind=kind, walk_length=50)
        b = w.sample(np.random.default_rng(1), 8)
        nodes = b.info["nodes"]
        assert b.tokens.shape == nodes.shape == (8, 50)
        assert _steps_on_edges(nodes, w.adjacency)
        assert (b.tokens == w.node_tokens[nodes]).all()
        assert (b.info["labels"] == w.node_tokens).all() and b.info["labels"].shape == (8, w.n_nodes)


def test_walk_steps_are_uniform_over_neighbours():
    w = GraphWorld(kind="ring")
    nodes = w.walk(np.random.default_rng(0), 200, 40)
    assert nodes.shape == (200, 40)
    step = (nodes[:, 1:] - nodes[:, :-1]) % w.n_nodes
    assert set(np.unique(step)) == {1, w.n_nodes - 1}
    assert abs((step == 1).mean() - 0.5) < 0.02


def test_same_seed_same_walks_and_labels():
    a, b = GraphWorld(seed=3), GraphWorld(seed=3)
    assert (a.node_tokens == b.node_tokens).all() and a.node_words == b.node_words
    assert (a.sample(np.random.default_rng(7), 4).tokens == b.sample(np.random.default_rng(7), 4).tokens).all()
    assert not (GraphWorld(seed=4).node_tokens == a.node_tokens).all()


def test_labels_distinct_and_from_pool():
    w = GraphWorld(kind="hex", vocab=100, seed=1)
    assert len(set(w.node_tokens.tolist())) == w.n_nodes and w.node_tokens.max() < 100
    assert len(set(w.node_words)) == w.n_nodes and set(w.node_words) <= set(DEFAULT_WORDS)
    pool = [5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
    r = GraphWorld(kind="ring", label_tokens=pool, vocab=40)
    assert sorted(r.node_tokens.tolist()) == pool
    assert len(DEFAULT_WORDS) >= 30 and DEFAULT_WORDS[:4] == ("apple", "bird", "car", "egg")


def test_edge_file_parsing(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("# a path with a chord\n0 1\n1 2  0.5\n\n2 3 # comment\n3 0\n1 0\n")
    w = GraphWorld(kind="edges", edge_file=str(f), words=["a", "b", "c", "d"])
    assert w.n_nodes == 4 and w.edges.tolist() == [[0, 1], [0, 3], [1, 2], [2, 3]]
    named = tmp_path / "named.txt"
    named.write_text("x y\ny z\nz x\n")
    assert GraphWorld(kind="edges", edge_file=str(named)).edges.tolist() == [[0, 1], [0, 2], [1, 2]]


def test_from_networkx_relabels_in_node_order():
    G = nx.Graph([("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")])
    w = GraphWorld.from_networkx(G, seed=2)
    assert w.kind == "edges" and w.n_nodes == 4
    assert w.neighbors(1).tolist() == [0, 2, 3]
    assert GraphWorld(**w.model_dump()).edges.tolist() == w.edges.tolist()


def test_semantic_conflict_ring_scrambles_the_days():
    for key, words in (("days", DAYS), ("months", MONTHS)):
        for seed in range(5):
            w = GraphWorld(kind="ring", semantic_conflict=key, seed=seed)
            assert w.n_nodes == len(words) and sorted(w.node_words) == sorted(words)
            order = w.word_index  # natural index of the word on each ring node
            gap = (order - np.roll(order, -1)) % len(words)
            assert not np.isin(gap, [1, len(words) - 1]).any()  # no natural neighbours adjacent


def test_resolve_word_labels_with_fake_encoder():
    vocab = {" apple": [10], " bird": [11], " mango": [3, 12], " sand": [13]}
    r = resolve_word_labels(["apple", "bird", "mango", "sand"], lambda s: vocab[s])
    assert r.token_ids.tolist() == [10, 11, 12, 13] and r.n_tokens.tolist() == [1, 1, 2, 1]
    assert len(r.warnings) == 1 and "mango" in r.warnings[0]
    vocab[" opera"] = [4, 11]
    with pytest.raises(InputError, match="'bird'.*'opera'"):
        resolve_word_labels(["apple", "bird", "opera"], lambda s: vocab[s])
    with pytest.raises(InputError, match="no token"):
        resolve_word_labels(["x"], lambda s: [])


def test_batch_with_resolved_word_ids():
    w = GraphWorld(kind="ring", ring_nodes=4, words=["apple", "bird", "car", "egg"])
    ids = np.array([100, 101, 102, 103])
    nodes = w.walk(np.random.default_rng(0), 2, 9)
    assert (w.batch(nodes, ids).tokens == ids[nodes]).all()
    with pytest.raises(InputError):
        w.batch(nodes, ids[:3])


@pytest.mark.parametrize("params", [
    {"kind": "square"},
    {"rows": 0},
    {"ring_nodes": 2},
    {"walk_length": 1},
    {"seed": -1},
    {"unknown": 1},
    {"kind": "edges"},  # neither edge_file nor edge_list
    {"kind": "edges", "edge_list": [(0, 1), (2, 3)]},  # disconnected
    {"kind": "edges", "edge_list": [(0, 0), (0, 1)]},  # self-loop
    {"kind": "edges", "edge_file": "/nonexistent/graph.txt"},
    {"vocab": 10},  # 16 nodes need >= 16 labels
    {"label_tokens": [1, 1, 2]},
    {"label_tokens": [70], "vocab": 64},
    {"words": ["apple", "apple"]},
    {"kind": "ring", "ring_nodes": 4, "words": ["a", "b", "c"]},
    {"semantic_conflict": "days"},  # needs kind="ring"
    {"kind": "ring", "semantic_conflict": "days", "ring_nodes": 10},
    {"kind": "ring", "semantic_conflict": "weeks"},
    {"kind": "ring", "semantic_conflict": "days", "words": list(DEFAULT_WORDS[:7])},
])
def test_bad_fields_fail_validation(params):
    with pytest.raises(ValidationError):
        GraphWorld(**params)


def test_world_is_frozen():
    with pytest.raises(ValidationError):
        GraphWorld().seed = 2


# -- pretraining world ---------------------------------------------------------------------


def test_random_graph_walks_follow_their_graphs():
    w = RandomGraphWalks(n_graphs=64, seq_len=40)
    b = w.sample(np.random.default_rng(0), 16)
    assert b.tokens.shape == (16, 40) and w.vocab_size == 64
    assert b.info["labels"].shape == (16, w.max_nodes)
    for i in range(16):
        g = b.info["graph"][i]
        A = nx.to_numpy_array(w.pool_graph(g), nodelist=range(w.pool_sizes[g])).astype(bool)
        nodes, labels = b.info["nodes"][i], b.info["labels"][i]
        assert _steps_on_edges(nodes[None], A)
        size = w.pool_sizes[g]
        assert (labels[size:] == -1).all() and len(set(labels[:size].tolist())) == size
        assert (b.tokens[i] == labels[nodes]).all()


def test_random_graph_pool_mixes_kinds_within_size_range():
    w = RandomGraphWalks(n_graphs=60, min_nodes=9, max_nodes=16, seed=1)
    assert set(w.pool_kinds) == {"grid", "ring", "regular"}
    assert w.pool_sizes.min() >= 9 and w.pool_sizes.max() <= 16
    assert all(nx.is_connected(w.pool_graph(i)) for i in range(60))
    h = RandomGraphWalks(n_graphs=10, kinds=["hex"], min_nodes=10, max_nodes=16)
    assert set(h.pool_sizes.tolist()) <= {10, 14, 16}


def test_random_graph_walks_fresh_labels_and_seeded():
    w = RandomGraphWalks(n_graphs=32, seq_len=20)
    a, b = w.sample(np.random.default_rng(5), 8), w.sample(np.random.default_rng(5), 8)
    assert (a.tokens == b.tokens).all()
    assert (RandomGraphWalks(n_graphs=32, seq_len=20).pool_sizes == w.pool_sizes).all()
    labels = a.info["labels"]
    assert not all((labels[0, :4] == labels[i, :4]).all() for i in range(1, 8))


@pytest.mark.parametrize("params", [
    {"vocab": 16, "max_nodes": 25},
    {"min_nodes": 20, "max_nodes": 10},
    {"kinds": []},
    {"kinds": ["tree"]},
    {"kinds": ["hex"], "min_nodes": 11, "max_nodes": 13},  # no hex lattice of 11..13 nodes
    {"regular_degrees": [2]},
    {"seq_len": 1},
])
def test_random_graph_walks_bad_fields(params):
    with pytest.raises(ValidationError):
        RandomGraphWalks(n_graphs=4, **params)
