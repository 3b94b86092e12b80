"""What the regression-icl study measures: error against the number of in-context examples for the
model and every baseline (with bootstrap bands), the same under distribution shifts, and a linear
probe for the least-squares weight vector and the GD iterate in the hidden states."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from iclab.baselines import LeastSquares, squared_errors
from iclab.baselines.gradient_descent import gd_weights
from iclab.baselines.least_squares import least_squares_weights, ridge_weights
from iclab.errors import ModelLoadError
from iclab.metrics.bootstrap import bootstrap_mean_interval
from iclab.models.build import n_params
from iclab.models.vector import CONFIG_FILE, VectorModel, x_position, y_position
from iclab.probes.linear_probe import LinearProbe, ProbeTargets
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.studies.regression_icl.config import RegressionICLConfig
from iclab.studies.regression_icl.shifts import PROMPT_SHIFTS, prompt_shift_batch, query_shift_errors
from iclab.train.loop import train
from iclab.worlds.base import VectorBatch
from iclab.worlds.regression import RegressionWorld

#: the model's label in rows, tables and legends
MODEL = "transformer"
#: classes with a weight vector, where the linear probe runs
LINEAR_KINDS = ("linear", "noisy-linear", "sparse-linear")


class Zero:
    """The reference predictor ``ŷ = 0``: its error is ``E[y²]``, 1 (+ σ²/signal) after normalisation."""

    name = "zero"

    def predict(self, xs, ys, info=None):
        return np.zeros(np.shape(ys))


def curve_rows(errors: np.ndarray, signal: float, rng_seed: list[int], n_resamples: int, level: float) -> Rows:
    """Rows ``error`` (mean), ``error_se`` (standard error), ``error_lo``/``error_hi`` (bootstrap band)
    per position, from squared errors (prompts, points), all divided by ``signal``; NaN columns
    (undefined positions) are left out."""
    keep = ~np.isnan(errors).any(axis=0)  # (points,)
    e = errors[:, keep] / signal  # (prompts, kept)
    lo, hi = bootstrap_mean_interval(e, np.random.default_rng(rng_seed), n_resamples, level)
    mean, se = e.mean(axis=0), e.std(axis=0, ddof=1) / np.sqrt(len(e))
    rows = Rows()
    for j, pos in enumerate(np.nonzero(keep)[0]):
        rows += [Row("icl_error", m, float(v[j]), pos=int(pos))
                 for m, v in (("error", mean), ("error_se", se), ("error_lo", lo), ("error_hi", hi))]
    return rows


def error_curves(model, world: RegressionWorld, cfg: RegressionICLConfig, batch: VectorBatch) -> tuple[Rows, dict]:
    """Error curves of the model, the zero predictor and every baseline on ``batch`` (rows tagged with
    ``model`` = the predictor's label); also the squared errors, {label: (prompts, points)}."""
    predictors = [(MODEL, model), ("zero", Zero()), *((e.name, e.make()) for e in cfg.baselines())]
    rows, raw = Rows(), {}
    for label, p in predictors:
        raw[label] = squared_errors(p, batch)  # (prompts, points)
        rows += curve_rows(raw[label], cfg.world.signal, [cfg.seed, 7], cfg.eval.bootstrap,
                           cfg.eval.level).tagged(model=label)
    return rows, raw


def shift_rows(model, world: RegressionWorld, cfg: RegressionICLConfig) -> Rows:
    """Error curves under each shift for the model, least squares and the zero predictor
    (``probe="shift"``, ``label`` = the shift, ``model`` = the predictor)."""
    s = cfg.shifts
    predictors = [(MODEL, model), ("least-squares", LeastSquares()), ("zero", Zero())]
    rows = Rows()
    for k, shift in enumerate(s.kinds):
        seed = [cfg.seed, 11, k]
        for label, p in predictors:
            if shift in PROMPT_SHIFTS:
                batch = prompt_shift_batch(world, shift, np.random.default_rng(seed), s.n_prompts, s.scale, s.noise_std)
                errors = squared_errors(p, batch)  # (prompts, points)
            else:
                errors = query_shift_errors(p.predict, world, shift, np.random.default_rng(seed), s.n_prompts)
            rows += curve_rows(errors, cfg.world.signal, [cfg.seed, 12], cfg.eval.bootstrap,
                               cfg.eval.level).tagged(probe="shift", model=label, label=shift)
    return rows


#: tokens the linear probe reads, for the ``i`` examples before query ``i``: the query's x, or the y of the
#: last example (which has seen the same examples, but not the query)
PROBE_TOKENS = {"x": lambda i: x_position(i), "y": lambda i: y_position(i - 1)}


def probe_targets(world: RegressionWorld, cfg: RegressionICLConfig) -> dict[str, ProbeTargets]:
    """The linear probe's states and targets, per token (:data:`PROBE_TOKENS`), for every query ``i >=
    probe.min_examples``: ``w_ols``, ``w_ridge`` (α = σ², with label noise only), ``w_gd``, ``w_avg`` (each
    fitted to the ``i`` examples before the query), the true ``w``, and a control, the ``query`` x itself (in the
    state at its own token, not yet in the y before it)."""
    batch = world.model_copy(update={"curriculum": None}).sample(np.random.default_rng([cfg.seed, 5]),
                                                                 cfg.probe.n_prompts)
    xs, ys = batch.xs.astype(np.float64), batch.ys.astype(np.float64)
    points = np.arange(cfg.probe.min_examples, world.points)
    sigma = cfg.world.sigma
    targets = {"w_ols": [], **({"w_ridge": []} if sigma > 0 else {}), "w_gd": [], "w_avg": [], "w": [], "query": []}
    for i in points:  # (prompts, dim) each
        targets["w_ols"].append(least_squares_weights(xs[:, :i], ys[:, :i]))
        if sigma > 0:
            targets["w_ridge"].append(ridge_weights(xs[:, :i], ys[:, :i], sigma**2))
        targets["w_gd"].append(gd_weights(xs[:, :i], ys[:, :i], cfg.gd.steps, cfg.gd.lr))
        targets["w_avg"].append(gd_weights(xs[:, :i], ys[:, :i], 1, 1.0))
        targets["w"].append(batch.info["w"].astype(np.float64))
        targets["query"].append(xs[:, i])  # the control: at the query's x it is there, at the y before it not yet
    n = len(batch)
    stacked = {k: np.stack(v, axis=1).reshape(n * len(points), -1) for k, v in targets.items()}  # (prompts*points, dim)
    inputs = {"xs": torch.from_numpy(batch.xs), "ys": torch.from_numpy(batch.ys)}
    out = {}
    for token, position in PROBE_TOKENS.items():
        index = np.stack(np.meshgrid(np.arange(n), position(points), indexing="ij"),
                         axis=-1).reshape(-1, 2)  # (prompts * points, 2), prompt-major like the targets
        out[token] = ProbeTargets(inputs, index, stacked)
    return out


def probe_rows(model, targets: dict[str, ProbeTargets], cfg: RegressionICLConfig) -> Rows:
    """The linear probe at each token; rows labelled ``"<target>@<token>"`` (e.g. ``"w_ols@x"``)."""
    probe = LinearProbe(alpha=cfg.probe.alpha, test_fraction=cfg.probe.test_fraction, seed=cfg.seed,
                        batch_size=cfg.eval.batch_size)
    rows = Rows()
    for token, prompts in targets.items():
        rows += Rows(replace(r, label=f"{r.label}@{token}", model=MODEL) for r in probe(model, prompts).rows)
    return rows


def describe(rows: Rows) -> str:
    """What a probe step found: the model's error on the tracking prompts at the last point."""
    err = rows.where(probe="icl_error", metric="error")
    last = max(err.unique("pos"))
    return f"error at n = {last}: {err.value('error', pos=last):.3f}"


def check_vector_model(name: str) -> None:
    """Refuse, before the run starts, a ``--model`` that is not a saved :class:`VectorModel` directory."""
    if not (Path(name).expanduser() / CONFIG_FILE).is_file():
        raise ModelLoadError(f"regression-icl evaluates a regression transformer with vector inputs: --model must "
                             f"be a directory saved by VectorModel.save (with {CONFIG_FILE}), such as "
                             f"<run>/models/transformer; {name!r} is not one (a text LM cannot read x vectors)")


def load_vector_model(name: str) -> VectorModel:
    """A :class:`VectorModel` saved with ``save`` (e.g. ``models/transformer`` of an earlier run)."""
    check_vector_model(name)
    return VectorModel.load(Path(name).expanduser())


def measure(cfg: RegressionICLConfig, run: Run, model_name: str | None = None) -> None:
    """Train the regression transformer (or load ``model_name``), then evaluate it against the baselines,
    under shifts, and probe its hidden states."""
    world = cfg.world.build()
    probing = cfg.probe.enabled and cfg.world.kind in LINEAR_KINDS
    targets = probe_targets(world, cfg) if probing else None
    evaluation = world.model_copy(update={"curriculum": None})
    if model_name:
        model, step, rows = load_vector_model(model_name), None, Rows()
        if model.dim != world.dim:
            raise ModelLoadError(f"{model_name} reads x of {model.dim} dims; world.dim is {world.dim}")
    else:
        model = VectorModel(cfg.model, world.dim, seed=cfg.seed)
        track = evaluation.sample(np.random.default_rng([cfg.seed, 1]), cfg.eval.eval_every_prompts)

        def probe(m, step):
            e = squared_errors(m, track).mean(axis=0) / cfg.world.signal  # (points,)
            out = Rows(Row("icl_error", "error", float(v), pos=i, step=step, model=MODEL, label="training")
                       for i, v in enumerate(e))
            if step == 0 and probing:
                out += probe_rows(m, targets, cfg).tagged(step=0)
            return out

        result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(MODEL), probe=probe,
                       label=MODEL, describe=describe, log=cfg.log, run_dir=run.path)
        model.save(run.path / "models" / MODEL)  # VectorModel's own format; --model loads it back
        step, rows = result.step, Rows(result.rows)
    batch = evaluation.sample(np.random.default_rng([cfg.seed, 2]), cfg.eval.n_prompts)
    curves, raw = error_curves(model, world, cfg, batch)
    rows += curves.tagged(step=step)
    rows += shift_rows(model, world, cfg).tagged(step=step)
    if probing:
        rows += probe_rows(model, targets, cfg).tagged(step=step)
    run.save_arrays("errors", **raw)
    run.save_arrays("model", n_params=n_params(model))
    run.save_rows(rows)
