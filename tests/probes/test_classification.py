"""The classification probe on scripted models with known answers: one that reads the label of the
matching context pair (pure ICL), one that looks the query's class up in the world (pure IWL)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from iclab.errors import InputError
from iclab.probes.classification import Classification
from iclab.worlds.bursty_classes import BurstyClasses

WORLD = BurstyClasses(n_classes=300, n_labels=16, n_holdout=10, n_exemplars=1, exemplar_len=2, n_features=32,
                      variation=0.0)


class Scripted(nn.Module):
    """Logits (batch, pos, vocab) that put 1 on the label ``rule(tokens)`` at the last position."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule
        self.dummy = nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(vocab_size=WORLD.vocab_size)

    def forward(self, input_ids):
        ids = input_ids.numpy()
        logits = np.zeros((*ids.shape, WORLD.vocab_size), dtype=np.float32)
        logits[:, -1][np.arange(len(ids)), self.rule(ids)] = 1.0
        return SimpleNamespace(logits=torch.from_numpy(logits))


def in_context(ids: np.ndarray) -> np.ndarray:
    """The label of the first context pair whose exemplar equals the query's; else the lowest label."""
    L = WORLD.exemplar_len
    pairs = ids[:, :-L].reshape(len(ids), -1, L + 1)  # (batch, P, L + 1)
    match = (pairs[:, :, :L] == ids[:, None, -L:]).all(axis=2)  # (batch, P)
    found = match.any(axis=1)
    return np.where(found, pairs[np.arange(len(ids)), match.argmax(axis=1), L], WORLD.n_features)


def in_weights(ids: np.ndarray) -> np.ndarray:
    """The trained label of the class whose exemplar is the query's (holdout classes: the lowest label)."""
    cls = (WORLD.exemplars[:, 0, None, :] == ids[None, :, -WORLD.exemplar_len:]).all(axis=2).argmax(axis=0)
    return np.where(cls < WORLD.n_classes, WORLD.class_labels[np.minimum(cls, WORLD.n_classes - 1)], WORLD.n_features)


@pytest.fixture(scope="module")
def prompts():
    return Classification(n_prompts=200).prompts(WORLD, np.random.default_rng(0))


def test_a_model_that_reads_the_context_has_icl_and_no_iwl(prompts):
    res = Classification(n_prompts=200, batch_size=64)(Scripted(in_context), prompts)
    for s in ("fewshot-holdout", "fewshot-trained"):
        assert res.value("accuracy", label=s) == 1.0 == res.value("context_accuracy", label=s)
        assert res.value("from_context", label=s) == 1.0 and res.value("chance", label=s) == 0.5
    own = res.value("own_label", label="fewshot-trained")
    assert own < 0.2  # fresh labels: the class's own label only by chance
    # no support: never a match, so always the lowest label, right only where that is the answer
    lowest = np.mean(prompts.answers["no-support"] == WORLD.n_features)
    assert res.value("accuracy", label="no-support") == pytest.approx(lowest)
    mass = np.bincount(WORLD.class_labels - WORLD.n_features, weights=WORLD.class_probs).max()
    assert res.value("chance", label="no-support") == pytest.approx(mass) == pytest.approx(1 / 16, abs=0.01)


def test_a_model_that_reads_its_weights_has_iwl_and_no_icl(prompts):
    res = Classification(n_prompts=200)(Scripted(in_weights), prompts)
    assert res.value("accuracy", label="no-support") == 1.0
    assert res.value("own_label", label="fewshot-trained") == 1.0
    assert res.value("accuracy", label="fewshot-holdout") < 0.2  # the lowest label, right by chance only
    # among the context's labels the ties go to the lowest: about half right on two ways
    assert 0.3 < res.value("context_accuracy", label="fewshot-holdout") < 0.7


def test_prompts_of_another_world_or_too_few_sets_are_refused(prompts):
    with pytest.raises(InputError, match="bursty-classes"):
        Classification().prompts(object(), np.random.default_rng(0))
    few = Classification(sets=["no-support"], n_prompts=10).prompts(WORLD, np.random.default_rng(0))
    with pytest.raises(InputError, match="fewshot-holdout"):
        Classification(n_prompts=10)(Scripted(in_context), few)
