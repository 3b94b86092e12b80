"""What the label-semantics study measures: accuracy of every condition on each pretrained model
(or on a model trained on the label-map world), written as rows into the run."""

from __future__ import annotations

import numpy as np

from iclab.models.build import build_model, n_params
from iclab.models.load import save_trained
from iclab.probes.label_scoring import LabelPrompts, LabelScoring
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies.label_semantics.conditions import (
    cases,
    group_label,
    queries_of,
    zero_shot_cases,
)
from iclab.studies.label_semantics.config import TRAINED, LabelSemanticsConfig
from iclab.studies.label_semantics.trained import TASK, trained_prompts
from iclab.studies.labelled_data import encode_cases, prompt_counts, score_models
from iclab.tasks.labelled import LabelledSet, ood_sentences
from iclab.train.loop import train


def set_prompts(s: LabelledSet, cfg: LabelSemanticsConfig, tokenizer) -> dict[int, LabelPrompts]:
    """Every prompt of one set: zero-shot under k = 0, the conditions at each k (same seed for every
    model, so each model sees the same prompts)."""
    p = cfg.probe
    rng = np.random.default_rng([cfg.seed, 1, sum(map(ord, s.name))])
    queries = queries_of(s, rng, p.n_queries)
    out = {0: encode_cases(tokenizer, zero_shot_cases(s, queries), s.label_prefix)}
    for k in sorted(set(p.shots)):
        items = cases(s, p.conditions, k, queries, p.n_draws, rng, p.unrelated_labels, ood_sentences())
        out[k] = encode_cases(tokenizer, items, s.label_prefix)
    return out


def measure(cfg: LabelSemanticsConfig, run: Run, model_name: str | None = None) -> None:
    """Score each model of ``cfg.scored(model_name)`` in turn (one in memory at a time), or train
    on the label-map world when there is none."""
    names = cfg.scored(model_name)
    if not names:
        return measure_trained(cfg, run)
    probe = LabelScoring(batch_size=cfg.probe.batch_size)

    def score_set(model, tokenizer, s: LabelledSet) -> Rows:
        rows = Rows()
        for k, prompts in set_prompts(s, cfg, tokenizer).items():
            rows += Rows(probe(model, prompts).rows + prompt_counts(prompts)).tagged(pos=k)
        return rows

    unrelated = (lambda s: cfg.probe.unrelated_labels[:s.n_classes]) if "unrelated" in cfg.probe.conditions else None
    score_models(run, names, cfg.data.sets(), cfg.model, "label semantics", score_set, extra_labels=unrelated)


def describe(rows: Rows) -> str:
    """What a probe step found: gold and flipped accuracy at the largest k."""
    k = max(rows.unique("pos"))
    at = rows.where(metric="accuracy", pos=k)
    parts = [f"{c} {at.where(label=group_label(TASK, c)).first():.2f}" for c in ("gold", "flipped")
             if at.where(label=group_label(TASK, c))]
    return f"k = {k}: " + ", ".join(parts)


def measure_trained(cfg: LabelSemanticsConfig, run: Run) -> None:
    """Train a causal LM on the label-map world and score every condition at step 0, every
    ``train.eval_every`` steps and at the end."""
    world = cfg.world
    prompts = trained_prompts(world, cfg.probe.conditions, cfg.probe.shots, cfg.probe.n_queries,
                              np.random.default_rng([cfg.seed, 1]))
    probe = LabelScoring(batch_size=cfg.probe.batch_size)
    model = build_model(cfg.model, world.vocab_size, seed=cfg.seed)

    def measure_at(m, step: int):
        out = Rows()
        for k, p in prompts.items():
            out += Rows(probe(m, p).rows).tagged(pos=k, step=step, model=TRAINED)
        return out

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(TRAINED), probe=measure_at,
                   label=TRAINED, describe=describe, log=cfg.log, run_dir=run.path)
    save_trained(model, run.path / "models" / TRAINED, 2 * world.pairs)
    run.save_arrays("models", names=np.array([TRAINED]), n_params=np.array([n_params(model)], dtype=np.int64),
                    final_step=np.array(result.step))
    run.save_arrays("sets", names=np.array([TASK]), n_classes=np.array([world.n_classes]))
    counts = Rows(r for k, p in prompts.items() for r in Rows(prompt_counts(p)).tagged(pos=k, model=TRAINED))
    run.save_rows(result.rows + counts)
