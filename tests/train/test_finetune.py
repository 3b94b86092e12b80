"""Fine-tuning through the one training loop (LoRA or full): only the chosen layer changes, the
loss on the answers falls, the same seed gives the same weights; batches mask all but the answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iclab.probes.task_text import answer_tokens
from iclab.train.finetune import AnswerSequences, FinetuneSettings, finetuned, linear_targets, tuned_layers


def test_answer_batches_pad_and_mask_all_but_the_answers():
    seqs, starts = [[5, 6, 7, 8], [5, 9]], [2, 1]
    batch = AnswerSequences(seqs, starts, pad_id=0).sample(np.random.default_rng(0), 5)  # asks more than there are
    assert batch.tokens.shape == (2, 4)
    for row, mask in zip(batch.tokens, batch.loss_mask):
        j = next(i for i, s in enumerate(seqs) if s == row[: len(s)].tolist())
        assert row[len(seqs[j]):].tolist() == [0] * (4 - len(seqs[j]))
        assert np.flatnonzero(mask).tolist() == list(range(starts[j], len(seqs[j])))


def test_lora_targets_are_the_linear_maps_of_the_chosen_layers(char_lm):
    assert tuned_layers(12, 10, "first") == [0, 1, 2, 3, 4, 5] and tuned_layers(12, 3, "last") == [9, 10, 11]
    names, conv = linear_targets(char_lm, [1])
    assert conv and names == ["transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj",
                              "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"]


def _answer_loss(model, enc) -> float:
    """Mean cross-entropy on the answer tokens, one prompt at a time (no padding)."""
    seqs, starts = answer_tokens(enc)
    losses = []
    with torch.no_grad():
        for seq, start in zip(seqs, starts):
            ids = torch.tensor([seq])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            losses += [-logp[i - 1, seq[i]].item() for i in range(start, len(seq))]
    return float(np.mean(losses))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_finetuning_changes_only_the_chosen_layer_and_lowers_the_answer_loss(char_lm, bitwise_enc, method):
    before = {k: v.clone() for k, v in char_lm.state_dict().items()}
    flags = {n: p.requires_grad for n, p in char_lm.named_parameters()}
    loss_before = _answer_loss(char_lm, bitwise_enc)
    cfg = FinetuneSettings(enabled=True, method=method, n_layers=1, steps=30, batch_size=6, lr=3e-3, dropout=0.0)
    data = AnswerSequences(*answer_tokens(bitwise_enc), pad_id=bitwise_enc.pad_id)
    with finetuned(char_lm, data, [1], cfg, seed=0) as tuned:
        assert tuned is char_lm  # tuned in place: no copy of the model
        after = {k: v.clone() for k, v in tuned.state_dict().items()}
        assert _answer_loss(tuned, bitwise_enc) < loss_before - 0.1
        assert not any(p.requires_grad for p in tuned.parameters())
    assert set(after) == set(before)  # LoRA merged away: the same HF model, the same names
    changed = {k for k in before if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("transformer.h.1.") for k in changed)
    if method == "full":  # every parameter of layer 1 is trained, norms and biases too
        assert {k for k in before if k.startswith("transformer.h.1.") and not k.endswith(".attn.bias")} <= changed
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    # on leaving the block the model is bit-identical to before: weights, names, dtypes, flags
    now = char_lm.state_dict()
    assert set(now) == set(before) and all(torch.equal(v, before[k]) and v.dtype == before[k].dtype
                                           for k, v in now.items())
    assert {n: p.requires_grad for n, p in char_lm.named_parameters()} == flags
    assert not any(type(m).__module__.startswith("peft") for m in char_lm.modules())
    with finetuned(char_lm, data, [1], cfg, seed=0) as again:  # same seed, same weights
        assert all(torch.equal(v, after[k]) for k, v in again.state_dict().items())
    assert all(torch.equal(v, before[k]) for k, v in char_lm.state_dict().items())


def test_a_failed_finetuning_leaves_the_model_as_it_was(char_lm, bitwise_enc, monkeypatch):
    import iclab.train.finetune as ft

    before = {k: v.clone() for k, v in char_lm.state_dict().items()}

    def broken(model, *args, **kwargs):
        for p in model.parameters():
            if p.requires_grad:
                p.data.add_(1.0)  # half a training step, then a crash
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ft, "train", broken)
    data = AnswerSequences(*answer_tokens(bitwise_enc), pad_id=bitwise_enc.pad_id)
    for method in ("lora", "full"):
        with pytest.raises(RuntimeError, match="out of memory"), finetuned(
                char_lm, data, [1], FinetuneSettings(method=method, n_layers=1), seed=0):
            pass
        now = char_lm.state_dict()
        assert set(now) == set(before) and all(torch.equal(v, before[k]) for k, v in now.items())
        assert not any(type(m).__module__.startswith("peft") for m in char_lm.modules())
