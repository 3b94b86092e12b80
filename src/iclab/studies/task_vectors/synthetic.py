"""What the task-vectors study measures on a model trained here: loss per basis and TD per layer
over training, the representations for the panels, and error against in-context examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from iclab.baselines import error_curve, make_baseline
from iclab.models.vector import VectorModel
from iclab.probes.decodability import LabelledInputs, TaskDecodability
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.studies.task_vectors.config import TaskVectorsConfig, read_position
from iclab.studies.task_vectors.curves import points_r2, td_vs_loss, training_curves
from iclab.train.loop import train
from iclab.worlds.base import VectorBatch


def repr_path(run: Run, step: int, all_layers: bool = False) -> Path:
    """Where the representations at the panel token are saved: the panel layer at every probe step,
    (n, d_model); every layer at the first and last step, (layers, n, d_model)."""
    return run.path / "arrays" / (f"repr-all-layers-step{step:08d}.npy" if all_layers else f"repr-step{step:08d}.npy")


def measure_synthetic(model: VectorModel, prompts: VectorBatch, cfg: TaskVectorsConfig, save_repr=None) -> Rows:
    """Loss per basis and TD per layer on ``prompts``; ``save_repr(H)`` gets every layer's
    features at ``probe.repr_position``, (layers, n, d_model).

    TD rows carry the sequence position they read as ``pos``: ``probe.td_position``, and also
    ``probe.repr_position`` when it differs."""
    basis = prompts.info["basis"]
    td_pos, repr_pos = (read_position(cfg.world, p) for p in (cfg.probe.td_position, cfg.probe.repr_position))
    inputs = {"xs": torch.from_numpy(prompts.xs), "ys": torch.from_numpy(prompts.ys)}

    def td_at(pos: int):
        labelled = LabelledInputs(inputs, np.full(len(prompts), pos), basis.astype(str))
        res = TaskDecodability(k=cfg.probe.k, batch_size=cfg.probe.batch_size, keep_hidden=pos == repr_pos)(
            model, labelled)
        return res.rows.tagged(pos=pos), res.arrays.get("hidden")

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


def error_curves(model: VectorModel, cfg: TaskVectorsConfig) -> Rows:
    """Squared error / rank against in-context examples, per basis, for the model and each baseline
    (rows ``regression``/``error`` with ``pos`` the point, ``model`` the predictor, ``label`` the basis)."""
    world = cfg.world
    rng = np.random.default_rng([cfg.seed, 3])
    predictors = [model, *(make_baseline(name) for name in cfg.probe.baselines)]
    rows = Rows()
    for b in range(world.n_bases):
        batch = world.prompts_for_basis(rng, cfg.probe.eval_per_basis, b)
        rank = float(world.supports[b].sum())
        for p in predictors:
            e = error_curve(p, batch, normalizer=rank)  # (points,)
            rows += [Row("regression", "error", float(v), pos=i, model=p.name, label=str(b)) for i, v in enumerate(e)]
    return rows


def describe(rows: Rows) -> str:
    """What a probe step found: the best mean TD (at the first position read) and the eval loss."""
    td = rows.where(probe="td", metric="td")
    at = td.where(pos=td[0].pos)
    best = max(at, key=lambda r: r.value)
    return f"best TD {best.value:.2f} (layer {best.layer}), eval loss {rows.where(label='all').value('loss'):.3f}"


def measure_trained(cfg: TaskVectorsConfig, run: Run) -> None:
    """Train the regression transformer on the sparse mixture; trace loss, TD and representations."""
    world = cfg.world
    model = VectorModel(cfg.model, world.dim, seed=cfg.seed)
    repr_layer = cfg.repr_layer()
    prompts = world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_per_basis * world.n_bases)
    run.save_arrays("prompts", basis=prompts.info["basis"], zero_loss=(prompts.ys.astype(np.float64) ** 2).mean())

    def probe(m, step):
        def save(H):
            np.save(repr_path(run, step), H[repr_layer])
            if step in (0, cfg.train.steps):
                np.save(repr_path(run, step, all_layers=True), H)
        return measure_synthetic(m, prompts, cfg, save).tagged(step=step, model="transformer")

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir("transformer"),
                   probe=probe, label="transformer", describe=describe, log=cfg.log, run_dir=run.path)
    rows = Rows(result.rows)
    model.save(run.path / "models" / "transformer")
    rows += error_curves(model, cfg).tagged(step=result.step)

    # TD against error over the run's own probe steps, one point per basis and step
    td_pos, repr_pos = (read_position(world, p) for p in (cfg.probe.td_position, cfg.probe.repr_position))
    curves = training_curves(rows, world.n_bases, cfg.model.n_layers, td_pos, repr_pos)
    best_layer, points = td_vs_loss(rows, curves, td_pos, int(world.supports.sum(axis=1).max()))
    rows.append(Row("td_vs_loss", "r2", points_r2(points), layer=best_layer, step=int(curves.steps[-1]),
                    model="transformer", label="synthetic"))
    run.save_rows(rows)
