"""Logit lens: the last layer read through the final norm and unembedding is the model's output
(every family); on the model built to copy, the answer becomes readable after the copying layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T

from helpers import copy_head_model, copy_task
from iclab.errors import ModelLoadError
from iclab.probes.contrast import contrast_prompts
from iclab.probes.logit_lens import LogitLens, logit_lens


def test_the_last_layer_is_the_models_logits(tiny_lm, token_ids):
    lens = logit_lens(tiny_lm.model, token_ids)
    assert lens.shape == (tiny_lm.n_layers, *token_ids.shape, tiny_lm.vocab)
    with torch.no_grad():
        logits = tiny_lm.model(input_ids=token_ids).logits
    torch.testing.assert_close(lens[-1], logits, atol=1e-5, rtol=0)
    assert not torch.allclose(lens[0], logits, atol=1e-2)  # an earlier layer is not the output
    torch.testing.assert_close(logit_lens(tiny_lm.model, token_ids, pos=[2, 9])[:, :, 1], lens[:, :, 9])


def test_the_answer_appears_after_the_copying_layer():
    model = copy_head_model(layer=1, head=2, offset=2)
    clean, _, _ = copy_task(n=8, length=10, offset=2, answer=5)
    res = LogitLens()(model, contrast_prompts(clean, answer=5))
    top1 = res.rows.where(metric="lens_top1").series("layer")[1]
    logprob = res.rows.where(metric="lens_logprob").series("layer")[1]
    # before the copying layer nothing writes the output block: about uniform over the 8 tokens
    assert top1[1] == 1.0 and top1[0] < 0.5, top1
    assert logprob[1] > -0.1 and abs(logprob[0] - np.log(1 / 8)) < 0.1, logprob
    assert res.arrays["top_token"].shape == (2, 8) and (res.arrays["top_token"][1] == 5).all()


def test_a_model_whose_logits_are_not_its_unembedded_residual_is_refused():
    cfg = T.CohereConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                         logit_scale=0.25)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = T.AutoModelForCausalLM.from_config(cfg).eval()
    with pytest.raises(ModelLoadError, match="logits"):
        LogitLens()(model, contrast_prompts(torch.arange(6)[None], answer=3))
