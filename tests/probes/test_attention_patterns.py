"""Attention-pattern views on the model built to copy: the built head attends to the token
``offset`` back, and the figure labels both axes with the prompt's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import copy_head_model, copy_task
from iclab.errors import InputError
from iclab.figures.causal import attention_patterns
from iclab.probes.attention_patterns import AttentionPatterns


def test_the_built_previous_token_head_is_seen():
    model = copy_head_model(layer=1, head=2, offset=1)
    clean, _, _ = copy_task(n=4, length=8, offset=1, answer=5)
    res = AttentionPatterns(heads=[(1, 2), (1, 0), (0, 3)])(model, clean)
    rows = res.rows
    assert rows.where(metric="attn_prev", layer=1, head=2).value("attn_prev") > 0.99
    assert rows.where(metric="attn_prev", layer=1, head=0).value("attn_prev") < 0.5
    assert rows.where(metric="attn_entropy", layer=1, head=2).value("attn_entropy") < \
        rows.where(metric="attn_entropy", layer=1, head=0).value("attn_entropy") - 0.5
    pat = res.arrays["pattern"]  # (3, query, key)
    assert pat.shape == (3, 8, 8)
    np.testing.assert_allclose(np.diagonal(pat[0], offset=-1), 1.0, atol=1e-6)
    assert res.arrays["heads"].tolist() == [[1, 2], [1, 0], [0, 3]]
    assert res.arrays["tokens"].tolist() == [str(t) for t in clean[0].tolist()]  # no tokenizer: the ids


def test_every_head_by_default_and_unknown_heads_refused():
    model = copy_head_model()
    ids = torch.arange(6)[None]
    assert AttentionPatterns()(model, ids).arrays["pattern"].shape == (8, 6, 6)
    with pytest.raises(InputError, match="heads"):
        AttentionPatterns(heads=[(2, 0)])(model, ids)


def test_the_figure_labels_the_tokens(char_lm, char_tokenizer):
    char_lm.iclab_tokenizer = char_tokenizer
    try:
        ids = torch.tensor([char_tokenizer("01 -> 10")["input_ids"]])
        res = AttentionPatterns(heads=[(0, 0), (1, 3)])(char_lm, ids)
    finally:
        del char_lm.iclab_tokenizer
    assert res.arrays["tokens"].tolist() == list("01 -> 10")
    fig = attention_patterns(res.arrays["pattern"], res.arrays["tokens"], res.arrays["heads"])
    ax = fig.axes[0]
    assert ax.get_title() == "layer 0, head 0"
    assert [t.get_text() for t in ax.get_xticklabels()] == list("01 -> 10")
