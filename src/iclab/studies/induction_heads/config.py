"""Config of the induction-heads study (presets in ``iclab/configs/induction-heads/``)."""

from __future__ import annotations

from pydantic import Field

from iclab.config import Frozen, TrainConfig
from iclab.models.build import ModelSpec
from iclab.worlds.induction import RepeatedTokens


class ProbeSettings(Frozen):
    """How the models are measured.

    Parameters
    ----------
    n_prompts : int, default 128
        Repeated prompts ``[r, r]`` scored at each probe step (fixed across steps).
    half : int or None, default None
        Length of ``r``; None means ``world.seq_len // 2`` for models trained here and 50
        for pretrained models.
    ablate_min_score : float, default 0.3
        Heads with an induction score at least this high are ablated at the end.
    ablate_max_heads : int, default 8
    ablation : {"mean", "zero"}, default "mean"
    batch_size : int, default 64
    """

    n_prompts: int = Field(128, ge=8)
    half: int | None = Field(None, ge=4)
    ablate_min_score: float = Field(0.3, ge=0, le=1)
    ablate_max_heads: int = Field(8, ge=1)
    ablation: str = Field("mean", pattern="^(mean|zero)$")
    batch_size: int = Field(64, ge=1)


class InductionHeadsConfig(Frozen):
    """Config of the induction-heads study.

    ``layers`` lists the depths trained (one attention-only model each); ``model`` gives the
    rest of their architecture.
    """

    seed: int = 0
    world: RepeatedTokens = RepeatedTokens()
    model: ModelSpec = ModelSpec(attn_only=True)
    layers: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    train: TrainConfig = TrainConfig()
    probe: ProbeSettings = ProbeSettings()

    def half(self, pretrained: bool) -> int:
        """Length of the repeated segment of the probe prompts."""
        return self.probe.half or (50 if pretrained else self.world.seq_len // 2)
