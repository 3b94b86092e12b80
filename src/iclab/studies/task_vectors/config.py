"""Config of the task-vectors study (presets in ``iclab/configs/task-vectors/``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from iclab.baselines import baseline_names
from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.errors import ConfigError
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_LAYERS, MAX_LIST, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.build import ModelSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.models.vector import x_position, y_position
from iclab.train.finetune import FinetuneSettings
from iclab.worlds.regression import SparseLinearMixture

#: baselines of the error-vs-K comparison (spec: OLS, ridge, Lasso, oracle Lasso, averaging)
DEFAULT_BASELINES = ["least-squares", "ridge", "lasso", "oracle-lasso", "averaging"]


class SyntheticSettings(Frozen):
    """What is measured on the model trained on the sparse mixture.

    Parameters
    ----------
    n_per_basis : int, default 100
        TD and loss prompts per basis (fixed over training).
    k : int, default 10
        TD voters.
    td_position : {"last_x", "last_y"}, default "last_x"
        Token whose hidden states TD reads. The spec's TD reads "the token just before the
        answer"; in a regression prompt the answer ``y_K`` is predicted at the last ``x``.
    repr_position : {"last_y", "last_x"}, default "last_y"
        Token of the PCA/UMAP panels; the spec draws "the y token at the last demonstration".
        When it differs from ``td_position``, TD is also measured there (rows with that ``pos``)
        and reported beside the main TD.
    repr_layer : int or None, default None
        Layer of the PCA/UMAP panels; None is ``(n_layers - 1) // 2`` (layer 5 of 12, as in the seed).
    marks : list of float, default [0.1, 0.5, 0.9]
        Marked steps: the first probe step at which the mean loss has made this share of
        its largest gain over predicting 0 (see :func:`marked_steps`).
    umap : bool, default True
        Also draw UMAP panels (n_neighbors, min_dist below); PCA panels are always drawn.
    umap_neighbors : int, default 15
    umap_min_dist : float, default 0.1
    eval_per_basis : int, default 64
        Prompts per basis for the error-vs-K curves.
    baselines : list of str, default least-squares, ridge, lasso, oracle-lasso, averaging
    batch_size : int, default 256
    """

    n_per_basis: int = Field(100, ge=4, le=MAX_PROMPTS)
    k: int = Field(10, ge=1, le=MAX_ITEMS)
    td_position: Literal["last_x", "last_y"] = "last_x"
    repr_position: Literal["last_x", "last_y"] = "last_y"
    repr_layer: int | None = Field(None, ge=0, le=MAX_LAYERS)
    marks: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9], max_length=MAX_LIST)
    umap: bool = True
    umap_neighbors: int = Field(15, ge=2, le=MAX_ITEMS)
    umap_min_dist: float = Field(0.1, ge=0)
    eval_per_basis: int = Field(64, ge=1, le=MAX_PROMPTS)
    baselines: list[str] = Field(default_factory=lambda: list(DEFAULT_BASELINES), max_length=MAX_LIST)
    batch_size: int = Field(256, ge=1, le=MAX_BATCH)

    @field_validator("baselines")
    @classmethod
    def _known(cls, v):
        unknown = [b for b in v if b not in baseline_names()]
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {', '.join(baseline_names())}")
        return v

    @field_validator("marks")
    @classmethod
    def _shares(cls, v):
        if any(not 0 < m < 1 for m in v):
            raise ValueError(f"marks are shares of the in-context gain, each in (0, 1); got {v}")
        return v


class NaturalSettings(Frozen):
    """Natural tasks on a pretrained LM (``--model``).

    Parameters
    ----------
    families : list of {"bitwise", "pos"}, default both
    shots : list of int, default [1, 4, 10]
        Shot counts of the TD and accuracy measurements (the TD-vs-accuracy scatter).
    main_shots : int, default 4
        Shot count of the demonstrations for task vectors and of fine-tuning.
    n_prompts : int, default 100
        Prompts per task (Null included) at each shot count (spec: N = 100).
    k : int, default 10
    prompting_control : bool, default True
        Also score zero-shot prompts that state the task in words.
    conllu : str or None, default None
        A CoNLL-U file for the POS tasks instead of the shipped sentences.
    max_new_tokens : int or None, default None
        None: one more than the longest answer.
    batch_size : int, default 16
    checkpoints : list of str, default []
        Checkpoints of one training run, in training order (names or ``save_pretrained``
        directories, e.g. a series of OLMo revisions saved locally): TD and accuracy at
        ``main_shots`` are measured on each, and their R² over checkpoints reported.
    """

    families: list[Literal["bitwise", "pos"]] = Field(default_factory=lambda: ["bitwise", "pos"], min_length=1)
    shots: list[Annotated[int, Field(le=MAX_SEQ)]] = Field(default_factory=lambda: [1, 4, 10], min_length=1,
                                                          max_length=MAX_LIST)
    main_shots: int = Field(4, ge=1, le=MAX_ITEMS)
    n_prompts: int = Field(100, ge=4, le=MAX_PROMPTS)
    k: int = Field(10, ge=1, le=MAX_ITEMS)
    prompting_control: bool = True
    conllu: str | None = None
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_SEQ)
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)
    checkpoints: list[str] = Field(default_factory=list, max_length=MAX_LIST)

    @field_validator("shots")
    @classmethod
    def _nonneg(cls, v):
        if any(s < 0 for s in v):
            raise ValueError(f"shot counts must be >= 0; got {v}")
        return v


class PatchingSettings(Frozen):
    """Task-vector patching on a pretrained LM.

    Parameters
    ----------
    enabled : bool, default True
    layers : list of int or None, default None
        Layers patched; None is the layer of highest TD at ``main_shots``, per family.
    mode : {"replace", "add"}, default "replace"
        Replace the query state (Hendel et al.) or add the vector (Todd et al.).
    where : {"arrows", "query"}, default "arrows"
        Average over every ``->`` of the demonstration prompts, or the last one only.
    demo_prompts : int, default 20
        Demonstration prompts (``main_shots`` shots) per task for each task vector.
    query_prompts : int, default 50
        Query prompts per task.
    query_shots : int, default 0
        Shots of the query prompts (0: zero-shot, as in Hendel et al.).
    n_seeds : int, default 3
        Repetitions with fresh prompts; error bars are their standard deviation.
    """

    enabled: bool = True
    layers: list[Annotated[int, Field(ge=0, le=MAX_LAYERS)]] | None = Field(None, max_length=MAX_LAYERS)
    mode: Literal["replace", "add"] = "replace"
    where: Literal["arrows", "query"] = "arrows"
    demo_prompts: int = Field(20, ge=1, le=MAX_PROMPTS)
    query_prompts: int = Field(50, ge=1, le=MAX_PROMPTS)
    query_shots: int = Field(0, ge=0, le=MAX_ITEMS)
    n_seeds: int = Field(3, ge=1, le=MAX_ITEMS)


class TaskVectorsConfig(Frozen):
    """Config of the task-vectors study (presets in ``iclab/configs/task-vectors/``).

    Every size is capped (prompts and walks at most 10^6, batches 65,536, sequence lengths
    2^20, layers 256; :mod:`iclab.limits`) and every float is finite, so a typo is refused
    before anything is allocated.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: SparseLinearMixture = SparseLinearMixture()
    model: ModelSpec = ModelSpec(family="gpt2", n_layers=12, d_model=256, n_heads=8, max_len=64)
    train: TrainConfig = TrainConfig(steps=80_000, batch_size=128, lr=1e-4, betas=(0.9, 0.9999), warmup=0,
                                     min_lr_ratio=1.0, weight_decay=0.0, eval_every=1000, ckpt_every=5000)
    log: LogConfig = LogConfig()
    probe: SyntheticSettings = SyntheticSettings()
    natural: NaturalSettings = NaturalSettings()
    patching: PatchingSettings = PatchingSettings()
    finetune: FinetuneSettings = FinetuneSettings()

    @model_validator(mode="after")
    def _fits(self):
        if 2 * self.world.points > self.model.max_len:
            raise ValueError(f"model.max_len ({self.model.max_len}) must be >= 2 * world.points "
                             f"({2 * self.world.points}): each example is two tokens")
        if self.probe.repr_layer is not None and self.probe.repr_layer >= self.model.n_layers:
            raise ValueError(f"probe.repr_layer ({self.probe.repr_layer}) must be < model.n_layers "
                             f"({self.model.n_layers})")
        return self

    def repr_layer(self) -> int:
        """Layer of the PCA/UMAP panels: ``probe.repr_layer``, else ``(n_layers - 1) // 2``."""
        return self.probe.repr_layer if self.probe.repr_layer is not None else (self.model.n_layers - 1) // 2


#: how the report names each ``probe.td_position`` / ``probe.repr_position``
TOKEN_NAMES = {"last_x": "the last x", "last_y": "the last y"}


def read_position(world: SparseLinearMixture, position: str) -> int:
    """Sequence position of the TD feature: the last ``y`` (``2K - 1``) or the last ``x`` (``2K - 2``)
    (each example ``(x_i, y_i)`` is two tokens, :class:`~iclab.models.vector.VectorModel`)."""
    last = world.points - 1
    return int(y_position(last) if position == "last_y" else x_position(last))


def footprint(cfg: TaskVectorsConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of the synthetic part (a vector model: no vocabulary, a read-in of ``dim`` inputs;
    TD keeps every prompt's hidden states), or the weights of a pretrained model."""
    device = run_device(cfg.train.device)
    if model_name:
        if cfg.finetune.enabled and device == "cpu" and cfg.model.dtype in ("bfloat16", "float16"):
            # the tuned layers train in float32 between half-precision ones: without a GPU's autocast
            # their matrix products meet mixed dtypes
            raise ConfigError(f"model.dtype = {cfg.model.dtype!r} with finetune.enabled = true needs a GPU; "
                              f"on the CPU allowed: auto, float32")
        return pretrained_footprint(model_name, device, cfg.model)
    seq, d, layers = 2 * cfg.world.points, cfg.model.d_model, cfg.model.n_layers
    prompts = cfg.world.n_bases * max(cfg.probe.n_per_basis, cfg.probe.eval_per_basis)
    return training_footprint(cfg.model, 1, seq, cfg.train.batch_size,
                              probe_batch=min(cfg.probe.batch_size, prompts), probe_seq=seq,
                              stored_floats=prompts * 2 * d * layers, extra_params=(cfg.world.dim + 2) * d,
                              device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.points", "model.d_model", "model.n_layers",
                                     "probe.batch_size", "probe.n_per_basis"))
