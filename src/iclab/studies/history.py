"""Probes over a run's checkpoint history: any registered probe as a curve over training,
without training again.

A run trained with ``train.keep_checkpoints: {every: k}`` keeps a checkpoint every k steps
(and of step 0) under ``checkpoints/<model>/``. :func:`probe_checkpoints` (``iclab probe
RUN_DIR PROBE``) loads each into the model the run saved at its end (``models/<model>/``,
which holds the architecture), measures it with the probe, and stores the rows, tagged with
the checkpoint's step and the model, in ``checkpoint-probes/<probe>.parquet`` of the run.
They are the SQL view ``checkpoint_probes`` of ``iclab results`` (the ``metrics`` view and
the study's report are the run's own rows, unchanged); measuring a step again replaces its
rows.

The prompts a probe needs come from the run's study and world, by a *recipe*: a function of
the run's config and the probe's parameters that gives the probe and its prompts, the same
prompts the study itself measures (same seed). A probe/study pair without a recipe is refused
in one line that lists the pairs there are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iclab.config import validate
from iclab.errors import ConfigError, IclabError
from iclab.probes import probe_class, probe_names
from iclab.probes.base import Probe
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies import get_study
from iclab.train.checkpoint import checkpoints, load_checkpoint, step_of

Recipe = Callable[[Any, dict[str, Any]], tuple[Probe, Any]]


def _probe(name: str, defaults: dict[str, Any], params: dict[str, Any]) -> Probe:
    """The probe ``name`` with ``params`` over the study's ``defaults``; a bad one is a ConfigError."""
    return validate(probe_class(name), {**defaults, **params}, f"probe {name!r}")


def _induction_prompts(cfg):
    from iclab.worlds.induction import repeated_prompts

    half = cfg.half(pretrained=False)
    return half, repeated_prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_prompts, half, 0, cfg.world.vocab)


def _induction(cfg, params):
    _, prompts = _induction_prompts(cfg)
    return _probe("induction", {"batch_size": cfg.probe.batch_size}, params), prompts


def _icl(cfg, params):
    half, prompts = _induction_prompts(cfg)
    defaults = {"early": half // 2, "late": half + half // 2, "batch_size": cfg.probe.batch_size}
    return _probe("icl", defaults, params), prompts


def _patterns(cfg, params):
    _, prompts = _induction_prompts(cfg)
    return _probe("attention_patterns", {}, params), prompts


def _ginc(cfg, params):
    probe = _probe("ginc", cfg.probe.probe().model_dump(), params)
    return probe, probe.prompts(cfg.world, np.random.default_rng([cfg.seed, 1]))


def _ictr(cfg, params):
    probe = _probe("ictr", cfg.probe.probe(cfg.seed).model_dump(), params)
    return probe, probe.prompts(cfg.world, np.random.default_rng([cfg.seed, 1]))


def _graph(cfg, params):
    from iclab.probes.graph_tracing import GraphWalks

    world = cfg.graph
    walks = GraphWalks(world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_walks), world.graph)
    return _probe("graph", cfg.probe.probe().model_dump(), params), walks


def _td(cfg, params):
    from iclab.probes.decodability import LabelledInputs
    from iclab.studies.task_vectors.config import read_position

    world = cfg.world
    prompts = world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_per_basis * world.n_bases)
    pos = read_position(world, cfg.probe.td_position)
    inputs = {"xs": torch.from_numpy(prompts.xs), "ys": torch.from_numpy(prompts.ys)}
    labelled = LabelledInputs(inputs, np.full(len(prompts), pos), prompts.info["basis"].astype(str))
    return _probe("td", {"k": cfg.probe.k, "batch_size": cfg.probe.batch_size}, params), labelled


def _linear_probe(cfg, params):
    """regression-icl's weight-vector probe at the query's x token (the study's rows ``<target>@x``;
    here the labels are the bare targets)."""
    from iclab.studies.regression_icl.measure import LINEAR_KINDS, probe_targets

    if cfg.world.kind not in LINEAR_KINDS:
        raise IclabError(f"linear_probe looks for a weight vector; world.kind {cfg.world.kind!r} has none "
                         f"(classes with one: {', '.join(LINEAR_KINDS)})")
    defaults = {"alpha": cfg.probe.alpha, "test_fraction": cfg.probe.test_fraction, "seed": cfg.seed,
                "batch_size": cfg.eval.batch_size}
    return _probe("linear_probe", defaults, params), probe_targets(cfg.world.build(), cfg)["x"]


#: Probes measured on any causal LM trained here, where its study has no recipe: 64 prompts of
#: 16 random tokens of the model's vocabulary written twice (the induction-heads prompts).
GENERIC = ("induction", "icl", "attention_patterns", "logit_lens")
GENERIC_PROMPTS, GENERIC_HALF = 64, 16


def generic_recipe(probe: str, vocab: int, seed: int, params: dict[str, Any]) -> tuple[Probe, Any]:
    """The probe and its prompts for a causal LM of ``vocab`` tokens, from its study's seed.
    The logit lens reads the second half's next-to-last token, whose answer (the next token)
    only the repeat gives away."""
    from iclab.worlds.induction import repeated_prompts

    prompts = repeated_prompts(np.random.default_rng([seed, 1]), GENERIC_PROMPTS, GENERIC_HALF, 0, vocab)
    half = GENERIC_HALF
    if probe == "icl":
        return _probe("icl", {"early": half // 2, "late": half + half // 2}, params), prompts
    if probe == "logit_lens":
        from iclab.probes.contrast import contrast_prompts

        tokens = torch.from_numpy(prompts.tokens)
        return _probe("logit_lens", {}, params), contrast_prompts(tokens[:, :-1], answer=tokens[:, -1])
    return _probe(probe, {}, params), prompts


#: (study, probe) → recipe: what a probe measures on that study's checkpoints
RECIPES: dict[tuple[str, str], Recipe] = {
    ("induction-heads", "induction"): _induction,
    ("induction-heads", "icl"): _icl,
    ("induction-heads", "attention_patterns"): _patterns,
    ("icg-generalization", "ictr"): _ictr,
    ("graph-tracing", "graph"): _graph,
    ("task-vectors", "td"): _td,
    ("bayesian-icl", "ginc"): _ginc,
    ("regression-icl", "linear_probe"): _linear_probe,
}


def recipe_for(study: str, probe: str) -> Recipe | None:
    """The recipe of ``(study, probe)``, None for a :data:`GENERIC` probe without one (its prompts
    come from the model's vocabulary); IclabError in one line for any other pair."""
    if probe not in probe_names():
        probe_class(probe)  # the unknown-name error, listing the probes
    if (study, probe) in RECIPES:
        return RECIPES[study, probe]
    if probe in GENERIC:
        return None
    pairs = "; ".join(f"{s}: {', '.join(p for t, p in RECIPES if t == s)}" for s in dict.fromkeys(s for s, _ in RECIPES))
    raise IclabError(f"probe {probe!r} has no prompts recipe for study {study} (recipes: {pairs}; and on any causal "
                     f"LM trained here: {', '.join(GENERIC)})")


def _load_model(run: Run, name: str):
    """The model ``name`` as the run saved it at the end of training (its architecture)."""
    path = run.path / "models" / name
    if (path / "vector_model.json").is_file():
        from iclab.models.vector import VectorModel

        return VectorModel.load(path)
    if (path / "config.json").is_file():
        from iclab.models.load import load_model

        return load_model(str(path), device="cpu", dtype=torch.float32, tokenizer="none")[0]
    raise IclabError(f"{path} is missing: the run has not finished training {name} (iclab resume {run.path})")


def history_steps(run: Run) -> dict[str, list[int]]:
    """The steps of the whole checkpoints of each model trained in ``run``."""
    root = run.path / "checkpoints"
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return {n: [step_of(p) for p in checkpoints(root / n)] for n in names}


def probe_checkpoints(run_dir: str | Path, probe: str, params: dict[str, Any] | None = None,
                      steps: list[int] | None = None, models: list[str] | None = None) -> Rows:
    """Measure ``probe`` on every saved checkpoint of the run at ``run_dir``; returns the rows
    (tagged ``step``, ``model``) and adds them to ``checkpoint-probes/<probe>.parquet``.

    Parameters
    ----------
    run_dir : path
        A run of a study that trains (not one measuring a ``--model``), finished.
    probe : str
        A registered probe with a recipe for the run's study (:data:`RECIPES`), or one of
        :data:`GENERIC` on a run whose models are causal LMs.
    params : dict, optional
        The probe's parameters over the recipe's defaults (those the study uses).
    steps : list of int, optional
        Only these checkpoint steps (each must be saved); default every saved one.
    models : list of str, optional
        Only these models (``checkpoints/<model>``); default every one.
    """
    run = Run.open(run_dir)
    meta = run.meta
    study = get_study(meta["study"])
    recipe = recipe_for(study.name, probe)
    if meta.get("model"):
        raise IclabError(f"run {run.path} measured the pretrained model {meta['model']!r}: it has no checkpoints")
    history = history_steps(run)
    if not history:
        raise IclabError(f"run {run.path} has no checkpoints")
    for name in models or []:
        if name not in history:
            raise ConfigError(f"model {name!r} has no checkpoints in {run.path}; models: {', '.join(history)}")
    cfg = study.config_of(run)
    if recipe is not None:
        probe_obj, prompts = recipe(cfg, dict(params or {}))
    else:
        first = _load_model(run, (models or list(history))[0])
        vocab = getattr(getattr(first, "config", None), "vocab_size", None)
        if vocab is None:
            raise IclabError(f"probe {probe!r} measures a causal LM; the models of {run.path} are not (study "
                             f"{study.name} has recipes for: {', '.join(p for s, p in RECIPES if s == study.name)})")
        probe_obj, prompts = generic_recipe(probe, vocab, cfg.seed, dict(params or {}))
    out_path = run.path / "checkpoint-probes" / f"{probe}.parquet"
    previous = run.load_rows(out_path)
    rows = Rows()
    for name in models or list(history):
        chosen = history[name] if steps is None else sorted(steps)
        missing = sorted(set(chosen) - set(history[name]))
        if missing:
            raise ConfigError(f"steps {missing} have no checkpoint of {name} in {run.path}; saved steps: "
                              f"{', '.join(map(str, history[name]))} (train.keep_checkpoints.every keeps a history)")
        model = _load_model(run, name)
        for step in chosen:
            load_checkpoint(run.ckpt_dir(name) / f"step-{step:08d}", model)
            model.eval()
            rows += probe_obj(model, prompts).tagged(step=step, model=name).rows
        previous = Rows(r for r in previous if not (r.model == name and r.step in chosen))
    run.save_rows(previous + rows, out_path)
    return rows
