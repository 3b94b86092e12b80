"""Checks every registered world and every probe passes (scikit-learn's estimator checks).

Worlds: the same seed gives the same batch, a batch has the documented types and shapes,
an unknown parameter is refused. Probes: the same model and prompts give the same rows,
rows fit the schema, and no hook is left on the model.
"""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from iclab.models.build import ModelSpec, build_model
from iclab.probes.ablation import HeadAblation
from iclab.probes.icl_score import ICLScore
from iclab.probes.induction import InductionScores
from helpers import check_probe_contract
from iclab.worlds import TokenBatch, VectorBatch, make_world, world_class, world_names


@pytest.mark.parametrize("name", world_names())
def test_world_same_seed_same_batch(name):
    world = make_world(name)
    a = world.sample(np.random.default_rng(0), 4)
    b = world.sample(np.random.default_rng(0), 4)
    assert type(a) is type(b)
    if isinstance(a, TokenBatch):
        np.testing.assert_array_equal(a.tokens, b.tokens)
    else:
        np.testing.assert_array_equal(a.xs, b.xs)
        np.testing.assert_array_equal(a.ys, b.ys)
    for key in a.info:
        np.testing.assert_array_equal(a.info[key], b.info[key])


@pytest.mark.parametrize("name", world_names())
def test_world_batch_types_and_shapes(name):
    world = make_world(name)
    batch = world.sample(np.random.default_rng(1), 3)
    assert len(batch) == 3
    if isinstance(batch, TokenBatch):
        assert batch.tokens.dtype == np.int64 and batch.tokens.ndim == 2
        assert 0 <= batch.tokens.min() and batch.tokens.max() < world.vocab_size
        if batch.loss_mask is not None:
            assert batch.loss_mask.shape == batch.tokens.shape
    else:
        assert isinstance(batch, VectorBatch)
        assert batch.xs.ndim == 3 and batch.ys.shape == batch.xs.shape[:2]
    for key, arr in batch.info.items():
        assert arr.shape[0] == 3, key


@pytest.mark.parametrize("name", world_names())
def test_world_refuses_unknown_parameter(name):
    with pytest.raises(ValidationError, match="not_a_parameter"):
        world_class(name)(not_a_parameter=1)


@pytest.mark.parametrize("name", world_names())
def test_world_is_immutable(name):
    world = make_world(name)
    field = next(iter(type(world).model_fields))
    with pytest.raises(ValidationError):
        setattr(world, field, getattr(world, field))


def _probes():
    icl = ICLScore(early=3, late=9)
    return {"induction": InductionScores(batch_size=4), "icl": icl,
            "ablation": HeadAblation(heads=[(1, 0), (1, 2)], icl=icl, mode="mean"),
            "ablation-zero": HeadAblation(heads=[(0, 1)], icl=icl, mode="zero")}


@pytest.fixture(scope="module")
def model_and_prompts():
    model = build_model(ModelSpec(n_layers=2, d_model=32, n_heads=4), 40, seed=0).eval()
    rng = np.random.default_rng(0)
    half = rng.integers(0, 40, size=(8, 6))
    return model, torch.as_tensor(np.concatenate([half, half], axis=1))


@pytest.mark.parametrize("name", list(_probes()))
def test_probe_rows_are_reproducible_and_fit_the_schema(name, model_and_prompts):
    model, prompts = model_and_prompts
    check_probe_contract(_probes()[name], model, prompts)


def test_probe_parameters_are_validated():
    with pytest.raises(ValidationError, match="late"):
        ICLScore(early=5, late=2)
    with pytest.raises(ValidationError, match="batch_size"):
        InductionScores(batch_size=0)
    with pytest.raises(ValidationError, match="mode"):
        HeadAblation(heads=[(0, 0)], icl=ICLScore(early=1, late=2), mode="half")
