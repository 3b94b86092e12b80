"""What the icg-generalization study measures: ICTR at step 0, during training and at the end."""

from __future__ import annotations

import numpy as np

from iclab.models.build import build_model, n_params
from iclab.models.load import load_model, save_trained
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies.icg_generalization.config import ICGGeneralizationConfig
from iclab.train.loop import train


def describe(rows: Rows, k: int) -> str:
    """What a probe step found: ICTR at k shots per topic set."""
    at_k = rows.where(metric="ictr", pos=k)
    return f"ICTR at k = {k}: " + ", ".join(f"{r.label} {r.value:.2f}" for r in at_k)


def measure(cfg: ICGGeneralizationConfig, run: Run, model_name: str | None = None) -> None:
    """Train one model on the world (or load ``model_name``, a model over the world's tokens) and
    measure ICTR: every shot count at step 0 and at the end, ``probe.report_shot`` in between."""
    if model_name:
        return measure_pretrained(cfg, run, model_name)
    world, name = cfg.world, cfg.model.label
    model = build_model(cfg.model.spec(), world.vocab_size, seed=cfg.seed)
    probe = cfg.probe.probe(cfg.seed)
    curve = cfg.probe.probe(cfg.seed, shots=[cfg.probe.report_shot])
    prompts = probe.prompts(world, np.random.default_rng([cfg.seed, 1]))

    def measure_at(m, step: int):
        p = probe if step in (0, cfg.train.steps) else curve
        return p(m, prompts).tagged(step=step, model=name).rows

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name), probe=measure_at,
                   label=name, describe=lambda rows: describe(rows, cfg.probe.report_shot), log=cfg.log,
                   run_dir=run.path)
    save_trained(model, run.path / "models" / name, 1 + world.n_paragraphs * (world.paragraph_len + 1))
    run.save_arrays("model", n_params=n_params(model))
    run.save_rows(result.rows)


def measure_pretrained(cfg: ICGGeneralizationConfig, run: Run, model_name: str) -> None:
    """ICTR of a saved causal LM over the world's tokens (no training)."""
    model, _ = load_model(model_name, tokenizer="none", settings=cfg.model)
    probe = cfg.probe.probe(cfg.seed)
    prompts = probe.prompts(cfg.world, np.random.default_rng([cfg.seed, 1]))
    run.save_rows(probe(model, prompts).tagged(model=model_name).rows)
