"""What the bayesian-icl study measures: in-context accuracy at step 0, during training and at the end."""

from __future__ import annotations

import numpy as np

from iclab.models.build import build_model, n_params
from iclab.models.load import load_model
from iclab.runs.run import Run
from iclab.studies.bayesian_icl.config import BayesianICLConfig
from iclab.train.loop import train

MODEL = "transformer"  # the label of the model trained here, in rows and paths


def measure(cfg: BayesianICLConfig, run: Run, model_name: str | None = None) -> None:
    """Train a causal LM on the world's pretraining documents (or load ``model_name``, a model over
    the world's tokens) and measure in-context accuracy: every cell at step 0 and at the end, the
    ``id`` prompts at ``probe.over_training()`` shots at every probe step in between."""
    world = cfg.world
    probe = cfg.probe.probe()
    prompts = probe.prompts(world, np.random.default_rng([cfg.seed, 1]))
    if model_name:
        model, _ = load_model(model_name, tokenizer="none")
        run.save_rows(probe(model, prompts).tagged(model=model_name).rows)
        return
    model = build_model(cfg.model, world.vocab_size, seed=cfg.seed)
    curve = cfg.probe.curve_probe()

    def measure_at(m, step: int):
        p = probe if step in (0, cfg.train.steps) else curve
        return p(m, prompts).tagged(step=step, model=MODEL).rows

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(MODEL), probe=measure_at,
                   label=MODEL)
    model.save_pretrained(run.path / "models" / MODEL)
    run.save_arrays("model", n_params=n_params(model), final_step=result.step)
    run.save_rows(result.rows)
