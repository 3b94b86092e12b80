"""Config of the icg-generalization study (presets in ``iclab/configs/icg-generalization/``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.limits import MAX_BATCH, MAX_HEADS, MAX_LIST, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.build import ModelSpec
from iclab.models.load import LoadSettings
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.probes.ictr import ICTR
from iclab.worlds.icg import ICGWorld

# name: (n_layers, d_model, n_heads); llama with MLP width 4 d_model and the world's 324
# tokens. Parameters: tiny 0.17M, mini 0.61M (cpu), XS 4.4M, S 14.4M, M 33.9M, L 114M,
# XL 237M: the paper-scale range of about 4M to 234M.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 64, 4),
    "mini": (2, 128, 4),
    "XS": (4, 256, 4),
    "S": (6, 384, 6),
    "M": (8, 512, 8),
    "L": (12, 768, 12),
    "XL": (16, 960, 15),
}


class ICGModel(Frozen, LoadSettings):
    """The model trained on the ICG world: a size from :data:`SIZES` and the H, W knobs.

    Parameters
    ----------
    size : str, default "mini"
        A row of SIZES: (n_layers, d_model, n_heads).
    family : {"llama", "gpt2", "mistral"}, default "llama"
        With a ``window``, llama becomes mistral (llama with sliding-window attention).
    n_heads : int or None, default None
        H; None takes the size's. ``d_model`` must be divisible by it.
    window : int or None, default None
        W, sliding attention window in tokens: a token sees itself and the W - 1 tokens
        before it. Any W ≥ 1, also shorter than a paragraph.
    max_len : int, default 2048
        Longest sequence (GPT-2's position table; RoPE's cache size).
    device_map, dtype
        How a pretrained ``--model`` is loaded (:class:`~iclab.models.load.LoadSettings`).
    """

    size: str = "mini"
    family: Literal["llama", "gpt2", "mistral"] = "llama"
    n_heads: int | None = Field(None, ge=1, le=MAX_HEADS)
    window: int | None = Field(None, ge=1, le=MAX_SEQ)
    max_len: int = Field(2048, ge=8, le=MAX_SEQ)

    @field_validator("size")
    @classmethod
    def _size(cls, v: str) -> str:
        if v not in SIZES:
            raise ValueError(f"unknown size; known: {', '.join(SIZES)}")
        return v

    @model_validator(mode="after")
    def _check(self):
        self.spec()  # ModelSpec's own checks (heads divide d_model, window needs mistral)
        return self

    def spec(self) -> ModelSpec:
        layers, d_model, heads = SIZES[self.size]
        family = "mistral" if self.window is not None and self.family == "llama" else self.family
        return ModelSpec(family=family, n_layers=layers, d_model=d_model, n_heads=self.n_heads or heads,
                         window=self.window, max_len=self.max_len)

    @property
    def label(self) -> str:
        """Model name in rows and figures: the size, then H and W when set (``mini-H2-W8``)."""
        return self.size + (f"-H{self.n_heads}" if self.n_heads else "") + (f"-W{self.window}" if self.window else "")


class ICTRSettings(Frozen):
    """How ICTR is measured (see :class:`iclab.probes.ictr.ICTR`).

    Parameters
    ----------
    shots : list of int, default [1, 2, 3, 5, 8]
        k values of the ICTR-vs-k curve, at step 0 and at the end of training; each
        below ``world.n_paragraphs`` (the prompt and the generation fit in a document).
    report_shot : int, default 5
        The k of the summary table and of the curve over training (every eval step).
    n_prompts : int, default 128
        Prompts per topic set (nested over k).
    batch_size : int, default 128
    """

    shots: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(default_factory=lambda: [1, 2, 3, 5, 8], min_length=1,
                                                                 max_length=MAX_LIST)
    report_shot: int = Field(5, ge=1, le=MAX_SEQ)
    n_prompts: int = Field(128, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _check(self):
        if self.report_shot not in self.shots:
            raise ValueError(f"report_shot={self.report_shot} must be one of shots {self.shots}")
        return self

    def probe(self, seed: int, shots: list[int] | None = None) -> ICTR:
        return ICTR(shots=shots or self.shots, n_prompts=self.n_prompts, batch_size=self.batch_size, seed=seed)


class ICGGeneralizationConfig(Frozen):
    """Config of the icg-generalization study (presets in ``iclab/configs/icg-generalization/``).

    ``sweep`` is the default grid of ``iclab sweep`` (dotted key → values); a single run
    ignores it.

    Every size is capped (prompts and walks at most 10^6, batches 65,536, sequence lengths
    2^20, layers 256; :mod:`iclab.limits`) and every float is finite, so a typo is refused
    before anything is allocated.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: ICGWorld = ICGWorld()
    model: ICGModel = ICGModel()
    train: TrainConfig = TrainConfig()
    log: LogConfig = LogConfig()
    probe: ICTRSettings = ICTRSettings()
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        if max(self.probe.shots) >= self.world.n_paragraphs:
            raise ValueError(f"probe.shots {self.probe.shots} must stay below world.n_paragraphs = "
                             f"{self.world.n_paragraphs}: a k-shot prompt and its generated paragraph must fit "
                             "in a training document (longer ones test length extrapolation, not ICG)")
        seq = 1 + self.world.n_paragraphs * (self.world.paragraph_len + 1)
        if self.model.max_len < seq:
            raise ValueError(f"model.max_len={self.model.max_len} is shorter than a document "
                             f"({seq} tokens); raise model.max_len")
        return self


def footprint(cfg: ICGGeneralizationConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of training on whole documents and of the ICTR generations."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device, cfg.model)
    seq = 1 + cfg.world.n_paragraphs * (cfg.world.paragraph_len + 1)
    return training_footprint(cfg.model.spec(), cfg.world.vocab_size, seq, cfg.train.batch_size,
                              probe_batch=min(cfg.probe.batch_size, cfg.probe.n_prompts), probe_seq=seq,
                              device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.n_paragraphs", "world.paragraph_len", "model.size",
                                     "probe.batch_size"))
