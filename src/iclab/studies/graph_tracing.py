"""Study ``graph-tracing``: in-context learning of representations (Park et al., ICLR 2025).

Spec: ``shared/spec/graph_tracing.md``. A graph's nodes carry labels the model knows
(tokens of a model trained here, common words for a pretrained LM); the context is a
random walk on the graph written as those labels. As a function of context length (and
layer) the study measures rule-following accuracy (is the top predicted label a
neighbour of the current node?), the mean representation of each node over a trailing
window, its normalised Dirichlet energy over the graph, and the agreement of its top
principal components with the graph's spectral embedding
(:class:`iclab.probes.graph_tracing.GraphTracing`).

Built-in path: pretrain a small Llama on random walks over many random graphs with fresh
random labels per sequence (:class:`iclab.worlds.graph_pretrain.RandomGraphWalks`), so
that next-token prediction needs the graph inferred from the context; then trace a new
labelled graph (``graph``, a 4×4 grid by default). Pretrained path (``--model``): the
same probe on walks of common single-token words, plus the semantic-conflict variant
(days or months on a scrambled ring: does the in-context ring show in the principal
components, and in which ones?).
"""

from __future__ import annotations

from typing import Literal

import warnings

import numpy as np
from pydantic import Field, model_validator

from iclab.config import Frozen, TrainConfig
from iclab.errors import ProbeInputError
from iclab.metrics.graph import edge_array, normalized_dirichlet_energy, pca, spectral_embedding
from iclab.models.build import ModelSpec, build_model, n_params
from iclab.models.load import load_model
from iclab.probes.graph_tracing import (GraphTracing, ResidualSite, log_context_lengths, prepend_token,
                                        transition_context)
from iclab.probes.result import ProbeResult, Row
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies import graph_tracing_figures as figs
from iclab.train.loop import train
from iclab.worlds.base import TokenBatch
from iclab.worlds.graph import GraphWorld, resolve_word_labels
from iclab.worlds.graph_pretrain import RandomGraphWalks


class ProbeSettings(Frozen):
    """How the graph is traced (see :class:`iclab.probes.graph_tracing.GraphTracing`).

    Parameters
    ----------
    n_walks : int, default 32
        Walks of the new graph traced by a model trained here (``graph.walk_length`` tokens).
    n_contexts : int, default 14
        Log-spaced context lengths from ``min_context`` to the walk length.
    min_context : int, default 1
    window : int or None, default 200
        Trailing window of the node means (tokens); None: the whole context.
    accuracy_window : float, default 0.5
        Accuracy at c averages predictions with context lengths in (c (1 - w), c].
    site : {"resid_post", "resid_pre", "resid_mid", "attn_out", "mlp_out"}, default "resid_post"
    layers : list of int, optional
        Default: every layer.
    pool : {"walk", "batch"}, default "walk"
        "walk": node means within each walk, metrics averaged over walks (each context is
        one walk); "batch": node means pooled over the walks.
    min_present : float, default 0.75
        Share of the nodes a window must contain for its energies to count.
    figure_layer : int, optional
        Layer of the PCA panels and the energy–accuracy plot; default the layer with the
        lowest top-2-PC energy at the longest context.
    panels : int, default 4
        Context lengths shown in the PCA panels.
    batch_size : int, default 16
        Walks per forward pass.
    train_walks : int, default 16
        Walks traced at each probe step during pretraining (0: none).
    """

    n_walks: int = Field(32, ge=1)
    n_contexts: int = Field(14, ge=2)
    min_context: int = Field(1, ge=1)
    window: int | None = Field(200, ge=1)
    accuracy_window: float = Field(0.5, gt=0, le=1)
    site: ResidualSite = "resid_post"
    layers: list[int] | None = Field(None, min_length=1)
    pool: Literal["walk", "batch"] = "walk"
    min_present: float = Field(0.75, ge=0, le=1)
    figure_layer: int | None = Field(None, ge=0)
    panels: int = Field(4, ge=1, le=8)
    batch_size: int = Field(16, ge=1)
    train_walks: int = Field(16, ge=0)

    def probe(self, **changes) -> GraphTracing:
        params = dict(n_contexts=self.n_contexts, min_context=self.min_context, window=self.window,
                      accuracy_window=self.accuracy_window, site=self.site, layers=self.layers, pool=self.pool,
                      min_present=self.min_present, batch_size=self.batch_size)
        return GraphTracing(**{**params, **changes})


class PretrainedSettings(Frozen):
    """Settings used only with ``--model`` (a pretrained LM and its tokenizer).

    Parameters
    ----------
    walk_length : int, default 256
        Words per walk (one token each; a word of several tokens is read at its last).
    n_walks : int, default 8
    batch_size : int, default 2
        Walks per forward pass (logits are batch × pos × vocab).
    bos : bool, default True
        Start each walk with the tokenizer's BOS token, when it has one.
    prefix : str, default " "
        Written before each word: a walk is " apple bird car ...".
    conflict : list of {"days", "months"}, default ["days"]
        Semantic-conflict variants: those words on a scrambled ring.
    """

    walk_length: int = Field(256, ge=2)
    n_walks: int = Field(8, ge=1)
    batch_size: int = Field(2, ge=1)
    bos: bool = True
    prefix: str = " "
    conflict: list[Literal["days", "months"]] = Field(default_factory=lambda: ["days"])


class GraphTracingConfig(Frozen):
    """Config of the graph-tracing study (presets in ``configs/graph-tracing/``).

    ``graph`` is the new labelled graph that is traced (its ``vocab`` must be the
    pretraining vocabulary; its ``walk_length`` is the longest context traced for a model
    trained here); ``pretrain``, ``model`` and ``train`` make the model trained here;
    ``pretrained`` is used with ``--model`` instead.
    """

    seed: int = 0
    graph: GraphWorld = GraphWorld(seed=1)
    pretrain: RandomGraphWalks = RandomGraphWalks()
    model: ModelSpec = ModelSpec(n_layers=2, d_model=128, n_heads=4, max_len=1024)
    train: TrainConfig = TrainConfig(steps=1000, lr=3e-3, warmup=50)
    probe: ProbeSettings = ProbeSettings()
    pretrained: PretrainedSettings = PretrainedSettings()

    @model_validator(mode="after")
    def _check(self):
        if self.graph.vocab != self.pretrain.vocab:
            raise ValueError(f"graph.vocab ({self.graph.vocab}) must equal pretrain.vocab ({self.pretrain.vocab}): "
                             "the new graph is labelled with tokens of the pretraining vocabulary")
        if self.graph.walk_length > self.model.max_len:
            raise ValueError(f"graph.walk_length ({self.graph.walk_length}) must be <= model.max_len "
                             f"({self.model.max_len})")
        layers, figure_layer = self.probe.layers, self.probe.figure_layer
        if figure_layer is not None and layers is not None and figure_layer not in layers:
            raise ValueError(f"probe.figure_layer ({self.probe.figure_layer}) must be one of probe.layers "
                             f"{self.probe.layers}")
        return self


# -- analysis helpers ------------------------------------------------------------------


def pick_layer(res: ProbeResult, wanted: int | None) -> int:
    """Index (into ``res.arrays["layers"]``) of ``wanted``, or of the layer whose top-2-PC
    energy at the longest measured context is lowest."""
    layers = list(res.arrays["layers"])
    if wanted is not None:
        if wanted not in layers:
            raise ProbeInputError(f"probe.figure_layer={wanted} was not traced; traced layers: {layers}")
        return layers.index(wanted)
    e = res.arrays["energy_pca"]  # (C, L)
    finite = np.nonzero(np.isfinite(e).any(axis=1))[0]
    if finite.size == 0:
        return len(layers) // 2
    return int(np.nanargmin(e[finite[-1]]))


def panel_indices(res: ProbeResult, li: int, n: int) -> list[int]:
    """Up to ``n`` context-length indices spread on the log scale over those with PCA coordinates."""
    ok = np.nonzero(np.isfinite(res.arrays["pca"][:, li]).all(axis=-1).sum(axis=-1) >= 3)[0]
    if ok.size == 0:
        return []
    picks = np.unique(np.round(np.linspace(0, ok.size - 1, min(n, ok.size))).astype(int))
    return [int(ok[p]) for p in picks]


def summary_table(res: ProbeResult, li: int, caption: str) -> Table:
    a = res.arrays
    rows = [[int(c), float(a["accuracy"][ci]), float(a["chance"][ci]), float(a["accuracy_no_backtrack"][ci]),
             float(a["chance_no_backtrack"][ci]), float(a["neighbor_mass"][ci]), float(a["energy"][ci, li]),
             float(a["energy_pca"][ci, li]), float(a["procrustes_r2"][ci, li]), float(a["nodes_present"][ci])]
            for ci, c in enumerate(a["context_lengths"])]
    return Table(["context", "accuracy", "chance", "accuracy, no step back", "its chance", "mass on neighbours",
                  "energy (full)", "energy (top-2 PCs)", "Procrustes R² vs spectral", "nodes present"], rows, caption)


def energy_trend(res: ProbeResult, li: int) -> str:
    """The energies at the first measured context length and at the longest, as a sentence."""
    a = res.arrays
    measured = np.nonzero(np.isfinite(a["energy_pca"][:, li]))[0]
    if measured.size == 0:
        return "no context length had enough nodes in its window to measure the energy"
    first, last = measured[0], measured[-1]
    c0, c1 = int(a["context_lengths"][first]), int(a["context_lengths"][last])
    return (f"from context {c0} (the first with most nodes in the window) to {c1}, the top-2-PC energy goes "
            f"{a['energy_pca'][first, li]:.2f} → {a['energy_pca'][last, li]:.2f}, the full-dimension one "
            f"{a['energy'][first, li]:.2f} → {a['energy'][last, li]:.2f} and the Procrustes R² "
            f"{a['procrustes_r2'][first, li]:.2f} → {a['procrustes_r2'][last, li]:.2f}")


def transition_text(transitions: dict[str, int | None]) -> str:
    return "; ".join(f"{name} transition at context {t if t is not None else 'none (no rise of 0.2)'}"
                     for name, t in transitions.items())


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


def node_colors(graph_world: GraphWorld) -> np.ndarray:
    """A value per node for the PCA panels: its first spectral coordinate, so that a layout
    like the graph's shows as a smooth gradient."""
    return spectral_embedding(graph_world.graph, k=1)[:, 0]


def _figures(run: Run, res: ProbeResult, world: GraphWorld, names: list[str], li: int, tag: str,
             train_length: int | None, panels: int) -> tuple[list[Figure], dict[str, int | None]]:
    """PCA panels, energy–accuracy plot and layer heat map of one traced graph."""
    a = res.arrays
    contexts, layer = a["context_lengths"], int(a["layers"][li])
    transitions = {"accuracy": transition_context(contexts, a["accuracy"]),
                   "no-backtrack": transition_context(contexts, a["accuracy_no_backtrack"])}
    shown = panel_indices(res, li, panels)
    which = "walk 0's node means" if "energy_by_walk" in a else "node means pooled over the walks"
    out = []
    if shown:
        fig = figs.pca_panels(a["pca"][shown, li], [int(contexts[i]) for i in shown], world.edges,
                              node_colors(world), names,
                              f"{world.kind} graph, layer {layer} {tag}: PC1 vs PC2 of {which}",
                              a["explained_variance"][shown, li])
        out.append(Figure(run.save_figure(fig, f"pca_{tag}"), "Principal components of the node representations "
                          "at growing context lengths, with the graph's edges drawn; colour = the node's first "
                          "spectral coordinate."))
    fig = figs.energy_accuracy(contexts, {m: a[m] for m in RULE_CURVES}, a["energy"][:, li], a["energy_pca"][:, li],
                               transitions, layer, train_length)
    out.append(Figure(run.save_figure(fig, f"energy_accuracy_{tag}"),
                      "Rule-following accuracy and normalised Dirichlet energy against context length "
                      "(1 = no more graph structure than a random assignment of nodes). Stepping back to the "
                      "node just left is always valid, so the second accuracy leaves it out (top label among "
                      "the others). Dashed: accuracy transitions (halfway from lowest to highest value)."))
    fig = figs.energy_heatmaps(contexts, a["layers"], a["energy"], a["energy_pca"])
    out.append(Figure(run.save_figure(fig, f"energy_layers_{tag}"), "Normalised energy per layer and context "
                      "length (blank: too few nodes in the window)."))
    return out, transitions


RULE_CURVES = ("accuracy", "neighbor_mass", "chance", "accuracy_no_backtrack", "chance_no_backtrack")
CAVEAT = ("Reading the energies: a hidden state that carries the previous token already makes a node's mean "
          "over a walk reflect the edges that walk has used, so the energy can be low as soon as most nodes have "
          "appeared, before rule following is learned; and energies are measured only once a window holds most "
          "nodes (probe.min_present). With probe.pool = batch the node means are pooled over walks, which mixes "
          "many contexts and shows the graph earlier still.")


# -- built-in path ---------------------------------------------------------------------------


def run_trained(cfg: GraphTracingConfig, run: Run) -> Report:
    """Pretrain on random graph walks, then trace the new graph with the probe."""
    world = cfg.graph
    rng = np.random.default_rng([cfg.seed, 1])
    walks = world.prompts(rng, cfg.probe.n_walks)  # (n_walks, walk_length)
    model = build_model(cfg.model, cfg.pretrain.vocab_size, seed=cfg.seed)
    label = f"L{cfg.model.n_layers}-d{cfg.model.d_model}"

    train_probe = None
    if cfg.probe.train_walks:
        few = TokenBatch(walks.tokens[: cfg.probe.train_walks], None,
                         {k: v[: cfg.probe.train_walks] for k, v in walks.info.items()})
        lengths = log_context_lengths(world.walk_length, 4, min(4, world.walk_length))
        probe_during = cfg.probe.probe(context_lengths=lengths.tolist())

        def train_probe(m, step):
            return probe_during(m, few, world.graph).tagged(step=step, model=label, label="training").rows

    result = train(model, cfg.pretrain, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir("model"),
                   probe=train_probe, label=label)
    model.save_pretrained(run.path / "models" / "model")
    res = cfg.probe.probe()(model, walks, world.graph)
    rows = result.rows + res.tagged(step=cfg.train.steps, model=label, label=world.kind).rows
    run.save_rows(rows)

    li = pick_layer(res, cfg.probe.figure_layer)
    layer = int(res.arrays["layers"][li])
    names = [f"t{t}" for t in world.node_tokens]
    train_len = cfg.pretrain.seq_len
    figures, transitions = _figures(run, res, world, names, li, "trained", train_len, cfg.probe.panels)
    sections = [Section("Summary", f"Layer {layer} ({cfg.probe.site}); node means over the last "
                        f"{cfg.probe.window or 'all'} tokens, "
                        + ("within each walk, metrics averaged over walks." if cfg.probe.pool == "walk"
                           else "pooled over the walks."),
                        tables=[summary_table(res, li, f"{cfg.probe.n_walks} walks on a new {world.kind} graph "
                                              f"({world.n_nodes} nodes); accuracy at c averages predictions with "
                                              f"context in (c·{1 - cfg.probe.accuracy_window:g}, c].")]),
                Section("Representations and energy", CAVEAT, figures=figures)]

    steps_rows = [r for r in result.rows if r.label == "training"]
    if steps_rows:
        steps = np.array(sorted({r.step for r in steps_rows}))
        lengths = sorted({r.pos for r in steps_rows if r.metric == "accuracy"})
        acc = {c: np.array([next(r.value for r in steps_rows if r.step == s and r.pos == c
                                 and r.metric == "accuracy_no_backtrack") for s in steps]) for c in lengths}
        energy = np.array([next((r.value for r in steps_rows if r.step == s and r.metric == "energy_pca"
                                 and r.pos == lengths[-1] and r.layer == layer), np.nan) for s in steps])
        fig = figs.training_curves(steps, acc, energy, layer)
        sections.append(Section("Over pretraining", f"{cfg.probe.train_walks} of the walks traced every "
                                f"{cfg.train.eval_every} steps.",
                                figures=[Figure(run.save_figure(fig, "training"), "Rule following on the new graph "
                                                "(stepping back excluded) and representation energy against "
                                                "training step.")]))
    a = res.arrays
    final = {m: float(a[m][-1]) for m in RULE_CURVES + ("neighbor_mass",)}
    summary = (f"A {cfg.model.family} model ({cfg.model.n_layers} layers, d_model {cfg.model.d_model}, "
               f"{cfg.model.n_heads} heads, {n_params(model):,} parameters) pretrained {cfg.train.steps} steps on "
               f"random walks of {cfg.pretrain.seq_len} tokens over {cfg.pretrain.n_graphs} random graphs "
               f"({', '.join(cfg.pretrain.kinds)}; {cfg.pretrain.min_nodes}–{cfg.pretrain.max_nodes} nodes) with "
               f"fresh random labels from {cfg.pretrain.vocab} tokens per sequence, then traced on a new "
               f"{world.kind} graph of {world.n_nodes} nodes with labels {world.node_tokens.tolist()} (the "
               f"labelling is new; graph shapes of the pretraining families recur). At context "
               f"{int(a['context_lengths'][-1])}: accuracy {final['accuracy']:.2f} (chance {final['chance']:.2f}), "
               f"stepping back excluded {final['accuracy_no_backtrack']:.2f} (chance "
               f"{final['chance_no_backtrack']:.2f}), mass on neighbours {final['neighbor_mass']:.2f}; layer {layer} "
               f"energy {a['energy'][-1, li]:.2f} (full dimension), {a['energy_pca'][-1, li]:.2f} (top-2 PCs); "
               f"{transition_text(transitions)}; {energy_trend(res, li)}. Park et al. (ICLR 2025) find that "
               "the representations reorganise into the graph's shape as the context grows, and that accuracy "
               "rises once the energy has fallen.")
    return Report("In-context graph tracing: a model trained here", summary, sections)


# -- pretrained path ---------------------------------------------------------------------------


def word_walks(world: GraphWorld, tokenizer, settings: PretrainedSettings, rng: np.random.Generator
               ) -> tuple[TokenBatch, list[str], list[str]]:
    """Walks of ``world`` written as its words in ``tokenizer``'s ids (BOS first if asked).

    Returns the batch, the node words, and the resolver's warnings (multi-token words).
    """
    def encode(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False)

    resolved = resolve_word_labels(world.node_words, encode, settings.prefix)
    nodes = world.walk(rng, settings.n_walks, settings.walk_length)  # (n_walks, walk_length)
    batch = world.batch(nodes, resolved.token_ids)
    bos = getattr(tokenizer, "bos_token_id", None)
    if settings.bos and bos is not None:
        batch = prepend_token(batch, int(bos))
    return batch, world.node_words, resolved.warnings


def run_pretrained(cfg: GraphTracingConfig, run: Run, model_name: str) -> Report:
    """Trace a word-labelled graph, and the semantic-conflict rings, in a pretrained LM."""
    model, tokenizer = load_model(model_name, need_tokenizer=True)
    settings = cfg.pretrained
    world = GraphWorld(**{**cfg.graph.model_dump(), "walk_length": settings.walk_length})
    rng = np.random.default_rng([cfg.seed, 1])
    batch, names, notes = word_walks(world, tokenizer, settings, rng)
    probe = cfg.probe.probe(batch_size=settings.batch_size)
    res = probe(model, batch, world.graph)
    rows = res.tagged(model=model_name, label=world.kind).rows
    li = pick_layer(res, cfg.probe.figure_layer)
    layer = int(res.arrays["layers"][li])
    figures, transitions = _figures(run, res, world, names, li, "words", None, cfg.probe.panels)
    sections = [Section("Summary", f"Layer {layer} ({cfg.probe.site}); {settings.n_walks} walks of "
                        f"{settings.walk_length} words" + (" after a BOS token" if batch.tokens.shape[1] >
                                                           settings.walk_length else "") + ". "
                        + (" ".join(notes) if notes else "Every word label is one token."),
                        tables=[summary_table(res, li, f"{world.kind} graph of {world.n_nodes} words: "
                                              f"{', '.join(names)}.")]),
                Section("Representations and energy", CAVEAT, figures=figures)]

    conflict_rows = []
    for kind in settings.conflict:
        cworld = GraphWorld(kind="ring", semantic_conflict=kind, seed=cfg.graph.seed,
                            walk_length=settings.walk_length)
        cbatch, cnames, cnotes = word_walks(cworld, tokenizer, settings, np.random.default_rng([cfg.seed, 2]))
        cres = cfg.probe.probe(batch_size=settings.batch_size, layers=[layer], keep_means=True)(
            model, cbatch, cworld.graph)
        rows += cres.tagged(model=model_name, label=kind).rows
        contexts = cres.arrays["context_lengths"]
        ring, natural = cworld.edges, natural_ring_edges(cworld.word_index)
        means = cres.arrays["means"][:, :, 0]  # (n_walks or 1, C, n_nodes, d_model)
        ce = conflict_energies(means, ring, natural)
        for metric, values in ce.items():
            rows += [Row("graph", metric, float(v), layer=layer, pos=int(c), model=model_name, label=kind)
                     for c, v in zip(contexts, values) if np.isfinite(v)]
        ok = [ci for ci in range(len(contexts)) if np.isfinite(means[0, ci]).all()]  # every day in walk 0's window
        if not ok or min(means.shape[-2:]) < 4:
            continue
        shown = sorted({ok[0], ok[len(ok) // 2], ok[-1]})
        coords = np.stack([pca(means[0, ci], k=4).coords for ci in shown])  # (panels, n_nodes, 4)
        fig = figs.conflict_panels(coords, [int(contexts[ci]) for ci in shown], ring, natural, cworld.word_index,
                                   cnames, f"{kind} on a scrambled ring, layer {layer}")
        ci = len(contexts) - 1
        conflict_rows += [[kind, int(contexts[ci]), *(float(ce[k][ci]) for k in ce),
                           float(cres.arrays["accuracy"][ci])]]
        sections.append(Section(f"Semantic conflict: {kind}", f"Ring order: {', '.join(cnames)} (no two ring "
                                "neighbours are neighbours in the usual order). " + " ".join(cnotes),
                                figures=[Figure(run.save_figure(fig, f"conflict_{kind}"),
                                                "PC1-2 (left) and PC3-4 (right) of walk 0's node means; solid: the "
                                                "in-context ring, dashed: the pretrained order; colour: the "
                                                "pretrained position.")]))
    if conflict_rows:
        sections.append(Section("Semantic conflict: energies", tables=[Table(
            ["words", "context", "PC1-2 vs ring", "PC3-4 vs ring", "PC1-2 vs usual order", "PC3-4 vs usual order",
             "accuracy"], conflict_rows, "Normalised energies at the longest context (1 = no structure), averaged "
            "over walks. Park et al.: the in-context ring shows in PC3-4 while PC1-2 keep the usual order.")]))
    run.save_rows(rows)
    a = res.arrays
    summary = (f"{model_name} on random walks over a {world.kind} graph of {world.n_nodes} words. At context "
               f"{int(a['context_lengths'][-1])}: accuracy {a['accuracy'][-1]:.2f} (chance {a['chance'][-1]:.2f}), "
               f"stepping back excluded {a['accuracy_no_backtrack'][-1]:.2f} "
               f"(chance {a['chance_no_backtrack'][-1]:.2f}); "
               f"layer {layer} energy {a['energy'][-1, li]:.2f} (full dimension), {a['energy_pca'][-1, li]:.2f} "
               f"(top-2 PCs); {transition_text(transitions)}; {energy_trend(res, li)}.")
    return Report(f"In-context graph tracing: {model_name}", summary, sections)


def run_study(cfg: GraphTracingConfig, run: Run, model_name: str | None = None) -> Report:
    if model_name:
        return run_pretrained(cfg, run, model_name)
    return run_trained(cfg, run)
