"""The ginc probe on scripted models with known accuracies: one that reads the answer off a
table (accuracy 1), one that always says the same token (accuracy = that token's share of the
answers), one that copies the Bayes-optimal predictor (accuracy = the reference)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from iclab.errors import InputError
from iclab.probes.ginc_accuracy import GINCAccuracy, cell_label
from iclab.worlds.ginc import GINCWorld


class Scripted(nn.Module):
    """Logits that put all mass on ``answer(prompt row)`` at the last position."""

    def __init__(self, vocab: int, answer):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # a device for the probe
        self.config = SimpleNamespace(vocab_size=vocab)
        self.answer, self.vocab = answer, vocab

    def forward(self, input_ids):
        B, T = input_ids.shape
        logits = torch.zeros(B, T, self.vocab)
        for i, row in enumerate(input_ids.tolist()):
            logits[i, -1, self.answer(tuple(row))] = 1.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def setup():
    world = GINCWorld(n_symbols=12, n_entities=3, n_properties=4, n_concepts=4, n_pretrain_concepts=2)
    probe = GINCAccuracy(shots=[0, 1, 3], lengths=[3, 4], n_prompts=24, batch_size=7)
    return world, probe, probe.prompts(world, np.random.default_rng(0))


def _table(prompts, pick):
    """prompt row (as a tuple) -> token, from ``pick(variant, l, k)`` (n,) per cell."""
    out = {}
    for (v, l, k), tokens in prompts.tokens.items():
        for row, y in zip(tokens, pick(v, l, k)):
            out.setdefault(tuple(row.tolist()), int(y))
    return out


def test_a_model_that_knows_the_answers_scores_one(setup):
    world, probe, prompts = setup
    table = _table(prompts, lambda v, l, k: prompts.answers[v, l].argmax(axis=1))
    res = probe(Scripted(world.vocab_size, table.__getitem__), prompts)
    acc = res.rows.where(metric="accuracy")
    assert len(acc) == 4 * 2 * 3 and res.arrays["accuracy"].shape == (4, 2, 3)
    for (v, l, k), tokens in prompts.tokens.items():
        # a short prompt can recur with another concept and answer: the table holds the first
        want = np.mean([a[table[tuple(row.tolist())]] for row, a in zip(tokens, prompts.answers[v, l])])
        assert acc.value(label=cell_label(v, l), pos=k) == pytest.approx(want)
    assert acc.values().mean() > 0.95


def test_a_constant_model_scores_the_share_of_its_token(setup):
    world, probe, prompts = setup
    res = probe(Scripted(world.vocab_size, lambda row: 5), prompts)
    for v, l, k in [("id", 3, 0), ("unseen-concepts", 4, 3), ("shuffled-delimiters", 3, 1)]:
        want = prompts.answers[v, l][:, 5].mean()
        assert res.rows.value("accuracy", label=cell_label(v, l), pos=k) == pytest.approx(want)


def test_copying_the_bayes_predictor_scores_its_accuracy(setup):
    world, probe, prompts = setup
    table = _table(prompts, lambda v, l, k: np.maximum(prompts.references[v, l, k]["bayes"], 0))
    res = probe(Scripted(world.vocab_size, table.__getitem__), prompts)
    for r in res.rows.where(metric="accuracy", label=cell_label("id", 3)):
        assert r.value == pytest.approx(res.rows.value("bayes_accuracy", label=r.label, pos=r.pos))
    # the format shifts keep the examples, so the format-aware references do not move
    for k in (0, 1, 3):
        for m in ("bayes_accuracy", "bayes_all_accuracy"):
            assert res.rows.value(m, label="id l=4", pos=k) == res.rows.value(m, label="no-delimiters l=4", pos=k)


def test_references_rise_with_k_and_a_smaller_probe_reuses_the_prompts(setup):
    world, probe, prompts = setup
    res = probe(Scripted(world.vocab_size, lambda row: 0), prompts)
    bayes = [res.rows.value("bayes_accuracy", label="id l=4", pos=k) for k in (0, 3)]
    assert bayes[1] >= bayes[0]
    small = GINCAccuracy(shots=[3], lengths=[4], variants=["id"], n_prompts=24)
    sub = small(Scripted(world.vocab_size, lambda row: 0), prompts)
    assert len(sub.rows) == 5
    for r in sub.rows:
        assert r.value == res.rows.value(r.metric, label=r.label, pos=r.pos)


def test_refusals(setup):
    world, probe, prompts = setup
    with pytest.raises(InputError, match="vocabulary of 7"):
        probe(Scripted(7, lambda row: 0), prompts)
    with pytest.raises(InputError, match="lack cells"):
        GINCAccuracy(shots=[5], lengths=[3])(Scripted(world.vocab_size, lambda row: 0), prompts)
    with pytest.raises(InputError, match="GINC world"):
        probe.prompts(object(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="l - 1"):
        GINCAccuracy(lengths=[1])
