"""The contract every registered world keeps (scikit-learn's estimator checks, run on each).

For every world in ``iclab.worlds``: the same seed gives the same batch; a batch has the
documented types and shapes; an unknown parameter and every out-of-range value (made from
the world's declared bounds) are refused with the one config message; a world is
immutable; a world survives pickling (data workers receive it so) and samples as before.
A new world is checked by being registered.
"""

import numpy as np
import pytest
from pydantic import ValidationError

from helpers import check_parameter_validation
from iclab.worlds import TokenBatch, VectorBatch, make_world, world_class, world_names


def test_every_world_is_checked():
    print(f"\n{len(world_names())} registered worlds: {', '.join(world_names())}")
    assert len(world_names()) >= 10


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
def test_world_pickled_for_a_data_worker_samples_the_same_batch(name):
    import pickle

    world = make_world(name)
    copy = pickle.loads(pickle.dumps(world))
    a, b = world.sample(np.random.default_rng(3), 4), copy.sample(np.random.default_rng(3), 4)
    for x, y in ((a.tokens, b.tokens),) if isinstance(a, TokenBatch) else ((a.xs, b.xs), (a.ys, b.ys)):
        np.testing.assert_array_equal(x, y)


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
def test_world_parameters_are_validated_with_the_config_message(name):
    world = make_world(name)
    check_parameter_validation(type(world), world.model_dump())


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
