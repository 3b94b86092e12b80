"""In-context graph tracing: random walks on a graph whose nodes carry labels.

A graph G = (V, E) with nodes ``0 .. n_nodes-1`` is fixed per world; each node gets a
label (a token id for a model trained here, a word for a pretrained LM), assigned at
random per ``seed``. A sequence is a uniform random walk ``v_0, v_1, ...`` with
``v_{t+1}`` uniform over the neighbours of ``v_t``, written as the labels of the visited
nodes::

    tokens[b, t] = node_tokens[v_t]

A model that has inferred G from the context puts its next-token mass on the labels of
the neighbours of the current node (rule following). Park et al., ICLR 2025, "ICLR:
In-Context Learning of Representations"; spec ``graph_tracing.md``, Task.

Graphs: square grid (default 4x4), ring (default 10 nodes), hexagonal lattice (default
2x2 hexagons = 16 nodes), or any graph given as an edge list (a file, a list of pairs,
or a networkx graph through :meth:`GraphWorld.from_networkx`).

**Semantic conflict** (spec, Task): the days of the week (7) or the months (12) on a
ring in a scrambled order, where no two ring neighbours are neighbours in the natural
cyclic order, so the in-context structure and the pretrained one disagree everywhere.

A pretrained LM needs each word's token id, which only its tokenizer knows: the model
layer calls :func:`resolve_word_labels` with the tokenizer's ``encode`` and writes walks
from :meth:`GraphWorld.walk` with those ids (``ids[nodes]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, ClassVar, Literal

import networkx as nx
import numpy as np
from pydantic import Field, PrivateAttr

from iclab.errors import ConfigError, InputError
from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ, MAX_VOCAB
from iclab.worlds.base import TokenBatch, World

DEFAULT_WORDS: tuple[str, ...] = (
    # the first 16 are the seed paper's; the rest are common nouns that are one token
    # (with a leading space) in the GPT-2, Llama-3 and Gemma-2 tokenizers as far as known
    "apple", "bird", "car", "egg", "house", "milk", "plane", "opera", "box", "sand",
    "sun", "mango", "rock", "math", "code", "phone", "tree", "dog", "cat", "fish",
    "book", "door", "table", "chair", "water", "fire", "moon", "star", "ball", "cup",
    "key", "hat", "shoe", "bed", "road", "ship", "king", "gold", "rain", "snow",
)
DAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_SEMANTIC_WORDS = {"days": DAYS, "months": MONTHS}


Node = Annotated[int, Field(ge=0, le=MAX_ITEMS)]


class GraphWorld(World):
    """Uniform random walks on a fixed labelled graph.

    Definition: ``v_0 ~ U(V)``, ``v_{t+1} ~ U(N(v_t))``, ``tokens[t] = label(v_t)``.
    Park et al., ICLR 2025 ("ICLR: In-Context Learning of Representations"); spec
    ``graph_tracing.md``, Task.

    Parameters
    ----------
    kind : {"grid", "ring", "hex", "edges"}, default "grid"
        Graph family; "edges" reads ``edge_file`` or ``edge_list``.
    rows, cols : int, default 4 and 4
        Grid size (kind "grid"); node ``r * cols + c`` is at row r, column c.
    ring_nodes : int, default 10
        Ring size (kind "ring"); with ``semantic_conflict`` the ring has 7 or 12 nodes.
    hex_rows, hex_cols : int, default 2 and 2
        Hexagons per column and row (kind "hex"; networkx ``hexagonal_lattice_graph``).
    edge_file : str, optional
        Edge-list file (kind "edges"): one edge ``u v`` a line, extra columns and ``#``
        comments ignored. Integer names become node ``rank(name)``; other names are
        numbered in order of first appearance.
    edge_list : list of (int, int), optional
        Edges on nodes ``0 .. n-1`` (kind "edges"), e.g. from :meth:`from_networkx`.
    walk_length : int, default 128
        Tokens per sequence from :meth:`sample` and :meth:`prompts`.
    seed : int, default 0
        Draws the node labels (tokens and words); walks take the caller's ``rng``.
    vocab : int, default 64
        Vocabulary of a model trained here; node tokens come from ``range(vocab)``.
    label_tokens : list of int, optional
        Candidate node tokens (distinct, in ``[0, vocab)``); ``n_nodes`` of them are
        drawn in random order. Default: all of ``range(vocab)``.
    words : list of str, optional
        Candidate word labels for a pretrained LM (distinct); default
        :data:`DEFAULT_WORDS`, or the days / months under ``semantic_conflict``.
    semantic_conflict : {None, "days", "months"}, default None
        Put the days of the week or the months on a scrambled ring (needs kind "ring").

    Notes
    -----
    ``sample`` and ``prompts`` return a :class:`TokenBatch` of shape (batch, walk_length)
    with ``info["nodes"]`` (batch, pos): the node at each position, and
    ``info["labels"]`` (batch, n_nodes): the token of each node (the same row for every
    sequence; the key matches :class:`RandomGraphWalks`). ``loss_mask`` is None.

    Derived state is built on construction; ``model_copy(update=...)`` does not rebuild
    it, so make a changed world with ``GraphWorld(**{**w.model_dump(), key: value})``.
    """

    name: ClassVar[str] = "graph-walk"

    kind: Literal["grid", "ring", "hex", "edges"] = "grid"
    rows: int = Field(4, ge=1, le=MAX_ITEMS)
    cols: int = Field(4, ge=1, le=MAX_ITEMS)
    ring_nodes: int = Field(10, ge=3, le=MAX_ITEMS)
    hex_rows: int = Field(2, ge=1, le=MAX_ITEMS)
    hex_cols: int = Field(2, ge=1, le=MAX_ITEMS)
    edge_file: str | None = None
    edge_list: list[tuple[Node, Node]] | None = None
    walk_length: int = Field(128, ge=2, le=MAX_SEQ)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    vocab: int = Field(64, ge=2, le=MAX_VOCAB)
    label_tokens: list[Annotated[int, Field(ge=0, le=MAX_VOCAB)]] | None = Field(None, min_length=1,
                                                                                 max_length=MAX_VOCAB)
    words: list[str] | None = Field(None, min_length=1)
    semantic_conflict: Literal[None, "days", "months"] = None

    _graph: nx.Graph = PrivateAttr()
    _neighbor_table: np.ndarray = PrivateAttr()
    _degree: np.ndarray = PrivateAttr()
    _node_tokens: np.ndarray = PrivateAttr()
    _word_index: np.ndarray = PrivateAttr()

    def model_post_init(self, context) -> None:
        self._check_semantic_conflict()
        graph = self._build_graph()
        if graph.number_of_nodes() < 2 or not nx.is_connected(graph):
            raise ConfigError(f"graph-walk: the {self.kind!r} graph must be connected with >= 2 nodes "
                              f"(got {graph.number_of_nodes()} nodes, "
                              f"{nx.number_connected_components(graph)} components)")
        self._graph = graph
        self._neighbor_table, self._degree = neighbor_table(graph)
        token_rng, word_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2))
        self._node_tokens = self._draw_node_tokens(token_rng)
        self._word_index = self._draw_word_index(word_rng)

    # -- construction --------------------------------------------------------------

    @classmethod
    def from_networkx(cls, graph: nx.Graph, **params) -> GraphWorld:
        """A world on ``graph``: its nodes, in iteration order, become ``0 .. n-1``.

        ``params`` are the other fields (``seed``, ``walk_length``, ...). The graph is
        stored as ``edge_list``, so the world still dumps to a plain config.
        """
        if graph.number_of_nodes() < 2 or not nx.is_connected(graph):
            raise ConfigError("graph-walk: from_networkx needs a connected graph with >= 2 nodes")
        index = {v: i for i, v in enumerate(graph.nodes)}
        edges = [(index[u], index[v]) for u, v in graph.edges]
        return cls(kind="edges", edge_list=edges, **params)

    def _check_semantic_conflict(self) -> None:
        if self.semantic_conflict is None:
            return
        key = f"semantic_conflict={self.semantic_conflict!r}"
        if self.kind != "ring":
            raise ConfigError(f"graph-walk: {key} places its labels on a ring; got kind={self.kind!r}, "
                              "allowed: kind='ring'")
        n = len(_SEMANTIC_WORDS[self.semantic_conflict])
        if "ring_nodes" in self.model_fields_set and self.ring_nodes != n:
            raise ConfigError(f"graph-walk: {key} needs ring_nodes={n}; got ring_nodes={self.ring_nodes}")
        if self.words is not None:
            raise ConfigError(f"graph-walk: {key} brings its own words; leave words unset (got {self.words})")

    def _build_graph(self) -> nx.Graph:
        if self.kind == "grid":
            return _integer_nodes(nx.grid_2d_graph(self.rows, self.cols))
        if self.kind == "ring":
            n = len(_SEMANTIC_WORDS[self.semantic_conflict]) if self.semantic_conflict else self.ring_nodes
            return nx.cycle_graph(n)
        if self.kind == "hex":
            return _integer_nodes(nx.hexagonal_lattice_graph(self.hex_rows, self.hex_cols, with_positions=False))
        if (self.edge_file is None) == (self.edge_list is None):
            raise ConfigError("graph-walk: kind='edges' needs exactly one of edge_file, edge_list "
                              f"(got edge_file={self.edge_file!r}, edge_list={self.edge_list!r})")
        if self.edge_file is not None:
            return read_edge_file(self.edge_file)
        return _graph_from_pairs(self.edge_list, "edge_list")

    def _draw_node_tokens(self, rng: np.random.Generator) -> np.ndarray:
        n = self.n_nodes
        if self.label_tokens is None:
            pool = np.arange(self.vocab)
        else:
            pool = np.asarray(self.label_tokens, dtype=np.int64)
            bad = pool[(pool < 0) | (pool >= self.vocab)]
            if bad.size:
                raise ConfigError(f"graph-walk: label_tokens must lie in [0, vocab={self.vocab}); "
                                  f"got {bad.tolist()}")
            if np.unique(pool).size != pool.size:
                raise ConfigError(f"graph-walk: label_tokens must be distinct; got {self.label_tokens}")
        if pool.size < n:
            key = "vocab" if self.label_tokens is None else "label_tokens"
            raise ConfigError(f"graph-walk: {key} gives {pool.size} labels for a graph of {n} nodes; "
                              f"need >= {n}")
        return rng.choice(pool, size=n, replace=False).astype(np.int64)

    def _draw_word_index(self, rng: np.random.Generator) -> np.ndarray:
        n, words = self.n_nodes, self.word_pool
        if len(set(words)) != len(words) or any(not w or w != w.strip() for w in words):
            raise ConfigError("graph-walk: words must be distinct, non-empty, without outer spaces; "
                              f"got {list(words)}")
        if self.semantic_conflict is not None:
            return scrambled_ring_order(rng, n)
        if len(words) < n:
            raise ConfigError(f"graph-walk: words has {len(words)} entries for a graph of {n} nodes; need >= {n}")
        return rng.choice(len(words), size=n, replace=False)

    # -- the graph -----------------------------------------------------------------

    @property
    def graph(self) -> nx.Graph:
        """The graph, nodes ``0 .. n_nodes-1`` (a copy, so the world stays fixed)."""
        return self._graph.copy()

    @property
    def n_nodes(self) -> int:
        return self._graph.number_of_nodes()

    @property
    def edges(self) -> np.ndarray:
        """Edges as an int array of shape (n_edges, 2), each pair ``i < j``, sorted."""
        e = np.sort(np.array(list(self._graph.edges), dtype=np.int64).reshape(-1, 2), axis=1)
        return e[np.lexsort((e[:, 1], e[:, 0]))]

    @property
    def adjacency(self) -> np.ndarray:
        """Boolean adjacency matrix of shape (n_nodes, n_nodes), symmetric, zero diagonal."""
        a = np.zeros((self.n_nodes, self.n_nodes), dtype=bool)
        e = self.edges
        a[e[:, 0], e[:, 1]] = a[e[:, 1], e[:, 0]] = True
        return a

    def neighbors(self, node: int) -> np.ndarray:
        """Sorted neighbours of ``node``, shape (degree,)."""
        return self._neighbor_table[node, : self._degree[node]].copy()

    # -- labels --------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self.vocab

    @property
    def node_tokens(self) -> np.ndarray:
        """Token id of each node for a model trained here, shape (n_nodes,)."""
        return self._node_tokens.copy()

    @property
    def word_pool(self) -> tuple[str, ...]:
        """The candidate words: ``words``, the days / months, or :data:`DEFAULT_WORDS`."""
        if self.semantic_conflict is not None:
            return _SEMANTIC_WORDS[self.semantic_conflict]
        return tuple(self.words) if self.words is not None else DEFAULT_WORDS

    @property
    def word_index(self) -> np.ndarray:
        """Index into :attr:`word_pool` of each node's word, shape (n_nodes,).

        Under ``semantic_conflict`` it is the day (month) number of each ring node: the
        pretrained order, for colouring figures.
        """
        return self._word_index.copy()

    @property
    def node_words(self) -> list[str]:
        """Word label of each node for a pretrained LM, length n_nodes."""
        pool = self.word_pool
        return [pool[i] for i in self._word_index]

    # -- sampling ------------------------------------------------------------------

    def walk(self, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
        """``n`` uniform random walks of ``length`` nodes, shape (n, length), int64.

        Start nodes are uniform over the nodes; each step is uniform over the current
        node's neighbours.
        """
        start = rng.integers(0, self.n_nodes, size=n)
        return random_walks(rng, self._neighbor_table, self._degree, start, length)

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        return self.batch(self.walk(rng, n, self.walk_length), self._node_tokens)

    def batch(self, nodes: np.ndarray, node_tokens: np.ndarray) -> TokenBatch:
        """The token batch for walks ``nodes`` (batch, pos) with labels ``node_tokens`` (n_nodes,).

        Use it with the ids from :func:`resolve_word_labels` to write a walk for a
        pretrained LM.
        """
        node_tokens = np.asarray(node_tokens, dtype=np.int64)
        if node_tokens.shape != (self.n_nodes,):
            raise InputError(f"graph-walk: node_tokens must have shape ({self.n_nodes},); "
                                  f"got {node_tokens.shape}")
        labels = np.broadcast_to(node_tokens, (nodes.shape[0], self.n_nodes)).copy()  # (batch, n_nodes)
        return TokenBatch(node_tokens[nodes], None, {"nodes": nodes, "labels": labels})


# -- graph helpers ----------------------------------------------------------------


def neighbor_table(graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Padded neighbour lists of a graph on nodes ``0 .. n-1``.

    Returns
    -------
    table : ndarray of shape (n_nodes, max_degree), int64
        ``table[v, :degree[v]]`` are the sorted neighbours of v; the rest is -1.
    degree : ndarray of shape (n_nodes,), int64
    """
    n = graph.number_of_nodes()
    degree = np.array([graph.degree(v) for v in range(n)], dtype=np.int64)
    table = np.full((n, max(int(degree.max(initial=0)), 1)), -1, dtype=np.int64)
    for v in range(n):
        nb = sorted(graph.neighbors(v))
        table[v, : len(nb)] = nb
    return table, degree


def random_walks(rng: np.random.Generator, table: np.ndarray, degree: np.ndarray,
                 start: np.ndarray, length: int) -> np.ndarray:
    """Uniform random walks from ``start`` on padded neighbour lists.

    Definition: ``v_0 = start``, ``v_{t+1} = table[v_t, floor(u_t * degree[v_t])]`` with
    ``u_t ~ U[0, 1)``, i.e. a uniform neighbour. Every node reached must have a
    neighbour (degree >= 1).

    Parameters
    ----------
    table : ndarray of shape (n_nodes, max_degree), int
        From :func:`neighbor_table` (possibly of a disjoint union of graphs).
    degree : ndarray of shape (n_nodes,), int
    start : ndarray of shape (batch,), int
    length : int
        Nodes per walk, including the start.

    Returns
    -------
    ndarray of shape (batch, length), int64
    """
    nodes = np.empty((start.shape[0], length), dtype=np.int64)  # (batch, pos)
    nodes[:, 0] = start
    u = rng.random((start.shape[0], length - 1))
    for t in range(length - 1):  # vectorised over the batch; the walk itself is sequential
        cur = nodes[:, t]
        nodes[:, t + 1] = table[cur, (u[:, t] * degree[cur]).astype(np.int64)]
    return nodes


def scrambled_ring_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """A placement of items ``0 .. n-1`` on a ring of n nodes that breaks their natural ring.

    Returns ``order`` (n,): ring node i holds item ``order[i]``, and no two ring
    neighbours hold items that are neighbours in the natural cyclic order
    (``(order[i] - order[i+1]) mod n`` is never 1 or n-1). Drawn uniformly among such
    placements by rejection (about 1 draw in 16 is accepted for n = 7, 1 in 11 for n = 12).
    """
    if n < 5:
        raise ConfigError(f"a scrambled ring needs >= 5 items; got {n}")
    while True:
        order = rng.permutation(n)
        gap = (order - np.roll(order, -1)) % n
        if not np.any((gap == 1) | (gap == n - 1)):
            return order


def read_edge_file(path: str | Path) -> nx.Graph:
    """Read an edge-list file into a graph on nodes ``0 .. n-1``.

    One edge ``u v`` a line; further columns and text after ``#`` are ignored. If every
    name is an integer, node ``i`` is the i-th smallest name (so names 0..n-1 keep their
    numbers); otherwise nodes are numbered in order of first appearance.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"graph-walk: edge_file={str(path)!r} cannot be read: {e.strerror}") from e
    pairs: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ConfigError(f"graph-walk: edge_file={str(path)!r} line {lineno}: expected 'u v', got {line!r}")
        pairs.append((fields[0], fields[1]))
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    if names and all(_is_int(s) for s in names):
        names.sort(key=int)
    index = {s: i for i, s in enumerate(names)}
    return _graph_from_pairs([(index[u], index[v]) for u, v in pairs], f"edge_file={str(path)!r}")


def _graph_from_pairs(pairs, where: str) -> nx.Graph:
    pairs = list(pairs)
    loops = [p for p in pairs if p[0] == p[1]]
    if loops:
        raise ConfigError(f"graph-walk: {where} has self-loops {loops}; a walk step must change node")
    nodes = sorted({v for p in pairs for v in p})
    if nodes and (nodes[0] < 0 or nodes != list(range(len(nodes)))):
        raise ConfigError(f"graph-walk: {where} must use every node 0 .. n-1; got nodes {nodes}")
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(pairs)
    return graph


def _integer_nodes(graph: nx.Graph) -> nx.Graph:
    # sorted tuple labels give row-major numbering, stable across networkx versions
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


# -- word labels for pretrained LMs ---------------------------------------------------


@dataclass(frozen=True)
class ResolvedLabels:
    """Token ids of word labels.

    Attributes
    ----------
    words : list of str
    token_ids : ndarray of shape (n_words,), int64
        The token of ``prefix + word``, or its last token if it has several.
    n_tokens : ndarray of shape (n_words,), int64
        How many tokens each word took.
    warnings : list of str
        One line per multi-token word.
    """

    words: list[str]
    token_ids: np.ndarray
    n_tokens: np.ndarray
    warnings: list[str] = field(default_factory=list)


def resolve_word_labels(words: list[str], encode: Callable[[str], list[int]], prefix: str = " ") -> ResolvedLabels:
    """One token id per word label: the last token of ``encode(prefix + word)``.

    In the context a walk is written as words separated by spaces, so each label is
    the tokenizer's form of ``" word"`` (spec ``graph_tracing.md``, Task; Park et al.,
    ICLR 2025). A word of several tokens is represented by its last one, and listed in
    ``warnings``.

    Parameters
    ----------
    words : list of str
    encode : callable str -> list of int
        The tokenizer's encode without special tokens.
    prefix : str, default " "

    Raises
    ------
    InputError
        A word encodes to no token, or two words share a token id (naming both).
    """
    ids, counts, notes = [], [], []
    for w in words:
        toks = list(encode(prefix + w))
        if not toks:
            raise InputError(f"word label {w!r} encodes to no token")
        if len(toks) > 1:
            notes.append(f"word label {w!r} is {len(toks)} tokens {toks}; using the last, {toks[-1]}")
        ids.append(int(toks[-1]))
        counts.append(len(toks))
    owner: dict[int, str] = {}
    for w, t in zip(words, ids):
        if t in owner:
            raise InputError(f"word labels {owner[t]!r} and {w!r} both map to token {t}; "
                                  "labels must be distinct tokens: choose other words")
        owner[t] = w
    return ResolvedLabels(list(words), np.array(ids, dtype=np.int64), np.array(counts, dtype=np.int64), notes)
