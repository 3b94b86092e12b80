"""The task-vectors report of a model trained here, from the stored run: the rows over training and
the saved representations."""

from __future__ import annotations

import numpy as np

from iclab.metrics.embedding import embed_2d
from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.task_vectors import figures as figs
from iclab.studies.task_vectors.config import TOKEN_NAMES, TaskVectorsConfig, read_position
from iclab.studies.task_vectors.curves import marked_steps, points_r2, td_vs_loss, training_curves
from iclab.studies.task_vectors.synthetic import repr_path
from iclab.worlds.regression import SparseLinearMixture


def error_by_basis(rows: Rows) -> dict[str, dict[str, np.ndarray]]:
    """{basis: {predictor: error / rank per point (points,)}} from the ``regression`` rows."""
    err = rows.where(probe="regression", metric="error")
    return {b: {p: err.where(label=b, model=p).series("pos")[1] for p in err.where(label=b).unique("model")}
            for b in err.unique("label")}


def report_trained(cfg: TaskVectorsConfig, run: Run) -> Report:
    world, n_layers, repr_layer = cfg.world, cfg.model.n_layers, cfg.repr_layer()
    rows = run.load_rows()
    prompts = run.load_arrays("prompts")
    labels, zero_loss = prompts["basis"].astype(str), float(prompts["zero_loss"])
    td_pos, repr_pos = (read_position(world, p) for p in (cfg.probe.td_position, cfg.probe.repr_position))
    td_tok, repr_tok = TOKEN_NAMES[cfg.probe.td_position], TOKEN_NAMES[cfg.probe.repr_position]
    c = training_curves(rows, world.n_bases, n_layers, td_pos, repr_pos)
    steps, td = c.steps, c.td
    bases = list(c.loss_by_basis)
    marks = marked_steps(steps, c.loss, cfg.probe.marks, zero_loss)
    panel_steps = sorted({int(steps[0]), *(marks or [int(steps[len(steps) // 2])]), int(steps[-1])})
    fig_curves = run.save_figure(figs.loss_and_td(steps, c.loss_by_basis, td, list(range(n_layers)), marks, td_tok),
                                 "loss_and_td")

    # ---- representation panels at the marked steps
    reps = {s: np.load(repr_path(run, s)) for s in panel_steps if repr_path(run, s).is_file()}
    pca = {f"step {s}": embed_2d(H, "pca", cfg.seed) for s, H in reps.items()}
    fig_pca = run.save_figure(figs.embedding_panels(
        pca, labels, f"PCA of layer {repr_layer} at {repr_tok}, by basis"), "pca_by_step")
    figures = [Figure(fig_curves, "Left: eval loss per basis (log scale). Right: mean TD per layer at "
                      f"{td_tok}. Dashed: the "
                      f"marked steps (first probe step with {', '.join(f'{q:.0%}' for q in cfg.probe.marks)} of "
                      f"the largest gain over predicting 0, whose loss is {zero_loss:.2f})"
                      + ("." if marks else "; none: the loss never fell below it.")),
               Figure(fig_pca, f"Layer {repr_layer} representation of {repr_tok} token, PCA "
                      "per step, coloured by basis.")]
    if cfg.probe.umap:
        um = {f"step {s}": embed_2d(H, "umap", cfg.seed, cfg.probe.umap_neighbors, cfg.probe.umap_min_dist)
              for s, H in reps.items()}
        fig_umap = run.save_figure(figs.embedding_panels(
            um, labels, f"UMAP of layer {repr_layer} (n_neighbors {cfg.probe.umap_neighbors}, "
                        f"min_dist {cfg.probe.umap_min_dist})"), "umap_by_step")
        figures.append(Figure(fig_umap, "The same representations, UMAP."))
    final_all = repr_path(run, cfg.train.steps, all_layers=True)
    if final_all.is_file():
        H_all = np.load(final_all)
        per_layer = {f"layer {layer}": embed_2d(H_all[layer], "pca", cfg.seed) for layer in range(n_layers)}
        figures.append(Figure(run.save_figure(figs.embedding_panels(per_layer, labels, "PCA per layer, end of "
                                                                    "training"), "pca_by_layer"),
                              "Every layer at the end of training: where the bases separate."))
    profiles = {f"step {s}": td[:, list(steps).index(s)] for s in panel_steps}
    fig_prof = run.save_figure(figs.td_profiles(profiles, np.arange(n_layers), "TD across layers",
                                                chance=1 / world.n_bases), "td_profile")
    figures.append(Figure(fig_prof, f"TD per layer at {td_tok}, at the marked steps."))
    rank = int(world.supports.sum(axis=1).max())  # every variant's bases have the same rank
    curves = error_by_basis(rows)
    fig_err = run.save_figure(figs.error_vs_k(curves, float(rank)), "error_vs_k")

    # ---- TD against error over the run's own checkpoints (its probe steps), one point per basis and step
    best_layer, over_training = td_vs_loss(rows, c, td_pos, rank)
    r2 = points_r2(over_training)
    fig_scatter = run.save_figure(figs.td_vs_accuracy({"over training": over_training}, {"over training": r2},
                                                      ylabel="eval MSE / rank", unit_y=False), "td_vs_loss")

    # ---- tables
    last = world.points - 1
    final = int(steps[-1])
    td_final, td_init = td[:, -1], td[:, 0]
    summary = Table(["basis", "loss step 0", "loss final", *[p for p in curves[bases[0]]]],
                    [[b, float(c.loss_by_basis[b][0]), float(c.loss_by_basis[b][-1]),
                      *[float(e[last]) for e in curves[b].values()]] for b in bases],
                    caption=f"Error columns: squared error / rank at the last point (point {world.points}, "
                            f"predicted from {last} examples), {cfg.probe.eval_per_basis} prompts per basis.")
    both = repr_pos != td_pos
    td_table = Table(["step", "best layer", "best mean TD", f"TD at layer {repr_layer}",
                      *([f"best mean TD at {repr_tok}"] if both else [])],
                     [[int(s), int(np.argmax(td[:, i])), float(td[:, i].max()), float(td[repr_layer, i]),
                       *([float(c.td_repr[:, i].max())] if both else [])]
                      for i, s in enumerate(steps) if s in panel_steps],
                     caption=f"TD at {td_tok}"
                             + (" (the token before the answer)" if cfg.probe.td_position == "last_x" else "")
                             + ", unless a column says otherwise. "
                             f"Chance is {1 / world.n_bases:.2f} ({world.n_bases} bases); k = {cfg.probe.k}, "
                             f"{cfg.probe.n_per_basis} prompts per basis.")
    return Report(
        title="Task vectors: coupled emergence of task encoding and in-context regression",
        summary=(f"{findings(td, curves, world)}\n\n"
                 f"A {cfg.model.family} transformer ({n_layers} layers, width {cfg.model.d_model}, "
                 f"{cfg.model.n_heads} heads) with a linear read-in/read-out, trained {cfg.train.steps} steps "
                 f"(batch {cfg.train.batch_size}) on the {world.bases} mixture of sparse linear regressions "
                 f"(D = {world.dim}, {world.n_bases} bases, K = {world.points}, σ = {world.noise_std}"
                 f"{curriculum_text(world)}). "
                 f"TD at {td_tok}: best {td_init.max():.2f} at step 0; at step {final}: best {td_final.max():.2f} "
                 f"(layer {int(np.argmax(td_final))}). Han et al. (ICML 2025): the loss of each basis falls as "
                 "its representation separates from the others, and TD rises with it."),
        sections=[Section("Summary", tables=[summary, td_table]),
                  *filter(None, [training_section(run, rows)]),
                  Section("Coupled emergence", figures=figures),
                  Section("TD against error over training",
                          f"One point per basis and probe step (the run's checkpoints): the basis's TD at the "
                          f"final best layer ({best_layer}) against its eval loss divided by the rank. "
                          f"R² = {r2:.2f}.", figures=[Figure(fig_scatter, "TD against error, basis@step.")]),
                  Section("Error against in-context examples",
                          f"Squared error divided by the rank of the basis ({rank}), so predicting 0 scores ≈ 1. "
                          "oracle-lasso knows the true basis.",
                          figures=[Figure(fig_err, "One panel per basis; the transformer is the thick line.")])])


def findings(td: np.ndarray, curves: dict[str, dict[str, np.ndarray]], world: SparseLinearMixture) -> str:
    """This run's findings from its numbers, flagging what contradicts Han et al.'s coupled emergence:
    every basis learned (error at the last point at most half that of predicting 0), TD risen from
    chance to at least 0.8, and task knowledge used (below least squares on some basis)."""
    last = world.points - 1
    err = {b: float(c["transformer"][last]) for b, c in curves.items()}
    ols = {b: float(c["least-squares"][last]) for b, c in curves.items() if "least-squares" in c}
    best, start = float(td[:, -1].max()), float(td[:, 0].max())
    text = (f"Best mean TD rises from {start:.2f} (chance {1 / world.n_bases:.2f}) to {best:.2f} (layer "
            f"{int(np.argmax(td[:, -1]))}); at the last point the error per basis is "
            + ", ".join(f"{e:.3f}" for e in err.values()) + " of predicting 0"
            + (", against " + ", ".join(f"{e:.3f}" for e in ols.values()) + " for least squares" if ols else "") + ".")
    warnings = []
    unlearned = [b for b, e in err.items() if e > 0.5]
    if unlearned:
        warnings.append(f"basis {', '.join(unlearned)} is not learned (error above half that of predicting 0)")
    if best < 0.8:
        warnings.append(f"TD ends below 0.8 ({best:.2f})")
    if ols and not any(err[b] < ols[b] for b in ols):
        warnings.append("the model is not below least squares on any basis")
    return text + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


def curriculum_text(world: SparseLinearMixture) -> str:
    c = world.curriculum
    if c is None:
        return ""
    ramps = [f"{name} from {r.start} by {r.inc} every {r.every} steps" for name, r in
             (("bases", c.bases), ("basis rank", c.rank), ("points", c.points), ("input dims", c.dims))
             if r is not None]
    if c.rank_per_basis:
        ramps.append("the rank ramp restarting for each basis as it enters")
    return "; curriculum: " + ", ".join(ramps) if ramps else ""
