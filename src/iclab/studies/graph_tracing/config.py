"""Config of the graph-tracing study (presets in ``iclab/configs/graph-tracing/``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_LAYERS, MAX_PROMPTS, MAX_SEED, MAX_SEQ
from iclab.models.build import ModelSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.models.names import StreamSite
from iclab.probes.graph_tracing import GraphTracing
from iclab.worlds.graph import GraphWorld
from iclab.worlds.graph_pretrain import RandomGraphWalks


class ProbeSettings(Frozen):
    """How the graph is traced (see :class:`iclab.probes.graph_tracing.GraphTracing`).

    Parameters
    ----------
    n_walks : int, default 32
        Walks of the new graph traced by a model trained here (``graph.walk_length`` tokens).
    n_contexts : int, default 14
        Log-spaced context lengths from ``min_context`` to the walk length.
    min_context : int, default 1
    window : int or None, default 200
        Trailing window of the node means (tokens); None: the whole context.
    accuracy_window : float, default 0.5
        Accuracy at c averages predictions with context lengths in (c (1 - w), c].
    site : {"resid_post", "resid_pre", "resid_mid", "attn_out", "mlp_out"}, default "resid_post"
    layers : list of int, optional
        Default: every layer.
    pool : {"walk", "batch"}, default "walk"
        "walk": node means within each walk, metrics averaged over walks (each context is
        one walk); "batch": node means pooled over the walks.
    min_present : float, default 0.75
        Share of the nodes a window must contain for its energies to count.
    figure_layer : int, optional
        Layer of the PCA panels and the energy–accuracy plot; default the layer with the
        lowest top-2-PC energy at the longest context.
    panels : int, default 4
        Context lengths shown in the PCA panels.
    batch_size : int, default 16
        Walks per forward pass.
    train_walks : int, default 16
        Walks traced at each probe step during pretraining (0: none).
    """

    n_walks: int = Field(32, ge=1, le=MAX_PROMPTS)
    n_contexts: int = Field(14, ge=2, le=MAX_ITEMS)
    min_context: int = Field(1, ge=1, le=MAX_SEQ)
    window: int | None = Field(200, ge=1, le=MAX_SEQ)
    accuracy_window: float = Field(0.5, gt=0, le=1)
    site: StreamSite = "resid_post"
    layers: list[Annotated[int, Field(ge=0, le=MAX_LAYERS)]] | None = Field(None, min_length=1, max_length=MAX_LAYERS)
    pool: Literal["walk", "batch"] = "walk"
    min_present: float = Field(0.75, ge=0, le=1)
    figure_layer: int | None = Field(None, ge=0, le=MAX_LAYERS)
    panels: int = Field(4, ge=1, le=8)
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)
    train_walks: int = Field(16, ge=0, le=MAX_PROMPTS)

    def probe(self, **changes) -> GraphTracing:
        params = dict(n_contexts=self.n_contexts, min_context=self.min_context, window=self.window,
                      accuracy_window=self.accuracy_window, site=self.site, layers=self.layers, pool=self.pool,
                      min_present=self.min_present, batch_size=self.batch_size)
        return GraphTracing(**{**params, **changes})


class PretrainedSettings(Frozen):
    """Settings used only with ``--model`` (a pretrained LM and its tokenizer).

    Parameters
    ----------
    walk_length : int, default 256
        Words per walk (one token each; a word of several tokens is read at its last).
    n_walks : int, default 8
    batch_size : int, default 2
        Walks per forward pass (logits are batch × pos × vocab).
    bos : bool, default True
        Start each walk with the tokenizer's BOS token, when it has one.
    prefix : str, default " "
        Written before each word: a walk is " apple bird car ...".
    conflict : list of {"days", "months"}, default ["days"]
        Semantic-conflict variants: those words on a scrambled ring.
    figure_layer : int, optional
        Layer of the PCA panels and the summary; default the layer with the lowest top-2-PC
        energy at the longest context (``probe.figure_layer`` is the trained model's).
    """

    walk_length: int = Field(256, ge=2, le=MAX_SEQ)
    n_walks: int = Field(8, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(2, ge=1, le=MAX_BATCH)
    bos: bool = True
    prefix: str = " "
    conflict: list[Literal["days", "months"]] = Field(default_factory=lambda: ["days"], max_length=2)
    figure_layer: int | None = Field(None, ge=0, le=MAX_LAYERS)


class GraphTracingConfig(Frozen):
    """Config of the graph-tracing study (presets in ``iclab/configs/graph-tracing/``).

    ``graph`` is the new labelled graph that is traced (its ``vocab`` must be the
    pretraining vocabulary; its ``walk_length`` is the longest context traced for a model
    trained here); ``pretrain``, ``model`` and ``train`` make the model trained here;
    ``pretrained`` is used with ``--model`` instead; ``sweep`` is the grid of ``iclab sweep``
    (config key → values), as in the ``finding1`` preset.

    Every size is capped (prompts and walks at most 10^6, batches 65,536, sequence lengths
    2^20, layers 256; :mod:`iclab.limits`) and every float is finite, so a typo is refused
    before anything is allocated.
    """

    seed: int = Field(0, ge=0, le=MAX_SEED)
    graph: GraphWorld = GraphWorld(seed=1)
    pretrain: RandomGraphWalks = RandomGraphWalks()
    model: ModelSpec = ModelSpec(n_layers=2, d_model=128, n_heads=4, max_len=1024)
    train: TrainConfig = TrainConfig(steps=1000, lr=3e-3, warmup=50)
    log: LogConfig = LogConfig()
    probe: ProbeSettings = ProbeSettings()
    pretrained: PretrainedSettings = PretrainedSettings()
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        if self.graph.vocab != self.pretrain.vocab:
            raise ValueError(f"graph.vocab ({self.graph.vocab}) must equal pretrain.vocab ({self.pretrain.vocab}): "
                             "the new graph is labelled with tokens of the pretraining vocabulary")
        if self.graph.walk_length > self.model.max_len:
            raise ValueError(f"graph.walk_length ({self.graph.walk_length}) must be <= model.max_len "
                             f"({self.model.max_len})")
        layers, figure_layer = self.probe.layers, self.probe.figure_layer
        if figure_layer is not None and layers is not None and figure_layer not in layers:
            raise ValueError(f"probe.figure_layer ({self.probe.figure_layer}) must be one of probe.layers "
                             f"{self.probe.layers}")
        return self


def footprint(cfg: GraphTracingConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of pretraining and of tracing the graph (every walk's hidden states are kept)."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device, cfg.model)
    walk = cfg.graph.walk_length
    stored = cfg.probe.n_walks * walk * cfg.model.d_model * cfg.model.n_layers
    return training_footprint(cfg.model, cfg.pretrain.vocab_size, cfg.pretrain.seq_len, cfg.train.batch_size,
                              probe_batch=min(cfg.probe.batch_size, cfg.probe.n_walks), probe_seq=walk,
                              stored_floats=stored, device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "pretrain.seq_len", "graph.walk_length", "model.d_model",
                                     "model.n_layers", "probe.n_walks", "probe.batch_size"))
