"""What the data-properties study measures: ICL and IWL accuracy over training, one model per burstiness."""

from __future__ import annotations

import numpy as np

from iclab.models.build import build_model, n_params
from iclab.models.load import load_model, save_trained
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies.data_properties.config import DataPropertiesConfig, model_label
from iclab.train.loop import train


def describe(rows: Rows) -> str:
    """What a probe step found: ICL accuracy on holdout classes and IWL accuracy on trained ones."""
    acc = rows.where(metric="accuracy")
    return (f"ICL (holdout, fresh labels) {acc.value('accuracy', label='fewshot-holdout'):.2f}, "
            f"IWL (no support) {acc.value('accuracy', label='no-support'):.2f}")


def measure(cfg: DataPropertiesConfig, run: Run, model_name: str | None = None) -> None:
    """Train one model per burstiness (``world.p_bursty``, then ``controls``) on the same world from
    the same initial weights and data seed, or load ``model_name`` (a model over the world's
    tokens); measure ICL and IWL accuracy at step 0, every ``train.eval_every`` steps and at the
    end, on the same prompts."""
    probe = cfg.probe.probe()
    prompts = probe.prompts(cfg.world, np.random.default_rng([cfg.seed, 1]))
    if model_name:
        model, _ = load_model(model_name, tokenizer="none")
        run.save_rows(probe(model, prompts).tagged(model=model_name).rows)
        return
    rows = Rows()
    for p in cfg.p_bursty_values():
        name = model_label(p)
        model = build_model(cfg.model, cfg.world.vocab_size, seed=cfg.seed)

        def measure_at(m, step: int, name=name):
            return probe(m, prompts).tagged(step=step, model=name).rows

        result = train(model, cfg.world_at(p), cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name),
                       probe=measure_at, label=name, describe=describe, log=cfg.log, run_dir=run.path)
        save_trained(model, run.path / "models" / name, cfg.world.seq_len)
        run.save_arrays(name, n_params=n_params(model), final_step=result.step, p_bursty=p)
        rows += result.rows
    run.save_rows(rows)
