"""In-context graph tracing: rule following and representations as functions of context length.

For walks ``v_0 v_1 ...`` on a graph G of n nodes written as node labels, and every context
length c in a list:

- **rule-following accuracy** ``acc(c)``: at each walk position i whose context length
  ``i + 1`` lies in the trailing window ``(c (1 - w), c]``, the next-token logits
  restricted to the n labels give ``p``; correct when ``argmax p`` is a neighbour of
  ``v_i`` (:func:`iclab.metrics.graph.rule_following`). Also the mass on the neighbours,
  ``sum_{u in N(v_i)} p_u``, and the chance level ``deg(v_i) / n`` of a uniform guess.
  Stepping back to ``v_{i-1}`` is always valid, so the same three are also reported with
  that label left out (``*_no_backtrack``: top label among the other n - 1; chance
  ``(deg(v_i) - 1) / (n - 1)``), which only a model that has inferred the other
  neighbours from the context gets right.
- **representations** ``X(c, l)``: at layer l, the mean hidden state of each node over the
  positions ``c - window <= i < c`` where its label occurs
  (:func:`iclab.metrics.graph.node_means`), an (n_nodes, d_model) matrix, within each walk
  (``pool="walk"``: one context is one walk, and the metrics are averaged over walks) or
  pooled over the walks (``pool="batch"``; pooling mixes many contexts, and a feature as
  plain as "previous token" then already shows the graph at short contexts).
- **normalised Dirichlet energy** of ``X(c, l)`` and of its top principal components,
  ``E(X) / E_pi[E(X_pi)]`` (1 = no more graph structure than a random assignment of the
  nodes), and the **Procrustes R^2** between the top principal components and the spectral
  embedding of G, over the nodes present in the window.

Park et al., ICLR 2025, "ICLR: In-Context Learning of Representations"; spec
``graph_tracing.md``, Measurements.

The model is causal, so the hidden state and the logits at position t depend only on the
first t + 1 tokens: ONE forward pass over the full walks gives every context length, the
same numbers (up to float round-off) as re-running the model on walks cut at each c.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import networkx as nx
import numpy as np
import torch
from pydantic import Field, model_validator

from iclab.errors import InputError
from iclab.metrics.graph import (drop_absent_nodes, edge_array, node_means, normalized_dirichlet_energy, pca,
                                 procrustes_r2, rule_following, spectral_embedding)
from iclab.models.capture import capture
from iclab.models.hooks import anatomy
from iclab.models.names import StreamSite, act_name
from iclab.probes.base import Probe, as_tokens, batched
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.worlds.base import TokenBatch



@dataclass(frozen=True)
class GraphWalks:
    """The prompts of :class:`GraphTracing`: walks on a graph written as node labels.

    Attributes
    ----------
    walks : TokenBatch
        Tokens (n_walks, pos) with ``info["nodes"]`` (n_walks, pos), e.g. from
        :class:`iclab.worlds.graph.GraphWorld`; a leading column of -1 nodes (a BOS, see
        :func:`prepend_token`) is skipped.
    graph : networkx graph on nodes ``0 .. n-1``, or its (n, n) adjacency
    labels : ndarray of shape (n_nodes,), optional
        Token of each node; default ``walks.info["labels"][0]``.
    """

    walks: TokenBatch
    graph: object
    labels: np.ndarray | None = None

    def head(self, n: int) -> "GraphWalks":
        """The first ``n`` walks."""
        w = self.walks
        return GraphWalks(TokenBatch(w.tokens[:n], None, {k: v[:n] for k, v in w.info.items()}), self.graph,
                          self.labels)


def log_context_lengths(max_length: int, n: int, min_length: int = 1) -> np.ndarray:
    """About ``n`` context lengths spaced evenly on a log scale from ``min_length`` to
    ``max_length`` (both included), rounded to distinct integers, ascending, shape (<= n,)."""
    if not 1 <= min_length <= max_length:
        raise InputError(f"context lengths: need 1 <= min_length ({min_length}) <= max_length ({max_length})")
    grid = np.geomspace(min_length, max_length, num=n)
    return np.unique(np.round(grid).astype(np.int64))


def prepend_token(batch: TokenBatch, token: int) -> TokenBatch:
    """The walks of ``batch`` with ``token`` (e.g. a tokenizer's BOS) as position 0.

    ``tokens`` becomes (batch, 1 + pos); ``info["nodes"]`` gets -1 at position 0 (no node),
    which :class:`GraphTracing` skips: context lengths still count walk tokens.
    """
    n = batch.tokens.shape[0]
    col = np.full((n, 1), token, dtype=np.int64)
    info = dict(batch.info)
    info["nodes"] = np.concatenate([np.full((n, 1), -1, dtype=np.int64), batch.info["nodes"]], axis=1)
    return TokenBatch(np.concatenate([col, batch.tokens], axis=1), None, info)


def accuracy_window_start(c: int, fraction: float) -> int:
    """First walk position of the accuracy window of context length c.

    The window holds the predictions made with context lengths in ``(c (1 - fraction), c]``;
    the prediction at walk position i uses ``i + 1`` tokens, so positions
    ``floor(c (1 - fraction)) .. c - 1`` (always at least position ``c - 1``).
    """
    return min(int(np.floor(c * (1.0 - fraction) + 1e-9)), c - 1)


def _adjacency(graph) -> np.ndarray:
    if isinstance(graph, nx.Graph):
        n = graph.number_of_nodes()
        if sorted(graph.nodes) != list(range(n)):
            raise InputError("graph tracing: the graph's nodes must be 0 .. n-1 (as GraphWorld.graph gives)")
        return nx.to_numpy_array(graph, nodelist=range(n)) > 0
    A = np.asarray(graph)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.array_equal(A, A.T):
        raise InputError(f"graph tracing: graph must be a networkx graph or a symmetric (n, n) adjacency; "
                              f"got an array of shape {A.shape}")
    return A.astype(bool)


class GraphTracing(Probe):
    """Rule following, node representations, Dirichlet energy and spectral agreement vs context length.

    Definitions in the module docstring. Park et al., ICLR 2025; spec ``graph_tracing.md``.

    Parameters
    ----------
    context_lengths : list of int, optional
        Context lengths c to measure, in walk tokens (a leading BOS is not counted).
        Default: ``n_contexts`` log-spaced lengths from ``min_context`` to the walk length.
    n_contexts : int, default 14
    min_context : int, default 1
    layers : list of int, optional
        Layers whose ``site`` is captured; default every layer.
    site : {"resid_post", "resid_pre", "resid_mid", "attn_out", "mlp_out"}, default "resid_post"
        The activation read at each layer (``blocks.{l}.hook_<site>``).
    window : int or None, default 200
        Node means use the positions ``c - window <= i < c``; None uses every position before c.
    accuracy_window : float in (0, 1], default 0.5
        Accuracy at c averages the predictions made with context lengths in
        ``(c (1 - accuracy_window), c]``: a window proportional to c, as the lengths are
        log-spaced.
    n_components : int, default 2
        Principal components for ``energy_pca`` and ``procrustes_r2`` (and spectral
        eigenvectors for the latter).
    pca_dims : int, default 4
        Principal-component coordinates kept in the arrays, for figures (PC1-2, PC3-4).
    pool : {"walk", "batch"}, default "walk"
        Node means within each walk (metrics averaged over walks) or pooled over walks.
    min_present : float in [0, 1], default 0.75
        Energies and R^2 of a window are measured only if this share of the nodes (and at
        least ``n_components + 2``) occurs in it; a few nodes seen once each say little.
    batch_size : int, default 16
        Walks per forward pass; bounds memory (logits are (batch, pos, vocab)).
    keep_means : bool, default False
        Also return the node means, (n_walks, C, L, n_nodes, d_model) with ``pool="walk"``
        and (1, C, L, n_nodes, d_model) with ``pool="batch"``.

    Call ``probe(model, prompts)`` with ``prompts`` a :class:`GraphWalks` (the walks, the
    graph, and the token of each node).

    Returns rows ``probe="graph"`` with ``pos`` = context length c: ``accuracy``,
    ``neighbor_mass``, ``chance``, ``accuracy_no_backtrack``, ``neighbor_mass_no_backtrack``,
    ``chance_no_backtrack`` and ``nodes_present`` (share of the nodes in the window) without a
    layer; ``energy`` (full dimension), ``energy_pca`` (top ``n_components`` PCs) and
    ``procrustes_r2`` per layer, where measurable (see ``min_present``). Arrays:
    ``context_lengths`` (C,), ``layers`` (L,), each row metric without a layer (C,), each
    with a layer (C, L) (NaN where not measured), with ``pool="walk"`` also
    ``<metric>_by_walk`` (n_walks, C, L); ``pca`` (C, L, n_nodes, pca_dims) and
    ``explained_variance`` (C, L, pca_dims) of walk 0's node means (the pooled ones with
    ``pool="batch"``), NaN rows for absent nodes; ``counts`` (n_walks, C, n_nodes);
    ``<rule metric>_by_position`` (max c,), the mean over walks at each position; and
    ``means`` if ``keep_means``.
    """

    name: ClassVar[str] = "graph"

    context_lengths: list[int] | None = Field(None, min_length=1)
    n_contexts: int = Field(14, ge=1)
    min_context: int = Field(1, ge=1)
    layers: list[int] | None = Field(None, min_length=1)
    site: StreamSite = "resid_post"
    window: int | None = Field(200, ge=1)
    accuracy_window: float = Field(0.5, gt=0, le=1)
    n_components: int = Field(2, ge=1)
    pca_dims: int = Field(4, ge=1)
    pool: Literal["walk", "batch"] = "walk"
    min_present: float = Field(0.75, ge=0, le=1)
    batch_size: int = Field(16, ge=1)
    keep_means: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.context_lengths is not None and min(self.context_lengths) < 1:
            raise ValueError(f"context_lengths must be >= 1; got {self.context_lengths}")
        if self.pca_dims < self.n_components:
            raise ValueError(f"pca_dims ({self.pca_dims}) must be >= n_components ({self.n_components})")
        return self

    # -- inputs ------------------------------------------------------------------------

    def _contexts(self, walk_len: int) -> np.ndarray:
        if self.context_lengths is None:
            return log_context_lengths(walk_len, self.n_contexts, min(self.min_context, walk_len))
        cs = np.unique(np.asarray(self.context_lengths, dtype=np.int64))
        if cs.max() > walk_len:
            raise InputError(f"graph tracing: context_lengths up to {int(cs.max())} but the walks have "
                                  f"{walk_len} tokens")
        return cs

    def _layers(self, model) -> list[int]:
        n_layers = anatomy(model).n_layers
        layers = list(range(n_layers)) if self.layers is None else list(dict.fromkeys(self.layers))
        bad = [l for l in layers if not 0 <= l < n_layers]
        if bad:
            raise InputError(f"graph tracing: layers {bad} out of range; the model has layers 0..{n_layers - 1}")
        return layers

    @staticmethod
    def _walk_nodes(walks, n_tokens: int) -> tuple[np.ndarray, int]:
        """Nodes of the walk tokens (n_walks, walk_len) and the length of the leading prefix."""
        info = getattr(walks, "info", None) or {}
        if "nodes" not in info:
            raise InputError("graph tracing needs walks with info['nodes'] (a TokenBatch from GraphWorld)")
        nodes = np.asarray(info["nodes"], dtype=np.int64)
        if nodes.shape[1] != n_tokens:
            raise InputError(f"graph tracing: info['nodes'] has {nodes.shape[1]} positions, tokens {n_tokens}")
        is_node = nodes >= 0
        prefix = int(np.argmax(is_node.any(axis=0))) if is_node.any() else n_tokens
        if not is_node[:, prefix:].all() or is_node[:, :prefix].any() or prefix >= n_tokens:
            raise InputError("graph tracing: info['nodes'] may have -1 (no node) only in a leading prefix "
                                  "of equal length for every walk (e.g. one BOS column)")
        return nodes[:, prefix:], prefix

    @staticmethod
    def _labels(walks, labels, n_nodes: int, vocab: int) -> np.ndarray:
        if labels is None:
            info_labels = np.asarray((getattr(walks, "info", None) or {}).get("labels", np.empty((0, 0))))
            if info_labels.ndim != 2 or info_labels.shape[0] == 0 or not (info_labels == info_labels[0]).all():
                raise InputError("graph tracing: pass labels= (token of each node), or walks whose "
                                      "info['labels'] is the same row for every walk")
            labels = info_labels[0]
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n_nodes,):
            raise InputError(f"graph tracing: labels must have shape ({n_nodes},) for a graph of {n_nodes} "
                                  f"nodes; got {labels.shape}")
        if np.unique(labels).size != n_nodes or labels.min() < 0 or labels.max() >= vocab:
            raise InputError(f"graph tracing: labels must be distinct token ids in [0, {vocab}); got "
                                  f"{labels.tolist()}")
        return labels

    # -- measurement -----------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, model, prompts: GraphWalks) -> ProbeResult:
        if not isinstance(prompts, GraphWalks):
            raise InputError(f"graph tracing takes GraphWalks(walks, graph, labels) as prompts; got "
                             f"{type(prompts).__name__}")
        walks, graph, labels = prompts.walks, prompts.graph, prompts.labels
        tokens = as_tokens(model, walks)  # (n_walks, prefix + walk_len)
        nodes, prefix = self._walk_nodes(walks, tokens.shape[1])  # (n_walks, walk_len)
        A = _adjacency(graph)  # (n_nodes, n_nodes)
        n_nodes = A.shape[0]
        if nodes.max() >= n_nodes:
            raise InputError(f"graph tracing: walks visit node {int(nodes.max())}; the graph has {n_nodes}")
        edges = edge_array(np.argwhere(np.triu(A)))  # (n_edges, 2)
        spectral = spectral_embedding(A.astype(np.float64), k=min(self.n_components, n_nodes - 1))  # (n_nodes, k)
        layers = self._layers(model)
        contexts = self._contexts(nodes.shape[1])  # (C,)
        c_max = int(contexts.max())
        vocab = int(anatomy(model).unembed.weight.shape[0])
        labels_t = torch.as_tensor(self._labels(walks, labels, n_nodes, vocab), device=tokens.device)
        names = [act_name(self.site, layer) for layer in layers]
        starts = [0 if self.window is None else max(0, int(c) - self.window) for c in contexts]

        n_walks, C, L = tokens.shape[0], len(contexts), len(layers)
        walk_nodes = nodes[:, :c_max]  # (n_walks, c_max)
        previous = np.concatenate([np.full((n_walks, 1), -1), walk_nodes[:, :-1]], axis=1)  # (n_walks, c_max)
        by_pos = {m: np.zeros((n_walks, c_max)) for m in _RULE_METRICS}  # per-position rule following
        counts = np.zeros((n_walks, C, n_nodes))  # occurrences of each node in each window
        sums = np.zeros((C, L, n_nodes, 0))  # pooled sums (pool="batch"), (C, L, n_nodes, d_model) once known
        per_walk = {m: np.full((n_walks, C, L), np.nan) for m in _CONFIG_METRICS}  # (pool="walk")
        shown = _Shown(C, L, n_nodes, self.pca_dims)  # PCA coordinates for figures
        means_kept = None
        for sl in batched(n_walks, self.batch_size):
            cache = capture(model, tokens[sl, : prefix + c_max], names)  # one pass: every context length
            walk_logits = cache.logits[:, prefix:, :][..., labels_t].float().cpu().numpy()  # (b, c_max, n_nodes)
            rf = rule_following(walk_logits, walk_nodes[sl], A)
            by_pos["accuracy"][sl], by_pos["neighbor_mass"][sl] = rf.correct, rf.neighbor_mass
            back = previous[sl, :, None] == np.arange(n_nodes)  # (b, c_max, n_nodes): the node just left
            rf = rule_following(np.where(back, -np.inf, walk_logits), walk_nodes[sl], A)
            by_pos["accuracy_no_backtrack"][sl], by_pos["neighbor_mass_no_backtrack"][sl] = rf.correct, rf.neighbor_mass
            for ci, (c, start) in enumerate(zip(contexts, starts)):
                v = nodes[sl, start:c]  # (b, win)
                counts[sl, ci] = (v[:, :, None] == np.arange(n_nodes)).sum(axis=1)  # (b, n_nodes)
                for li, name in enumerate(names):
                    h = cache[name][:, prefix + start : prefix + c].float().cpu().numpy()  # (b, win, d_model)
                    if self.pool == "batch":
                        m = node_means(h, v, window_end=c - start, window=None, n_nodes=n_nodes)  # (n_nodes, d)
                        if sums.shape[-1] == 0:
                            sums = np.zeros((C, L, n_nodes, h.shape[-1]))
                        sums[ci, li] += np.nan_to_num(m) * counts[sl, ci].sum(axis=0)[:, None]
                        continue
                    for j in range(h.shape[0]):
                        w = sl.start + j
                        m = node_means(h[j], v[j], window_end=c - start, window=None, n_nodes=n_nodes)  # (n_nodes, d)
                        values, p, kept = self._configuration(m, edges, spectral)
                        for metric, val in values.items():
                            per_walk[metric][w, ci, li] = val
                        if w == 0:
                            shown.put(ci, li, p, kept)
                        if self.keep_means:
                            if means_kept is None:
                                means_kept = np.full((n_walks, C, L, *m.shape), np.nan, dtype=np.float32)
                            means_kept[w, ci, li] = m
            del cache

        arrays: dict[str, np.ndarray] = {}
        if self.pool == "batch":
            total = counts.sum(axis=0)  # (C, n_nodes)
            with np.errstate(invalid="ignore", divide="ignore"):
                pooled = sums / np.where(total > 0, total, np.nan)[:, None, :, None]  # (C, L, n_nodes, d)
            values_by = {m: np.full((C, L), np.nan) for m in _CONFIG_METRICS}
            for ci in range(C):
                for li in range(L):
                    values, p, kept = self._configuration(pooled[ci, li], edges, spectral)
                    for metric, val in values.items():
                        values_by[metric][ci, li] = val
                    shown.put(ci, li, p, kept)
            if self.keep_means:
                means_kept = pooled[None].astype(np.float32)  # (1, C, L, n_nodes, d_model)
            present = (total > 0).mean(axis=1)  # (C,)
        else:
            with warnings.catch_warnings():  # a (c, layer) that no walk could measure stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                values_by = {m: np.nanmean(v, axis=0) for m, v in per_walk.items()}
            arrays.update({f"{m}_by_walk": v for m, v in per_walk.items()})
            present = (counts > 0).mean(axis=(0, 2))  # (C,)

        rows: list[Row] = []
        degree = A.sum(axis=1)[walk_nodes]  # (n_walks, c_max)
        by_pos["chance"] = degree / n_nodes  # a uniform guess among the labels
        by_pos["chance_no_backtrack"] = np.where(previous >= 0, (degree - 1) / (n_nodes - 1), degree / n_nodes)
        curves = {m: np.zeros(C) for m in by_pos}
        for ci, c in enumerate(contexts):
            lo = accuracy_window_start(int(c), self.accuracy_window)
            for m, v in by_pos.items():
                curves[m][ci] = v[:, lo:c].mean()
                rows.append(Row(self.name, m, curves[m][ci], pos=c))
            rows.append(Row(self.name, "nodes_present", present[ci], pos=c))
            for li, layer in enumerate(layers):
                rows += [Row(self.name, metric, values_by[metric][ci, li], layer=layer, pos=c)
                         for metric in _CONFIG_METRICS if np.isfinite(values_by[metric][ci, li])]
        arrays.update(values_by)
        arrays.update(curves)
        arrays.update({f"{m}_by_position": v.mean(axis=0) for m, v in by_pos.items()})
        arrays.update(context_lengths=contexts, layers=np.array(layers), nodes_present=present, counts=counts,
                      pca=shown.coords, explained_variance=shown.explained)
        if means_kept is not None:
            arrays["means"] = means_kept
        return ProbeResult(rows, arrays)

    def _configuration(self, means: np.ndarray, edges: np.ndarray, spectral: np.ndarray):
        """Energies and spectral agreement of one node configuration (n_nodes, d_model) with
        NaN rows for absent nodes; ``({}, None, kept)`` when too few nodes are present."""
        X, e, kept = drop_absent_nodes(means, edges)
        k = min(self.pca_dims, kept.size, X.shape[1])
        enough = max(self.n_components + 2, int(np.ceil(self.min_present * means.shape[0])))
        if kept.size < enough or e.shape[0] == 0 or k < self.n_components:
            return {}, None, kept
        Xc = X - X.mean(axis=0)
        if not np.any(Xc):  # every present node has the same representation: nothing to measure
            return {}, None, kept
        p = pca(X, k=k)
        top = p.coords[:, : self.n_components]  # (n_kept, n_components)
        values = {"energy": normalized_dirichlet_energy(X, e), "energy_pca": normalized_dirichlet_energy(top, e),
                  "procrustes_r2": procrustes_r2(top, spectral[kept])}
        return values, p, kept


_CONFIG_METRICS = ("energy", "energy_pca", "procrustes_r2")
_RULE_METRICS = ("accuracy", "neighbor_mass", "accuracy_no_backtrack", "neighbor_mass_no_backtrack")


class _Shown:
    """PCA coordinates (C, L, n_nodes, k) and explained variance (C, L, k) kept for figures."""

    def __init__(self, C: int, L: int, n_nodes: int, k: int):
        self.coords = np.full((C, L, n_nodes, k), np.nan)
        self.explained = np.full((C, L, k), np.nan)

    def put(self, ci: int, li: int, p, kept: np.ndarray) -> None:
        if p is None:
            return
        k = p.coords.shape[1]
        self.coords[ci, li][kept, :k] = p.coords
        self.explained[ci, li, :k] = p.explained_variance_ratio


def transition_context(contexts: np.ndarray, accuracy: np.ndarray, min_rise: float = 0.2) -> int | None:
    """First context length at which accuracy passes halfway from its minimum to its maximum
    (over the lengths before the maximum); None if it rises by less than ``min_rise``."""
    peak = int(np.nanargmax(accuracy))
    low = int(np.nanargmin(accuracy[: peak + 1]))
    lo, hi = float(accuracy[low]), float(accuracy[peak])
    if hi - lo < min_rise:
        return None
    return int(contexts[low + np.argmax(accuracy[low : peak + 1] >= (lo + hi) / 2)])


def pick_layer(arrays: dict[str, np.ndarray], wanted: int | None) -> int:
    """Index (into ``arrays["layers"]`` of a :class:`GraphTracing` result) of ``wanted``, or of
    the layer whose top-2-PC energy at the longest measured context is lowest."""
    layers = list(arrays["layers"])
    if wanted is not None:
        if wanted not in layers:
            raise InputError(f"probe.figure_layer={wanted} was not traced; traced layers: {layers}")
        return layers.index(wanted)
    e = arrays["energy_pca"]  # (C, L)
    finite = np.nonzero(np.isfinite(e).any(axis=1))[0]
    if finite.size == 0:
        return len(layers) // 2
    return int(np.nanargmin(e[finite[-1]]))
