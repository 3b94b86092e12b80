"""Pretraining world for graph tracing: random walks over many random labelled graphs.

Each sequence draws a graph G from a fixed pool (grids, rings, random regular graphs,
optionally hexagonal lattices, of ``min_nodes .. max_nodes`` nodes), labels its nodes
with distinct tokens drawn afresh from ``range(vocab)``, and writes a uniform random walk
on it::

    g ~ U(pool),  label_b : V(g) -> [0, vocab) injective, uniform
    v_0 ~ U(V(g)),  v_{t+1} ~ U(N(v_t)),  tokens[b, t] = label_b(v_t)

Because the labels are new in every sequence, the only way to predict the next token
is to infer the graph from the context: the skill that in-context graph tracing
measures on a new graph (:class:`iclab.worlds.graph.GraphWorld`). Park et al., ICLR
2025, "ICLR: In-Context Learning of Representations"; spec ``graph_tracing.md``, the
model trained here and its calibration (a 2-layer d=128 Llama on 128-token walks, 64
labels, reached rule-following accuracy about 0.9 on a new 4x4 grid).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import networkx as nx
import numpy as np
from pydantic import Field, PrivateAttr

from iclab.errors import ConfigError
from iclab.limits import MAX_ITEMS, MAX_LIST, MAX_SEED, MAX_SEQ, MAX_VOCAB
from iclab.worlds.base import TokenBatch, World
from iclab.worlds.graph import neighbor_table, random_walks

GraphKind = Literal["grid", "ring", "regular", "hex"]


class RandomGraphWalks(World):
    """Random walks on a random graph from a pool, with fresh random labels per sequence.

    Definition: ``g ~ U(pool)``, labels a uniform injective map ``V(g) -> range(vocab)``,
    then a uniform random walk of ``seq_len`` nodes written as labels. Park et al., ICLR
    2025; spec ``graph_tracing.md``.

    Parameters
    ----------
    vocab : int, default 64
        Token ids; every graph's nodes get distinct ones, so ``max_nodes <= vocab``.
    seq_len : int, default 128
        Tokens per sequence.
    min_nodes, max_nodes : int, default 9 and 25
        Node counts allowed in the pool (the 4x4 grid of the study is inside).
    kinds : list of {"grid", "ring", "regular", "hex"}, default ["grid", "ring", "regular"]
        Graph families, drawn with equal probability; within a family the shape
        (grid rows x cols, ring size, (n, degree) of a regular graph, hexagons) is
        uniform over those with an allowed node count.
    regular_degrees : list of int, default [3, 4]
        Degrees of the random regular graphs (connected ones only).
    n_graphs : int, default 512
        Pool size; the pool is built from ``seed`` on construction.
    seed : int, default 0

    Notes
    -----
    ``info`` of a batch: ``"nodes"`` (batch, pos) node of each position in its graph's
    numbering; ``"graph"`` (batch,) pool index (see :meth:`pool_graph`); ``"labels"``
    (batch, max_nodes) token of each node, -1 past the graph's size. ``loss_mask`` is
    None.
    """

    name: ClassVar[str] = "random-graph-walks"

    vocab: int = Field(64, ge=2, le=MAX_VOCAB)
    seq_len: int = Field(128, ge=2, le=MAX_SEQ)
    min_nodes: int = Field(9, ge=3, le=MAX_ITEMS)
    max_nodes: int = Field(25, ge=3, le=MAX_ITEMS)
    kinds: list[GraphKind] = Field(default_factory=lambda: ["grid", "ring", "regular"], min_length=1)
    regular_degrees: list[Annotated[int, Field(ge=1, le=MAX_ITEMS)]] = Field(default_factory=lambda: [3, 4],
                                                                             min_length=1, max_length=MAX_LIST)
    n_graphs: int = Field(512, ge=1, le=MAX_ITEMS)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    _graphs: list[nx.Graph] = PrivateAttr()
    _kinds: list[str] = PrivateAttr()
    _offset: np.ndarray = PrivateAttr()
    _size: np.ndarray = PrivateAttr()
    _table: np.ndarray = PrivateAttr()
    _degree: np.ndarray = PrivateAttr()

    def model_post_init(self, context) -> None:
        if self.min_nodes > self.max_nodes:
            raise ConfigError(f"random-graph-walks: min_nodes ({self.min_nodes}) must be <= "
                              f"max_nodes ({self.max_nodes})")
        if self.max_nodes > self.vocab:
            raise ConfigError(f"random-graph-walks: max_nodes ({self.max_nodes}) must be <= vocab ({self.vocab}) "
                              "so that every node gets a distinct label")
        if any(d < 3 for d in self.regular_degrees):
            raise ConfigError(f"random-graph-walks: regular_degrees must be >= 3; got {self.regular_degrees}")
        shapes = {kind: self._shapes(kind) for kind in dict.fromkeys(self.kinds)}
        empty = [k for k, s in shapes.items() if not s]
        if empty:
            raise ConfigError(f"random-graph-walks: no {empty} graph has "
                              f"{self.min_nodes}..{self.max_nodes} nodes; "
                              "widen min_nodes/max_nodes or drop it from kinds")
        rng = np.random.default_rng(self.seed)
        kinds = list(shapes)
        self._kinds = [kinds[i] for i in rng.integers(0, len(kinds), size=self.n_graphs)]
        self._graphs = [_build(k, shapes[k][rng.integers(len(shapes[k]))], rng) for k in self._kinds]
        self._size = np.array([g.number_of_nodes() for g in self._graphs], dtype=np.int64)
        self._offset = np.concatenate([[0], np.cumsum(self._size)[:-1]]).astype(np.int64)
        self._table, self._degree = _union_table(self._graphs, self._offset)

    def _shapes(self, kind: str) -> list[tuple[int, ...]]:
        """Every shape of ``kind`` whose node count lies in [min_nodes, max_nodes]."""
        lo, hi = self.min_nodes, self.max_nodes
        if kind == "grid":
            return [(r, c) for r in range(2, hi + 1) for c in range(r, hi + 1) if lo <= r * c <= hi]
        if kind == "ring":
            return [(n,) for n in range(lo, hi + 1)]
        if kind == "regular":
            return [(n, d) for n in range(lo, hi + 1) for d in self.regular_degrees if d < n and n * d % 2 == 0]
        # a lattice of m x n hexagons has 2(m+1)(n+1) - 2 nodes
        return [(m, n) for m in range(1, hi) for n in range(1, hi) if lo <= 2 * (m + 1) * (n + 1) - 2 <= hi]

    @property
    def vocab_size(self) -> int:
        return self.vocab

    @property
    def pool_sizes(self) -> np.ndarray:
        """Node count of each pool graph, shape (n_graphs,)."""
        return self._size.copy()

    @property
    def pool_kinds(self) -> list[str]:
        """Family of each pool graph, length n_graphs."""
        return list(self._kinds)

    def pool_graph(self, index: int) -> nx.Graph:
        """Pool graph ``index`` (nodes ``0 .. n-1``, the numbering of ``info["nodes"]``)."""
        return self._graphs[index].copy()

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        g = rng.integers(0, self.n_graphs, size=n)  # (batch,)
        size, offset = self._size[g], self._offset[g]
        start = offset + (rng.random(n) * size).astype(np.int64)
        nodes = random_walks(rng, self._table, self._degree, start, self.seq_len) - offset[:, None]  # (batch, pos)
        # the first max_nodes entries of a uniform permutation: a uniform injective labelling
        labels = np.argsort(rng.random((n, self.vocab)), axis=1)[:, : self.max_nodes]  # (batch, max_nodes)
        tokens = np.take_along_axis(labels, nodes, axis=1)  # (batch, pos)
        labels[np.arange(self.max_nodes)[None, :] >= size[:, None]] = -1
        return TokenBatch(tokens.astype(np.int64), None,
                          {"nodes": nodes, "graph": g.astype(np.int64), "labels": labels.astype(np.int64)})


def _union_table(graphs: list[nx.Graph], offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour table of the disjoint union, node v of graph i being ``offset[i] + v``.

    One padded table (total_nodes, max_degree) serves every walk of a batch at once.
    """
    parts = [neighbor_table(g) for g in graphs]
    width = max(t.shape[1] for t, _ in parts)
    table = np.full((int(sum(d.size for _, d in parts)), width), -1, dtype=np.int64)
    for (t, d), off in zip(parts, offset):
        table[off : off + d.size, : t.shape[1]] = np.where(t >= 0, t + off, -1)
    return table, np.concatenate([d for _, d in parts])


def _build(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> nx.Graph:
    """One graph of ``kind`` and ``shape`` on nodes ``0 .. n-1``."""
    if kind == "grid":
        return nx.convert_node_labels_to_integers(nx.grid_2d_graph(*shape), ordering="sorted")
    if kind == "ring":
        return nx.cycle_graph(shape[0])
    if kind == "hex":
        return nx.convert_node_labels_to_integers(
            nx.hexagonal_lattice_graph(*shape, with_positions=False), ordering="sorted")
    n, d = shape
    while True:  # a random regular graph of degree >= 3 is connected with high probability
        graph = nx.random_regular_graph(d, n, seed=int(rng.integers(2**31)))
        if nx.is_connected(graph):
            return graph
