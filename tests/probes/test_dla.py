"""Direct logit attribution: the terms add up to the model's logit difference exactly (every
family, biases perturbed), and on the model built to copy the built head carries it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import copy_head_model, copy_task
from iclab.errors import InputError
from iclab.probes.contrast import contrast_prompts
from iclab.probes.dla import DirectLogitAttribution, direct_logit_attribution


def test_the_terms_sum_to_the_logit_difference(tiny_lm, token_ids):
    answer, baseline = torch.tensor([3, 7, 11]), torch.tensor([5, 2, 40])
    a = direct_logit_attribution(tiny_lm.model, token_ids, answer, baseline)
    with torch.no_grad():
        last = tiny_lm.model(input_ids=token_ids).logits[:, -1]
    want = last[torch.arange(3), answer] - last[torch.arange(3), baseline]
    torch.testing.assert_close(a.logit_diff, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.total(), want, atol=1e-4, rtol=0)
    assert a.heads.shape == (3, tiny_lm.n_layers, tiny_lm.n_heads) and a.mlp.shape == (3, tiny_lm.n_layers)
    # every kind of term is there and matters: leaving any one out breaks the sum
    for part in (a.heads.sum((1, 2)), a.mlp.sum(1), a.embed):
        assert part.abs().max() > 1e-3
    if tiny_lm.family == "gpt2":  # learned positions, output and norm biases (perturbed by the fixture)
        assert a.pos_embed.abs().max() > 1e-3 and a.attn_bias.abs().max() > 1e-3 and a.bias.abs().max() > 1e-3
    else:  # rotary, no output bias, RMSNorm and an unembedding without bias
        assert (a.pos_embed == 0).all() and (a.attn_bias == 0).all() and (a.bias == 0).all()


def test_at_another_position(tiny_lm, token_ids):
    a = direct_logit_attribution(tiny_lm.model, token_ids, 4, 9, pos=[2, 5, 0])
    with torch.no_grad():
        logits = tiny_lm.model(input_ids=token_ids).logits
    want = logits[torch.arange(3), torch.tensor([2, 5, 0])][:, [4, 9]]
    torch.testing.assert_close(a.total(), want[:, 0] - want[:, 1], atol=1e-4, rtol=0)


def test_the_copying_head_carries_the_logit_difference():
    model = copy_head_model(layer=1, head=2, offset=2)
    clean, _, replaced = copy_task(n=6, length=10, offset=2, answer=5)
    res = DirectLogitAttribution()(model, contrast_prompts(clean, answer=5, baseline=replaced))
    heads = res.arrays["heads"]
    diff = res.rows.value("logit_diff")
    assert diff > 3 and heads[1, 2] > 0.95 * diff
    assert np.abs(np.delete(heads.ravel(), 6)).max() < 0.05 * diff
    terms = [r.value for r in res.rows if r.metric.startswith("dla_")]
    assert sum(terms) == pytest.approx(diff, abs=1e-4)


def test_a_baseline_is_required():
    model = copy_head_model()
    with pytest.raises(InputError, match="baseline"):
        DirectLogitAttribution()(model, contrast_prompts(torch.arange(6)[None], answer=3))
