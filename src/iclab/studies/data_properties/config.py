"""Config of the data-properties study (presets in ``iclab/configs/data-properties/``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.limits import MAX_BATCH, MAX_LIST, MAX_PROMPTS, MAX_SEED
from iclab.models.build import ModelSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.probes.classification import SETS, Classification, PromptSet
from iclab.worlds.bursty_classes import BurstyClasses


def model_label(p_bursty: float) -> str:
    """The name of the model trained at burstiness ``p_bursty``, in rows and paths (``p_bursty=0.9``)."""
    return f"p_bursty={p_bursty:g}"


class ProbeSettings(Frozen):
    """How ICL and IWL are measured (see :class:`iclab.probes.classification.Classification`).

    Parameters
    ----------
    sets : list of str, default every prompt set
        ``fewshot-holdout`` (ICL: holdout classes, fresh labels), ``no-support`` (IWL:
        training classes absent from the context), ``fewshot-trained`` (training classes,
        fresh labels). ``fewshot-holdout`` and ``no-support`` are required.
    n_prompts : int, default 512
        Sequences per set, the same at every probe step.
    batch_size : int, default 256
    """

    sets: list[PromptSet] = Field(default_factory=lambda: list(SETS), min_length=1)
    n_prompts: int = Field(512, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(256, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _check(self):
        missing = [s for s in ("fewshot-holdout", "no-support") if s not in self.sets]
        if missing:
            raise ValueError(f"sets {self.sets} must include {missing}: the study compares ICL on holdout classes "
                             "with IWL on trained ones")
        return self

    def probe(self) -> Classification:
        return Classification(sets=self.sets, n_prompts=self.n_prompts, batch_size=self.batch_size)


class DataPropertiesConfig(Frozen):
    """Config of the data-properties study.

    The defaults are Chan et al.'s setting as far as a symbolic world allows: 1,600 training
    classes of 20 exemplars with one label each, 20 holdout classes, 8 context pairs,
    bursty sequences of 3 shots × 2 ways with p_bursty = 0.9, uniform classes (their config's
    ``ZIPF_EXPONENT = 0``), evaluation by 4-shot 2-way sequences; a 12-layer transformer of
    width 64 with 8 heads (their embedding size and depth), Adam at 3e-4 after 4,000 warm-up
    steps, batches of 32.

    ``controls`` lists the burstiness of further models trained beside the main one
    (``world.p_bursty``), on the same world, from the same initial weights and data seed:
    the non-bursty control (0.0) makes the contrast of a single run. ``sweep`` is the default
    grid of ``iclab sweep`` (dotted key → values); a single run ignores it.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: BurstyClasses = BurstyClasses()
    controls: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=lambda: [0.0],
                                                                    max_length=MAX_LIST)
    model: ModelSpec = ModelSpec(family="llama", n_layers=12, d_model=64, n_heads=8, max_len=64)
    train: TrainConfig = TrainConfig(steps=500_000, batch_size=32, lr=3e-4, warmup=4000, eval_every=5000,
                                     ckpt_every=20_000)
    log: LogConfig = LogConfig()
    probe: ProbeSettings = ProbeSettings()
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        labels = [model_label(p) for p in self.p_bursty_values()]
        if len(set(labels)) != len(labels):
            raise ValueError(f"controls {self.controls} repeat a burstiness (world.p_bursty = {self.world.p_bursty} "
                             "is the main model's); give each value once")
        if self.model.max_len < self.world.seq_len:
            raise ValueError(f"model.max_len = {self.model.max_len} is shorter than a sequence (world.seq_len = "
                             f"{self.world.seq_len} tokens); raise model.max_len")
        return self

    def p_bursty_values(self) -> list[float]:
        """The burstiness of every model trained: the main one first, then the controls."""
        return [self.world.p_bursty, *self.controls]

    def world_at(self, p_bursty: float) -> BurstyClasses:
        """The world with burstiness ``p_bursty`` (everything else, the seed too, the same)."""
        return BurstyClasses(**{**self.world.model_dump(), "p_bursty": p_bursty})


def footprint(cfg: DataPropertiesConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of one model's training step and its probes (the models train one after another)."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device)
    return training_footprint(cfg.model, cfg.world.vocab_size, cfg.world.seq_len, cfg.train.batch_size,
                              probe_batch=min(cfg.probe.batch_size, cfg.probe.n_prompts),
                              probe_seq=cfg.world.seq_len, device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.context", "world.exemplar_len", "model.d_model",
                                     "probe.batch_size"))
