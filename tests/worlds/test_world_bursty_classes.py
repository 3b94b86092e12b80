"""Known answers of the bursty-classes world: the layout, bursts, Zipf law, fresh labels, no support."""

import numpy as np
import pytest
from pydantic import ValidationError

from iclab.worlds.bursty_classes import BurstyClasses

SMALL = dict(n_classes=200, n_holdout=10, n_exemplars=5, exemplar_len=3, n_features=16, variation=0.2)


def _pairs(world: BurstyClasses, batch):
    """Exemplars (n, P + 1, L) and label tokens (n, P + 1) read back from the tokens."""
    L = world.exemplar_len
    t = batch.tokens.reshape(len(batch), world.context + 1, L + 1)  # (batch, pair, L + 1)
    return t[:, :, :L], t[:, :, L]


def test_layout_and_loss_masks():
    for loss_on, expect in (("query", [35]), ("labels", list(range(3, 36, 4))), ("all", list(range(1, 36)))):
        w = BurstyClasses(**SMALL, loss_on=loss_on)
        b = w.sample(np.random.default_rng(0), 6)
        assert b.tokens.shape == (6, w.seq_len) == (6, 36)
        assert np.flatnonzero(b.loss_mask[0]).tolist() == expect
        x, y = _pairs(w, b)
        np.testing.assert_array_equal(y, b.info["labels"])
        np.testing.assert_array_equal(y, w.class_labels[b.info["classes"]])  # training: a class's own label
        assert x.max() < w.n_features <= y.min()
        # every exemplar is one of its class's exemplars
        ex = w.exemplars[b.info["classes"]]  # (batch, pair, E, L)
        assert (ex == x[:, :, None, :]).all(axis=-1).any(axis=-1).all()


def test_within_class_variation_is_the_share_of_changed_tokens():
    w = BurstyClasses(n_classes=2000, n_holdout=10, n_exemplars=20, exemplar_len=4, n_features=32, variation=0.3)
    changed = (w.exemplars != w.prototypes[:, None, :]).mean()
    assert abs(changed - 0.3) < 0.01
    assert len(np.unique(w.prototypes, axis=0)) == 2010  # distinct classes
    assert (BurstyClasses(**{**SMALL, "variation": 0.0}).exemplars == BurstyClasses(**SMALL).prototypes[:, None]).all()


def test_bursty_sequences_hold_the_query_class_shots_times():
    w = BurstyClasses(**{**SMALL, "n_classes": 5000, "n_features": 32}, p_bursty=0.6)
    b = w.sample(np.random.default_rng(1), 4000)
    bursty = b.info["bursty"]
    assert abs(bursty.mean() - 0.6) < 0.03
    c = b.info["classes"]
    in_context = (c[:, :-1] == c[:, -1:]).sum(axis=1)  # (batch,)
    assert (in_context[bursty] >= 3).all() and np.mean(in_context[bursty] == 3) > 0.99
    assert np.mean(in_context[~bursty] == 0) > 0.99  # 5,000 uniform classes: a repeat is rare
    # a bursty context holds exactly two classes three times (the others are i.i.d. draws)
    counts = np.array([sorted(np.unique(row[:-1], return_counts=True)[1])[-2:] for row in c[bursty]])
    assert np.mean((counts == 3).all(axis=1)) > 0.99


def test_a_burst_uses_distinct_exemplars():
    """With E = shots + 1 exemplars, a burst class's three context pairs and the query use all four."""
    w = BurstyClasses(**{**SMALL, "n_exemplars": 4, "variation": 1.0, "n_features": 64}, p_bursty=1.0)
    b = w.sample(np.random.default_rng(6), 300)
    x, _ = _pairs(w, b)
    c = b.info["classes"]
    for row in range(300):
        q = c[row, -1]
        if len(np.unique(w.exemplars[q], axis=0)) < 4 or (c[row, :-1] == q).sum() != 3:
            continue  # two exemplars happen to coincide, or a remainder pair repeats the class
        used = x[row][c[row] == q]  # (4, L)
        assert len(np.unique(used, axis=0)) == 4


def test_classes_follow_the_zipf_law():
    w = BurstyClasses(**SMALL, p_bursty=0.0, zipf_exponent=1.0)
    c = w.sample(np.random.default_rng(2), 20000).info["classes"].ravel()
    freq = np.bincount(c, minlength=w.n_classes) / c.size
    p = 1 / np.arange(1, 201)
    p /= p.sum()
    np.testing.assert_allclose(w.class_probs, p)
    np.testing.assert_allclose(freq[:5], p[:5], rtol=0.05)
    assert np.ptp(BurstyClasses(**SMALL).class_probs) == 0  # α = 0: uniform


def test_fewshot_holdout_sequences_have_fresh_labels():
    w = BurstyClasses(**SMALL)
    b = w.fewshot(np.random.default_rng(3), 3000, "holdout")
    c, y = b.info["classes"], b.info["labels"]
    assert (c >= w.n_classes).all()  # every pair is a holdout class (4 shots x 2 ways fill the 8 pairs)
    assert np.flatnonzero(b.loss_mask[0]).tolist() == [w.seq_len - 1]
    for row_c, row_y in zip(c[:50], y[:50]):  # one label per class within a sequence, distinct across classes
        pairs = set(zip(row_c.tolist(), row_y.tolist()))
        assert len(pairs) == 2 and len({p[1] for p in pairs}) == 2
    assert ((c[:, :-1] == c[:, -1:]).sum(axis=1) == 4).all()
    # the labels are fresh: spread over every label, not tied to the class
    assert len(np.unique(y)) > 0.9 * w.labels
    first = y[c == w.n_classes]
    assert len(np.unique(first)) > 20


def test_fewshot_trained_and_no_support():
    w = BurstyClasses(**SMALL, n_labels=8)
    b = w.fewshot(np.random.default_rng(4), 500, "trained")
    assert (b.info["classes"] < w.n_classes).all()
    own = w.class_labels[b.info["query_class"]]
    assert np.mean(own == b.info["query_label"]) < 0.3  # fresh labels: the class's own one only by chance
    n = w.no_support(np.random.default_rng(5), 2000)
    c = n.info["classes"]
    assert not (c[:, :-1] == c[:, -1:]).any()
    np.testing.assert_array_equal(n.info["labels"], w.class_labels[c])
    assert w.vocab_size == 16 + 8 and set(np.unique(w.class_labels)) == set(range(16, 24))


def test_inconsistent_sizes_are_refused():
    with pytest.raises(ValidationError, match="shots \\* ways"):
        BurstyClasses(**SMALL, context=4)
    with pytest.raises(ValidationError, match="strings is fewer"):
        BurstyClasses(n_classes=300, n_features=16, exemplar_len=2)
    with pytest.raises(ValidationError, match="n_labels"):
        BurstyClasses(**SMALL, n_labels=500)
