"""Config of the induction-heads study (presets in ``iclab/configs/induction-heads/``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.errors import ConfigError
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_LAYERS, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.build import ModelSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.worlds.induction import RepeatedTokens


class ProbeSettings(Frozen):
    """How the models are measured.

    Parameters
    ----------
    n_prompts : int, default 128
        Repeated prompts ``[r, r]`` scored at each probe step (fixed across steps); at most 10^6.
    half : int or None, default None
        Length of ``r``; None means ``world.seq_len // 2`` for models trained here and 50
        for pretrained models.
    phase_threshold : float, default 0.5
        A model shows the phase change when its best induction score ends at or above this,
        having started below it, and its ICL score falls by at least ``phase_icl_drop``. A
        random model scores about 1/(context length); a 1-layer model, which can only attend
        by position and content, stays near 0.2-0.3 (Olsson et al.: no induction heads).
    phase_icl_drop : float, default 0.5
        Nats the ICL score must fall between the first and the last probe step.
    ablate_min_score : float, default 0.3
        Heads with an induction score at least this high are ablated at the end; when none
        reaches it, the one best head is ablated and the report says so.
    ablate_max_heads : int, default 8
    ablation : {"mean", "zero"}, default "mean"
    batch_size : int, default 64
    """

    n_prompts: int = Field(128, ge=8, le=MAX_PROMPTS)
    half: int | None = Field(None, ge=4, le=MAX_SEQ)
    phase_threshold: float = Field(0.5, gt=0, le=1)
    phase_icl_drop: float = Field(0.5, ge=0, le=100)
    ablate_min_score: float = Field(0.3, ge=0, le=1)
    ablate_max_heads: int = Field(8, ge=1, le=MAX_ITEMS)
    ablation: str = Field("mean", pattern="^(mean|zero)$")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)


class InductionHeadsConfig(Frozen):
    """Config of the induction-heads study.

    ``layers`` lists the depths trained (one attention-only model each, at most 64 depths of
    1 to 256 layers); ``model`` gives the rest of their architecture.

    Every size is capped (prompts and walks at most 10^6, batches 65,536, sequence lengths
    2^20, layers 256; :mod:`iclab.limits`) and every float is finite, so a typo is refused
    before anything is allocated.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: RepeatedTokens = RepeatedTokens()
    model: ModelSpec = ModelSpec(attn_only=True)
    layers: list[Annotated[int, Field(ge=1, le=MAX_LAYERS)]] = Field(default_factory=lambda: [1, 2], min_length=1,
                                                                    max_length=64)
    train: TrainConfig = TrainConfig()
    log: LogConfig = LogConfig()
    probe: ProbeSettings = ProbeSettings()

    def half(self, pretrained: bool, limits: tuple[int | None, int | None] = (None, None)) -> int:
        """Length of the repeated segment of the probe prompts: ``probe.half``, else half the training
        length here; for a loaded model 50, or half the length it was trained on when iclab trained
        it (``limits = (trained, maximum)`` of :func:`iclab.models.load.context_limits`). Raises
        ConfigError when the prompts would be longer than the model's positions."""
        trained, maximum = limits
        if not pretrained:
            return self.probe.half or self.world.seq_len // 2
        half = self.probe.half or (min(50, trained // 2) if trained else 50)
        if maximum is not None and 2 * half > maximum:
            raise ConfigError(f"probe.half = {half}: prompts of {2 * half} tokens are longer than the model's "
                              f"{maximum} positions; set probe.half <= {maximum // 2}")
        return half


def footprint(cfg: InductionHeadsConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of the largest depth's training step and probes (see :mod:`iclab.models.memory`)."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device, cfg.model)
    spec = cfg.model.model_copy(update={"n_layers": max(cfg.layers)})
    return training_footprint(spec, cfg.world.vocab_size, cfg.world.seq_len, cfg.train.batch_size,
                              probe_batch=min(cfg.probe.batch_size, cfg.probe.n_prompts),
                              probe_seq=2 * cfg.half(pretrained=False), probe_patterns=True, device=device,
                              precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.seq_len", "world.vocab", "model.d_model", "layers",
                                     "probe.batch_size"))
