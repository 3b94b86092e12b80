"""The label-scoring probe on a model whose logits are set by hand, and the one-token rule for labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from iclab.errors import InputError
from iclab.probes.label_scoring import LabelPrompts, LabelScoring, candidate_logits, encode_texts, label_token_ids


class LastTokenLogits(nn.Module):
    """A 'model' whose logits at every position are a fixed row of ``table`` chosen by the token
    there: logits[b, t] = table[ids[b, t]]."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table, requires_grad=False)

    def forward(self, input_ids, **kwargs):
        return self.table[input_ids]  # (batch, pos, vocab)


def test_accuracy_is_the_argmax_over_the_candidates_only():
    V = 6
    table = torch.zeros(V, V)
    table[1] = torch.tensor([0, 0, 5.0, 1.0, 9.0, 0])  # after token 1: candidates 2 vs 3 -> 2; token 4 is no candidate
    table[2] = torch.tensor([0, 0, 1.0, 3.0, 0, 0])  # after token 2: 3
    ids = torch.tensor([[5, 1, 0], [5, 5, 2], [1, 0, 0], [2, 0, 0]])
    lengths = np.array([2, 3, 1, 1])  # last tokens: 1, 2, 1, 2
    cands = np.array([[2, 3], [2, 3], [2, 3], [2, -1]])  # the last prompt has one candidate
    targets = {"accuracy": np.array([0, 0, 1, 0]), "context_accuracy": np.array([-1, 1, -1, -1])}
    prompts = LabelPrompts(ids, lengths, cands, targets, np.array(["a", "a", "b", "b"]))
    scores = candidate_logits(LastTokenLogits(table), prompts)
    np.testing.assert_array_equal(scores, [[5, 1], [1, 3], [5, 1], [1, -np.inf]])
    res = LabelScoring(batch_size=3)(LastTokenLogits(table), prompts)
    np.testing.assert_array_equal(res.arrays["predicted"], [0, 1, 0, 0])
    got = {(r.metric, r.label): r.value for r in res.rows}
    # group a: prompts 0 (right), 1 (wrong); group b: 2 (wrong), 3 (right); context: prompt 1 only (right)
    assert got == {("accuracy", "a"): 0.5, ("accuracy", "b"): 0.5, ("context_accuracy", "a"): 1.0}


def test_labels_must_be_one_token(word_tokenizer, char_tokenizer):
    ids = label_token_ids(word_tokenizer, ["positive", "negative"], "Sentiment:")
    assert word_tokenizer.convert_ids_to_tokens(ids) == ["positive", "negative"]
    with pytest.raises(InputError, match=r"label 'positive' is not one token .* after 'Sentiment:': it reads as "
                                         r"\[' ', 'p', 'o', 's',"):
        label_token_ids(char_tokenizer, ["positive", "negative"], "Sentiment:")
    with pytest.raises(InputError, match=r"labels \['qqq', 'zzz'\] are the same token"):
        label_token_ids(word_tokenizer, ["qqq", "zzz"], "Sentiment:")  # both unknown words: [UNK]


def test_prompts_are_encoded_without_a_trailing_end_token(word_tokenizer):
    ids, lengths = encode_texts(word_tokenizer, ["Review: great\nSentiment:", "Sentiment:"])
    assert lengths.tolist() == [5, 2] and ids.shape == (2, 5)
    assert word_tokenizer.convert_ids_to_tokens(ids[0].tolist()) == ["Review", ":", "great", "Sentiment", ":"]
    assert word_tokenizer.convert_ids_to_tokens(ids[1].tolist()) == ["Sentiment", ":", "[PAD]", "[PAD]", "[PAD]"]


def test_a_prompt_longer_than_the_model_is_refused(word_lm_dir):
    from iclab.models.load import load_model

    model, tok = load_model(str(word_lm_dir))
    ids = torch.zeros((1, 600), dtype=torch.long)
    prompts = LabelPrompts(ids, np.array([600]), np.array([[2, 3]]), {"accuracy": np.array([0])}, np.array(["g"]))
    with pytest.raises(InputError, match="600 tokens, more than the model's 512 positions"):
        LabelScoring()(model, prompts)
