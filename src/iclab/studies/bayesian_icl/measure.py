"""What the bayesian-icl study measures: in-context accuracy at step 0, during training and at the end."""

from __future__ import annotations

import numpy as np

from iclab.models.build import build_model, n_params
from iclab.models.load import load_model, save_trained
from iclab.models.lstm import build_lstm
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies.bayesian_icl.config import LSTM, MODEL, BayesianICLConfig
from iclab.train.loop import train

def describe(rows: Rows) -> str:
    """What a probe step found: mean accuracy over the measured cells at the smallest and largest k."""
    acc = rows.where(metric="accuracy")
    shots = sorted(set(acc.unique("pos")))
    return (f"mean accuracy {acc.where(pos=shots[0]).values().mean():.2f} at k = {shots[0]}, "
            f"{acc.where(pos=shots[-1]).values().mean():.2f} at k = {shots[-1]}")


def measure(cfg: BayesianICLConfig, run: Run, model_name: str | None = None) -> None:
    """Train a causal LM on the world's pretraining documents (and the LSTM baseline, if set), or
    load ``model_name``, a model over the world's tokens, and measure in-context accuracy: every
    cell at step 0 and at the end, the ``id`` prompts at ``probe.over_training()`` shots at every
    probe step in between."""
    world = cfg.world
    probe = cfg.probe.probe()
    prompts = probe.prompts(world, np.random.default_rng([cfg.seed, 1]))
    if model_name:
        model, _ = load_model(model_name, tokenizer="none", settings=cfg.model)
        run.save_rows(probe(model, prompts).tagged(model=model_name).rows)
        return
    models = {MODEL: (build_model(cfg.model, world.vocab_size, seed=cfg.seed), cfg.train)}
    if cfg.lstm is not None:
        lstm_train = cfg.train.model_copy(update={"lr": cfg.lstm.lr or cfg.train.lr})
        models[LSTM] = (build_lstm(cfg.lstm.spec(), world.vocab_size, seed=cfg.seed), lstm_train)
    curve = cfg.probe.curve_probe()
    rows = Rows()
    for name, (model, train_cfg) in models.items():
        def measure_at(m, step: int, name=name, last=train_cfg.steps):
            p = probe if step in (0, last) else curve
            return p(m, prompts).tagged(step=step, model=name).rows

        result = train(model, world, train_cfg, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name), probe=measure_at,
                       label=name, describe=describe, log=cfg.log, run_dir=run.path)
        save_trained(model, run.path / "models" / name, world.doc_len)
        run.save_arrays("model" if name == MODEL else name, n_params=n_params(model), final_step=result.step)
        rows += result.rows
    run.save_rows(rows)
