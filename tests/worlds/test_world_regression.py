"""Tests of the in-context regression worlds (spec mechanisms.md, regression-icl, and
task_vectors.md, synthetic part).

Known answers: the support tables are counted coordinate by coordinate, the noise is
recovered as ``y - wᵀx``, a hand-built depth-2 tree and a loop over hidden units
recompute ``f``, and input shifts are checked against their definitions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from iclab.worlds import regression
from iclab.worlds.base import VectorBatch
from iclab.worlds.regression import (DecisionTree, LinearRegression, ReluNet, SparseLinearMixture,
                                     SparseLinearRegression, XSampler, mixture_supports)

WORLDS = [LinearRegression(dim=6, points=9), SparseLinearRegression(dim=8, sparsity=2, points=7),
          SparseLinearMixture(), SparseLinearMixture(bases="overlapping-8x16"),
          DecisionTree(dim=5, points=11), ReluNet(dim=4, hidden=8, points=6),
          LinearRegression(dim=6, points=9, noise_std=0.5, x=XSampler(kind="orthant", orthant_query="any"))]


def test_no_torch_import():
    tree = ast.parse(Path(regression.__file__).read_text())
    names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "torch"]


@pytest.mark.parametrize("world", WORLDS, ids=lambda w: w.name)
def test_batch_schema_and_determinism(world):
    a = world.sample(np.random.default_rng(7), 5)
    b = world.sample(np.random.default_rng(7), 5)
    assert isinstance(a, VectorBatch) and len(a) == 5 and world.vocab_size == 0
    assert a.xs.shape == (5, world.points, world.dim) and a.xs.dtype == np.float32
    assert a.ys.shape == (5, world.points) and a.ys.dtype == np.float32
    np.testing.assert_array_equal(a.xs, b.xs)
    np.testing.assert_array_equal(a.ys, b.ys)
    assert a.info.keys() == b.info.keys()
    for key in a.info:
        assert a.info[key].shape[0] == 5
        np.testing.assert_array_equal(a.info[key], b.info[key])
    c = world.sample(np.random.default_rng(8), 5)
    assert not np.array_equal(a.xs, c.xs)
    p = world.prompts(np.random.default_rng(7), 4)
    assert p.xs.shape == (4, world.points, world.dim)


@pytest.mark.parametrize("world", WORLDS, ids=lambda w: w.name)
def test_noiseless_ys_are_f_of_xs(world):
    b = world.sample(np.random.default_rng(0), 6)
    f = world.evaluate(b.xs.astype(np.float64), b.info)
    if world.noise_std == 0:
        np.testing.assert_allclose(b.ys, f, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("cls,params", [
    (LinearRegression, {"dim": 0}), (LinearRegression, {"points": 0}),
    (LinearRegression, {"noise_std": -0.1}), (LinearRegression, {"dimension": 3}),
    (SparseLinearRegression, {"dim": 4, "sparsity": 5}), (SparseLinearMixture, {"bases": "orthogonal-5x20"}),
    (SparseLinearMixture, {"dim": 16}), (DecisionTree, {"depth": 0}), (ReluNet, {"hidden": 0}),
    (LinearRegression, {"x": {"kind": "cauchy"}}), (LinearRegression, {"x": {"scale": 0}}),
    (LinearRegression, {"dim": 3, "x": {"active_dims": 4}}),
])
def test_bad_parameters_raise(cls, params):
    with pytest.raises(ValidationError) as err:
        cls(**params)
    assert any(str(k) in str(err.value) for k in ["dim", "points", "noise_std", "dimension", "sparsity",
                                                    "bases", "depth", "hidden", "kind", "scale", "active_dims"])


def test_worlds_are_frozen():
    with pytest.raises(ValidationError):
        LinearRegression().dim = 3


# ---------------------------------------------------------------- sparse mixture


ORTHOGONAL = {"orthogonal-4x16": (4, 16, 4), "orthogonal-6x24": (6, 24, 4), "orthogonal-3x12": (3, 12, 4),
              "orthogonal-2x8": (2, 8, 4), "orthogonal-3x9": (3, 9, 3), "orthogonal-3x6": (3, 6, 2),
              "orthogonal-4x8": (4, 8, 2), "orthogonal-4x4": (4, 4, 1)}


@pytest.mark.parametrize("variant", ORTHOGONAL)
def test_orthogonal_bases_are_disjoint_blocks_covering_every_coordinate(variant):
    n_bases, dim, rank = ORTHOGONAL[variant]
    s = mixture_supports(variant)
    assert s.shape == (n_bases, dim)
    assert (s.sum(axis=1) == rank).all()
    assert (s.sum(axis=0) == 1).all()  # each coordinate in exactly one basis: disjoint, covering
    for k in range(n_bases):
        assert np.flatnonzero(s[k]).tolist() == list(range(rank * k, rank * k + rank))
    assert (mixture_supports(variant, 1).sum(axis=1) == 1).all()  # the rank curriculum shortens each block
    world = SparseLinearMixture(bases=variant)
    assert world.dim == dim and world.n_bases == n_bases


def test_overlapping_bases_are_cyclic_windows():
    s = mixture_supports("overlapping-8x16")
    assert s.shape == (8, 16) and (s.sum(axis=1) == 4).all()
    assert (s.sum(axis=0) == 2).all()  # each coordinate in exactly two bases
    assert len({tuple(row) for row in s}) == 8
    for k in range(8):
        assert set(np.flatnonzero(s[k])) == {(2 * k + j) % 16 for j in range(4)}
        assert (s[k] & s[(k + 1) % 8]).sum() == 2
        assert (s[k] & s[(k + 2) % 8]).sum() == 0
    assert np.linalg.matrix_rank(s.astype(float)) > 4  # genuinely different subspaces


@pytest.mark.parametrize("variant", [*ORTHOGONAL, "overlapping-8x16"])
def test_mixture_w_is_zero_outside_its_basis(variant):
    world = SparseLinearMixture(bases=variant)
    b = world.sample(np.random.default_rng(1), 400)
    basis, w, support = b.info["basis"], b.info["w"], b.info["support"]
    assert basis.shape == (400,) and w.shape == (400, world.dim) and support.shape == (400, world.dim)
    np.testing.assert_array_equal(support, world.supports[basis])
    assert (w[~support] == 0).all()
    assert (w[support] != 0).all()
    counts = np.bincount(basis, minlength=world.n_bases)
    assert counts.min() > 400 / world.n_bases * 0.6  # uniform over bases


def test_mixture_noise_variance_is_sigma_squared():
    world = SparseLinearMixture()
    b = world.sample(np.random.default_rng(2), 2000)
    eps = b.ys.astype(np.float64) - np.einsum("bpd,bd->bp", b.xs.astype(np.float64), b.info["w"].astype(np.float64))
    assert abs(eps.mean()) < 0.003
    assert abs(eps.var() - 0.01) < 0.0005
    assert world.points == 20 and world.dim == 16 and world.n_bases == 4


def test_mixture_inputs_are_standard_normal():
    b = SparseLinearMixture().sample(np.random.default_rng(3), 1000)
    x = b.xs.reshape(-1, 16).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), np.eye(16), atol=0.04)


def test_mixture_prompts_are_stratified():
    world = SparseLinearMixture(bases="orthogonal-6x24")
    p = world.prompts(np.random.default_rng(0), 14)
    np.testing.assert_array_equal(p.info["basis"], np.arange(14) % 6)
    q = world.prompts_for_basis(np.random.default_rng(0), 5, basis=3)
    assert (q.info["basis"] == 3).all()
    assert (q.info["w"][:, world.supports[0]] == 0).all()
    with pytest.raises(ValueError, match="basis"):
        world.prompts_for_basis(np.random.default_rng(0), 2, basis=6)


# ---------------------------------------------------------------- other function classes


def test_sparse_linear_support_size():
    world = SparseLinearRegression(dim=10, sparsity=3)
    b = world.sample(np.random.default_rng(0), 300)
    assert (b.info["support"].sum(axis=1) == 3).all()
    assert (b.info["w"][~b.info["support"]] == 0).all()
    freq = b.info["support"].mean(axis=0)  # each coordinate chosen with probability 3/10
    np.testing.assert_allclose(freq, 0.3, atol=0.1)


def test_linear_noise():
    world = LinearRegression(dim=4, points=50, noise_std=0.5)
    b = world.sample(np.random.default_rng(0), 200)
    eps = b.ys - world.evaluate(b.xs.astype(np.float64), b.info)
    assert abs(eps.std() - 0.5) < 0.02


def test_decision_tree_hand_case():
    world = DecisionTree(dim=3, depth=2)
    info = {"coords": np.array([[0, 1, 2]]), "leaves": np.array([[10.0, 20.0, 30.0, 40.0]], dtype=np.float32)}
    xs = np.array([[[1.0, -1.0, 1.0],    # x0 > 0: node 2 (coord 2); x2 > 0: node 6 = leaf 3
                    [-1.0, 1.0, -1.0],   # x0 <= 0: node 1 (coord 1); x1 > 0: node 4 = leaf 1
                    [-1.0, -1.0, 5.0],   # node 1; x1 <= 0: node 3 = leaf 0
                    [0.0, 9.0, -2.0]]])  # x0 = 0 goes left: node 1; x1 > 0: leaf 1
    np.testing.assert_array_equal(world.evaluate(xs, info), [[40.0, 20.0, 10.0, 20.0]])


def test_relu_net_matches_a_loop():
    world = ReluNet(dim=3, hidden=5, points=4)
    b = world.sample(np.random.default_rng(0), 2)
    w1, w2 = b.info["w1"].astype(np.float64), b.info["w2"].astype(np.float64)
    for bi in range(2):
        for p in range(4):
            x = b.xs[bi, p].astype(np.float64)
            f = np.sqrt(2 / 5) * sum(w2[bi, j] * max(0.0, x @ w1[bi, :, j]) for j in range(5))
            assert abs(b.ys[bi, p] - f) < 1e-4


def test_relu_net_output_scale_matches_linear():
    b = ReluNet(dim=10, hidden=100, points=20).sample(np.random.default_rng(0), 300)
    assert 7 < (b.ys.astype(np.float64) ** 2).mean() < 13  # E f(x)² = d


# ---------------------------------------------------------------- input distributions


def test_scaled_and_truncated_inputs():
    xs = XSampler(scale=3.0, active_dims=2).sample(np.random.default_rng(0), 200, 10, 5)
    assert (xs[..., 2:] == 0).all()
    assert abs(xs[..., :2].std() - 3.0) < 0.1


def test_skewed_covariance():
    sampler = XSampler(kind="skewed", seed=4)
    T = sampler.covariance_root(6)
    cov = T.T @ T
    lam = np.sort(np.linalg.eigvalsh(cov))[::-1]
    expected = 1.0 / np.arange(1, 7) ** 2
    np.testing.assert_allclose(lam, expected * 6 / expected.sum(), rtol=1e-10)
    xs = sampler.sample(np.random.default_rng(0), 4000, 5, 6).reshape(-1, 6)
    np.testing.assert_allclose(np.cov(xs.T), cov, atol=0.08)
    np.testing.assert_array_equal(T, XSampler(kind="skewed", seed=4).covariance_root(6))


@pytest.mark.parametrize("query", ["same", "opposite", "any"])
def test_orthant_inputs(query):
    xs = XSampler(kind="orthant", orthant_query=query).sample(np.random.default_rng(0), 50, 8, 4)
    signs = np.sign(xs[:, :1])  # (batch, 1, dim)
    assert (np.sign(xs[:, :-1]) == signs).all()  # all context points in the first point's orthant
    last = np.sign(xs[:, -1])
    if query == "same":
        assert (last == signs[:, 0]).all()
    elif query == "opposite":
        assert (last == -signs[:, 0]).all()
    else:
        assert 0.3 < (last == signs[:, 0]).mean() < 0.7
    assert len({tuple(s) for s in signs[:, 0]}) > 5  # orthants vary between prompts


# ---------------------------------------------------------------- curriculum


def test_ramp_values():
    r = regression.Ramp(start=1, inc=1, every=100)
    assert [r.at(s, end=4) for s in (0, 99, 100, 250, 10_000)] == [1, 1, 2, 3, 4]
    assert regression.Ramp(start=10, inc=2, every=5).at(12, end=20) == 14
    with pytest.raises(ValidationError, match="every"):
        regression.Ramp(start=1, every=0)


def test_mixture_rank_curriculum_shortens_every_basis_and_masks_x():
    world = SparseLinearMixture(curriculum={"rank": {"start": 1, "every": 100},
                                            "points": {"start": 10, "inc": 5, "every": 100}})
    early = world.at_step(50)
    assert early.active_rank == 1 and early.points == 10 and early.curriculum is None
    batch = early.sample(np.random.default_rng(0), 64)
    assert batch.xs.shape == (64, 10, 16)
    first_coords = np.zeros(16, bool)
    first_coords[[0, 4, 8, 12]] = True  # the first coordinate of each block of 4
    assert not batch.xs[..., ~first_coords].any() and batch.xs[..., first_coords].all()
    support = batch.info["support"]
    assert (support.sum(axis=1) == 1).all() and not (batch.info["w"] * ~support).any()
    assert (support.argmax(axis=1) == 4 * batch.info["basis"]).all()
    noise = batch.ys - early.evaluate(batch.xs.astype(np.float64), batch.info)
    assert abs(noise.std() - 0.1) < 0.01
    assert world.at_step(150).active_rank == 2 and world.at_step(150).points == 15
    assert world.at_step(10_000).active_rank == 4 and world.at_step(10_000).points == 20
    # evaluations use the world itself: full rank and points
    assert world.supports.sum(axis=1).tolist() == [4, 4, 4, 4] and world.points == 20


def test_dims_curriculum_and_refusals():
    world = LinearRegression(dim=8, points=5, curriculum={"dims": {"start": 2, "inc": 3, "every": 10}})
    assert [world.at_step(s).x.active_dims for s in (0, 10, 20, 30)] == [2, 5, 8, 8]
    xs = world.at_step(0).sample(np.random.default_rng(1), 4).xs
    assert not xs[..., 2:].any() and xs[..., :2].all()
    assert LinearRegression().at_step(5) == LinearRegression()
    with pytest.raises(ValidationError, match="curriculum.rank.*sparse-linear-mixture"):
        LinearRegression(curriculum={"rank": {"start": 1}})
    with pytest.raises(ValidationError, match="active_rank"):
        SparseLinearMixture(active_rank=5)
    with pytest.raises(ValidationError, match="curriculum.bases.*sparse-linear-mixture"):
        LinearRegression(curriculum={"bases": {"start": 1}})
    with pytest.raises(ValidationError, match="active_bases"):
        SparseLinearMixture(active_bases=5)


def test_mixture_bases_curriculum_introduces_the_bases_in_order():
    world = SparseLinearMixture(curriculum={"bases": {"start": 1, "inc": 1, "every": 100}})
    rng = np.random.default_rng(0)
    seen = [set(world.at_step(s).sample(rng, 400).info["basis"].tolist()) for s in (0, 150, 250, 999)]
    assert seen == [{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}]
    early = world.at_step(0)
    assert early.active_bases == 1 and early.active_rank is None and early.curriculum is None
    # x keeps all 16 coordinates (it must not reveal which bases are in play); w only basis 0's
    batch = early.sample(rng, 64)
    assert batch.xs.all() and not batch.info["w"][:, 4:].any()
    # evaluations stratify over every basis whatever the curriculum
    assert set(world.prompts(rng, 8).info["basis"].tolist()) == {0, 1, 2, 3}


def test_rank_per_basis_restarts_the_rank_ramp_for_each_new_basis():
    world = SparseLinearMixture(curriculum={"rank": {"start": 1, "every": 100},
                                            "bases": {"start": 2, "inc": 1, "every": 300},
                                            "rank_per_basis": True})
    assert [world.curriculum.bases.first_step(k + 1) for k in range(4)] == [0, 0, 300, 600]
    # basis k has rank 1 + (step - entry_k) // 100, capped at 4; 1 before it enters
    assert world.at_step(0).active_rank == (1, 1, 1, 1)
    assert world.at_step(250).active_rank == (3, 3, 1, 1)
    assert world.at_step(450).active_rank == (4, 4, 2, 1)
    assert world.at_step(10_000).active_rank == (4, 4, 4, 4)
    mid = world.at_step(450)
    assert mid.supports.sum(axis=1).tolist() == [4, 4, 2, 1]
    batch = mid.sample(np.random.default_rng(0), 400)
    assert set(batch.info["basis"].tolist()) == {0, 1, 2}
    assert (batch.info["support"].sum(axis=1) == np.array([4, 4, 2])[batch.info["basis"]]).all()
    used = np.zeros(16, bool)
    used[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12]] = True  # x lives on the union of the shortened bases
    assert not batch.xs[..., ~used].any() and batch.xs[..., used].all()
    assert world.supports.sum(axis=1).tolist() == [4, 4, 4, 4]


def test_per_basis_ranks_and_their_refusals():
    from iclab.worlds.regression import Ramp

    ramp = Ramp(start=1, inc=2, every=10)  # 1, 3, 5, ...: reaches 4 at step 20, not before
    assert ramp.first_step(4) == 20 and ramp.at(19, 9) < 4 <= ramp.at(20, 9) and ramp.first_step(1) == 0
    np.testing.assert_array_equal(mixture_supports("orthogonal-4x16", (4, 4, 4, 4)), mixture_supports("orthogonal-4x16"))
    s = mixture_supports("overlapping-8x16", (1, 2, 3, 4, 1, 2, 3, 4))
    assert s.sum(axis=1).tolist() == [1, 2, 3, 4, 1, 2, 3, 4] and s[3, [6, 7, 8, 9]].all()
    with pytest.raises(ValidationError, match="active_rank has 3 entries"):
        SparseLinearMixture(active_rank=(1, 2, 3))
    with pytest.raises(ValidationError, match=r"active_rank \(\(1, 0, 1, 1\)\) must be between 1 and"):
        SparseLinearMixture(active_rank=(1, 0, 1, 1))
    with pytest.raises(ValidationError, match="rank_per_basis needs both"):
        SparseLinearMixture(curriculum={"rank": {"start": 1}, "rank_per_basis": True})
    stuck = SparseLinearMixture(curriculum={"rank": {"start": 1, "every": 10}, "bases": {"start": 1, "inc": 0},
                                            "rank_per_basis": True})
    assert stuck.curriculum.bases.first_step(2) is None and stuck.at_step(100).active_rank == (4, 1, 1, 1)


def test_the_trainer_samples_the_world_of_each_step():
    from iclab.train.prefetch import batch_at

    world = SparseLinearMixture(curriculum={"points": {"start": 4, "inc": 4, "every": 10}})
    assert batch_at(world, 0, 0, 2).xs.shape[1] == 4 and batch_at(world, 0, 25, 2).xs.shape[1] == 12
    np.testing.assert_array_equal(batch_at(world, 0, 25, 2).xs, batch_at(world, 0, 25, 2).xs)
