"""The models each study trains, built from a preset as the study's ``measure`` builds them, for
the benchmarks that time training (``bench_trainer.py``) or weigh sampling against it
(``bench_worlds.py``); and the FLOPs a training token costs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from iclab.models.build import n_params
from iclab.studies import get_study
from iclab.worlds.base import VectorBatch

#: every study that trains a model, in the order the benchmarks go through them
TRAINING_STUDIES = ("induction-heads", "icg-generalization", "graph-tracing", "bayesian-icl", "data-properties",
                    "label-semantics", "regression-icl", "task-vectors")


@dataclass
class Trainee:
    """One model a study trains and the world it trains on."""

    label: str
    world: object
    build: Callable[[], nn.Module]
    train: object  # TrainConfig
    seed: int  # the data seed: the study trains with data_seed = cfg.seed


def trainees(study: str, preset: str, overrides: dict) -> list[Trainee]:
    """The models ``study`` trains at ``preset``, built as its ``measure`` builds them."""
    from iclab.models.build import build_model
    from iclab.models.lstm import build_lstm
    from iclab.models.vector import VectorModel

    cfg = get_study(study).load_config(preset, overrides)
    s = cfg.seed

    def made(label: str, world, build: Callable[[], nn.Module]) -> Trainee:
        return Trainee(label, world, build, cfg.train, s)

    if study == "induction-heads":
        depths = sorted({min(cfg.layers), max(cfg.layers)})  # the fastest and the slowest consumer
        return [made(f"L{d}", cfg.world, lambda d=d: build_model(cfg.model.model_copy(update={"n_layers": d}),
                                                                 cfg.world.vocab_size, seed=s + d))
                for d in depths]
    if study == "icg-generalization":
        return [made(cfg.model.label, cfg.world, lambda: build_model(cfg.model.spec(), cfg.world.vocab_size, seed=s))]
    if study == "graph-tracing":
        return [made("model", cfg.pretrain, lambda: build_model(cfg.model, cfg.pretrain.vocab_size, seed=s))]
    if study == "bayesian-icl":
        out = [made(cfg.model.family, cfg.world, lambda: build_model(cfg.model, cfg.world.vocab_size, seed=s))]
        if cfg.lstm is not None:  # its own lr does not change a step's cost
            out.append(made("lstm", cfg.world, lambda: build_lstm(cfg.lstm.spec(), cfg.world.vocab_size, seed=s)))
        return out
    if study == "data-properties":
        return [made(f"p_bursty={p}", cfg.world_at(p), lambda: build_model(cfg.model, cfg.world.vocab_size, seed=s))
                for p in cfg.p_bursty_values()]
    if study == "label-semantics":
        return [made("trained", cfg.world, lambda: build_model(cfg.model, cfg.world.vocab_size, seed=s))]
    if study in ("task-vectors", "regression-icl"):
        world = cfg.world.build() if study == "regression-icl" else cfg.world
        return [made("transformer", world, lambda: VectorModel(cfg.model, world.dim, seed=s))]
    raise ValueError(f"no trainees known for study {study!r}")


def model_seq(batch) -> int:
    """Tokens per sequence the model sees: a vector model interleaves x and y."""
    return 2 * batch.xs.shape[1] if isinstance(batch, VectorBatch) else batch.tokens.shape[1]


def flops_per_token(model: nn.Module, seq: int) -> tuple[float, int]:
    """(6 N + 6 n_layers seq d_model, N): training FLOPs per model token and the non-embedding
    parameters N. A VectorModel's read-in and read-out count in N; an LSTM has no attention term."""
    backbone = getattr(model, "backbone", model)
    n = n_params(backbone, non_embedding=True)
    if backbone is not model:
        n += sum(p.numel() for name, p in model.named_parameters() if not name.startswith("backbone."))
    cfg = backbone.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    if getattr(cfg, "model_type", "") == "iclab-lstm" or layers is None:
        return 6.0 * n, n
    d = getattr(cfg, "hidden_size", None) or cfg.n_embd
    return 6.0 * n + 6.0 * layers * seq * d, n


def largest(study: str, preset: str = "cpu", overrides: dict | None = None) -> tuple[Trainee, nn.Module]:
    """The trainee of ``study`` with the most parameters (induction-heads' deepest model,
    bayesian-icl's transformer, data-properties' first burstiness) and one model of it. With a
    curriculum, the world is fixed at its last stage, where batches are largest and training
    spends most of its steps. label-semantics trains only with ``models: []``."""
    if study == "label-semantics":
        overrides = {"models": [], **(overrides or {})}
    pairs = [(t, t.build()) for t in trainees(study, preset, overrides or {})]
    trainee, model = max(pairs, key=lambda tm: sum(p.numel() for p in tm[1].parameters()))
    if getattr(trainee.world, "curriculum", None) is not None and hasattr(trainee.world, "at_step"):
        trainee.world = trainee.world.at_step(trainee.train.steps - 1)
    return trainee, model
