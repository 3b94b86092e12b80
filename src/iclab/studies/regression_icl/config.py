"""Config of the regression-icl study (presets in ``iclab/configs/regression-icl/``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from iclab.baselines import baseline_class, baseline_names
from iclab.config import Frozen, LogConfig, TrainConfig
from iclab.limits import MAX_BATCH, MAX_ITEMS, MAX_MLP, MAX_PROMPTS, MAX_SEED, MAX_SEQ, MAX_STEPS
from iclab.models.build import ModelSpec
from iclab.models.memory import Footprint, pretrained_footprint, run_device, training_footprint
from iclab.worlds.regression import (Curriculum, DecisionTree, LinearRegression, RegressionWorld, ReluNet,
                                     SparseLinearRegression)

Kind = Literal["linear", "sparse-linear", "noisy-linear", "decision-tree", "relu-net"]
Shift = Literal["scaled-x", "skewed", "orthant", "opposite-orthant", "noisy-y", "subspace"]

#: label noise of ``noisy-linear`` when ``world.noise_std`` is not set: σ² = 0.25, which for d = 5 is
#: Garg et al.'s signal-to-noise ratio (their noisy task: noise variance 1 against E[y²] = d = 20)
NOISY_DEFAULT_STD = 0.5


class FunctionClass(Frozen):
    """The function class of the prompts: one study, the class a config value.

    ``x ~ N(0, I_d)`` in every class; ``y = f(x) + ε``, ``ε ~ N(0, σ²)``:

    - ``linear``: ``f(x) = wᵀx``, ``w ~ N(0, I_d)`` (Garg et al.: no 1/sqrt(d) scaling, E[y²] = d);
    - ``sparse-linear``: as linear with ``w`` zero outside ``sparsity`` random coordinates;
    - ``noisy-linear``: linear with label noise ``σ = noise_std`` (default 0.5);
    - ``decision-tree``: a random depth-``depth`` tree on the signs of x, leaves ``N(0, 1)``;
    - ``relu-net``: ``f(x) = sqrt(2/hidden) Σ_j a_j relu(w_jᵀx)``, ``a, w ~ N(0, 1)``.

    Parameters
    ----------
    kind : str, default "linear"
    dim : int, default 20
        ``d``.
    points : int, default 41
        Examples per prompt (Garg et al.: 2d + 1 for the linear classes, 101 for trees and nets).
    noise_std : float or None, default None
        σ; None is 0, or 0.5 for ``noisy-linear``, which needs σ > 0.
    sparsity : int, default 3
        Non-zero coordinates of ``w`` (``sparse-linear`` only).
    depth : int, default 4
        Tree depth (``decision-tree`` only).
    hidden : int, default 100
        Hidden units of the target nets (``relu-net`` only).
    curriculum : Curriculum or None, default None
        Training-time ramps of the number of points and of the active input dimensions
        (Garg et al.'s curriculum). With a dims ramp, inactive coordinates of x are 0; unlike
        Garg et al., a sparse ``w`` keeps its support over all d coordinates.
    """

    kind: Kind = "linear"
    dim: int = Field(20, ge=1, le=MAX_ITEMS)
    points: int = Field(41, ge=2, le=MAX_SEQ)
    noise_std: float | None = Field(None, ge=0.0)
    sparsity: int = Field(3, ge=1, le=MAX_ITEMS)
    depth: int = Field(4, ge=1, le=16)
    hidden: int = Field(100, ge=1, le=MAX_MLP)
    curriculum: Curriculum | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "noisy-linear" and self.noise_std == 0:
            raise ValueError("noisy-linear needs noise_std > 0 (kind linear is the noiseless class)")
        if self.kind == "sparse-linear" and self.sparsity > self.dim:
            raise ValueError(f"sparsity ({self.sparsity}) must be <= dim ({self.dim})")
        self.build()  # the world's own checks (curriculum ramps it cannot take)
        return self

    @property
    def sigma(self) -> float:
        """The label noise σ in use."""
        if self.noise_std is not None:
            return self.noise_std
        return NOISY_DEFAULT_STD if self.kind == "noisy-linear" else 0.0

    @property
    def signal(self) -> float:
        """``E[f(x)²]``: ``d`` for the dense linear classes and ReLU nets, ``sparsity`` for sparse
        ``w``, 1 for trees. Errors are divided by it (Garg et al.'s normalisation), so predicting 0
        scores 1 (plus σ² / signal)."""
        return {"sparse-linear": float(self.sparsity), "decision-tree": 1.0}.get(self.kind, float(self.dim))

    def build(self) -> RegressionWorld:
        """The world this section describes."""
        common: dict[str, Any] = dict(dim=self.dim, points=self.points, noise_std=self.sigma,
                                      curriculum=self.curriculum)
        if self.kind in ("linear", "noisy-linear"):
            return LinearRegression(**common)
        if self.kind == "sparse-linear":
            return SparseLinearRegression(sparsity=self.sparsity, **common)
        if self.kind == "decision-tree":
            return DecisionTree(depth=self.depth, **common)
        return ReluNet(hidden=self.hidden, **common)


class BaselineEntry(Frozen):
    """One baseline of the comparison: a registered baseline, its parameters, and its short name.

    Parameters
    ----------
    baseline : str
        A name from :func:`iclab.baselines.baseline_names`.
    label : str or None, default None
        Short name in rows (``model``), tables and legends; None is ``baseline``.
    params : dict, default {}
        The baseline's parameters, validated by its class.
    """

    baseline: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("baseline")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in baseline_names():
            raise ValueError(f"unknown baseline; known: {', '.join(baseline_names())}")
        return v

    @model_validator(mode="after")
    def _params(self):
        self.make()
        return self

    @property
    def name(self) -> str:
        return self.label or self.baseline

    def make(self):
        """The baseline object, with ``name`` set to this entry's label."""
        return baseline_class(self.baseline)(**self.params)


class GDSettings(Frozen):
    """Gradient descent on the prompt, from 0 on ``(1/2i)||Xw - y||²``: the ``gd`` baseline of the
    linear classes and the GD iterate the linear probe looks for.

    Parameters
    ----------
    steps : int, default 100
        Steps ``T`` (one step with lr 1 is the averaging estimator).
    lr : float, default 0.05
        Step size; GD is stable while ``lr < 2 / λ_max(XᵀX / i)``. For ``x ~ N(0, I_d)``,
        ``λ_max ≈ (1 + sqrt(d / i))²``, and ``||x||²`` (about ``d``) for ``i = 1``: 0.05 suits
        ``d <= 10``, Garg et al.'s ``d = 20`` wants about 0.02.
    """

    steps: int = Field(100, ge=1, le=MAX_STEPS)
    lr: float = Field(0.05, gt=0.0)


class EvalSettings(Frozen):
    """The error curves: squared error against the number of in-context examples.

    Parameters
    ----------
    n_prompts : int, default 512
        Prompts evaluated by the model and every baseline (Garg et al.: 1280).
    baselines : list of BaselineEntry or None, default None
        None takes the class's baselines (:func:`default_baselines`).
    bootstrap : int, default 1000
        Resamples of the prompts for the bands.
    level : float, default 0.9
        Coverage of the bands (Garg et al.: the 5% and 95% bootstrap quantiles).
    eval_every_prompts : int, default 256
        Prompts of the model's error at every probe step during training.
    batch_size : int, default 256
    """

    n_prompts: int = Field(512, ge=4, le=MAX_PROMPTS)
    baselines: list[BaselineEntry] | None = Field(None, max_length=100)
    bootstrap: int = Field(1000, ge=10, le=MAX_PROMPTS)
    level: float = Field(0.9, gt=0.0, lt=1.0)
    eval_every_prompts: int = Field(256, ge=4, le=MAX_PROMPTS)
    batch_size: int = Field(256, ge=1, le=MAX_BATCH)

    @field_validator("baselines")
    @classmethod
    def _unique(cls, v):
        if v is not None:
            names = [e.name for e in v]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"baseline labels must be unique; repeated: {dup} (set label)")
            if "transformer" in names or "zero" in names:
                raise ValueError("the labels 'transformer' and 'zero' are taken")
        return v


class ShiftSettings(Frozen):
    """Distribution shifts at evaluation (Garg et al. section 4), trained model against least squares.

    Parameters
    ----------
    kinds : list of str, default every shift
        ``scaled-x`` (x multiplied by ``scale``), ``skewed`` (x ~ N(0, Σ), eigenvalues ∝ 1/(i+1)²,
        trace d), ``orthant`` (the prompt's x in one orthant, the query anywhere: Garg et al.'s random
        quadrants), ``opposite-orthant`` (the query in the opposite orthant), ``noisy-y`` (label noise
        ``noise_std``), ``subspace`` (the query orthogonal to the span of the examples before it, at its
        own norm; defined for fewer examples than d).
    scale : float, default 2.0
    noise_std : float, default 1.0
        Label noise of ``noisy-y`` (replacing the class's own).
    n_prompts : int, default 256
    """

    kinds: list[Shift] = Field(default_factory=lambda: ["scaled-x", "skewed", "orthant", "opposite-orthant",
                                                          "noisy-y", "subspace"])
    scale: float = Field(2.0, gt=0.0)
    noise_std: float = Field(1.0, ge=0.0)
    n_prompts: int = Field(256, ge=4, le=MAX_PROMPTS)


class ProbeSettings(Frozen):
    """The linear probe for the least-squares weight vector and the GD iterate (Akyürek et al.).

    At the x token of point ``i`` (which predicts ``y_i`` from ``i`` examples), for ``i`` from
    ``min_examples`` to the last point, targets fitted to the ``i`` examples: ``w_ols`` (minimum-norm
    least squares), ``w_ridge`` (α = σ², with label noise only), ``w_gd`` (``gd.steps`` steps of GD),
    ``w_avg`` (one step with lr 1, the averaging estimate ``Xᵀy / i``), ``w`` (the true weights), and the
    ``query`` x as a control. Read at the query's x token and at the y token of the last example.
    With label noise, ``w_ols`` has heavy tails for ``i`` near ``d`` (its error is unbounded at
    ``i = d``), which makes its R² an average dominated by a few prompts; start at ``i >= d + 2``
    there.

    Parameters
    ----------
    enabled : bool, default True
        The probe runs for the classes with a weight vector (linear, noisy-linear, sparse-linear)
        only.
    n_prompts : int, default 256
    min_examples : int, default 1
    alpha : float, default 0.01
    test_fraction : float, default 0.25
    """

    enabled: bool = True
    n_prompts: int = Field(256, ge=8, le=MAX_PROMPTS)
    min_examples: int = Field(1, ge=1, le=MAX_SEQ)
    alpha: float = Field(0.01, ge=0.0)
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)


class RegressionICLConfig(Frozen):
    """Config of the regression-icl study (presets in ``iclab/configs/regression-icl/``)."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: FunctionClass = FunctionClass()
    model: ModelSpec = ModelSpec(family="gpt2", n_layers=12, d_model=256, n_heads=8, max_len=82)
    train: TrainConfig = TrainConfig(steps=500_000, batch_size=64, lr=1e-4, warmup=0, min_lr_ratio=1.0,
                                     weight_decay=0.0, grad_clip=0.0, eval_every=10_000, ckpt_every=10_000)
    log: LogConfig = LogConfig()
    gd: GDSettings = GDSettings()
    eval: EvalSettings = EvalSettings()
    shifts: ShiftSettings = ShiftSettings()
    probe: ProbeSettings = ProbeSettings()

    @model_validator(mode="after")
    def _fits(self):
        if self.model.device_map is not None or self.model.dtype != "auto":
            raise ValueError(f"model.device_map = {self.model.device_map!r}, model.dtype = {self.model.dtype!r}: "
                             "these load a pretrained HF causal LM; regression-icl's models are vector models "
                             "(allowed: device_map null, dtype auto)")
        if 2 * self.world.points > self.model.max_len:
            raise ValueError(f"model.max_len ({self.model.max_len}) must be >= 2 * world.points "
                             f"({2 * self.world.points}): each example is two tokens")
        if self.probe.min_examples >= self.world.points:
            raise ValueError(f"probe.min_examples ({self.probe.min_examples}) must be < world.points "
                             f"({self.world.points})")
        return self

    def baselines(self) -> list[BaselineEntry]:
        """``eval.baselines``, or the class's defaults."""
        return self.eval.baselines if self.eval.baselines is not None else default_baselines(self.world, self.gd)


def default_baselines(world: FunctionClass, gd: GDSettings) -> list[BaselineEntry]:
    """The baselines that fit each class (Garg et al.'s ``get_relevant_baselines``, plus ridge, GD and
    greedy trees where the spec asks for them):

    - every class: least squares, averaging (= one GD step with lr 1), 3-nearest neighbours;
    - linear classes: ``gd.steps`` steps of GD on the prompt; with label noise, ridge with
      ``α = σ²`` (the posterior mean for ``w ~ N(0, I)``, Bayes-optimal);
    - sparse-linear: Lasso (α = 0.01, fitted to convergence);
    - decision-tree: greedy trees of depth 4 and unrestricted depth, gradient-boosted trees;
    - relu-net: a 2-layer ReLU net (hidden 100) fitted by 100 Adam steps (lr 5e-3).
    """
    out = [BaselineEntry(baseline="least-squares"), BaselineEntry(baseline="averaging"),
           BaselineEntry(baseline="knn", label="3-nn", params={"k": 3})]
    if world.kind in ("linear", "noisy-linear", "sparse-linear"):
        out.append(BaselineEntry(baseline="gd", label=f"gd-{gd.steps}", params={"steps": gd.steps, "lr": gd.lr}))
        if world.sigma > 0:
            out.append(BaselineEntry(baseline="ridge", params={"alpha": world.sigma**2}))
    if world.kind == "sparse-linear":
        out.append(BaselineEntry(baseline="lasso", params={"alpha": 0.01}))
    if world.kind == "decision-tree":
        out += [BaselineEntry(baseline="decision-tree", label="tree-4", params={"max_depth": 4}),
                BaselineEntry(baseline="decision-tree", label="tree"),
                BaselineEntry(baseline="boosted-trees", label="boosting")]
    if world.kind == "relu-net":
        out.append(BaselineEntry(baseline="nn-gd"))
    return out


def footprint(cfg: RegressionICLConfig, model_name: str | None = None) -> Footprint | None:
    """Memory of training the regression transformer (a vector model: a vocabulary of 1, a read-in of
    ``dim`` inputs, prompts of ``2 * points`` tokens) and of its evaluation, where the linear probe
    keeps every layer's state at each probed position of every probe prompt; or the weights of a
    saved model (see :mod:`iclab.models.memory`)."""
    device = run_device(cfg.train.device)
    if model_name:
        return pretrained_footprint(model_name, device)
    seq, d, layers, dim = 2 * cfg.world.points, cfg.model.d_model, cfg.model.n_layers, cfg.world.dim
    probed = cfg.probe.n_prompts * (cfg.world.points - cfg.probe.min_examples) if cfg.probe.enabled else 0
    return training_footprint(cfg.model, 1, seq, cfg.train.batch_size, probe_batch=cfg.eval.batch_size,
                              probe_seq=seq, stored_floats=probed * (layers * d + 6 * dim),
                              extra_params=(dim + 2) * d, device=device, precision=cfg.train.precision,
                              knobs=("train.batch_size", "world.points", "model.d_model", "model.n_layers",
                                     "eval.batch_size", "probe.n_prompts"))
