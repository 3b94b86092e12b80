"""Config of the bayesian-icl study (presets in ``iclab/configs/bayesian-icl/``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.limits import MAX_BATCH, MAX_LIST, MAX_PROMPTS, MAX_SEED, MAX_SEQ, MAX_WIDTH
from iclab.models.build import ModelSpec
from iclab.models.lstm import LSTMSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.probes.ginc_accuracy import VARIANTS, GINCAccuracy, Variant
from iclab.worlds.ginc import GINCWorld

MODEL, LSTM = "transformer", "lstm"  # the labels of the models trained here, in rows and paths


class ProbeSettings(Frozen):
    """How in-context accuracy is measured (see :class:`iclab.probes.ginc_accuracy.GINCAccuracy`).

    Parameters
    ----------
    shots : list of int, default [0, 1, 2, 4, 8, 16, 32, 64]
        k values, measured on every prompt set at step 0 and at the end of training.
    lengths : list of int, default [3, 5, 8, 10]
        l values (tokens per example).
    variants : list of str, default every prompt set
        ``id``, ``unseen-concepts``, ``no-delimiters``, ``shuffled-delimiters``.
    n_prompts : int, default 256
        Prompts per (prompt set, l), nested over k.
    curve_shots : list of int or None, default None
        k values measured on the ``id`` prompts at every probe step in between (the curves
        over training); None: the smallest and the largest of ``shots``.
    batch_size : int, default 64
    """

    shots: list[Annotated[int, Field(ge=0, le=MAX_SEQ)]] = Field(default_factory=lambda: [0, 1, 2, 4, 8, 16, 32, 64],
                                                                 min_length=1, max_length=MAX_LIST)
    lengths: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(default_factory=lambda: [3, 5, 8, 10], min_length=1,
                                                                   max_length=MAX_LIST)
    variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS), min_length=1)
    n_prompts: int = Field(256, ge=1, le=MAX_PROMPTS)
    curve_shots: list[Annotated[int, Field(ge=0, le=MAX_SEQ)]] | None = Field(None, min_length=1, max_length=MAX_LIST)
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _check(self):
        self.probe()  # the probe's own checks (k >= 0, l >= 2)
        if "id" not in self.variants:
            raise ValueError(f"variants {self.variants} must include 'id', the in-distribution prompts")
        if not set(self.over_training()) <= set(self.shots):
            raise ValueError(f"curve_shots {self.curve_shots} must be among shots {self.shots}")
        return self

    def over_training(self) -> list[int]:
        """The k values of the curves over training."""
        return sorted(set(self.curve_shots or [min(self.shots), max(self.shots)]))

    def probe(self) -> GINCAccuracy:
        """Every cell: all prompt sets, lengths and shots."""
        return GINCAccuracy(shots=self.shots, lengths=self.lengths, variants=self.variants,
                            n_prompts=self.n_prompts, batch_size=self.batch_size)

    def curve_probe(self) -> GINCAccuracy:
        """The cells measured between the first and the last step: ``id`` prompts, ``over_training()`` shots."""
        return GINCAccuracy(shots=self.over_training(), lengths=self.lengths, variants=["id"],
                            n_prompts=self.n_prompts, batch_size=self.batch_size)


class LSTMBaseline(Frozen):
    """The recurrent baseline, trained on the same documents in the same order as the transformer.

    Parameters
    ----------
    n_layers : int, default 1
    d_model : int, default 128
    lr : float or None, default None
        Peak learning rate; None takes ``train.lr``. The rest of ``train`` applies as is.
    """

    n_layers: int = Field(1, ge=1, le=16)
    d_model: int = Field(128, ge=2, le=MAX_WIDTH)
    lr: float | None = Field(None, gt=0, le=1)

    def spec(self) -> LSTMSpec:
        return LSTMSpec(n_layers=self.n_layers, d_model=self.d_model)


class BayesianICLConfig(Frozen):
    """Config of the bayesian-icl study.

    The defaults are GINC's published setting: the default world (50 symbols, 10 entities
    x 10 properties, 10 concepts of which 5 pretrain), a 4-layer GPT-2 of width 768 with
    12 heads (the seed's small model), GINC's k and l grids. ``lstm`` adds the seed's LSTM
    baseline (None: none).
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: GINCWorld = GINCWorld()
    model: ModelSpec = ModelSpec(family="gpt2", n_layers=4, d_model=768, n_heads=12, max_len=1024)
    train: TrainConfig = TrainConfig()
    log: LogConfig = LogConfig()
    probe: ProbeSettings = ProbeSettings()
    lstm: LSTMBaseline | None = None

    @model_validator(mode="after")
    def _check(self):
        longest = self.probe.probe().max_prompt_len()
        if longest > self.world.doc_len:
            raise ValueError(f"the longest prompt (k = {max(self.probe.shots)}, l = {max(self.probe.lengths)}: "
                             f"{longest} tokens) is longer than a training document (world.doc_len = "
                             f"{self.world.doc_len}); raise world.doc_len or lower probe.shots (longer prompts "
                             "test length extrapolation, not ICL)")
        if self.model.max_len < self.world.doc_len:
            raise ValueError(f"model.max_len = {self.model.max_len} is shorter than a training document "
                             f"(world.doc_len = {self.world.doc_len}); raise model.max_len")
        if "unseen-concepts" in self.probe.variants and self.world.n_pretrain_concepts == self.world.n_concepts:
            raise ValueError("probe.variants has 'unseen-concepts' but every concept is a pretraining concept "
                             f"(world.n_pretrain_concepts = world.n_concepts = {self.world.n_concepts}); lower "
                             "world.n_pretrain_concepts or drop the variant")
        return self


def footprint(cfg: BayesianICLConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of the transformer's training step and its probes (see :mod:`iclab.models.memory`);
    the LSTM baseline trains after the transformer, not beside it, and is not counted."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device, cfg.model)
    return training_footprint(cfg.model, cfg.world.vocab_size, cfg.world.doc_len, cfg.train.batch_size,
                              probe_batch=cfg.probe.batch_size, probe_seq=cfg.probe.probe().max_prompt_len(),
                              device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.doc_len", "model.d_model", "probe.batch_size"))
