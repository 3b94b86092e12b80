"""In-context regression worlds: a function class, an input distribution, and noise.

Each prompt draws a fresh function ``f`` from a class and ``points`` inputs from an input
distribution, and shows ``(x_1, y_1, ..., x_n, y_n)`` with

    y_i = f(x_i) + ε_i,    ε_i ~ N(0, noise_std²) i.i.d.

A model predicts ``y_i`` from ``x_1..x_i`` and ``y_1..y_{i-1}`` (Garg, Tsipras, Liang and
Valiant 2022, "What Can Transformers Learn In-Context? A Case Study of Simple Function
Classes"; spec ``mechanisms.md``, regression-icl). As in that paper the two axes are
separate: :class:`XSampler` is the input distribution (isotropic by default; scaled, skewed
and orthant inputs are distribution shifts set as its parameters, not new worlds), and each
function class is one :class:`RegressionWorld` subclass:

================================  =========================================================
``linear``                        ``f(x) = wᵀx``, ``w ~ N(0, I_d)``
``sparse-linear``                 as linear, ``w`` zero outside ``s`` random coordinates
``sparse-linear-mixture``         ``w`` zero outside one of a few fixed supports (Han et al.)
``decision-tree``                 a random depth-``depth`` tree that splits on signs of x
``relu-net``                      ``f(x) = sqrt(2/h) Σ_j a_j relu(w_jᵀx)``
================================  =========================================================

Noisy linear regression is ``linear`` with ``noise_std > 0`` (also the "noisy y" shift).
Every batch is a :class:`~iclab.worlds.base.VectorBatch` whose ``info`` holds the drawn
function; :meth:`RegressionWorld.evaluate` gives its noiseless value ``f(x)`` on any input.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ, MAX_STEPS
from iclab.worlds.base import VectorBatch, World


class XSampler(BaseModel):
    """The input distribution of a regression world; distribution shifts are its parameters.

    ``kind`` picks the shape of ``z``, then ``x = scale · z`` with coordinates at and
    above ``active_dims`` set to zero:

    - ``"isotropic"``: ``z ~ N(0, I_d)``.
    - ``"skewed"``: ``z ~ N(0, Σ)`` with ``Σ = c · U diag(λ) Uᵀ``, ``λ_i = (i+1)^-2``,
      ``c`` making ``trace Σ = d`` and ``U`` a uniform random rotation drawn from
      ``seed`` (so the covariance is fixed for the world, not redrawn per batch). This is
      Garg et al.'s skewed covariance (their transform ``U diag(1/(i+1)) Uᵀ``, normalised).
    - ``"orthant"``: each prompt draws a sign vector ``s ∈ {±1}^d`` uniformly and uses
      ``z_i = |g_i| ⊙ s`` with ``g_i ~ N(0, I_d)``, so all its points share one orthant.
      ``orthant_query`` moves the *last* point: ``"same"`` keeps it there,
      ``"opposite"`` uses ``-|g| ⊙ s`` (Garg et al.'s opposite quadrants), ``"any"`` draws
      it from ``N(0, I_d)`` (their random quadrants).

    Garg et al. 2022, section 4 (distribution shifts) and their curriculum, which trains
    on the first ``active_dims`` coordinates only; spec ``mechanisms.md``, regression-icl.

    Parameters
    ----------
    kind : {"isotropic", "skewed", "orthant"}, default "isotropic"
    scale : float, default 1.0
        Multiplies every input (Garg et al.'s scaled-x shift).
    orthant_query : {"same", "opposite", "any"}, default "same"
        Where the last point of an ``"orthant"`` prompt lies; ignored for other kinds.
    active_dims : int or None, default None
        Coordinates ``>= active_dims`` are zero; None keeps all ``d``.
    seed : int, default 0
        Seed of the rotation ``U`` of ``"skewed"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["isotropic", "skewed", "orthant"] = "isotropic"
    scale: float = Field(1.0, gt=0.0)
    orthant_query: Literal["same", "opposite", "any"] = "same"
    active_dims: int | None = Field(None, ge=1, le=MAX_ITEMS)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    def covariance_root(self, dim: int) -> np.ndarray:
        """``T`` of shape (dim, dim) with ``z = g @ T``, ``g ~ N(0, I)``, for ``"skewed"``.

        ``Tᵀ T = Σ``; ``T`` is symmetric (``U diag(sqrt(c λ)) Uᵀ``).
        """
        g = np.random.default_rng(self.seed).standard_normal((dim, dim))
        q, r = np.linalg.qr(g)
        u = q * np.sign(np.diag(r))  # sign fix makes q Haar-uniform
        lam = 1.0 / np.arange(1, dim + 1) ** 2
        lam *= dim / lam.sum()  # trace Σ = d, the trace of the isotropic case
        return (u * np.sqrt(lam)) @ u.T

    def sample(self, rng: np.random.Generator, n: int, points: int, dim: int) -> np.ndarray:
        """Inputs of ``n`` prompts, an array of shape (n, points, dim), float64."""
        z = rng.standard_normal((n, points, dim))  # (batch, points, dim)
        if self.kind == "skewed":
            z = z @ self.covariance_root(dim)
        elif self.kind == "orthant":
            signs = np.where(rng.random((n, 1, dim)) < 0.5, -1.0, 1.0)  # (batch, 1, dim)
            last = z[:, -1].copy()
            z = np.abs(z) * signs
            if self.orthant_query == "opposite":
                z[:, -1] = -z[:, -1]
            elif self.orthant_query == "any":
                z[:, -1] = last
        if self.active_dims is not None:
            z[..., self.active_dims:] = 0.0
        return self.scale * z


class Ramp(BaseModel):
    """A value that grows during training: ``min(end, start + inc · (step // every))``.

    ``end`` is the world's own setting (its ``points``, its ``dim``, its bases' rank), so a
    ramp never goes past the world it trains for. Garg et al. 2022's curriculum (their
    ``start``, ``inc``, ``interval``; ``end`` there is the final value).

    Parameters
    ----------
    start : int
        Value at step 0; >= 1.
    inc : int, default 1
        Added every ``every`` steps; >= 0.
    every : int, default 2000
        Steps per increment; >= 1.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    start: int = Field(ge=1, le=MAX_STEPS)
    inc: int = Field(1, ge=0, le=MAX_STEPS)
    every: int = Field(2000, ge=1, le=MAX_STEPS)

    def at(self, step: int, end: int) -> int:
        return min(end, self.start + self.inc * (step // self.every))

    def first_step(self, value: int) -> int | None:
        """First step at which the ramp (uncapped) is at least ``value``; None if never."""
        if value <= self.start:
            return 0
        if self.inc == 0:
            return None
        return self.every * -(-(value - self.start) // self.inc)


class Curriculum(BaseModel):
    """What ramps up during training (each optional; None keeps the world's value throughout).

    Parameters
    ----------
    points : Ramp or None
        In-context examples per prompt (shorter prompts first).
    dims : Ramp or None
        Active input coordinates (``x.active_dims``): Garg et al.'s dimension curriculum.
    rank : Ramp or None
        Active coordinates of each basis of a :class:`SparseLinearMixture` (its
        ``active_rank``); other worlds refuse it.
    bases : Ramp or None
        Bases in a :class:`SparseLinearMixture`'s training mixture (its ``active_bases``:
        the first n), so latent tasks are introduced one after another; other worlds refuse it.
    rank_per_basis : bool, default False
        With both ``rank`` and ``bases``: the rank ramp starts again for each basis at the
        step it enters the mixture (its ``active_rank`` becomes one rank per basis), so a
        basis added late starts small too instead of at the rank the others have reached.

    The batch of step ``s`` comes from ``world.at_step(s)``, a pure function of ``s``, so a
    resumed run sees the same curriculum. Evaluations use the world itself (full size).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    points: Ramp | None = None
    dims: Ramp | None = None
    rank: Ramp | None = None
    bases: Ramp | None = None
    rank_per_basis: bool = False

    @model_validator(mode="after")
    def _check_rank_per_basis(self):
        if self.rank_per_basis and (self.rank is None or self.bases is None):
            raise ValueError("curriculum.rank_per_basis needs both curriculum.rank and curriculum.bases")
        return self


class RegressionWorld(World):
    """Base of the regression worlds: ``y_i = f(x_i) + ε_i``, ``ε_i ~ N(0, noise_std²)``.

    Subclasses provide ``dim`` (a field or a property), :meth:`draw_functions` (the
    per-prompt ``info``) and :meth:`evaluate` (``f`` on inputs). Garg et al. 2022; spec
    ``mechanisms.md``, regression-icl.

    Parameters
    ----------
    points : int
        In-context examples per prompt.
    noise_std : float, default 0.0
        Standard deviation of the label noise.
    x : XSampler, default isotropic
        The input distribution.
    curriculum : Curriculum or None, default None
        Training-time ramps of points, input dims (or a mixture's rank and bases); see
        :meth:`at_step`.

    A batch is a :class:`VectorBatch` with ``xs`` (batch, points, dim) and ``ys``
    (batch, points), both float32. ``ys`` is computed in float64 from the float32 ``xs``
    and the float32 function parameters in ``info``, so ``evaluate(xs, info)`` reproduces
    its noiseless part up to the final rounding to float32.
    """

    points: int = Field(41, ge=1, le=MAX_SEQ)
    noise_std: float = Field(0.0, ge=0.0)
    x: XSampler = XSampler()
    curriculum: Curriculum | None = None

    # Subclasses provide ``dim`` (input dimension d), as a field or a derived property.

    @property
    def vocab_size(self) -> int:
        return 0

    @model_validator(mode="after")
    def _check_active_dims(self):
        if self.x.active_dims is not None and self.x.active_dims > self.dim:
            raise ValueError(f"x.active_dims ({self.x.active_dims}) must be <= dim ({self.dim})")
        for key, field in (("rank", "active_rank"), ("bases", "active_bases")):
            ramps = self.curriculum is not None and getattr(self.curriculum, key) is not None
            if ramps and field not in type(self).model_fields:
                raise ValueError(f"curriculum.{key} ramps the bases of sparse-linear-mixture; {self.name} has none")
        return self

    def at_step(self, step: int) -> "RegressionWorld":
        """The world training samples from at ``step``: the curriculum's values at that step
        (the world itself when it has no curriculum)."""
        c = self.curriculum
        if c is None:
            return self
        update: dict = {"curriculum": None}
        if c.points is not None:
            update["points"] = c.points.at(step, self.points)
        if c.dims is not None:
            update["x"] = self.x.model_copy(update={"active_dims": c.dims.at(step, self.x.active_dims or self.dim)})
        return self.model_copy(update=update)

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Parameters of ``n`` functions, each array with leading axis ``batch``."""
        raise NotImplementedError(f"{type(self).__name__} does not define draw_functions()")

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        """Noiseless ``f_b(xs[b, i])`` of shape (batch, points) for the functions in ``info``."""
        raise NotImplementedError(f"{type(self).__name__} does not define evaluate()")

    def sample(self, rng: np.random.Generator, n: int) -> VectorBatch:
        info = self.draw_functions(rng, n)
        return self._batch(rng, n, info)

    def _inputs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Inputs of ``n`` prompts, (batch, points, dim) float64, from the input distribution."""
        return self.x.sample(rng, n, self.points, self.dim)

    def _batch(self, rng: np.random.Generator, n: int, info: dict[str, np.ndarray]) -> VectorBatch:
        xs = self._inputs(rng, n).astype(np.float32)  # (batch, points, dim)
        ys = self.evaluate(xs.astype(np.float64), info)  # (batch, points)
        if self.noise_std > 0:
            ys = ys + self.noise_std * rng.standard_normal(ys.shape)
        return VectorBatch(xs, ys.astype(np.float32), info)


def _linear(xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``xs @ w`` per prompt: (batch, points, dim), (batch, dim) -> (batch, points)."""
    return np.einsum("bpd,bd->bp", xs, w.astype(np.float64))


class LinearRegression(RegressionWorld):
    """Linear functions ``f(x) = wᵀx`` with ``w ~ N(0, I_d)`` drawn per prompt.

    Garg et al. 2022, section 3; spec ``mechanisms.md``, regression-icl. With
    ``noise_std > 0`` this is noisy linear regression.

    Parameters
    ----------
    dim : int, default 20
    points : int, default 41
        Garg et al. use ``2d + 1``.
    noise_std : float, default 0.0
    x : XSampler, default isotropic

    ``info``: ``"w"`` of shape (batch, dim), float32.
    """

    name: ClassVar[str] = "linear"

    dim: int = Field(20, ge=1, le=MAX_ITEMS)

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {"w": rng.standard_normal((n, self.dim)).astype(np.float32)}

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        return _linear(xs, info["w"])


class SparseLinearRegression(RegressionWorld):
    """Sparse linear functions ``f(x) = wᵀx``, ``w = m ⊙ g``, ``g ~ N(0, I_d)``.

    The support mask ``m`` has ``sparsity`` ones at coordinates drawn uniformly without
    replacement, per prompt. Garg et al. 2022, section 5 (``d = 20``, ``s = 3``); spec
    ``mechanisms.md``, regression-icl.

    Parameters
    ----------
    dim : int, default 20
    sparsity : int, default 3
        Non-zero coordinates of ``w``; at most ``dim``.
    points : int, default 41
    noise_std : float, default 0.0
    x : XSampler, default isotropic

    ``info``: ``"w"`` (batch, dim) float32 and ``"support"`` (batch, dim) bool.
    """

    name: ClassVar[str] = "sparse-linear"

    dim: int = Field(20, ge=1, le=MAX_ITEMS)
    sparsity: int = Field(3, ge=1, le=MAX_ITEMS)

    @model_validator(mode="after")
    def _check_sparsity(self):
        if self.sparsity > self.dim:
            raise ValueError(f"sparsity ({self.sparsity}) must be <= dim ({self.dim})")
        return self

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        # the `sparsity` smallest of d uniform keys are a uniform random subset
        keys = rng.random((n, self.dim))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        support = ranks < self.sparsity  # (batch, dim)
        w = (rng.standard_normal((n, self.dim)) * support).astype(np.float32)
        return {"w": w, "support": support}

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        return _linear(xs, info["w"])


#: Supports of :class:`SparseLinearMixture`: variant -> (number of bases, dim, rank, stride).
#: Basis ``k`` is the cyclic window ``{(stride·k + j) mod dim : j < rank}``.
MIXTURE_VARIANTS: dict[str, tuple[int, int, int, int]] = {
    "orthogonal-4x16": (4, 16, 4, 4),
    "orthogonal-6x24": (6, 24, 4, 4),
    "orthogonal-3x12": (3, 12, 4, 4),
    "overlapping-8x16": (8, 16, 4, 2),
    "orthogonal-3x6": (3, 6, 2, 2),
    "orthogonal-4x8": (4, 8, 2, 2),
    "orthogonal-4x4": (4, 4, 1, 1),
    "orthogonal-2x8": (2, 8, 4, 4),
    "orthogonal-3x9": (3, 9, 3, 3),
}


def mixture_supports(variant: str, rank: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Support masks of a mixture variant, bool array of shape (n_bases, dim); with ``rank``,
    only the first ``rank`` coordinates of each window (a tuple: one rank per basis).

    Orthogonal variants ``"orthogonal-BxD"`` are B consecutive blocks of D / B coordinates
    (rank 4 in the paper's variants, 1–4 in the small worlds made for cpu runs), disjoint and
    covering all D. ``"overlapping-8x16"``
    uses cyclic windows of 4 with stride 2, ``B_k = {2k, 2k+1, 2k+2, 2k+3} mod 16`` for
    ``k = 0..7``: each coordinate lies in exactly two bases, neighbouring bases share two
    coordinates, and ``B_k`` and ``B_{k+2}`` are disjoint, so the bases are symmetric under
    a cyclic shift and none is special.
    """
    n_bases, dim, full_rank, stride = MIXTURE_VARIANTS[variant]
    ranks = np.broadcast_to(np.asarray(full_rank if rank is None else rank), (n_bases,))
    j = np.arange(full_rank)
    cols = (stride * np.arange(n_bases)[:, None] + j[None, :]) % dim  # (n_bases, full_rank)
    keep = j[None, :] < ranks[:, None]  # (n_bases, full_rank)
    supports = np.zeros((n_bases, dim), dtype=bool)
    supports[np.nonzero(keep)[0], cols[keep]] = True
    return supports


class SparseLinearMixture(RegressionWorld):
    """Mixture of sparse linear regressions: the task-vectors world.

    Per prompt, a basis ``k`` is drawn uniformly, then ``w = m_k ⊙ g`` with
    ``g ~ N(0, I_D)`` and ``m_k`` the support mask of basis ``B_k``, and
    ``y_i = wᵀx_i + ε_i`` with ``x_i ~ N(0, I_D)`` and ``ε_i ~ N(0, σ²)``, ``σ² = 0.01``.
    The basis is the latent task ``z`` of the prompt. Han, Song, Gore and Agrawal,
    ICML 2025, "Emergence and Effectiveness of Task Vectors in In-Context Learning: An
    Encoder Decoder Perspective"; spec ``task_vectors.md``, synthetic part.

    Parameters
    ----------
    bases : str, default "orthogonal-4x16"
        The set of supports (see :func:`mixture_supports`): the paper's 4 disjoint rank-4
        blocks over D = 16 (``"orthogonal-4x16"``), 6 over D = 24 (``"orthogonal-6x24"``) or
        8 overlapping cyclic windows over D = 16 (``"overlapping-8x16"``); or a smaller world
        for cpu runs, B disjoint blocks over D (``"orthogonal-BxD"``): ``"2x8"`` (rank 4, the
        cpu preset's), ``"3x12"`` (rank 4), ``"3x9"`` (rank 3), ``"3x6"``, ``"4x8"`` (rank 2),
        ``"4x4"`` (rank 1).
    points : int, default 20
        K, the examples per prompt.
    noise_std : float, default 0.1
        σ; the paper's σ² = 0.01.
    x : XSampler, default isotropic
    active_rank : int, tuple of int, or None, default None
        Only the first ``active_rank`` coordinates of each basis are used (``w`` is zero on
        the others, and so is ``x`` outside the union of the shortened bases); a tuple gives
        one rank per basis; None uses all. Set by a ``curriculum.rank`` ramp, which starts
        training on small bases (per basis with ``curriculum.rank_per_basis``).
    active_bases : int or None, default None
        ``sample`` draws only the first ``active_bases`` bases; None draws from all. Set by a
        ``curriculum.bases`` ramp. ``prompts`` and ``prompts_for_basis`` (evaluation) ignore it.
    curriculum : Curriculum or None, default None

    ``sample`` draws bases uniformly; ``prompts`` stratifies them (prompt ``b`` uses basis
    ``b mod n_bases``), so a probe gets equally many prompts per task. ``info``:
    ``"basis"`` (batch,) int64, ``"w"`` (batch, D) float32, ``"support"`` (batch, D) bool.
    """

    name: ClassVar[str] = "sparse-linear-mixture"

    bases: Literal[tuple(MIXTURE_VARIANTS)] = "orthogonal-4x16"  # one of MIXTURE_VARIANTS' names
    points: int = Field(20, ge=1, le=MAX_SEQ)
    noise_std: float = Field(0.1, ge=0.0)
    active_rank: int | tuple[int, ...] | None = None
    active_bases: int | None = Field(None, ge=1, le=MAX_ITEMS)

    @model_validator(mode="after")
    def _check_active(self):
        n_bases, _, rank, _ = MIXTURE_VARIANTS[self.bases]
        if self.active_rank is not None:
            ranks = (self.active_rank,) if isinstance(self.active_rank, int) else self.active_rank
            if isinstance(self.active_rank, tuple) and len(ranks) != n_bases:
                raise ValueError(f"active_rank has {len(ranks)} entries; {self.bases} has {n_bases} bases")
            if not all(1 <= r <= rank for r in ranks):
                raise ValueError(f"active_rank ({self.active_rank}) must be between 1 and the rank of the bases ({rank})")
        if self.active_bases is not None and self.active_bases > n_bases:
            raise ValueError(f"active_bases ({self.active_bases}) must be <= the number of bases ({n_bases})")
        return self

    def at_step(self, step: int) -> "SparseLinearMixture":
        world = super().at_step(step)
        c = self.curriculum
        if c is None:
            return world
        n_bases, _, rank, _ = MIXTURE_VARIANTS[self.bases]
        update = {}
        if c.rank is not None and c.rank_per_basis:
            entries = [c.bases.first_step(k + 1) for k in range(n_bases)]  # basis k enters with n = k + 1
            update["active_rank"] = tuple(c.rank.at(0 if e is None else max(0, step - e), rank) for e in entries)
        elif c.rank is not None:
            update["active_rank"] = c.rank.at(step, rank)
        if c.bases is not None:
            update["active_bases"] = c.bases.at(step, n_bases)
        return world.model_copy(update=update)

    @property
    def dim(self) -> int:
        return MIXTURE_VARIANTS[self.bases][1]

    @property
    def n_bases(self) -> int:
        """Number of bases (latent tasks)."""
        return MIXTURE_VARIANTS[self.bases][0]

    @property
    def supports(self) -> np.ndarray:
        """Support masks of the bases, bool array of shape (n_bases, D) (shortened to
        ``active_rank`` coordinates each when it is set)."""
        return mixture_supports(self.bases, self.active_rank)

    def _inputs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        xs = super()._inputs(rng, n)
        if self.active_rank is None:
            return xs
        return xs * self.supports.any(axis=0)  # x is zero off the shortened bases

    def functions_for(self, rng: np.random.Generator, basis: np.ndarray) -> dict[str, np.ndarray]:
        """Weights for the given bases, ``basis`` of shape (batch,) in ``[0, n_bases)``."""
        basis = np.asarray(basis, dtype=np.int64)
        if basis.ndim != 1 or basis.size and (basis.min() < 0 or basis.max() >= self.n_bases):
            raise ValueError(f"basis must be a 1-D array of ints in [0, {self.n_bases}); got {basis!r}")
        support = self.supports[basis]  # (batch, D)
        w = (rng.standard_normal(support.shape) * support).astype(np.float32)
        return {"basis": basis, "w": w, "support": support}

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return self.functions_for(rng, rng.integers(0, self.active_bases or self.n_bases, size=n))

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        return _linear(xs, info["w"])

    def prompts(self, rng: np.random.Generator, n: int) -> VectorBatch:
        """``n`` prompts with bases stratified: prompt ``b`` uses basis ``b mod n_bases``."""
        return self._batch(rng, n, self.functions_for(rng, np.arange(n) % self.n_bases))

    def prompts_for_basis(self, rng: np.random.Generator, n: int, basis: int) -> VectorBatch:
        """``n`` prompts that all use basis ``basis``."""
        return self._batch(rng, n, self.functions_for(rng, np.full(n, basis)))


class DecisionTree(RegressionWorld):
    """Random binary decision trees of depth ``depth`` on the signs of ``x``.

    Every internal node ``v`` holds a coordinate ``c_v`` drawn uniformly from ``[0, d)``;
    from the root, go to the right child if ``x[c_v] > 0`` and to the left otherwise, and
    after ``depth`` decisions ``f(x)`` is the leaf's value, drawn ``N(0, 1)``. Garg et al.
    2022, section 5 (``d = 20``, depth 4); spec ``mechanisms.md``, regression-icl.

    Nodes are numbered heap-wise (root 0, children of ``v`` are ``2v+1`` and ``2v+2``);
    leaf ``j`` is node ``2^depth - 1 + j``.

    Parameters
    ----------
    dim : int, default 20
    depth : int, default 4
    points : int, default 101
    noise_std : float, default 0.0
    x : XSampler, default isotropic

    ``info``: ``"coords"`` (batch, 2^depth - 1) int64, the coordinate of each internal
    node, and ``"leaves"`` (batch, 2^depth) float32, the leaf values.
    """

    name: ClassVar[str] = "decision-tree"

    dim: int = Field(20, ge=1, le=MAX_ITEMS)
    depth: int = Field(4, ge=1, le=16)
    points: int = Field(101, ge=1, le=MAX_SEQ)

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        n_internal = 2**self.depth - 1
        coords = rng.integers(0, self.dim, size=(n, n_internal), dtype=np.int64)
        leaves = rng.standard_normal((n, n_internal + 1)).astype(np.float32)
        return {"coords": coords, "leaves": leaves}

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        coords, leaves = info["coords"], info["leaves"]
        b = np.arange(xs.shape[0])[:, None]  # (batch, 1)
        p = np.arange(xs.shape[1])[None, :]  # (1, points)
        node = np.zeros(xs.shape[:2], dtype=np.int64)  # (batch, points)
        for _ in range(self.depth):
            right = xs[b, p, coords[b, node]] > 0
            node = 2 * node + 1 + right
        return leaves[b, node - (2**self.depth - 1)].astype(np.float64)


class ReluNet(RegressionWorld):
    """Random two-layer ReLU networks ``f(x) = sqrt(2/h) Σ_j a_j relu(w_jᵀx)``.

    ``w_j ~ N(0, I_d)`` and ``a_j ~ N(0, 1)`` for ``j < h``; the factor ``sqrt(2/h)``
    keeps ``E f(x)² = d`` for ``x ~ N(0, I_d)``, as for linear functions. Garg et al. 2022,
    section 5 (``d = 20``, ``h = 100``); spec ``mechanisms.md``, regression-icl.

    Parameters
    ----------
    dim : int, default 20
    hidden : int, default 100
    points : int, default 101
    noise_std : float, default 0.0
    x : XSampler, default isotropic

    ``info``: ``"w1"`` (batch, dim, hidden) and ``"w2"`` (batch, hidden), float32.
    """

    name: ClassVar[str] = "relu-net"

    dim: int = Field(20, ge=1, le=MAX_ITEMS)
    hidden: int = Field(100, ge=1)
    points: int = Field(101, ge=1, le=MAX_SEQ)

    def draw_functions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        w1 = rng.standard_normal((n, self.dim, self.hidden)).astype(np.float32)
        w2 = rng.standard_normal((n, self.hidden)).astype(np.float32)
        return {"w1": w1, "w2": w2}

    def evaluate(self, xs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        pre = np.einsum("bpd,bdh->bph", xs, info["w1"].astype(np.float64))  # (batch, points, hidden)
        return np.sqrt(2.0 / self.hidden) * np.einsum("bph,bh->bp", np.maximum(pre, 0.0),
                                                      info["w2"].astype(np.float64))
