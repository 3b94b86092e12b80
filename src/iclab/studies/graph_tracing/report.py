"""The graph-tracing report, from the stored run: the trace's arrays and the rows over training."""

from __future__ import annotations

import numpy as np

from iclab.metrics.graph import natural_ring_edges, pca, spectral_embedding
from iclab.probes.graph_tracing import pick_layer, transition_context
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.graph_tracing import figures as figs
from iclab.studies.graph_tracing.config import GraphTracingConfig
from iclab.studies.graph_tracing.measure import conflict_world, word_world
from iclab.worlds.graph import GraphWorld


def panel_indices(a: dict[str, np.ndarray], li: int, n: int) -> list[int]:
    """Up to ``n`` context-length indices spread on the log scale over those with PCA coordinates."""
    ok = np.nonzero(np.isfinite(a["pca"][:, li]).all(axis=-1).sum(axis=-1) >= 3)[0]
    if ok.size == 0:
        return []
    picks = np.unique(np.round(np.linspace(0, ok.size - 1, min(n, ok.size))).astype(int))
    return [int(ok[p]) for p in picks]


def summary_table(a: dict[str, np.ndarray], li: int, caption: str) -> Table:
    rows = [[int(c), float(a["accuracy"][ci]), float(a["chance"][ci]), float(a["accuracy_no_backtrack"][ci]),
             float(a["chance_no_backtrack"][ci]), float(a["neighbor_mass"][ci]), float(a["energy"][ci, li]),
             float(a["energy_pca"][ci, li]), float(a["procrustes_r2"][ci, li]), float(a["nodes_present"][ci])]
            for ci, c in enumerate(a["context_lengths"])]
    return Table(["context", "accuracy", "chance", "accuracy, no step back", "its chance", "mass on neighbours",
                  "energy (full)", "energy (top-2 PCs)", "Procrustes R² vs spectral", "nodes present"], rows,
                 caption + " –: not measured, as too few nodes occur in the window (probe.min_present).")


def energy_trend(a: dict[str, np.ndarray], li: int) -> str:
    """The energies at the first measured context length and at the longest, as a sentence."""
    measured = np.nonzero(np.isfinite(a["energy_pca"][:, li]))[0]
    if measured.size == 0:
        return "no context length had enough nodes in its window to measure the energy"
    first, last = measured[0], measured[-1]
    c0, c1 = int(a["context_lengths"][first]), int(a["context_lengths"][last])
    return (f"from context {c0} (the first with most nodes in the window) to {c1}, the top-2-PC energy goes "
            f"{a['energy_pca'][first, li]:.2f} → {a['energy_pca'][last, li]:.2f}, the full-dimension one "
            f"{a['energy'][first, li]:.2f} → {a['energy'][last, li]:.2f} and the Procrustes R² "
            f"{a['procrustes_r2'][first, li]:.2f} → {a['procrustes_r2'][last, li]:.2f}")


# Finding 1 (Park et al.) is called when the top-2-PC energy of the figure layer falls at least
# this much from the first context length with most nodes in the window to its lowest value
# at a longer context, and that lowest value is below REORGANISED_BELOW.
REORGANISE_DROP = 0.1
REORGANISED_BELOW = 0.5


def reorganisation(a: dict[str, np.ndarray], li: int) -> dict[str, float] | None:
    """Top-2-PC energy of layer index ``li`` at the first measured context length and at the
    context where it is lowest, and whether that is a reorganisation (None if never measured)."""
    e = a["energy_pca"][:, li]
    measured = np.nonzero(np.isfinite(e))[0]
    if measured.size == 0:
        return None
    first = int(measured[0])
    low = int(measured[np.argmin(e[measured])])
    e0, e1 = float(e[first]), float(e[low])
    return {"c0": int(a["context_lengths"][first]), "e0": e0, "c_low": int(a["context_lengths"][low]), "e_low": e1,
            "e_last": float(e[measured[-1]]), "c_last": int(a["context_lengths"][measured[-1]]),
            "reorganised": e0 - e1 >= REORGANISE_DROP and e1 < REORGANISED_BELOW}


def reorganisation_text(a: dict[str, np.ndarray], li: int, layer: int) -> str:
    """Finding 1 in this run's numbers, flagged when the representations do not reorganise."""
    r = reorganisation(a, li)
    if r is None:
        return "No context length had enough nodes in its window to measure the representations' energy."
    text = (f"Layer {layer}'s node representations: top-2-PC energy {r['e0']:.2f} at context {r['c0']} (the first "
            f"with most nodes in the window), lowest {r['e_low']:.2f} at context {r['c_low']}"
            + (f", {r['e_last']:.2f} at the longest ({r['c_last']})" if r["c_last"] != r["c_low"] else "") + ". ")
    if r["reorganised"]:
        return text + (f"They reorganise into the graph's shape as the context grows (a fall of at least "
                       f"{REORGANISE_DROP:g} to below {REORGANISED_BELOW:g}), as Park et al. find.")
    return text + (f"⚠ Contradicts the expected finding: the representations do not reorganise with context (the "
                   f"criterion is a fall of at least {REORGANISE_DROP:g} to below {REORGANISED_BELOW:g}).")


def transition_text(transitions: dict[str, int | None]) -> str:
    return "; ".join(f"{name} transition at context {t if t is not None else 'none (no rise of 0.2)'}"
                     for name, t in transitions.items())


def node_colors(graph_world: GraphWorld) -> np.ndarray:
    """A value per node for the PCA panels: its first spectral coordinate, so that a layout
    like the graph's shows as a smooth gradient."""
    return spectral_embedding(graph_world.graph, k=1)[:, 0]


def trace_figures(run: Run, a: dict[str, np.ndarray], world: GraphWorld, names: list[str], li: int, tag: str,
             train_length: int | None, panels: int) -> tuple[list[Figure], dict[str, int | None]]:
    """PCA panels, energy–accuracy plot and layer heat map of one traced graph."""
    contexts, layer = a["context_lengths"], int(a["layers"][li])
    transitions = {"accuracy": transition_context(contexts, a["accuracy"]),
                   "no-backtrack": transition_context(contexts, a["accuracy_no_backtrack"])}
    shown = panel_indices(a, li, panels)
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


def report(cfg: GraphTracingConfig, run: Run) -> Report:
    model_name = run.meta.get("model")
    return report_pretrained(cfg, run, model_name) if model_name else report_trained(cfg, run)


def report_trained(cfg: GraphTracingConfig, run: Run) -> Report:
    world = cfg.graph
    rows = run.load_rows()
    a = run.load_arrays("trace-trained")
    li = pick_layer(a, cfg.probe.figure_layer)
    layer = int(a["layers"][li])
    names = [f"t{t}" for t in world.node_tokens]
    figures, transitions = trace_figures(run, a, world, names, li, "trained", cfg.pretrain.seq_len, cfg.probe.panels)
    sections = [Section("Summary", f"Layer {layer} ({cfg.probe.site}); node means over the last "
                        f"{cfg.probe.window or 'all'} tokens, "
                        + ("within each walk, metrics averaged over walks." if cfg.probe.pool == "walk"
                           else "pooled over the walks."),
                        tables=[summary_table(a, li, f"{cfg.probe.n_walks} walks on a new {world.kind} graph "
                                              f"({world.n_nodes} nodes); accuracy at c averages predictions with "
                                              f"context in (c·{1 - cfg.probe.accuracy_window:g}, c].")]),
                Section("Representations and energy", CAVEAT, figures=figures)]

    during = rows.where(label="training")
    if during:
        steps = np.array(sorted(set(during.unique("step"))))
        lengths = sorted(set(during.where(metric="accuracy").unique("pos")))
        acc = {c: np.array([during.where(step=int(s), pos=c).value("accuracy_no_backtrack") for s in steps])
               for c in lengths}
        energy = np.array([during.where(step=int(s), metric="energy_pca", pos=lengths[-1], layer=layer).first()
                           for s in steps])
        fig = figs.training_curves(steps, acc, energy, layer)
        sections.append(Section("Over pretraining", f"{cfg.probe.train_walks} of the walks traced every "
                                f"{cfg.train.eval_every} steps.",
                                figures=[Figure(run.save_figure(fig, "training"), "Rule following on the new graph "
                                                "(stepping back excluded) and representation energy against "
                                                "training step.")]))
    sections += filter(None, [training_section(run, rows)])
    final = {m: float(a[m][-1]) for m in RULE_CURVES + ("neighbor_mass",)}
    summary = (f"A {cfg.model.family} model ({cfg.model.n_layers} layers, d_model {cfg.model.d_model}, "
               f"{cfg.model.n_heads} heads, {int(a['n_params']):,} parameters) pretrained {cfg.train.steps} steps on "
               f"random walks of {cfg.pretrain.seq_len} tokens over {cfg.pretrain.n_graphs} random graphs "
               f"({', '.join(cfg.pretrain.kinds)}; {cfg.pretrain.min_nodes}–{cfg.pretrain.max_nodes} nodes) with "
               f"fresh random labels from {cfg.pretrain.vocab} tokens per sequence, then traced on a new "
               f"{world.kind} graph of {world.n_nodes} nodes with labels {world.node_tokens.tolist()} (the "
               f"labelling is new; graph shapes of the pretraining families recur). At context "
               f"{int(a['context_lengths'][-1])}: accuracy {final['accuracy']:.2f} (chance {final['chance']:.2f}), "
               f"stepping back excluded {final['accuracy_no_backtrack']:.2f} (chance "
               f"{final['chance_no_backtrack']:.2f}), mass on neighbours {final['neighbor_mass']:.2f}; layer {layer} "
               f"energy {a['energy'][-1, li]:.2f} (full dimension), {a['energy_pca'][-1, li]:.2f} (top-2 PCs); "
               f"{transition_text(transitions)}; {energy_trend(a, li)}. Park et al. (ICLR 2025) find that "
               "the representations reorganise into the graph's shape as the context grows, and that accuracy "
               "rises once the energy has fallen.")
    return Report("In-context graph tracing: a model trained here",
                  trained_findings(a, li) + " " + reorganisation_text(a, li, layer) + "\n\n" + summary, sections)


def trained_findings(a: dict[str, np.ndarray], li: int) -> str:
    """This run's findings at the longest context, flagging what contradicts Park et al.'s: rule
    following well above chance once the context is long, and node representations that take the
    graph's shape (normalised top-2-PC energy well below 1)."""
    c = int(a["context_lengths"][-1])
    acc, chance = float(a["accuracy_no_backtrack"][-1]), float(a["chance_no_backtrack"][-1])
    energy = float(a["energy_pca"][-1, li])
    text = (f"At context {c} the model follows the new graph's edges {acc:.0%} of the time with stepping back "
            f"excluded (chance {chance:.0%}), and the top-2 principal components of its node representations have "
            f"{'no measured energy' if energy != energy else f'normalised energy {energy:.2f}'} "
            "(1: no more graph structure than chance).")
    warnings = []
    if acc < 0.9:
        warnings.append(f"rule following at the longest context is below 0.9 ({acc:.2f})")
    if not energy < 0.5:
        warnings.append("the representations do not take the graph's shape (top-2-PC energy not below 0.5)")
    return text + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


CONFLICT_ENERGIES = ("energy_pc12_context", "energy_pc34_context", "energy_pc12_pretrained", "energy_pc34_pretrained")


def report_pretrained(cfg: GraphTracingConfig, run: Run, model_name: str) -> Report:
    settings = cfg.pretrained
    world = word_world(cfg)
    a = run.load_arrays("trace-words")
    names, notes = world.node_words, a["notes"].tolist()
    li = pick_layer(a, settings.figure_layer)
    layer = int(a["layers"][li])
    figures, transitions = trace_figures(run, a, world, names, li, "words", None, cfg.probe.panels)
    sections = [Section("Summary", f"Layer {layer} ({cfg.probe.site}); {settings.n_walks} walks of "
                        f"{settings.walk_length} words" + (" after a BOS token" if bool(a["bos"]) else "") + ". "
                        + (" ".join(notes) if notes else "Every word label is one token."),
                        tables=[summary_table(a, li, f"{world.kind} graph of {world.n_nodes} words: "
                                              f"{', '.join(names)}.")]),
                Section("Representations and energy", CAVEAT, figures=figures)]

    conflict_rows = []
    for kind in settings.conflict:
        cworld = conflict_world(cfg, kind)
        c = run.load_arrays(f"conflict-{kind}")
        contexts, means0 = c["context_lengths"], c["means_walk0"]  # (C,), (C, n_nodes, d_model)
        ring, natural = cworld.edges, natural_ring_edges(cworld.word_index)
        ok = [ci for ci in range(len(contexts)) if np.isfinite(means0[ci]).all()]  # every item in walk 0's window
        if not ok or min(means0.shape[-2:]) < 4:
            continue
        shown = sorted({ok[0], ok[len(ok) // 2], ok[-1]})
        coords = np.stack([pca(means0[ci], k=4).coords for ci in shown])  # (panels, n_nodes, 4)
        fig = figs.conflict_panels(coords, [int(contexts[ci]) for ci in shown], ring, natural, cworld.word_index,
                                   cworld.node_words, f"{kind} on a scrambled ring, layer {layer}")
        ci = len(contexts) - 1
        conflict_rows += [[kind, int(contexts[ci]), *(float(c[k][ci]) for k in CONFLICT_ENERGIES),
                           float(c["accuracy"][ci])]]
        sections.append(Section(f"Semantic conflict: {kind}", f"Ring order: {', '.join(cworld.node_words)} (no two "
                                "ring neighbours are neighbours in the usual order). " + " ".join(c["notes"].tolist()),
                                figures=[Figure(run.save_figure(fig, f"conflict_{kind}"),
                                                "PC1-2 (left) and PC3-4 (right) of walk 0's node means; solid: the "
                                                "in-context ring, dashed: the pretrained order; colour: the "
                                                "pretrained position.")]))
    if conflict_rows:
        sections.append(Section("Semantic conflict: energies", tables=[Table(
            ["words", "context", "PC1-2 vs ring", "PC3-4 vs ring", "PC1-2 vs usual order", "PC3-4 vs usual order",
             "accuracy"], conflict_rows, "Normalised energies at the longest context (1 = no structure), averaged "
            "over walks. Park et al.: the in-context ring shows in PC3-4 while PC1-2 keep the usual order.")]))
    summary = (f"{model_name} on random walks over a {world.kind} graph of {world.n_nodes} words. At context "
               f"{int(a['context_lengths'][-1])}: accuracy {a['accuracy'][-1]:.2f} (chance {a['chance'][-1]:.2f}), "
               f"stepping back excluded {a['accuracy_no_backtrack'][-1]:.2f} "
               f"(chance {a['chance_no_backtrack'][-1]:.2f}); "
               f"layer {layer} energy {a['energy'][-1, li]:.2f} (full dimension), {a['energy_pca'][-1, li]:.2f} "
               f"(top-2 PCs); {transition_text(transitions)}; {energy_trend(a, li)}.")
    return Report(f"In-context graph tracing: {model_name}", reorganisation_text(a, li, layer) + "\n\n" + summary,
                  sections)
