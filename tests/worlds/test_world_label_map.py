"""The label-map world: labels follow the fixed classes unless the sequence remaps them, in the
shares the knobs set."""

from __future__ import annotations

import numpy as np
import pytest

from iclab.worlds.label_map import PRIOR, REMAPPED, UNRELATED, LabelMapWorld


def test_classes_are_fixed_and_balanced():
    w = LabelMapWorld(n_inputs=12, n_classes=3, n_ood_inputs=3, seed=4)
    c = w.classes()
    assert c.shape == (15,) and np.bincount(c).tolist() == [5, 5, 5]
    np.testing.assert_array_equal(c, LabelMapWorld(n_inputs=12, n_classes=3, n_ood_inputs=3, seed=4).classes())
    assert w.vocab_size == 12 + 3 + 6 and w.label_token(0) == 15 and w.unrelated_token(2) == 20


def test_labels_follow_the_sequence_map_and_kinds_have_their_shares():
    w = LabelMapWorld(n_inputs=20, n_classes=2, pairs=8, p_remap=0.3, p_unrelated=0.2, label_noise=0.0)
    b = w.sample(np.random.default_rng(0), 4000)
    xs, ys = b.tokens[:, 0::2], b.tokens[:, 1::2]
    assert xs.max() < w.n_inputs  # held-out inputs never appear in pretraining
    np.testing.assert_array_equal(ys, np.take_along_axis(b.info["mapping"], w.classes()[xs], axis=1))
    kind = b.info["kind"]
    assert np.mean(kind == REMAPPED) == pytest.approx(0.3, abs=0.03)
    assert np.mean(kind == UNRELATED) == pytest.approx(0.2, abs=0.03)
    prior = b.info["mapping"][kind == PRIOR]
    assert (prior == w.label_token(np.arange(2))).all()
    assert (b.info["mapping"][kind == UNRELATED] >= w.unrelated_token(0)).all()
    assert b.loss_mask[:, 1::2].all() and not b.loss_mask[:, 0::2].any()


def test_label_noise_replaces_labels_at_its_rate():
    w = LabelMapWorld(n_inputs=20, n_classes=2, pairs=8, p_remap=0.0, p_unrelated=0.0, label_noise=0.4)
    b = w.sample(np.random.default_rng(1), 4000)
    xs, ys = b.tokens[:, 0::2], b.tokens[:, 1::2]
    wrong = ys != w.label_token(w.classes()[xs])
    assert wrong.mean() == pytest.approx(0.4 / 2, abs=0.01)  # a random label is wrong half the time
    assert set(np.unique(ys)) == {int(w.label_token(0)), int(w.label_token(1))}


def test_shares_above_one_are_refused():
    with pytest.raises(ValueError, match="p_remap \\+ p_unrelated"):
        LabelMapWorld(p_remap=0.7, p_unrelated=0.5)


def test_bayes_reference_for_flipped_demonstrations_by_hand():
    # P(identity) = 1 - 0.1 - 0.1 + 0.05 = 0.85, P(swap) = 0.05, a flipped-looking label under the
    # identity 0.1: k = 1: 0.05 * 0.9 = 0.045 < 0.85 * 0.1 = 0.085; k = 2: 0.0405 > 0.0085
    w = LabelMapWorld(p_remap=0.1, p_unrelated=0.1, label_noise=0.2)
    assert [w.bayes_follows_flipped(k) for k in (1, 2, 8)] == [False, True, True]
    assert LabelMapWorld(p_remap=0.0).bayes_follows_flipped(8) is False
    assert LabelMapWorld(n_classes=3).bayes_follows_flipped(1) is None
