"""The LSTM baseline model: causal, seeded, and saved and loaded as an HF model through iclab."""

from __future__ import annotations

import torch

from iclab.models.lstm import LSTMForCausalLM, LSTMSpec, build_lstm
from iclab.models.load import load_model
from iclab.train.batches import loss_on_batch


def test_logits_at_a_position_ignore_later_tokens():
    model = build_lstm(LSTMSpec(n_layers=2, d_model=16), vocab_size=11, seed=0).eval()
    x = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 11  # change every token from position 5 on
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits
    assert a.shape == (3, 9, 11)
    assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_same_seed_same_weights_and_it_trains():
    a, b, c = (build_lstm(LSTMSpec(d_model=8), 7, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    loss = loss_on_batch(a, {"tokens": torch.randint(0, 7, (2, 6))})
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters())


def test_saved_and_loaded_through_load_model(tmp_path):
    model = build_lstm(LSTMSpec(n_layers=1, d_model=8), 13, seed=1).eval()
    model.save_pretrained(tmp_path)
    loaded, tokenizer = load_model(str(tmp_path), tokenizer="none", device="cpu")
    assert isinstance(loaded, LSTMForCausalLM) and tokenizer is None
    x = torch.randint(0, 13, (2, 5))
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, loaded(input_ids=x).logits)
