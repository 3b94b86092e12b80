"""Config of the label-semantics study (presets in ``iclab/configs/label-semantics/``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.errors import ConfigError, ModelLoadError
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_LIST, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.build import ModelSpec
from iclab.models.memory import RUNTIME, Footprint, pretrained_footprint, run_device, training_footprint
from iclab.studies.label_semantics.conditions import CONDITIONS
from iclab.studies.labelled_data import DataSettings
from iclab.worlds.label_map import LabelMapWorld

Condition = Literal["gold", "random", "flipped", "unrelated", "no-labels", "ood-inputs"]
#: the model scored when neither --model nor ``models`` says otherwise (a small HF model for real users)
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M"
#: the label of the model trained here, in rows and paths
TRAINED = "trained"


class ProbeSettings(Frozen):
    """The prompts of every condition (see :mod:`~iclab.studies.label_semantics.conditions`).

    Parameters
    ----------
    conditions : list of str, default all
        ``gold``, ``random``, ``flipped``, ``unrelated``, ``no-labels``, ``ood-inputs``;
        zero-shot is always measured.
    shots : list of int, default [4, 16]
        Demonstrations k per prompt (Min et al.: 16).
    n_queries : int, default 48
        Queries per set (every example of a smaller set); on the trained model, prompts per
        condition and k.
    n_draws : int, default 3
        Demonstration draws per query (text sets).
    unrelated_labels : list of str, default foo, bar, baz, qux, zap, wug
        The semantically unrelated labels, class c -> the c-th word (Wei et al.: foo/bar).
    batch_size : int, default 16
    """

    conditions: list[Condition] = Field(default_factory=lambda: list(CONDITIONS), min_length=1)
    shots: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(default_factory=lambda: [4, 16], min_length=1,
                                                                 max_length=MAX_LIST)
    n_queries: int = Field(48, ge=1, le=MAX_PROMPTS)
    n_draws: int = Field(3, ge=1, le=MAX_ITEMS)
    unrelated_labels: list[str] = Field(default_factory=lambda: ["foo", "bar", "baz", "qux", "zap", "wug"],
                                        min_length=2, max_length=MAX_LIST)
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.unrelated_labels)) != len(self.unrelated_labels):
            raise ValueError(f"unrelated_labels {self.unrelated_labels} repeat a label")
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError(f"conditions {self.conditions} repeat a condition")
        return self


class LabelSemanticsConfig(Frozen):
    """Config of the label-semantics study.

    ``models`` are scored in turn when no ``--model`` is given (several give the scale
    curve); an empty list trains a model on the label-map ``world`` instead (``model``,
    ``train``) and tests it with the same conditions over its tokens.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    models: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: [DEFAULT_MODEL],
                                                              max_length=MAX_LIST)
    data: DataSettings = DataSettings()
    probe: ProbeSettings = ProbeSettings()
    world: LabelMapWorld = LabelMapWorld()
    model: ModelSpec = ModelSpec(family="llama", n_layers=2, d_model=64, n_heads=4, max_len=32)
    train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=3e-3, warmup=50, eval_every=250,
                                     ckpt_every=500)
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models {self.models} name a model twice")
        if not self.models:
            longest = 2 * max(self.probe.shots) + 1
            if max(self.probe.shots) >= self.world.pairs:
                raise ValueError(f"probe.shots {self.probe.shots}: the trained model sees at most world.pairs - 1 = "
                                 f"{self.world.pairs - 1} demonstrations before a query")
            if longest > self.model.max_len:
                raise ValueError(f"model.max_len = {self.model.max_len} is shorter than the longest prompt "
                                 f"({longest} tokens)")
            if "ood-inputs" in self.probe.conditions and self.world.n_ood_inputs == 0:
                raise ValueError("probe.conditions has 'ood-inputs' but world.n_ood_inputs = 0")
            if 2 * self.world.pairs > self.model.max_len:
                raise ValueError(f"model.max_len = {self.model.max_len} is shorter than a training sequence "
                                 f"(2 * world.pairs = {2 * self.world.pairs})")
        return self

    def scored(self, model_name: str | None) -> list[str]:
        """The pretrained models a run scores: ``--model``, else ``models`` ([]: train here)."""
        return [model_name] if model_name else list(self.models)


def check_inputs(cfg: LabelSemanticsConfig, model_name: str | None) -> None:
    """Refuse, before a run directory is made, a user's data file that cannot be used (missing,
    a column absent, too few labels) and a path in ``models`` that holds no model."""
    from iclab.models.load import check_model_path

    if cfg.scored(model_name):
        sets = cfg.data.sets()
        n = max(s.n_classes for s in sets)
        if "unrelated" in cfg.probe.conditions and len(cfg.probe.unrelated_labels) < n:
            raise ConfigError(f"probe.unrelated_labels has {len(cfg.probe.unrelated_labels)} labels, fewer than the "
                              f"{n} classes of the data")
        small = [s.name for s in sets if len(s) <= max(cfg.probe.shots)]
        if small:
            raise ConfigError(f"probe.shots {cfg.probe.shots}: set(s) {small} have too few examples for "
                              f"{max(cfg.probe.shots)} demonstrations besides the query")
    for name in ([] if model_name else cfg.models):
        try:
            check_model_path(name)
        except ModelLoadError as e:
            raise ConfigError(f"models: {e}") from None


def footprint(cfg: LabelSemanticsConfig, model_name: str | None = None) -> Footprint | None:
    """The largest of the scored models' weights (one is in memory at a time), or the training
    step of the model trained here; also refuses unusable inputs first (:func:`check_inputs`)."""
    check_inputs(cfg, model_name)
    device = run_device(cfg.train.device)
    names = cfg.scored(model_name)
    if names:
        # a Hub model's size is unknown until it is downloaded: the runtime alone stands for it
        fps = [pretrained_footprint(n, device, cfg.model) or Footprint({"runtime": RUNTIME}, device) for n in names]
        return max(fps, key=lambda fp: fp.total)
    seq = 2 * cfg.world.pairs
    return training_footprint(cfg.model, cfg.world.vocab_size, seq, cfg.train.batch_size,
                              probe_batch=cfg.probe.batch_size, probe_seq=seq, device=device,
                              precision=cfg.train.precision, knobs=("train.batch_size", "world.pairs", "model.d_model"))
