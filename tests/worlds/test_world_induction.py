import numpy as np
import pytest
from pydantic import ValidationError

from iclab.errors import UnknownNameError
from iclab.worlds import RandomTokens, RepeatedTokens, make_world, world_names
from iclab.worlds.induction import repeated_prompts


def test_repeat_is_a_copy_at_a_varying_gap():
    w = RepeatedTokens(vocab=50, seq_len=40, min_segment=4, max_segment=12)
    b = w.sample(np.random.default_rng(0), 500)
    assert b.tokens.shape == (500, 40) and b.tokens.min() >= 0 and b.tokens.max() < 50
    first, second, length = b.info["first"], b.info["second"], b.info["length"]
    for i in range(500):
        a, s, L = first[i], second[i], length[i]
        assert 4 <= L <= 12 and s >= a + L and s + L <= 40
        np.testing.assert_array_equal(b.tokens[i, a:a + L], b.tokens[i, s:s + L])
    assert len(np.unique(second - first)) > 10  # no fixed offset for a positional head to learn


def test_p_repeat_controls_share_of_repeats():
    w = RepeatedTokens(p_repeat=0.25)
    b = w.sample(np.random.default_rng(1), 4000)
    share = (b.info["length"] > 0).mean()
    assert abs(share - 0.25) < 0.03
    assert (b.info["first"][b.info["length"] < 0] == -1).all()


def test_same_seed_same_batch():
    w = RepeatedTokens()
    a, b = (w.sample(np.random.default_rng(7), 8) for _ in range(2))
    np.testing.assert_array_equal(a.tokens, b.tokens)


def test_canonical_prompts():
    b = repeated_prompts(np.random.default_rng(0), 4, 10, 5, 9)
    assert b.tokens.shape == (4, 20)
    np.testing.assert_array_equal(b.tokens[:, :10], b.tokens[:, 10:])
    assert b.tokens.min() >= 5 and b.tokens.max() < 9


def test_random_tokens_control_has_no_structure():
    b = RandomTokens(vocab=8, seq_len=10000).sample(np.random.default_rng(0), 1)
    counts = np.bincount(b.tokens[0], minlength=8) / 10000
    assert np.abs(counts - 1 / 8).max() < 0.02


@pytest.mark.parametrize("params", [{"vocab": 1}, {"min_segment": 10, "max_segment": 5},
                                    {"seq_len": 16, "max_segment": 9}, {"p_repeat": 1.5}, {"colour": 3}])
def test_bad_parameters_refused(params):
    with pytest.raises(ValidationError):
        RepeatedTokens(**params)


def test_registry():
    assert {"repeated-tokens", "random-tokens"} <= set(world_names())
    assert isinstance(make_world("repeated-tokens", vocab=10, seq_len=20, max_segment=8), RepeatedTokens)
    with pytest.raises(UnknownNameError, match="repeated-tokens"):
        make_world("repeated-tokenz")
