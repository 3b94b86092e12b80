"""Study ``task-vectors``: task encoding and decoding (Han, Song, Gore and Agrawal, ICML 2025).

Spec: ``shared/spec/task_vectors.md``.

**Synthetic part** (no ``--model``). Train a transformer with a linear read-in/read-out
(:class:`~iclab.models.vector.VectorModel`) on the mixture of sparse linear regressions
(:class:`~iclab.worlds.regression.SparseLinearMixture`). At step 0, every
``train.eval_every`` steps and at the end, on a fixed set of prompts stratified by basis:
the loss (MSE over all positions) per basis, task decodability (TD) at every layer of the
residual stream at the last ``x`` (the token before the answer, as the spec defines TD), and
the representation of the ``y`` token of the last demonstration at a middle layer (saved under
``arrays/`` of the run for the PCA/UMAP panels; TD is measured there too). The marked steps
are the first probe steps at which the mean loss has made a given share of its largest gain
over predicting 0.
After training: squared error against the number of in-context examples, per basis, for
the transformer and the baselines (least squares, ridge, Lasso, Lasso on the true basis,
averaging).

**Natural part** (``--model NAME_OR_PATH``, a causal LM with its tokenizer). For each task
family (bitwise arithmetic, POS tagging, each with its Null task) and each shot count:
greedy exact-match accuracy per task, TD per layer at the query's ``->`` (the token before
the answer), and the scatter of TD against accuracy with its R²; a "prompting" control
(the task stated in words, zero shots); task-vector patching (replace or add the mean
demonstration state at the query's ``->``, true task vs Null, over several seeds); and,
if enabled, fine-tuning (LoRA or full) of the first vs the last layers.

What it shows: the loss falls basis by basis, and as it falls the representations of the
bases separate and TD rises (coupled emergence); in pretrained LMs, TD at the best layer
tracks accuracy across tasks and shot counts, and the true task's vector moves accuracy
while the Null vector does not.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from iclab.baselines import baseline_names, error_curve, make_baseline
from iclab.config import Frozen, TrainConfig
from iclab.errors import ConfigError, ModelLoadError
from iclab.models.build import ModelSpec
from iclab.models.hooks import anatomy
from iclab.models.load import check_model_path, load_model
from iclab.models.vector import VectorModel, x_position, y_position
from iclab.probes.decodability import LabelledInputs, TaskDecodability
from iclab.probes.result import Row
from iclab.probes.task_accuracy import TaskAccuracy
from iclab.probes.task_text import EncodedPrompts, encode_prompts
from iclab.probes.task_vectors import PatchingPrompts, TaskVectorPatching, task_vectors
from iclab.progress import progress_bar
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies import task_vectors_figures as figs
from iclab.studies.task_vectors_finetune import FinetuneSettings, finetune_layers, tuned_layers
from iclab.tasks import build_prompts, get_task, task_names
from iclab.train.loop import train
from iclab.worlds.base import VectorBatch
from iclab.worlds.regression import SparseLinearMixture

#: baselines of the error-vs-K comparison (spec: OLS, ridge, Lasso, oracle Lasso, averaging)
DEFAULT_BASELINES = ["least-squares", "ridge", "lasso", "oracle-lasso", "averaging"]


class SyntheticSettings(Frozen):
    """What is measured on the model trained on the sparse mixture.

    Parameters
    ----------
    n_per_basis : int, default 100
        TD and loss prompts per basis (fixed over training).
    k : int, default 10
        TD voters.
    td_position : {"last_x", "last_y"}, default "last_x"
        Token whose hidden states TD reads. The spec's TD reads "the token just before the
        answer"; in a regression prompt the answer ``y_K`` is predicted at the last ``x``.
    repr_position : {"last_y", "last_x"}, default "last_y"
        Token of the PCA/UMAP panels; the spec draws "the y token at the last demonstration".
        When it differs from ``td_position``, TD is also measured there (rows with that ``pos``)
        and reported beside the main TD.
    repr_layer : int or None, default None
        Layer of the PCA/UMAP panels; None is ``(n_layers - 1) // 2`` (layer 5 of 12, as in the seed).
    marks : list of float, default [0.1, 0.5, 0.9]
        Marked steps: the first probe step at which the mean loss has made this share of
        its largest gain over predicting 0 (see :func:`marked_steps`).
    umap : bool, default True
        Also draw UMAP panels (n_neighbors, min_dist below); PCA panels are always drawn.
    umap_neighbors : int, default 15
    umap_min_dist : float, default 0.1
    eval_per_basis : int, default 64
        Prompts per basis for the error-vs-K curves.
    baselines : list of str, default least-squares, ridge, lasso, oracle-lasso, averaging
    batch_size : int, default 256
    """

    n_per_basis: int = Field(100, ge=4)
    k: int = Field(10, ge=1)
    td_position: Literal["last_x", "last_y"] = "last_x"
    repr_position: Literal["last_x", "last_y"] = "last_y"
    repr_layer: int | None = Field(None, ge=0)
    marks: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    umap: bool = True
    umap_neighbors: int = Field(15, ge=2)
    umap_min_dist: float = Field(0.1, ge=0)
    eval_per_basis: int = Field(64, ge=1)
    baselines: list[str] = Field(default_factory=lambda: list(DEFAULT_BASELINES))
    batch_size: int = Field(256, ge=1)

    @field_validator("baselines")
    @classmethod
    def _known(cls, v):
        unknown = [b for b in v if b not in baseline_names()]
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {', '.join(baseline_names())}")
        return v

    @field_validator("marks")
    @classmethod
    def _shares(cls, v):
        if any(not 0 < m < 1 for m in v):
            raise ValueError(f"marks are shares of the in-context gain, each in (0, 1); got {v}")
        return v


class NaturalSettings(Frozen):
    """Natural tasks on a pretrained LM (``--model``).

    Parameters
    ----------
    families : list of {"bitwise", "pos"}, default both
    shots : list of int, default [1, 4, 10]
        Shot counts of the TD and accuracy measurements (the TD-vs-accuracy scatter).
    main_shots : int, default 4
        Shot count of the demonstrations for task vectors and of fine-tuning.
    n_prompts : int, default 100
        Prompts per task (Null included) at each shot count (spec: N = 100).
    k : int, default 10
    prompting_control : bool, default True
        Also score zero-shot prompts that state the task in words.
    conllu : str or None, default None
        A CoNLL-U file for the POS tasks instead of the shipped sentences.
    max_new_tokens : int or None, default None
        None: one more than the longest answer.
    batch_size : int, default 16
    checkpoints : list of str, default []
        Checkpoints of one training run, in training order (names or ``save_pretrained``
        directories, e.g. a series of OLMo revisions saved locally): TD and accuracy at
        ``main_shots`` are measured on each, and their R² over checkpoints reported.
    """

    families: list[Literal["bitwise", "pos"]] = Field(default_factory=lambda: ["bitwise", "pos"], min_length=1)
    shots: list[int] = Field(default_factory=lambda: [1, 4, 10], min_length=1)
    main_shots: int = Field(4, ge=1)
    n_prompts: int = Field(100, ge=4)
    k: int = Field(10, ge=1)
    prompting_control: bool = True
    conllu: str | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)
    checkpoints: list[str] = Field(default_factory=list)

    @field_validator("shots")
    @classmethod
    def _nonneg(cls, v):
        if any(s < 0 for s in v):
            raise ValueError(f"shot counts must be >= 0; got {v}")
        return v


class PatchingSettings(Frozen):
    """Task-vector patching on a pretrained LM.

    Parameters
    ----------
    enabled : bool, default True
    layers : list of int or None, default None
        Layers patched; None is the layer of highest TD at ``main_shots``, per family.
    mode : {"replace", "add"}, default "replace"
        Replace the query state (Hendel et al.) or add the vector (Todd et al.).
    where : {"arrows", "query"}, default "arrows"
        Average over every ``->`` of the demonstration prompts, or the last one only.
    demo_prompts : int, default 20
        Demonstration prompts (``main_shots`` shots) per task for each task vector.
    query_prompts : int, default 50
        Query prompts per task.
    query_shots : int, default 0
        Shots of the query prompts (0: zero-shot, as in Hendel et al.).
    n_seeds : int, default 3
        Repetitions with fresh prompts; error bars are their standard deviation.
    """

    enabled: bool = True
    layers: list[int] | None = None
    mode: Literal["replace", "add"] = "replace"
    where: Literal["arrows", "query"] = "arrows"
    demo_prompts: int = Field(20, ge=1)
    query_prompts: int = Field(50, ge=1)
    query_shots: int = Field(0, ge=0)
    n_seeds: int = Field(3, ge=1)


class TaskVectorsConfig(Frozen):
    """Config of the task-vectors study (presets in ``configs/task-vectors/``)."""

    seed: int = 0
    world: SparseLinearMixture = SparseLinearMixture()
    model: ModelSpec = ModelSpec(family="gpt2", n_layers=12, d_model=256, n_heads=8, max_len=64)
    train: TrainConfig = TrainConfig(steps=80_000, batch_size=128, lr=1e-4, betas=(0.9, 0.9999), warmup=0,
                                     min_lr_ratio=1.0, weight_decay=0.0, eval_every=1000, ckpt_every=5000)
    probe: SyntheticSettings = SyntheticSettings()
    natural: NaturalSettings = NaturalSettings()
    patching: PatchingSettings = PatchingSettings()
    finetune: FinetuneSettings = FinetuneSettings()

    @model_validator(mode="after")
    def _fits(self):
        if 2 * self.world.points > self.model.max_len:
            raise ValueError(f"model.max_len ({self.model.max_len}) must be >= 2 * world.points "
                             f"({2 * self.world.points}): each example is two tokens")
        if self.probe.repr_layer is not None and self.probe.repr_layer >= self.model.n_layers:
            raise ValueError(f"probe.repr_layer ({self.probe.repr_layer}) must be < model.n_layers "
                             f"({self.model.n_layers})")
        return self


# ================================================================== synthetic part


#: how the report names each ``probe.td_position`` / ``probe.repr_position``
TOKEN_NAMES = {"last_x": "the last x", "last_y": "the last y"}


def read_position(world: SparseLinearMixture, position: str) -> int:
    """Sequence position of the TD feature: the last ``y`` (``2K - 1``) or the last ``x`` (``2K - 2``)."""
    last = world.points - 1
    return int(y_position(last) if position == "last_y" else x_position(last))


def _as_inputs(batch: VectorBatch) -> dict[str, torch.Tensor]:
    return {"xs": torch.from_numpy(batch.xs), "ys": torch.from_numpy(batch.ys)}


def _repr_path(run: Run, step: int) -> Path:
    return run.path / "arrays" / f"repr-step{step:08d}.npy"


def measure_synthetic(model: VectorModel, prompts: VectorBatch, cfg: TaskVectorsConfig, repr_layer: int,
                      save_repr=None) -> list[Row]:
    """Loss per basis and TD per layer on ``prompts``; ``save_repr(H)`` gets every layer's
    features at ``probe.repr_position``, (layers, n, d_model).

    TD rows carry the sequence position they read as ``pos``: ``probe.td_position``, and also
    ``probe.repr_position`` when it differs."""
    basis = prompts.info["basis"]
    td_pos, repr_pos = (read_position(cfg.world, p) for p in (cfg.probe.td_position, cfg.probe.repr_position))

    def td_at(pos: int):
        labelled = LabelledInputs(_as_inputs(prompts), np.full(len(prompts), pos), basis.astype(str))
        res = TaskDecodability(k=cfg.probe.k, batch_size=cfg.probe.batch_size, keep_hidden=pos == repr_pos)(
            model, labelled)
        return _tag(res.rows, pos=pos), res.arrays.get("hidden")

    rows, hidden = td_at(td_pos)
    if repr_pos != td_pos:
        panel_rows, hidden = td_at(repr_pos)
        rows += panel_rows
    if save_repr is not None:
        save_repr(hidden)
    se = (model.predict(prompts.xs, prompts.ys, batch_size=cfg.probe.batch_size) - prompts.ys) ** 2  # (n, points)
    rows += [Row("synthetic", "loss", float(se.mean()), label="all")]
    rows += [Row("synthetic", "loss", float(se[basis == b].mean()), label=str(b)) for b in np.unique(basis)]
    return rows


def marked_steps(steps: np.ndarray, loss: np.ndarray, shares: list[float], reference: float) -> list[int]:
    """For each share ``q``: the first step at which ``reference - loss >= q (reference - min loss)``.

    ``reference`` is the loss of predicting 0 (``mean y²`` of the prompts), so the marks
    follow the in-context gain, not the first steps in which an untrained read-out learns
    to output about 0. No marks if the loss never falls below ``reference``.
    """
    gain = reference - loss  # (steps,)
    if not gain.max() > 0:
        return []
    out = [int(steps[np.argmax(gain >= q * gain.max())]) for q in shares]
    return sorted(dict.fromkeys(out))


def embed_2d(H: np.ndarray, method: str, seed: int, neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """2-D embedding of features (n, d): PCA (scikit-learn) or UMAP (umap-learn)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(H)
    import umap

    return umap.UMAP(n_neighbors=neighbors, min_dist=min_dist, random_state=seed).fit_transform(H)


def error_curves(model: VectorModel, world: SparseLinearMixture, cfg: TaskVectorsConfig
                 ) -> tuple[dict[str, dict[str, np.ndarray]], list[Row]]:
    """Squared error / rank against in-context examples, per basis, for the model and each baseline."""
    rng = np.random.default_rng([cfg.seed, 3])
    predictors = [model, *(make_baseline(name) for name in cfg.probe.baselines)]
    curves: dict[str, dict[str, np.ndarray]] = {}
    rows: list[Row] = []
    for b in range(world.n_bases):
        batch = world.prompts_for_basis(rng, cfg.probe.eval_per_basis, b)
        rank = float(world.supports[b].sum())
        curves[str(b)] = {}
        for p in predictors:
            e = error_curve(p, batch, normalizer=rank)  # (points,)
            curves[str(b)][p.name] = e
            rows += [Row("regression", "error", float(v), pos=i, model=p.name, label=str(b)) for i, v in enumerate(e)]
    return curves, rows


def _tag(rows: list[Row], **tags) -> list[Row]:
    return [replace(r, **tags) for r in rows]


def _series(rows: list[Row], metric: str, probe: str, **where) -> dict[int, float]:
    return {r.step: r.value for r in rows if r.metric == metric and r.probe == probe
            and all(getattr(r, k) == v for k, v in where.items())}


def run_trained(cfg: TaskVectorsConfig, run: Run) -> Report:
    """Train the regression transformer on the sparse mixture; trace loss, TD and representations."""
    world = cfg.world
    model = VectorModel(cfg.model, world.dim, seed=cfg.seed)
    n_layers = cfg.model.n_layers
    repr_layer = cfg.probe.repr_layer if cfg.probe.repr_layer is not None else (n_layers - 1) // 2
    prompts = world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_per_basis * world.n_bases)
    labels = prompts.info["basis"].astype(str)
    (run.path / "arrays").mkdir(exist_ok=True)

    def probe(m, step):
        def save(H):
            np.save(_repr_path(run, step), H[repr_layer])
            if step in (0, cfg.train.steps):
                np.save(run.path / "arrays" / f"repr-all-layers-step{step:08d}.npy", H)
        return _tag(measure_synthetic(m, prompts, cfg, repr_layer, save), step=step, model="transformer")

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir("transformer"),
                   probe=probe, label="transformer")
    rows = list(result.rows)
    model.save(run.path / "models" / "transformer")
    curves, err_rows = error_curves(model, world, cfg)
    rows += _tag(err_rows, step=cfg.train.steps)
    run.save_rows(rows)

    # ---- curves over training
    mean_loss = _series(rows, "loss", "synthetic", label="all")
    steps = np.array(sorted(mean_loss))
    loss_all = np.array([mean_loss[s] for s in steps])
    bases = [str(b) for b in range(world.n_bases)]
    loss_by_basis = {b: np.array([_series(rows, "loss", "synthetic", label=b)[s] for s in steps]) for b in bases}
    td_pos, repr_pos = (read_position(world, p) for p in (cfg.probe.td_position, cfg.probe.repr_position))
    td_tok, repr_tok = TOKEN_NAMES[cfg.probe.td_position], TOKEN_NAMES[cfg.probe.repr_position]
    td = np.array([[_series(rows, "td", "td", layer=layer, pos=td_pos)[s] for s in steps] for layer in range(n_layers)])
    td_repr = (np.array([[_series(rows, "td", "td", layer=layer, pos=repr_pos)[s] for s in steps]
                         for layer in range(n_layers)]) if repr_pos != td_pos else td)
    zero_loss = float((prompts.ys.astype(np.float64) ** 2).mean())  # the loss of predicting 0
    marks = marked_steps(steps, loss_all, cfg.probe.marks, zero_loss)
    panel_steps = sorted({int(steps[0]), *(marks or [int(steps[len(steps) // 2])]), int(steps[-1])})
    fig_curves = run.save_figure(figs.loss_and_td(steps, loss_by_basis, td, list(range(n_layers)), marks, td_tok),
                                 "loss_and_td")

    # ---- representation panels at the marked steps
    reps = {s: np.load(_repr_path(run, s)) for s in panel_steps if _repr_path(run, s).is_file()}
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
    final_all = run.path / "arrays" / f"repr-all-layers-step{cfg.train.steps:08d}.npy"
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
    fig_err = run.save_figure(figs.error_vs_k(curves, float(rank)), "error_vs_k")

    # ---- TD against error over the run's own checkpoints (its probe steps), one point per basis and step
    best_layer = int(np.argmax(td[:, -1]))
    td_task = {b: _series(rows, "td_task", "td", layer=best_layer, label=b, pos=td_pos) for b in bases}
    over_training = [(td_task[b][s], float(loss_by_basis[b][i]) / rank, f"{b}@{s}")
                     for i, s in enumerate(steps) for b in bases]
    r2 = points_r2(over_training)
    rows.append(Row("td_vs_loss", "r2", r2, layer=best_layer, step=int(steps[-1]), model="transformer",
                    label="synthetic"))
    run.save_rows(rows)
    fig_scatter = run.save_figure(figs.td_vs_accuracy({"over training": over_training}, {"over training": r2},
                                                      ylabel="eval MSE / rank", unit_y=False), "td_vs_loss")

    # ---- tables
    last = world.points - 1
    final = int(steps[-1])
    td_final, td_init = td[:, -1], td[:, 0]
    summary = Table(["basis", "loss step 0", "loss final", *[p for p in curves[bases[0]]]],
                    [[b, float(loss_by_basis[b][0]), float(loss_by_basis[b][-1]),
                      *[float(e[last]) for e in curves[b].values()]] for b in bases],
                    caption=f"Error columns: squared error / rank at the last point (point {world.points}, "
                            f"predicted from {last} examples), {cfg.probe.eval_per_basis} prompts per basis.")
    both = repr_pos != td_pos
    td_table = Table(["step", "best layer", "best mean TD", f"TD at layer {repr_layer}",
                      *([f"best mean TD at {repr_tok}"] if both else [])],
                     [[int(s), int(np.argmax(td[:, i])), float(td[:, i].max()), float(td[repr_layer, i]),
                       *([float(td_repr[:, i].max())] if both else [])]
                      for i, s in enumerate(steps) if s in panel_steps],
                     caption=f"TD at {td_tok}"
                             + (" (the token before the answer)" if cfg.probe.td_position == "last_x" else "")
                             + ", unless a column says otherwise. "
                             f"Chance is {1 / world.n_bases:.2f} ({world.n_bases} bases); k = {cfg.probe.k}, "
                             f"{cfg.probe.n_per_basis} prompts per basis.")
    return Report(
        title="Task vectors: coupled emergence of task encoding and in-context regression",
        summary=(f"A {cfg.model.family} transformer ({n_layers} layers, width {cfg.model.d_model}, "
                 f"{cfg.model.n_heads} heads) with a linear read-in/read-out, trained {cfg.train.steps} steps "
                 f"(batch {cfg.train.batch_size}) on the {world.bases} mixture of sparse linear regressions "
                 f"(D = {world.dim}, {world.n_bases} bases, K = {world.points}, σ = {world.noise_std}"
                 f"{_curriculum_text(world)}). "
                 f"TD at {td_tok}: best {td_init.max():.2f} at step 0; at step {final}: best {td_final.max():.2f} "
                 f"(layer {int(np.argmax(td_final))}). Han et al. (ICML 2025): the loss of each basis falls as "
                 "its representation separates from the others, and TD rises with it."),
        sections=[Section("Summary", tables=[summary, td_table]),
                  Section("Coupled emergence", figures=figures),
                  Section("TD against error over training",
                          f"One point per basis and probe step (the run's checkpoints): the basis's TD at the "
                          f"final best layer ({best_layer}) against its eval loss divided by the rank. "
                          f"R² = {r2:.2f}.", figures=[Figure(fig_scatter, "TD against error, basis@step.")]),
                  Section("Error against in-context examples",
                          f"Squared error divided by the rank of the basis ({rank}), so predicting 0 scores ≈ 1. "
                          "oracle-lasso knows the true basis.",
                          figures=[Figure(fig_err, "One panel per basis; the transformer is the thick line.")])])


def _curriculum_text(world: SparseLinearMixture) -> str:
    c = world.curriculum
    if c is None:
        return ""
    ramps = [f"{name} from {r.start} by {r.inc} every {r.every} steps" for name, r in
             (("bases", c.bases), ("basis rank", c.rank), ("points", c.points), ("input dims", c.dims))
             if r is not None]
    if c.rank_per_basis:
        ramps.append("the rank ramp restarting for each basis as it enters")
    return "; curriculum: " + ", ".join(ramps) if ramps else ""


# ================================================================== natural part


def family_tasks(family: str, conllu: str | None):
    """The family's tasks (the Null task last) by name."""
    return {name: get_task(name, conllu=conllu if family == "pos" else None) for name in task_names(family)}


def family_prompts(tasks: dict, rng: np.random.Generator, n: int, k: int, tokenizer, *, with_null: bool = True,
                   instruct: bool = False) -> EncodedPrompts:
    """``n`` k-shot prompts per task, tokenised together (task by task)."""
    prompts = []
    for task in tasks.values():
        if with_null or not task.is_null:
            prompts += build_prompts(task, rng, n, k, instruct=instruct)
    return encode_prompts(tokenizer, prompts)


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares line of ``y`` on ``x`` (the squared Pearson correlation); NaN if either is constant."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def td_accuracy_points(res: dict, layer: int, tag) -> list[tuple[float, float, str]]:
    """(TD of the task at ``layer``, accuracy of the task, "task@tag") per task of a
    :func:`measure_family` result (Null excluded: it has no accuracy)."""
    ti = {t: i for i, t in enumerate(res["td"]["tasks"])}
    return [(float(res["td"]["td_task"][ti[r.label], layer]), r.value, f"{r.label.split('-', 1)[-1]}@{tag}")
            for r in res["acc_rows"]]


def points_r2(points: list[tuple[float, float, str]]) -> float:
    """R² of the second coordinate on the first over ``points``."""
    return r_squared(np.array([p[0] for p in points]), np.array([p[1] for p in points]))


def measure_family(model, tokenizer, family: str, tasks: dict, shots: int, cfg: TaskVectorsConfig, rng,
                   model_name: str) -> tuple[list[Row], dict]:
    """TD per layer (all tasks, Null included) and accuracy per task (Null excluded) at ``shots``."""
    nat = cfg.natural
    enc = family_prompts(tasks, rng, nat.n_prompts, shots, tokenizer)
    td = TaskDecodability(k=nat.k, batch_size=nat.batch_size)(
        model, LabelledInputs(enc.ids, enc.query_positions, enc.tasks))
    not_null = np.array([not tasks[t].is_null for t in enc.tasks])
    acc = TaskAccuracy(max_new_tokens=nat.max_new_tokens, batch_size=nat.batch_size)(model, enc.select(not_null))
    rows = [replace(r, label=family) if r.metric == "td" else r for r in td.rows]
    rows += acc.rows + [Row("accuracy", "accuracy_mean", float(acc.arrays["correct"].mean()), label=family)]
    return _tag(rows, pos=shots, model=model_name), {"td": td.arrays, "accuracy": acc.arrays["correct"].mean(),
                                                      "acc_rows": acc.rows}


@dataclass
class FamilyResult:
    """What the natural part measured on one task family (rows, and the arrays of its figures)."""

    rows: list[Row]
    summary: list  # one row of the summary table
    td_curves: dict[str, np.ndarray]  # "4-shot" -> mean TD per layer
    scatter: list[tuple[float, float, str]]  # (TD, accuracy, "task@shots")
    r2: float
    patch_deltas: dict[str, dict[str, dict[str, tuple[float, float]]]] = field(default_factory=dict)
    ft_acc: dict[str, float] | None = None
    ft_td: dict[str, float] | None = None


def run_pretrained(cfg: TaskVectorsConfig, run: Run, model_name: str) -> Report:
    """TD, accuracy, patching and (optionally) fine-tuning on a pretrained causal LM."""
    model, tokenizer = load_model(model_name, need_tokenizer=True)
    nat = cfg.natural
    n_layers = anatomy(model).n_layers
    if cfg.patching.enabled and cfg.patching.layers is not None:
        bad = [layer for layer in cfg.patching.layers if not 0 <= layer < n_layers]
        if bad:
            raise ConfigError(f"patching.layers {bad} out of range; {model_name} has layers 0..{n_layers - 1}")
    for c in nat.checkpoints:  # before hours of measurement on the main model, not after
        try:
            check_model_path(c)
        except ModelLoadError as e:
            raise ConfigError(f"natural.checkpoints: {e}") from None
    stages = len(set(nat.shots) | {nat.main_shots}) + nat.prompting_control + cfg.patching.enabled \
        + cfg.finetune.enabled
    results: dict[str, FamilyResult] = {}
    with progress_bar() as bar:
        task = bar.add_task(f"natural tasks, {model_name}",
                            total=len(nat.families) * stages + len(nat.checkpoints), info="")

        def done(what: str) -> None:
            bar.update(task, advance=1, info=what)

        for family in nat.families:
            results[family] = measure_natural(model, tokenizer, family, cfg, model_name, n_layers, done)
        rows = [r for res in results.values() for r in res.rows]
        run.save_rows(rows)
        del model
        gc.collect()
        over_ckpts = measure_checkpoints(cfg, done) if nat.checkpoints else None
    if over_ckpts is not None:
        run.save_rows(rows + over_ckpts.rows)
    return natural_report(cfg, run, model_name, n_layers, results, over_ckpts)


@dataclass
class CheckpointSeries:
    """TD and accuracy at ``main_shots`` over a series of checkpoints, per family."""

    rows: list[Row]
    td: dict[str, np.ndarray]  # family -> best-layer mean TD per checkpoint
    accuracy: dict[str, np.ndarray]  # family -> mean accuracy per checkpoint
    scatter: dict[str, list[tuple[float, float, str]]]  # family -> (TD of task, accuracy of task, "task@ckpt")
    r2: dict[str, float]


def measure_checkpoints(cfg: TaskVectorsConfig, done) -> CheckpointSeries:
    """Every checkpoint of ``natural.checkpoints`` in turn (one in memory at a time): TD per layer and
    accuracy per task at ``main_shots``, on the same prompts for every checkpoint. Rows carry
    ``step`` = the checkpoint's index and ``model`` = its name."""
    nat = cfg.natural
    rows: list[Row] = []
    td = {f: [] for f in nat.families}
    acc = {f: [] for f in nat.families}
    scatter: dict[str, list] = {f: [] for f in nat.families}
    tasks_of = {f: family_tasks(f, nat.conllu) for f in nat.families}  # the same tasks for every checkpoint
    for i, name in enumerate(nat.checkpoints):
        model, tokenizer = load_model(name, need_tokenizer=True)
        for family, tasks in tasks_of.items():
            fam_rows, res = measure_family(model, tokenizer, family, tasks, nat.main_shots, cfg,
                                           np.random.default_rng([cfg.seed, 2, nat.main_shots]), name)
            rows += _tag(fam_rows, step=i)
            best = int(np.argmax(res["td"]["td"]))
            td[family].append(float(res["td"]["td"][best]))
            acc[family].append(float(res["accuracy"]))
            scatter[family] += td_accuracy_points(res, best, i)
        del model
        gc.collect()
        done(f"checkpoint {i}")
    r2 = {}
    for family, pts in scatter.items():
        r2[family] = points_r2(pts)
        rows.append(Row("td_vs_accuracy_checkpoints", "r2", r2[family], label=family))
    return CheckpointSeries(rows, {f: np.array(v) for f, v in td.items()}, {f: np.array(v) for f, v in acc.items()},
                            scatter, r2)


def measure_natural(model, tokenizer, family: str, cfg: TaskVectorsConfig, model_name: str, n_layers: int,
                    done) -> FamilyResult:
    """Every natural-task measurement of one family; ``done(stage)`` is called after each stage."""
    nat = cfg.natural
    tasks = family_tasks(family, nat.conllu)
    rows: list[Row] = []
    by_shots = {}
    for shots in sorted(set(nat.shots) | {nat.main_shots}):
        fam_rows, by_shots[shots] = measure_family(model, tokenizer, family, tasks, shots, cfg,
                                                   np.random.default_rng([cfg.seed, 2, shots]), model_name)
        rows += fam_rows
        done(f"{family} {shots}-shot")
    main = by_shots[nat.main_shots]["td"]
    best_layer = int(main["layers"][np.argmax(main["td"])])

    # TD of each task at the best layer of the main shot count, against its accuracy
    scatter = [p for s in nat.shots for p in td_accuracy_points(by_shots[s], best_layer, s)]
    r2 = points_r2(scatter)
    rows.append(Row("td_vs_accuracy", "r2", r2, layer=best_layer, model=model_name, label=family))

    if nat.prompting_control:
        enc = family_prompts(tasks, np.random.default_rng([cfg.seed, 4]), nat.n_prompts, 0, tokenizer,
                             with_null=False, instruct=True)
        ctrl = TaskAccuracy(max_new_tokens=nat.max_new_tokens, batch_size=nat.batch_size)(model, enc)
        rows += _tag(ctrl.rows, probe="prompting", pos=0, model=model_name)
        done(f"{family} prompting")

    out = FamilyResult(rows, [family, best_layer, float(main["td"].max()), 1 / len(tasks),
                              *[float(by_shots[s]["accuracy"]) for s in nat.shots], r2],
                       {f"{s}-shot": r["td"]["td"] for s, r in by_shots.items()}, scatter, r2)
    if cfg.patching.enabled:
        layers = cfg.patching.layers if cfg.patching.layers is not None else [best_layer]
        patch_rows = patching(model, tokenizer, tasks, layers, cfg, model_name)
        rows += patch_rows
        for layer in layers:
            out.patch_deltas[f"{family} L{layer}"] = {
                t: {c: _mean_sd([r.value for r in patch_rows if r.layer == layer and r.label == t
                                 and r.metric == f"delta_{c}"]) for c in ("task", "null")}
                for t in tasks if not tasks[t].is_null}
        done(f"{family} patching")
    if cfg.finetune.enabled:
        ft_rows, out.ft_acc, out.ft_td = finetune(model, tokenizer, tasks, family, by_shots, cfg, model_name,
                                                  n_layers)
        rows += ft_rows
        done(f"{family} fine-tuning")
    return out


def natural_report(cfg: TaskVectorsConfig, run: Run, model_name: str, n_layers: int,
                   results: dict[str, FamilyResult], over_ckpts: CheckpointSeries | None = None) -> Report:
    """Figures and tables of the natural part."""
    nat, p = cfg.natural, cfg.patching
    td_figs = [Figure(run.save_figure(figs.td_profiles(res.td_curves, np.arange(n_layers),
                                                       f"{family}: TD across layers",
                                                       chance=1 / len(task_names(family))), f"td_{family}"),
                      f"{family}: TD per layer at the token before the answer, per shot count.")
               for family, res in results.items()]
    fig_scatter = run.save_figure(figs.td_vs_accuracy({f: r.scatter for f, r in results.items()},
                                                      {f: r.r2 for f, r in results.items()}), "td_vs_accuracy")
    sections = [
        Section("Summary", tables=[Table(
            ["family", "best layer", f"best TD ({nat.main_shots}-shot)", "chance",
             *[f"accuracy {s}-shot" for s in nat.shots], "R² (TD, accuracy)"], [r.summary for r in results.values()],
            caption=f"{nat.n_prompts} prompts per task; TD over the family's tasks and its Null task, "
                    f"k = {nat.k}.")]),
        Section("Task decodability", figures=td_figs),
        Section("TD against accuracy", "One point per task and shot count; TD of the task at the family's best "
                f"layer at {nat.main_shots} shots.",
                figures=[Figure(fig_scatter, "TD against exact-match accuracy, with R².")])]
    deltas = {name: d for r in results.values() for name, d in r.patch_deltas.items()}
    if deltas:
        figs_p = [Figure(run.save_figure(figs.patching_bars(d, f"{name}: {p.mode} at the query"),
                                         f"patching_{name.replace(' ', '_')}"),
                         f"{name}: accuracy change when the query state is patched with the true task's vector or "
                         "the Null vector.") for name, d in deltas.items()]
        sections.append(Section("Task-vector patching",
                                f"Task vector: mean resid_post at the patched layer over {p.demo_prompts} "
                                f"{nat.main_shots}-shot prompts per task ({p.where}); written ({p.mode}) at the "
                                f"query's -> of {p.query_prompts} {p.query_shots}-shot prompts per task; "
                                f"error bars: standard deviation over {p.n_seeds} seeds.", figures=figs_p))
    ft_acc = {f: r.ft_acc for f, r in results.items() if r.ft_acc is not None}
    if ft_acc:
        ft_td = {f: r.ft_td for f, r in results.items() if r.ft_td is not None}
        ft = cfg.finetune
        how = "LoRA" if ft.method == "lora" else "full tuning"
        f_acc = run.save_figure(figs.finetune_bars(ft_acc, "accuracy", f"Accuracy before and after {how}"),
                                "finetune_accuracy")
        f_td = run.save_figure(figs.finetune_bars(ft_td, "best TD", f"Best-layer TD before and after {how}"),
                               "finetune_td")
        setting = (f"LoRA rank {ft.rank}, alpha {ft.alpha}, dropout {ft.dropout}" if ft.method == "lora"
                   else "Full tuning of every parameter of the chosen layers, the rest frozen")
        sections.append(Section("Fine-tuning first vs last layers",
                                f"{setting}, lr {ft.lr}, {ft.steps} steps of {ft.batch_size} prompts, "
                                "loss on the answer only.",
                                figures=[Figure(f_acc, "Mean accuracy"), Figure(f_td, "Best-layer TD")]))
    if over_ckpts is not None:
        names = list(nat.checkpoints)
        f_line = run.save_figure(figs.over_checkpoints(names, over_ckpts.td, over_ckpts.accuracy), "over_checkpoints")
        f_sc = run.save_figure(figs.td_vs_accuracy(over_ckpts.scatter, over_ckpts.r2), "td_vs_accuracy_checkpoints")
        sections.append(Section(
            "Over training checkpoints",
            f"{len(names)} checkpoints, in order: {', '.join(names)}. {nat.main_shots}-shot prompts (the same for "
            "every checkpoint); TD at each checkpoint's best layer.",
            figures=[Figure(f_line, "Best-layer mean TD and mean accuracy per checkpoint."),
                     Figure(f_sc, "One point per task and checkpoint (task@index), with R².")]))
    return Report(
        title=f"Task vectors in {model_name}",
        summary=(f"Natural tasks ({', '.join(nat.families)}) with {', '.join(map(str, nat.shots))} shots: greedy "
                 "exact-match accuracy and task decodability at the token before the answer, layer by layer. "
                 "Han et al. (ICML 2025): TD peaks at a middle layer and tracks accuracy; patching the true "
                 "task's vector into a zero-shot query helps, the Null vector does not."),
        sections=sections)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.array(values, dtype=float)
    return (float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0) if len(a) else (float("nan"), 0.0)


def patching(model, tokenizer, tasks: dict, layers: list[int], cfg: TaskVectorsConfig, model_name: str) -> list[Row]:
    """Patching rows for every seed and layer (``pos`` = query shots)."""
    p, nat = cfg.patching, cfg.natural
    null = next(name for name, t in tasks.items() if t.is_null)
    rows = []
    for s in range(p.n_seeds):
        rng = np.random.default_rng([cfg.seed, 5, s])
        demos = family_prompts(tasks, rng, p.demo_prompts, nat.main_shots, tokenizer)
        vectors = task_vectors(model, demos, layers, where=p.where, batch_size=nat.batch_size)
        queries = family_prompts(tasks, rng, p.query_prompts, p.query_shots, tokenizer, with_null=False)
        for li, layer in enumerate(layers):
            probe = TaskVectorPatching(layer=layer, mode=p.mode, max_new_tokens=nat.max_new_tokens,
                                       batch_size=nat.batch_size)
            res = probe(model, PatchingPrompts(queries, {t: v[li] for t, v in vectors.items()}, null))
            rows += _tag(res.rows, pos=p.query_shots, model=model_name)
    return rows


def finetune(model, tokenizer, tasks: dict, family: str, by_shots: dict, cfg: TaskVectorsConfig, model_name: str,
             n_layers: int) -> tuple[list[Row], dict[str, float], dict[str, float]]:
    """Fine-tuning (``finetune.method``) of the first and of the last layers; accuracy and best TD at
    ``main_shots`` before and after."""
    nat, ft = cfg.natural, cfg.finetune
    train_set = family_prompts(tasks, np.random.default_rng([cfg.seed, 6]), ft.train_prompts, nat.main_shots,
                               tokenizer, with_null=False)
    before = by_shots[nat.main_shots]
    acc = {"before": float(before["accuracy"])}
    td = {"before": float(before["td"]["td"].max())}
    rows = []
    for end in ("first", "last"):
        layers = tuned_layers(n_layers, ft.n_layers, end)
        tuned = finetune_layers(model, train_set, layers, ft, seed=cfg.seed)
        name = f"{model_name}+{ft.method}-{end}{len(layers)}"
        r, res = measure_family(tuned, tokenizer, family, tasks, nat.main_shots, cfg,
                                np.random.default_rng([cfg.seed, 2, nat.main_shots]), name)
        rows += [replace(x, probe="finetune") if x.probe == "accuracy" else x for x in r]
        acc[f"{end} {len(layers)}"] = float(res["accuracy"])
        td[f"{end} {len(layers)}"] = float(res["td"]["td"].max())
        del tuned
        gc.collect()
    return rows, acc, td


def run_study(cfg: TaskVectorsConfig, run: Run, model_name: str | None = None) -> Report:
    if model_name:
        return run_pretrained(cfg, run, model_name)
    return run_trained(cfg, run)
